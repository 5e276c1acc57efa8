"""Design documents from ``couch_design_docs/<class>/``, and keeping databases supplied with them.

A database gets its design documents when it is created; when our set changes, the walk of
:mod:`kazoo_vm.storage.design_sync` brings every database's design documents up to date. A view query that finds
its design document missing (another process created the database a moment ago) repairs it through
:func:`ensure_design_docs`.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import Any

from kazoo_vm.model import JsonDict
from kazoo_vm.resources import design_docs_dir
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DocumentNotFound

log = logging.getLogger(__name__)

DATABASE_CLASSES = ("accounts", "account", "modb")


@cache
def design_docs(db_class: str) -> tuple[JsonDict, ...]:
    """The design documents of a database class, read once from the package's data files."""
    folder = design_docs_dir() / db_class
    if not folder.is_dir():
        return ()
    docs = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]
    return tuple(docs)


def _content(doc: JsonDict) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key not in ("_id", "_rev")}


async def ensure_design_docs(store: CouchStore, db: str, db_class: str, *, fresh: bool = False) -> int:
    """Write every design document of ``db_class`` into ``db`` that is missing or differs; returns how many.

    One ``_all_docs`` read (skipped for a database just created) and one ``_bulk_docs`` write, whatever the
    number of design documents; documents another process wrote meanwhile (409) are compared again.
    """
    wanted = {doc["_id"]: doc for doc in design_docs(db_class)}
    pending = sorted(wanted)
    written = 0
    for attempt in range(3):
        if not pending:
            break
        current: dict[str, JsonDict] = {}
        if not (fresh and attempt == 0):
            rows = await store.all_docs(db, keys=pending, include_docs=True)
            current = {str(row.id): row.doc for row in rows if row.doc is not None}
        batch = []
        for ddoc_id in pending:
            have = current.get(ddoc_id)
            if have is not None and _content(have) == _content(wanted[ddoc_id]):
                continue
            doc = dict(wanted[ddoc_id])
            if have is not None:
                doc["_rev"] = have["_rev"]
            batch.append(doc)
        if not batch:
            break
        results = await store.bulk_docs(db, batch)
        written += sum(1 for result in results if "error" not in result)
        for result in results:
            if result.get("error") not in (None, "conflict"):
                log.error("design document %s refused by %s: %s", result.get("id"), db, result.get("reason"))
        pending = sorted(str(result["id"]) for result in results if result.get("error") == "conflict")
    return written


async def ensure_database(store: CouchStore, db: str, db_class: str) -> bool:
    """Create ``db`` with its design documents if it does not exist; True when this call created it.

    Safe when several requests or processes create the same database at once: CouchDB lets exactly one PUT
    succeed (412 for the others) and design-document writes tolerate conflicts.
    """
    created = await store.create_db(db)
    if created:
        await ensure_design_docs(store, db, db_class, fresh=True)
    return created


async def query_view(store: CouchStore, db: str, db_class: str, design: str, view: str, **params: Any) -> list[Any]:
    """Query a view, writing the database's design documents first if they are missing.

    A database created by another process a moment ago may not have them yet; a missing database is
    still a :class:`~kazoo_vm.storage.errors.DatabaseNotFound` for the caller to interpret.
    """
    try:
        return await store.view(db, design, view, **params)
    except DocumentNotFound:
        await ensure_design_docs(store, db, db_class)
        return await store.view(db, design, view, **params)
