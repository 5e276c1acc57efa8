"""Accounts and users, kept as Kazoo keeps them.

An account document lives in the ``accounts`` database (id = account id) with a copy in the account's own
database; users are ``pvt_type: "user"`` documents in the account database carrying Kazoo's credential hashes
``pvt_md5_auth`` = md5("<lower-case username>:<password>") and ``pvt_sha1_auth`` (sha1 of the same).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kazoo_vm.domain.documents import alphanum, stamp
from kazoo_vm.errors import BadIdentifier, InvalidAccountId, ValidationFailed
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import accounts as stored_accounts
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import DocumentNotFound

_REALM = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    realm: str | None
    tree: tuple[str, ...]
    doc: JsonDict

    @property
    def db(self) -> str:
        return naming.account_db(self.id)

    @property
    def is_superduper_admin(self) -> bool:
        return self.doc.get("pvt_superduper_admin") is True

    @classmethod
    def from_doc(cls, doc: JsonDict) -> Account:
        return cls(
            id=doc["_id"],
            name=str(doc.get("name", "")),
            realm=doc.get("realm"),
            tree=tuple(doc.get("pvt_tree") or ()),
            doc=doc,
        )


def normalize_name(name: str) -> str:
    """Kazoo's normalised account name: lower case, only ``[a-z0-9]`` kept."""
    return alphanum(name)


def credentials_hash(username: str, password: str, method: str = "md5") -> str:
    text = f"{username.lower()}:{password}".encode()
    return hashlib.sha1(text).hexdigest() if method == "sha" else hashlib.md5(text).hexdigest()


async def load_account(store: CouchStore, account_id: str) -> Account:
    """The account named in a request path: 404 in Kazoo's two shapes when malformed or unknown.

    Kazoo only checks the length (api_resource malformed_request): any 32-character id is looked up, so one that
    cannot name an account database (upper case, punctuation) is an unknown account, not a malformed one."""
    if not naming.is_account_id(account_id):
        if len(account_id) == 32:
            raise BadIdentifier(account_id)
        raise InvalidAccountId(account_id)
    try:
        doc = await store.get_doc(naming.ACCOUNTS_DB, account_id)
    except DocumentNotFound:
        raise BadIdentifier(account_id) from None
    if doc.get("pvt_type") != "account" or doc.get("pvt_deleted"):
        raise BadIdentifier(account_id)
    return Account.from_doc(doc)


class AccountCache:
    """Accounts read to authorise requests, each kept at most ``max_age_s`` seconds after it was read.

    Several service processes share one CouchDB, so this cache is only a bounded shortcut: an account changed,
    disabled or deleted through any process is seen by every process within ``max_age_s`` (the age counts from
    before the read, so the bound holds however slow the read was). Unknown accounts are not kept (a new account
    is usable at once), and at most ``max_entries`` accounts are kept, the oldest read dropped first.
    ``max_age_s`` 0 reads the account on every request."""

    def __init__(
        self, max_age_s: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, Account]] = {}

    async def load(self, store: CouchStore, account_id: str) -> Account:
        """:func:`load_account`, answered from the cache while the account read is younger than the bound."""
        if self.max_age_s <= 0:
            return await load_account(store, account_id)
        now = self._clock()
        kept = self._entries.get(account_id)
        if kept is not None and now - kept[0] < self.max_age_s:
            return kept[1]
        self._entries.pop(account_id, None)
        account = await load_account(store, account_id)
        self._entries[account_id] = (now, account)
        while len(self._entries) > self.max_entries:
            del self._entries[next(iter(self._entries))]
        return account


async def create_account(
    store: CouchStore, *, name: str, realm: str | None = None, parent_id: str | None = None
) -> tuple[Account, str]:
    """Create an account (and its database); returns the account and its 64-hex api key."""
    if not name.strip():
        raise ValidationFailed.single("name", "required", "Field is required but missing")
    await ensure_database(store, naming.ACCOUNTS_DB, "accounts")
    tree: list[str] = []
    if parent_id is not None:
        parent = await load_account(store, parent_id)
        tree = [*parent.tree, parent.id]
    account_id = naming.new_doc_id()
    realm = (realm or f"{account_id[:6]}.sip.kazoo-vm.local").lower()
    if not _REALM.match(realm):
        raise ValidationFailed.single("realm", "pattern", f"Failed to match pattern '{_REALM.pattern}'")
    if await stored_accounts.realm_taken(store, realm):
        raise ValidationFailed.single("realm", "unique", "Realm is not unique for this system", cause=realm)
    api_key = secrets.token_hex(32)
    db = naming.account_db(account_id)
    doc: JsonDict = {
        "_id": account_id,
        "name": name,
        "realm": realm,
        "enabled": True,
        "pvt_api_key": api_key,
        "pvt_tree": tree,
        "pvt_enabled": True,
    }
    stamp(doc, doc_type="account", account_id=account_id, db=db)
    await ensure_database(store, db, "account")
    await store.put_doc(db, dict(doc))
    await store.put_doc(naming.ACCOUNTS_DB, doc)
    return Account.from_doc(doc), api_key


async def create_user(store: CouchStore, *, account_id: str, username: str, password: str) -> JsonDict:
    account = await load_account(store, account_id)
    username = username.strip()
    if not username:
        raise ValidationFailed.single("username", "required", "Field is required but missing")
    if await stored_accounts.username_taken(store, account.db, username):
        raise ValidationFailed.single("username", "unique", "Username is not unique for this account", cause=username)
    doc: JsonDict = {
        "_id": naming.new_doc_id(),
        "username": username,
        "first_name": username,
        "last_name": "",
        "enabled": True,
        "priv_level": "admin",
        "pvt_md5_auth": credentials_hash(username, password, "md5"),
        "pvt_sha1_auth": credentials_hash(username, password, "sha"),
    }
    stamp(doc, doc_type="user", account_id=account.id, db=account.db)
    await store.put_doc(account.db, doc)
    return doc


async def account_ids_for_api_key(store: CouchStore, api_key: str) -> list[str]:
    return await stored_accounts.account_ids_by(store, "listing_by_api", api_key)


async def account_ids_for_user_auth(store: CouchStore, request: dict[str, Any]) -> list[str]:
    """Kazoo's cb_user_auth find_account order: phone number (not kept here), realm, then normalised name."""
    realm = request.get("account_realm") or request.get("realm")
    if isinstance(realm, str) and realm:
        found = await stored_accounts.account_ids_by(store, "listing_by_realm", realm.lower())
        if found:
            return found
    name = request.get("account_name")
    if isinstance(name, str) and name:
        return await stored_accounts.account_ids_by(store, "listing_by_name", normalize_name(name))
    return []


async def user_by_credentials(store: CouchStore, account_id: str, credentials: str, method: str) -> str | None:
    """The enabled user of ``account_id`` whose credential hash matches, or None."""
    return await stored_accounts.user_id_by_credentials(store, account_id, credentials, method)
