"""Design documents from ``couch_design_docs/<class>/``, and keeping databases supplied with them.

A database gets its design documents when it is created; when our set changes, the walk of
:mod:`kazoo_vm.storage.design_sync` brings every database's design documents up to date where they differ in what
CouchDB executes (:func:`is_current`). Kazoo's own design documents are written as Kazoo's loader writes them
(:func:`kazoo_loaded_form`), so that neither a Kazoo node sharing the CouchDB nor this service ever finds the
other's copy out of date. A view query that finds
its design document missing (another process created the database a moment ago) repairs it through
:func:`ensure_design_docs`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from kazoo_vm.model import JsonDict
from kazoo_vm.resources import design_docs_dir
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DocumentNotFound, StorageError

log = logging.getLogger(__name__)

DATABASE_CLASSES = ("accounts", "account", "modb", "notifications")
# Design documents that are ours alone; every other one is Kazoo's, shipped as Kazoo's source file.
OWN_PREFIX = "_design/kazoo_vm_"
# Kazoo's design documents whose views the service queries: a stored one must carry every view of ours with
# the same meaning. Kazoo's others only need to exist: a Kazoo node of any version keeps them as it wants them.
QUERIED_KAZOO_DESIGNS = frozenset({"_design/vmboxes", "_design/mailbox_messages"})
# Keys of a design document that CouchDB does not execute.
_INERT_KEYS = frozenset({"_id", "_rev", "kazoo"})


def kazoo_loaded_form(source: JsonDict) -> JsonDict:
    """A design document as Kazoo's loader stores it: the ``kazoo`` key dropped (kz_datamgr:maybe_register_view)
    and each view function given as a list of lines joined without a separator (kz_datamgr:inline_js_fun, an
    ``iolist_to_binary`` of the lines, applied when the first line starts with ``function``)."""
    doc = {key: value for key, value in source.items() if key != "kazoo"}
    views = doc.get("views")
    if isinstance(views, dict):
        doc["views"] = {name: {field: _inline(code) for field, code in view.items()} for name, view in views.items()}
    return doc


def _inline(code: Any) -> Any:
    if isinstance(code, list) and code and isinstance(code[0], str) and code[0].startswith("function"):
        return "".join(str(line) for line in code)
    return code


def is_kazoos(ddoc_id: str) -> bool:
    """Whether a design document is one of Kazoo's own (not one only kazoo_vm uses)."""
    return not ddoc_id.startswith(OWN_PREFIX)


@cache
def design_docs(db_class: str) -> tuple[JsonDict, ...]:
    """The design documents of a database class as they are written to CouchDB, read once from the package's
    data files: Kazoo's in the form Kazoo's loader writes them, so a Kazoo node's refresh finds them equal."""
    folder = design_docs_dir() / db_class
    if not folder.is_dir():
        return ()
    docs = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]
    return tuple(kazoo_loaded_form(doc) for doc in docs)


_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`|\s+|.""", re.DOTALL)


@lru_cache(maxsize=4096)
def executed_code(code: str) -> str:
    """JavaScript source with the whitespace CouchDB's engine ignores taken out: only a space between two word
    characters is kept (``var x``), string literals untouched. Kazoo's line joining, its reformatting between
    versions and ours all give the same text for the same function. Memoised: a walk over thousands of databases
    meets the same few functions in each, and tokenising them again each time would keep the event loop busy."""
    out: list[str] = []
    pending_space = False
    for token in _TOKEN.findall(code):
        if token.isspace():
            pending_space = True
            continue
        if pending_space and out and _wordy(out[-1][-1]) and _wordy(token[0]):
            out.append(" ")
        pending_space = False
        out.append(token)
    return "".join(out)


def _wordy(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _meaning(value: Any) -> Any:
    """What CouchDB executes of a design document's value: code compared by :func:`executed_code`."""
    if isinstance(value, str):
        return executed_code(value)
    if isinstance(value, list):
        return [_meaning(item) for item in value]
    if isinstance(value, dict):
        return {key: _meaning(item) for key, item in value.items()}
    return value


def _views(doc: JsonDict) -> dict[str, Any]:
    views = doc.get("views")
    return views if isinstance(views, dict) else {}


def is_current(stored: JsonDict, wanted: JsonDict) -> bool:
    """Whether a stored design document does what ``wanted`` does, so that writing ``wanted`` would change
    nothing CouchDB executes (the ``kazoo`` key, ``_rev`` and whitespace do not count).

    One of Kazoo's design documents we query is current when each of our views is there with the same meaning
    (a Kazoo node may carry more views); one of Kazoo's we do not query is current as soon as it exists; ours
    must mean exactly the same. Equal values are taken as equal meanings before any code is normalised."""
    ddoc_id = str(wanted["_id"])
    if is_kazoos(ddoc_id) and ddoc_id not in QUERIED_KAZOO_DESIGNS:
        return True
    if stored.get("language", "javascript") != wanted.get("language", "javascript"):
        return False
    if is_kazoos(ddoc_id):
        have = _views(stored)
        return all(name in have and _same(have[name], view) for name, view in _views(wanted).items())
    return _same(_executable(stored), _executable(wanted))


def _same(stored: Any, wanted: Any) -> bool:
    return bool(stored == wanted or _meaning(stored) == _meaning(wanted))


def _executable(doc: JsonDict) -> JsonDict:
    return {key: value for key, value in doc.items() if key not in _INERT_KEYS}


@dataclass
class Brought:
    """What :func:`bring_up_to_date` did to one database: design documents written, retired ones deleted."""

    written: int = 0
    retired: int = 0


async def ensure_design_docs(store: CouchStore, db: str, db_class: str, *, fresh: bool = False) -> int:
    """Write every design document of ``db_class`` into ``db`` that is missing or differs; returns how many."""
    return (await bring_up_to_date(store, db, db_class, fresh=fresh)).written


async def bring_up_to_date(
    store: CouchStore, db: str, db_class: str, *, retire: Sequence[str] = (), fresh: bool = False
) -> Brought:
    """Write every design document of ``db_class`` into ``db`` that is missing or differs, and delete those of
    ``retire`` it still has (then drop their index files with ``_view_cleanup``).

    One ``_all_docs`` read of them all (skipped for a database just created) and, only when something is to be
    written or deleted, one ``_bulk_docs``: a database already up to date costs one request. Documents another
    process wrote meanwhile (409) are compared again.
    """
    wanted = {doc["_id"]: doc for doc in design_docs(db_class)}
    doomed = frozenset(retire) - wanted.keys()
    pending = sorted(wanted.keys() | doomed)
    brought = Brought()
    for attempt in range(3):
        if not pending:
            break
        current: dict[str, JsonDict] = {}
        if not (fresh and attempt == 0):
            rows = await store.all_docs(db, keys=pending, include_docs=True)
            current = {str(row.id): row.doc for row in rows if row.doc is not None}
        batch: list[JsonDict] = []
        for ddoc_id in pending:
            have = current.get(ddoc_id)
            if ddoc_id in doomed:
                if have is not None:
                    batch.append({"_id": ddoc_id, "_rev": have["_rev"], "_deleted": True})
                continue
            if have is not None and is_current(have, wanted[ddoc_id]):
                continue
            doc = dict(wanted[ddoc_id])
            if have is not None:
                doc["_rev"] = have["_rev"]
            batch.append(doc)
        if not batch:
            break
        results = await store.bulk_docs(db, batch)
        for result in results:
            if "error" not in result:
                if result.get("id") in doomed:
                    brought.retired += 1
                else:
                    brought.written += 1
            elif result.get("error") != "conflict":
                log.error("design document %s refused by %s: %s", result.get("id"), db, result.get("reason"))
        pending = sorted(str(result["id"]) for result in results if result.get("error") == "conflict")
    if brought.retired:
        try:
            await store.view_cleanup(db)
        except StorageError as exc:  # the files go at the next compaction or cleanup anyway
            log.warning("view cleanup of %s failed: %s", db, exc)
    return brought


async def ensure_database(store: CouchStore, db: str, db_class: str, *, found_missing: bool = False) -> bool:
    """Create ``db`` with its design documents if it does not exist; True when this call created it.

    Several requests or processes may create one database at once. A single node lets exactly one PUT succeed;
    a cluster may tell every one of them that the database exists (412, or 500 "conflict": see
    :meth:`CouchStore.create_db`), and then nobody would write the design documents. So a caller that found the
    database missing a moment ago says so (``found_missing``), and a database it did not create is checked for
    them (one read). Design-document writes tolerate conflicts.
    """
    created = await store.create_db(db)
    if created:
        await ensure_design_docs(store, db, db_class, fresh=True)
    elif found_missing:
        await ensure_design_docs(store, db, db_class)
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
    # CouchDB may answer from its cache of design documents for a moment after one was rewritten.
    for pause in (0.05, 0.2, 0.5):
        try:
            return await store.view(db, design, view, **params)
        except DocumentNotFound:
            await asyncio.sleep(pause)
    return await store.view(db, design, view, **params)
