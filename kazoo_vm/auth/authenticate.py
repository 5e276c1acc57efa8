"""Authenticating and authorising a request to ``/v2/accounts/{A}/...`` (cb_context, crossbar_auth:validate)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from kazoo_vm.auth.context import AuthContext
from kazoo_vm.auth.tokens import SignedWithAnotherKey, TokenService
from kazoo_vm.domain import accounts
from kazoo_vm.domain.accounts import Account, AccountCache
from kazoo_vm.domain.inputs import RequestValues
from kazoo_vm.errors import BadIdentifier, Forbidden, InvalidCredentials
from kazoo_vm.storage.couch import CouchStore


def token_of(headers: Mapping[str, str], parsed: RequestValues) -> str | None:
    """X-Auth-Token, then ``auth_token`` (data, query, envelope), then ``Authorization: Bearer``."""
    token = headers.get("X-Auth-Token") or parsed.value("auth_token")
    if isinstance(token, str) and token:
        return token
    authorization = headers.get("Authorization") or ""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


async def _basic_auth(store: CouchStore, header: str) -> AuthContext:
    """``Basic base64(ACCOUNT_ID:md5hex(user:pass))`` as cb_basic_auth."""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCredentials() from exc
    account_id, _, credentials = decoded.partition(":")
    if not account_id or not credentials:
        raise InvalidCredentials()
    try:
        owner_id = await accounts.user_by_credentials(store, account_id, credentials, "md5")
    except (ValueError, BadIdentifier):
        owner_id = None
    if owner_id is None:
        raise InvalidCredentials()
    return AuthContext(token=None, account_id=account_id, owner_id=owner_id)


async def authenticate(
    store: CouchStore, tokens: TokenService, headers: Mapping[str, str], parsed: RequestValues
) -> AuthContext:
    token = token_of(headers, parsed)
    if token is not None:
        key = tokens.key
        try:
            auth = tokens.verify(token)
        except SignedWithAnotherKey:
            # Perhaps signed with the key CouchDB holds now, and this process still has an older one.
            if not await tokens.catch_up(store, key):
                raise
            auth = tokens.verify(token)
        expected_account = headers.get("X-Auth-Account-Id")
        if expected_account and expected_account != auth.account_id:
            raise InvalidCredentials()
        return auth
    authorization = headers.get("Authorization") or ""
    if authorization[:6].lower() == "basic ":
        return await _basic_auth(store, authorization)
    raise InvalidCredentials()


async def authorize(store: CouchStore, cache: AccountCache, auth: AuthContext, account: Account) -> None:
    """The token's account must be the path account or one of its ancestors (or a superduper admin)."""
    if auth.account_id == account.id or auth.account_id in account.tree:
        return
    try:
        caller = await cache.load(store, auth.account_id)
    except (BadIdentifier, ValueError):
        raise Forbidden() from None
    if not caller.is_superduper_admin:
        raise Forbidden()
