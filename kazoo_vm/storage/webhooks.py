"""Webhooks as Kazoo keeps them: ``pvt_type: "webhook"`` documents in the account database (cb_webhooks), listed
through ``_design/kazoo_vm_webhooks`` (``couch_design_docs/account/``)."""

from __future__ import annotations

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.errors import DatabaseNotFound

DESIGN = "kazoo_vm_webhooks"
DOC_TYPE = "webhook"


async def account_hooks(store: CouchStore, account_db: str) -> list[JsonDict]:
    """Every webhook document of one account that is not deleted, in id order (none when the database is gone)."""
    try:
        rows = await query_view(store, account_db, "account", DESIGN, "listing", include_docs=True)
    except DatabaseNotFound:
        return []
    return [row.doc for row in rows if row.doc is not None]
