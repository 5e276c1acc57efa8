"""Kazoo 4.3 auth tokens: RS256 JWTs with Kazoo's claims (kz_auth_jwt, kz_auth_token).

The RSA signing key is generated on first start and kept in CouchDB (``system_auth`` database, as Kazoo keeps
its keys there), so restarts and every service process over the same CouchDB accept the same tokens. Two
processes starting at once race on one deterministic document id; CouchDB lets one win (409 for the other,
which then reads the winner's key), and the winner reads its key back, so that both use what CouchDB keeps. A
process also asks CouchDB for the key when a token's signature does not match its own (at most once a second): a
token signed with the key CouchDB holds is accepted at once by a process that still has an older one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kazoo_vm.auth.context import AuthContext
from kazoo_vm.errors import InvalidCredentials
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import Conflict, DocumentNotFound, NotFound, StorageError

log = logging.getLogger(__name__)

KEY_DOC_ID = "kazoo_vm_token_signing_key"
ISSUER = "kazoo"
ALGORITHM = "RS256"
# Verified tokens remembered per process, at most (emptied beyond it).
_MAX_VERIFIED = 10_000
# The least time between two reads of the key prompted by tokens signed with another key: forged tokens must not
# make a CouchDB request each.
CATCH_UP_EVERY_S = 1.0


class SignedWithAnotherKey(InvalidCredentials):
    """A well-formed token whose signature does not match the key in use (a forgery, or a newer key)."""


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    identity_secret: bytes

    @cached_property
    def private_key(self) -> Any:
        """The key parsed from PEM, once per key (parsing costs tens of milliseconds of CPU)."""
        return serialization.load_pem_private_key(self.private_pem, password=None)

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()


def _new_key_doc() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return {
        "_id": KEY_DOC_ID,
        "pvt_type": "private_key",
        "pvt_algorithm": ALGORITHM,
        "pvt_private_key_pem": pem.decode(),
        "pvt_identity_secret": secrets.token_hex(32),
        "pvt_created": naming.now_gregorian(),
    }


# system_auth holds the signing key: only server admins (the service's own credentials) may read or write it.
ADMINS_ONLY: dict[str, Any] = {
    "admins": {"names": [], "roles": ["_admin"]},
    "members": {"names": [], "roles": ["_admin"]},
}
_IDENTITY_LABEL = b"kazoo_vm token identity secret"


def key_from_file(path: Path) -> SigningKey:
    """The signing key an operator keeps in a PEM file (``KAZOO_VM_TOKEN_KEY_FILE``) instead of in CouchDB; the
    identity secret is derived from it, so every process reading the same file accepts the same tokens."""
    pem = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} holds no RSA private key (tokens are signed with {ALGORITHM})")
    secret = hmac.new(_IDENTITY_LABEL, pem, hashlib.sha256).hexdigest().encode()
    return SigningKey(private_pem=pem, identity_secret=secret)


async def load_or_create_signing_key(store: CouchStore, key_file: Path | None = None) -> SigningKey:
    """The key in ``key_file`` when given, else the one kept in ``system_auth`` (created on first start)."""
    await ensure_database(store, naming.SYSTEM_AUTH_DB, "system_auth")
    await store.put_security(naming.SYSTEM_AUTH_DB, ADMINS_ONLY)
    if key_file is not None:
        return key_from_file(key_file)
    try:
        doc = await store.get_doc(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)
    except DocumentNotFound:
        doc = _new_key_doc()
        with contextlib.suppress(Conflict):
            await store.put_doc(naming.SYSTEM_AUTH_DB, doc)
        # Whoever wrote it, the key is the one CouchDB keeps: read from every copy, as a rival may sit on one.
        doc = await store.get_doc_from_every_copy(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)
    return _key_of(doc)


async def current_signing_key(store: CouchStore) -> SigningKey | None:
    """The signing key as CouchDB holds it now (one GET), or None when its document is gone."""
    try:
        doc = await store.get_doc(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)
    except NotFound:
        return None
    return _key_of(doc)


def _key_of(doc: dict[str, Any]) -> SigningKey:
    return SigningKey(
        private_pem=str(doc["pvt_private_key_pem"]).encode(),
        identity_secret=str(doc["pvt_identity_secret"]).encode(),
    )


async def follow_signing_key(store: CouchStore, tokens: TokenService, every_s: float) -> None:
    """Re-read the signing key every ``every_s`` seconds and use it when it changed; runs until cancelled. A
    failed read keeps the key in use (CouchDB being away must not stop tokens being checked)."""
    while True:
        await asyncio.sleep(every_s)
        key = await _reread_key(store)
        if key is not None:
            tokens.use(key)


async def _reread_key(store: CouchStore) -> SigningKey | None:
    """:func:`current_signing_key`, None (logged) when it cannot be read: the key in use is then kept."""
    try:
        return await current_signing_key(store)
    except StorageError:
        log.warning("could not re-read the token signing key; the key in use is kept", exc_info=True)
        return None


class TokenService:
    """Issues and checks tokens with the current signing key, parsed once; :meth:`use` swaps in a new key (the
    app re-reads the key document every ``Settings.signing_key_check_s`` seconds, so a key changed in CouchDB
    is used by every process within that bound)."""

    def __init__(self, key: SigningKey, lifetime_s: int, *, key_in_couch: bool = True) -> None:
        """``key_in_couch``: the key is the one CouchDB keeps (not one from a file), so :meth:`catch_up` may look
        for a newer one there."""
        self.lifetime_s = lifetime_s
        self._key = key
        self._key_in_couch = key_in_couch
        self._reread: asyncio.Task[SigningKey | None] | None = None  # the latest look, shared by its waiters
        self._reread_at = 0.0
        self._public_key = key.public_key
        # Tokens this key has verified, with their expiry: a client sends the same token again and again, and an
        # RSA signature check costs more CPU than the rest of a small request. A token stays valid until its
        # ``exp`` whoever checks it, so keeping the answer adds no staleness; a new key empties it.
        self._verified: dict[str, tuple[float, AuthContext]] = {}

    @property
    def key(self) -> SigningKey:
        return self._key

    def use(self, key: SigningKey) -> None:
        """Sign and verify with ``key`` from now on (nothing is parsed again when it is the same key)."""
        if key == self._key:
            return
        self._public_key = key.public_key
        self._key = key
        self._verified = {}

    def _identity_sig(self, account_id: str, owner_id: str | None) -> str:
        message = f"{account_id}:{owner_id or ''}".encode()
        digest = hmac.new(self._key.identity_secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, account_id: str, owner_id: str | None, method: str, *, lifetime_s: int | None = None) -> str:
        claims: dict[str, Any] = {
            "account_id": account_id,
            "method": method,
            "iss": ISSUER,
            "exp": int(time.time()) + (self.lifetime_s if lifetime_s is None else lifetime_s),
            "identity_sig": self._identity_sig(account_id, owner_id),
        }
        if owner_id:
            claims["owner_id"] = owner_id
        return jwt.encode(claims, self._key.private_key, algorithm=ALGORITHM)

    def verify(self, token: str) -> AuthContext:
        """Check algorithm, signature, expiry and identity signature; any failure is 401."""
        kept = self._verified.get(token)
        if kept is not None and time.time() < kept[0]:
            return kept[1]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "account_id"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise SignedWithAnotherKey() from exc
        except jwt.PyJWTError as exc:
            raise InvalidCredentials() from exc
        account_id = claims.get("account_id")
        owner_id = claims.get("owner_id")
        if not isinstance(account_id, str):
            raise InvalidCredentials()
        if not hmac.compare_digest(str(claims.get("identity_sig", "")), self._identity_sig(account_id, owner_id)):
            raise SignedWithAnotherKey()
        auth = AuthContext(
            token=token,
            account_id=account_id,
            owner_id=owner_id if isinstance(owner_id, str) else None,
        )
        if len(self._verified) >= _MAX_VERIFIED:
            self._verified.clear()
        self._verified[token] = (float(claims["exp"]), auth)
        return auth

    async def catch_up(self, store: CouchStore, failed_with: SigningKey) -> bool:
        """After a token's signature did not match ``failed_with`` (the key in use then): True when another key is
        in use now, to check the token with. CouchDB is asked for the key at most once every
        :data:`CATCH_UP_EVERY_S`; requests that come meanwhile share that answer. A key from a file never changes."""
        if self._key != failed_with:
            return True  # a newer key arrived meanwhile
        if not self._key_in_couch:
            return False
        reread = self._reread
        if reread is None or (reread.done() and time.monotonic() - self._reread_at >= CATCH_UP_EVERY_S):
            self._reread_at = time.monotonic()
            reread = self._reread = asyncio.ensure_future(_reread_key(store))
        key = await asyncio.shield(reread)
        if key is not None:
            self.use(key)
        return self._key != failed_with
