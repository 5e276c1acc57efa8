"""Legacy (pre-4.0) voicemail for the migration tests: Kazoo's fixture box, hand-made legacy boxes, a store that
can be interrupted after any write, and readers for what ended up in the MODBs."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo_vm.config import Settings
from kazoo_vm.domain.legacy.documents import migrated_doc
from kazoo_vm.domain.legacy.outcomes import Options
from kazoo_vm.migrate.driver import Selection, migrate
from kazoo_vm.migrate.report import Report
from kazoo_vm.model import BoxDoc, Document, JsonDict, LegacyEntry, MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.boxes import as_box, as_legacy_entry
from kazoo_vm.storage.couch import CouchStore, doc_path
from kazoo_vm.storage.messages import as_message

FIXTURES = Path(__file__).parent / "fixtures" / "kazoo_legacy"
FIXTURE_BOX = "vmbox01"
TIMEZONE = "America/Los_Angeles"


def audio_for(legacy_id: str, size: int = 3000) -> bytes:
    """Distinct, reproducible "audio" per message (the fixture's mp3 was not copied)."""
    seed = hashlib.sha256(legacy_id.encode()).digest()
    body = (seed * (size // len(seed) + 1))[: size - 4]
    return b"ID3\x04" + body


def gregorian(year: int, month: int, day: int = 15, hour: int = 12) -> int:
    from datetime import UTC, datetime

    return naming.from_datetime(datetime(year, month, day, hour, tzinfo=UTC))


def _own(doc: JsonDict, account_id: str) -> JsonDict:
    doc = copy.deepcopy(doc)
    doc.pop("_rev", None)
    doc["pvt_account_id"] = account_id
    doc["pvt_account_db"] = naming.encode_db(naming.account_db(account_id))
    return doc


def _with_audio(doc: JsonDict, audio: bytes) -> JsonDict:
    name, stub = next(iter(doc["_attachments"].items()))
    doc["_attachments"] = {name: {"content_type": stub["content_type"], "data": base64.b64encode(audio).decode()}}
    return doc


async def load_fixture_box(store: CouchStore, account_id: str) -> dict[str, bytes]:
    """Kazoo's ``vmbox01`` and its media documents, in ``account_id``'s database, each media document carrying
    generated audio; returns the audio per legacy id."""
    docs: list[JsonDict] = []
    audio: dict[str, bytes] = {}
    for path in sorted(FIXTURES.glob("*.json")):
        doc = _own(json.loads(path.read_text(encoding="utf-8")), account_id)
        if "_attachments" in doc:
            audio[doc["_id"]] = audio_for(doc["_id"])
            doc = _with_audio(doc, audio[doc["_id"]])
        docs.append(doc)
    results = await store.bulk_docs(naming.account_db(account_id), docs)
    assert all("error" not in result for result in results), results
    return audio


def legacy_entry(media_id: str | None, timestamp: Any = None, **fields: Any) -> LegacyEntry:
    entry: JsonDict = {
        "call_id": f"call-{media_id}",
        "caller_id_number": "15554443344",
        "caller_id_name": "Caller",
        "from": "15554443344@legacy.example",
        "to": "1001@legacy.example",
        "folder": "new",
        "length": 4200,
    }
    if media_id is not None:
        entry["media_id"] = media_id
    if timestamp is not None:
        entry["timestamp"] = timestamp
    entry.update(fields)
    return as_legacy_entry(entry)


def media_doc(account_id: str, media_id: str, box_id: str, audio: bytes | None, **fields: Any) -> JsonDict:
    """A 3.x ``private_media`` document (cf_voicemail:message_media_doc/3) holding ``audio``."""
    doc: JsonDict = {
        "_id": media_id,
        "name": "mailbox 1001 message 3-1-2016 9:5:0",
        "description": "voicemail message media",
        "source_type": "voicemail",
        "source_id": box_id,
        "media_source": "recording",
        "media_type": "mp3",
        "media_filename": f"{media_id}.mp3",
        "streamable": True,
        "pvt_type": "private_media",
        **fields,
    }
    doc = _own(doc, account_id)
    if audio is not None:
        doc["_attachments"] = {
            f"{media_id}.mp3": {"content_type": "audio/mpeg", "data": base64.b64encode(audio).decode()}
        }
    return doc


def legacy_box(account_id: str, box_id: str, entries: Sequence[Any], **fields: Any) -> BoxDoc:
    doc: JsonDict = {
        "_id": box_id,
        "name": f"Legacy box {box_id}",
        "mailbox": "1001",
        "timezone": TIMEZONE,
        "messages": list(entries),
        "pvt_type": "vmbox",
        "pvt_created": gregorian(2015, 1, 1),
        "pvt_modified": gregorian(2015, 2, 1),
        **fields,
    }
    return as_box(_own(doc, account_id))


async def save_all(store: CouchStore, account_id: str, docs: Sequence[Document]) -> None:
    results = await store.bulk_docs(naming.account_db(account_id), list(docs))
    assert all("error" not in result for result in results), results


async def seed_box(
    store: CouchStore,
    account_id: str,
    box_id: str,
    timestamps: Mapping[str, Any],
    *,
    audio_size: int = 3000,
    **box_fields: Any,
) -> BoxDoc:
    """A legacy box with one entry per legacy id (and its timestamp), each with a media document holding
    ``audio_for(legacy_id, audio_size)``; returns the box as saved."""
    box = legacy_box(
        account_id,
        box_id,
        [legacy_entry(legacy_id, timestamp) for legacy_id, timestamp in timestamps.items()],
        **box_fields,
    )
    media = [media_doc(account_id, legacy_id, box_id, audio_for(legacy_id, audio_size)) for legacy_id in timestamps]
    await save_all(store, account_id, [box, *media])
    return box


async def clean_box(store: CouchStore, account_id: str, box_id: str, count: int) -> dict[str, str]:
    """A box of ``count`` migratable messages from June 2016; returns the new id each should get."""
    timestamps = {f"{box_id[:4]}{index:028x}": gregorian(2016, 6, 1 + index) for index in range(count)}
    await seed_box(store, account_id, box_id, timestamps)
    return {legacy_id: naming.message_id(timestamp, legacy_id) for legacy_id, timestamp in timestamps.items()}


async def existing_target(
    store: CouchStore, account_id: str, box: BoxDoc, attachment_name: str, **fields: Any
) -> MessageDoc:
    """The document the box's first entry migrates to, already in its MODB (created bare) with ``fields`` set:
    what an earlier run, Kazoo's own migrator or a client left there."""
    entry = box["messages"][0]
    db = naming.modb_for_timestamp(account_id, entry["timestamp"])
    await store.create_db(db)
    doc = migrated_doc(
        account_id=account_id,
        box=box,
        legacy_id=entry["media_id"],
        entry=entry,
        timestamp=entry["timestamp"],
        attachment_name=attachment_name,
        default_timezone=TIMEZONE,
    )
    doc = as_message({**doc, **fields})
    await store.put_doc(db, doc)
    return doc


async def run_migration(
    store: CouchStore,
    account_id: str,
    *,
    batch_size: int = 100,
    workers: int = 4,
    boxes: Sequence[str] = (),
    **options: Any,
) -> Report:
    return await migrate(
        store,
        Selection(account_ids=(account_id,), box_ids=tuple(boxes)),
        Settings(default_timezone=TIMEZONE),
        options=Options(**options),
        batch_size=batch_size,
        workers=workers,
    )


@dataclass
class Migrated:
    db: str
    doc: MessageDoc
    audio: bytes | None


async def modbs_of(store: CouchStore, account_id: str) -> list[str]:
    prefix = naming.account_db(account_id) + "-"
    return await store.all_dbs_between(prefix + "000000", prefix + "999999")


async def migrated_messages(store: CouchStore, account_id: str) -> dict[str, list[Migrated]]:
    """Every live message document in the account's MODBs, grouped by ``pvt_previous_id``, with its audio."""
    found: dict[str, list[Migrated]] = {}
    for db in await modbs_of(store, account_id):
        for row in await store.all_docs(db, include_docs=True):
            doc = as_message(row.doc) if row.doc is not None else None
            if doc is None or doc["_id"].startswith("_design/") or doc.get("pvt_type") != "mailbox_message":
                continue
            names = list(doc.get("_attachments") or {})
            audio = await store.read_attachment(db, doc["_id"], names[0]) if len(names) == 1 else None
            found.setdefault(str(doc.get("pvt_previous_id")), []).append(Migrated(db=db, doc=doc, audio=audio))
    return found


async def server_state(store: CouchStore, account_id: str) -> tuple[list[str], dict[str, list[tuple[str | None, Any]]]]:
    """Every database name, and every document id and revision of the account's databases and ``accounts``:
    any write there changes it."""
    names: list[str] = []
    while page := await store.all_dbs_page(names[-1] if names else None, 1000):
        names.extend(page)
    account_db = naming.account_db(account_id)
    mine = [name for name in names if name == naming.ACCOUNTS_DB or name.startswith(account_db)]
    docs = {name: [(row.id, row.value) for row in await store.all_docs(name)] for name in mine}
    return names, docs


async def box_entries(store: CouchStore, account_id: str, box_id: str) -> list[Any]:
    box = await store.get_doc(naming.account_db(account_id), box_id)
    return list(box.get("messages", []))


# -- a store that can be interrupted --------------------------------------------------------------------------


class Crash(Exception):
    """The process "dies": nothing catches this, and no write happens after it."""


def write_kind(what: str, args: tuple[Any, ...]) -> str:
    """What a write does, for crash-point coverage: ``create_modb``, ``design_docs``, ``messages`` (documents
    with their audio), ``purge`` (legacy media deletions), ``box`` (a box document), or the raw call's name."""
    db = str(args[0]) if args else ""
    modb = naming.database_class(db) == "modb"
    if what == "create_db":
        return "create_modb" if modb else what
    if what == "bulk_docs":
        docs: Sequence[Document] = args[1]
        if docs and all(str(doc.get("_id", "")).startswith("_design/") for doc in docs):
            return "design_docs"
        if docs and all(doc.get("_deleted") for doc in docs):
            return "purge"
        if modb and docs and all(doc.get("pvt_type") == "mailbox_message" for doc in docs):
            return "messages"
    if what == "put_doc" and args[1].get("pvt_type") == "vmbox":
        return "box"
    return what


@dataclass
class WritePlan:
    """Crash at the ``crash_at``-th write: ``after`` it reached CouchDB (before its answer is used), or
    ``instead`` of it (it never reaches CouchDB). Every later write fails too, as in a dead process.
    ``before_write`` runs before each write (to make concurrent changes)."""

    crash_at: int | None = None
    mode: str = "after"
    before_write: Callable[[str, tuple[Any, ...]], Awaitable[None]] | None = None
    writes: int = 0
    crashed: bool = False
    log: list[str] = field(default_factory=list)


class InterruptibleStore(CouchStore):
    """A real CouchStore whose every write goes through :class:`WritePlan`."""

    def __init__(self, url: str, plan: WritePlan) -> None:
        super().__init__(url)
        self.plan = plan

    async def _write(self, what: str, call: Callable[[], Awaitable[Any]], args: tuple[Any, ...]) -> Any:
        plan = self.plan
        if plan.crashed:
            raise Crash("already crashed")
        if plan.before_write is not None:
            await plan.before_write(what, args)
        # Numbered when started: two writes may be in flight at once (one per MODB).
        plan.writes += 1
        number = plan.writes
        plan.log.append(write_kind(what, args))
        if number == plan.crash_at and plan.mode == "instead":
            plan.crashed = True
            raise Crash(f"instead of write {number} ({plan.log[-1]})")
        result = await call()
        if number == plan.crash_at:
            plan.crashed = True
            raise Crash(f"after write {number} ({plan.log[-1]})")
        return result

    async def create_db(self, db: str) -> bool:
        return bool(await self._write("create_db", lambda: super(InterruptibleStore, self).create_db(db), (db,)))

    async def put_doc(self, db: str, doc: Document) -> str:
        return str(await self._write("put_doc", lambda: super(InterruptibleStore, self).put_doc(db, doc), (db, doc)))

    async def delete_doc(self, db: str, doc_id: str, rev: str) -> str:
        return str(
            await self._write(
                "delete_doc", lambda: super(InterruptibleStore, self).delete_doc(db, doc_id, rev), (db, doc_id)
            )
        )

    async def bulk_docs(self, db: str, docs: Sequence[Document]) -> list[JsonDict]:
        result: list[JsonDict] = await self._write(
            "bulk_docs", lambda: super(InterruptibleStore, self).bulk_docs(db, docs), (db, docs)
        )
        return result

    async def put_attachment(
        self, db: str, doc_id: str, name: str, rev: str | None, data: bytes, content_type: str
    ) -> str:
        return str(
            await self._write(
                "put_attachment",
                lambda: super(InterruptibleStore, self).put_attachment(db, doc_id, name, rev, data, content_type),
                (db, doc_id),
            )
        )

    async def delete_attachment(self, db: str, doc_id: str, name: str, rev: str) -> str:
        return str(
            await self._write(
                "delete_attachment",
                lambda: super(InterruptibleStore, self).delete_attachment(db, doc_id, name, rev),
                (db, doc_id),
            )
        )


class CountingStore(CouchStore):
    """A real CouchStore that records every JSON request it makes (``"GET /_all_dbs"``, ...): round trips."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.requests: list[str] = []

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        self.requests.append(f"{method} {path}")
        return await super()._json(method, path, params=params, body=body, headers=headers)

    async def put_doc(self, db: str, doc: Document) -> str:
        # Document writes go to CouchDB without _json (their status, 201 or 202, matters on a cluster).
        self.requests.append(f"PUT {doc_path(db, doc['_id'])}")
        return await super().put_doc(db, doc)
