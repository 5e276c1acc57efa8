"""Accounts and users as CouchDB keeps them: the ``kazoo_vm_accounts`` views of the accounts database and the
``kazoo_vm_users`` views of an account database (``couch_design_docs/accounts/``, ``couch_design_docs/account/``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from kazoo_vm.model import JsonDict
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.errors import DatabaseNotFound, DocumentNotFound

ACCOUNTS_DESIGN = "kazoo_vm_accounts"
USERS_DESIGN = "kazoo_vm_users"

AccountIndex = Literal["listing_by_realm", "listing_by_name", "listing_by_api"]


async def account_ids_by(store: CouchStore, index: AccountIndex, key: str) -> list[str]:
    """Ids of the accounts whose realm (``listing_by_realm``), normalised name (``listing_by_name``) or api key
    (``listing_by_api``) is ``key``."""
    rows = await query_view(store, naming.ACCOUNTS_DB, "accounts", ACCOUNTS_DESIGN, index, key=key)
    return [str(row.value["account_id"]) for row in rows]


async def realm_taken(store: CouchStore, realm: str) -> bool:
    rows = await query_view(store, naming.ACCOUNTS_DB, "accounts", ACCOUNTS_DESIGN, "listing_by_realm", key=realm)
    return bool(rows)


async def account_docs_page(store: CouchStore, after: str | None, limit: int, *, repair: bool = True) -> list[JsonDict]:
    """At most ``limit`` account documents whose ids sort after ``after`` (from the first when None), in id order:
    one page, so that ten thousand accounts are never read in one response. ``repair=False`` never writes missing
    design documents (a dry run)."""
    params: dict[str, Any] = {"include_docs": True, "limit": limit + 1}
    if after is not None:
        params["start_key"] = after
    if repair:
        rows = await query_view(store, naming.ACCOUNTS_DB, "accounts", ACCOUNTS_DESIGN, "listing_by_id", **params)
    else:
        rows = await store.view(naming.ACCOUNTS_DB, ACCOUNTS_DESIGN, "listing_by_id", **params)
    # start_key is inclusive: ``after`` itself (if still there) is dropped here, not skipped, as it may be gone.
    docs = [row.doc for row in rows if row.doc is not None and (after is None or str(row.id) > after)]
    return docs[:limit]


async def account_docs(
    store: CouchStore, *, page: int = 100, repair: bool = True, after: str | None = None
) -> AsyncIterator[JsonDict]:
    """Every account document in id order (those after ``after`` when given), read ``page`` at a time; nothing when
    the accounts database is missing."""
    while True:
        try:
            docs = await account_docs_page(store, after, page, repair=repair)
        except DatabaseNotFound:
            return
        for doc in docs:
            yield doc
        if len(docs) < page:
            return
        after = str(docs[-1]["_id"])


async def username_taken(store: CouchStore, account_db: str, username: str) -> bool:
    rows = await query_view(store, account_db, "account", USERS_DESIGN, "list_by_username", key=username.lower())
    return bool(rows)


async def user_id_by_credentials(store: CouchStore, account_id: str, credentials: str, method: str) -> str | None:
    """The enabled user of the account whose ``sha`` or ``md5`` credential hash is ``credentials``, or None."""
    view = "creds_by_sha" if method == "sha" else "creds_by_md5"
    try:
        rows = await query_view(
            store, naming.account_db(account_id), "account", USERS_DESIGN, view, key=credentials.lower()
        )
    except DocumentNotFound:
        return None
    return str(rows[0].value["owner_id"]) if rows else None
