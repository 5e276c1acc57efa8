"""Legacy (pre-4.0) voicemail as CouchDB keeps it: ``private_media`` documents in the account database, and the
messages migrated from them, found in the MODBs through ``by_previous_id`` of ``_design/kazoo_vm_messages``
(``couch_design_docs/modb/kazoo_vm_messages.json``, keyed by ``pvt_previous_id``)."""

from __future__ import annotations

import logging

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.errors import DatabaseNotFound, Unauthorized

log = logging.getLogger(__name__)

DESIGN = "kazoo_vm_messages"


async def migrated_from(store: CouchStore, db: str, legacy_id: str, box_id: str) -> list[str]:
    """Ids of the messages of ``box_id`` in MODB ``db`` migrated (or moved on) from ``legacy_id``."""
    try:
        rows = await query_view(store, db, "modb", DESIGN, "by_previous_id", key=legacy_id)
    except DatabaseNotFound:
        return []
    return [
        str(row.id) for row in rows if row.id and isinstance(row.value, dict) and row.value.get("source_id") == box_id
    ]


async def was_legacy_media(store: CouchStore, account_id: str, legacy_id: str) -> bool:
    """Whether the account database has, or had, a document with this id (a deleted one answers with a tombstone)."""
    rows = await store.all_docs(naming.account_db(account_id), keys=[legacy_id])
    return any(row.id == legacy_id for row in rows)


async def account_modbs(store: CouchStore, account_id: str) -> list[str]:
    """The account's MODBs, from a key range of ``_all_dbs`` (so a cluster's thousands of other databases are
    not listed). CouchDB 3 reserves ``_all_dbs`` to server admins, as it does database creation, which the
    service needs anyway; without that right only the retention window is searched."""
    prefix = naming.account_db(account_id) + "-"
    try:
        names = await store.all_dbs_between(prefix + "000000", prefix + "999999")
    except Unauthorized:
        log.warning(
            "listing the MODBs of %s needs CouchDB admin rights; old ids outside retention are not found", account_id
        )
        return []
    return [name for name in names if naming.database_class(name) == "modb"]
