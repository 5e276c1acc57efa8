"""``PUT /v2/api_auth`` and ``PUT /v2/user_auth`` (cb_api_auth.erl, cb_user_auth.erl)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.auth.context import AuthContext
from kazoo_vm.domain import accounts, validation
from kazoo_vm.errors import (
    BadIdentifier,
    InvalidCredentials,
    UnknownApiKey,
    ValidationFailed,
)
from kazoo_vm.handlers.common import parsed
from kazoo_vm.http import envelope


def _auth_response(
    request: web.Request, account: accounts.Account, token: str, owner_id: str | None
) -> web.StreamResponse:
    request[appkeys.AUTH] = AuthContext(token=token, account_id=account.id, owner_id=owner_id)
    data: dict[str, Any] = {
        "account_id": account.id,
        "account_name": account.name,
        "is_reseller": False,
        "language": "en-us",
        "apps": [],
    }
    if owner_id:
        data["owner_id"] = owner_id
    if len(account.tree) > 0:
        data["reseller_id"] = account.tree[0]
    data["is_master_account"] = not account.tree
    return envelope.success(request, data, status=201)


async def api_auth(request: web.Request) -> web.StreamResponse:
    store = request.app[appkeys.STORE]
    data = validation.validate("api_auth", parsed(request).data_object)
    api_key = data["api_key"]
    found = await accounts.account_ids_for_api_key(store, api_key)
    if not found:
        raise UnknownApiKey(api_key)
    account = await accounts.load_account(store, found[0])
    _check_enabled(account)
    token = request.app[appkeys.TOKENS].issue(account.id, None, "cb_api_auth")
    return _auth_response(request, account, token, None)


async def user_auth(request: web.Request) -> web.StreamResponse:
    store = request.app[appkeys.STORE]
    data = validation.validate("user_auth", parsed(request).data_object)
    candidates = await accounts.account_ids_for_user_auth(store, data)
    method = data.get("method", "md5")
    for account_id in candidates:
        owner_id = await accounts.user_by_credentials(store, account_id, data["credentials"], method)
        if owner_id is None:
            continue
        try:
            account = await accounts.load_account(store, account_id)
        except BadIdentifier:
            continue
        _check_enabled(account)
        token = request.app[appkeys.TOKENS].issue(account.id, owner_id, "cb_user_auth")
        return _auth_response(request, account, token, owner_id)
    raise InvalidCredentials()


def _check_enabled(account: accounts.Account) -> None:
    if account.doc.get("enabled") is False or account.doc.get("pvt_enabled") is False:
        raise ValidationFailed({"account": {"disabled": {"message": "account disabled"}}})


__all__ = ["api_auth", "user_auth"]
