"""A stand-in for a Kazoo 4.3 node sharing the service's CouchDB (no tests here).

It talks to CouchDB over its own HTTP session, never through kazoo_vm's storage layer, and writes what a Kazoo node
writes: its design documents as its loader stores them, accounts, boxes and callflow-recorded messages (shaped
after Kazoo's fixture documents in ``tests/fixtures/kazoo_node/``), renumbered and deleted boxes.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from kazoo_vm.resources import design_docs_dir

GREGORIAN_OFFSET = 62_167_219_200
FIXTURES = Path(__file__).parent / "fixtures" / "kazoo_node"
# Kazoo's own design documents among the service's data files (ours are named kazoo_vm_*).
KAZOO_DESIGN_FILES = {
    db_class: sorted(
        path for path in (design_docs_dir() / db_class).glob("*.json") if not path.stem.startswith("kazoo_vm_")
    )
    for db_class in ("accounts", "account", "modb")
}


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET


def loaded_form(source: dict[str, Any]) -> dict[str, Any]:
    """What Kazoo 4.3's loader stores for a design-document file: the ``kazoo`` key removed and each view
    function's lines concatenated as ``iolist_to_binary`` does (kz_datamgr:maybe_adapt_multilines)."""
    doc = {key: value for key, value in source.items() if key != "kazoo"}
    views: dict[str, Any] = {}
    for name, view in source.get("views", {}).items():
        views[name] = {}
        for field, code in view.items():
            joined = isinstance(code, list) and bool(code) and str(code[0]).startswith("function")
            views[name][field] = "".join(code) if joined else code
    doc["views"] = views
    return doc


def kazoo_design_docs(db_class: str) -> list[dict[str, Any]]:
    return [loaded_form(json.loads(path.read_text(encoding="utf-8"))) for path in KAZOO_DESIGN_FILES[db_class]]


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    doc.pop("_rev", None)
    return doc


def encoded_account_db(account_id: str) -> str:
    return f"account%2F{account_id[:2]}%2F{account_id[2:4]}%2F{account_id[4:]}"


def current_modb(account_id: str) -> str:
    now = datetime.now(tz=UTC)
    return f"{encoded_account_db(account_id)}-{now.year:04d}{now.month:02d}"


class KazooNode:
    """Kazoo's side of the shared CouchDB, through plain HTTP."""

    def __init__(self, couch_url: str) -> None:
        self.base = couch_url.rstrip("/")
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    def _url(self, db: str, doc_id: str | None = None) -> str:
        url = f"{self.base}/{quote(db, safe='%')}"  # Kazoo's database names arrive encoded already
        if doc_id is not None:
            url += "/" + (
                "_design/" + quote(doc_id[8:], safe="") if doc_id.startswith("_design/") else quote(doc_id, safe="")
            )
        return url

    async def _call(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, URL(url, encoded=True), **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def create_db(self, db: str) -> None:
        status, body = await self._call("PUT", self._url(db))
        assert status in (201, 202, 412), body

    async def get(self, db: str, doc_id: str) -> dict[str, Any] | None:
        status, body = await self._call("GET", self._url(db, doc_id))
        if status == 404:
            return None
        assert status == 200, body
        doc: dict[str, Any] = body
        return doc

    async def save(self, db: str, doc: dict[str, Any]) -> str:
        status, body = await self._call("PUT", self._url(db, doc["_id"]), json=doc)
        assert status in (201, 202), body
        rev: str = body["rev"]
        doc["_rev"] = rev
        return rev

    async def update(self, db: str, doc_id: str, **changes: Any) -> dict[str, Any]:
        """kz_datamgr:update_doc: read, change, stamp pvt_modified, save."""
        doc = await self.get(db, doc_id)
        assert doc is not None
        doc.update(changes)
        doc["pvt_modified"] = gregorian_now()
        await self.save(db, doc)
        return doc

    async def delete(self, db: str, doc_id: str) -> None:
        doc = await self.get(db, doc_id)
        assert doc is not None
        status, body = await self._call("DELETE", self._url(db, doc_id), params={"rev": doc["_rev"]})
        assert status in (200, 202), body

    async def view(self, db: str, design: str, view: str, **params: Any) -> list[dict[str, Any]]:
        query = {key: json.dumps(value) for key, value in params.items()}
        status, body = await self._call("GET", f"{self._url(db)}/_design/{design}/_view/{view}", params=query)
        assert status == 200, body
        rows: list[dict[str, Any]] = body["rows"]
        return rows

    async def design_revs(self, db: str) -> dict[str, str]:
        params = {"startkey": json.dumps("_design/"), "endkey": json.dumps("_design0")}
        status, body = await self._call("GET", f"{self._url(db)}/_all_docs", params=params)
        assert status == 200, body
        return {row["id"]: row["value"]["rev"] for row in body["rows"]}

    async def refresh_views(self, db: str, db_class: str) -> int:
        """kz_datamgr:refresh_views: write each of Kazoo's design documents whose stored form differs from the
        file's loaded form (kzs_db:should_update compares whole documents, ``_rev`` aside); returns how many."""
        written = 0
        for wanted in kazoo_design_docs(db_class):
            stored = await self.get(db, wanted["_id"])
            doc = copy.deepcopy(wanted)
            if stored is not None:
                if {key: value for key, value in stored.items() if key != "_rev"} == wanted:
                    continue
                doc["_rev"] = stored["_rev"]
            await self.save(db, doc)
            written += 1
        return written

    async def create_modb(self, account_id: str) -> str:
        """kazoo_modb:create: the database, then its views."""
        db = current_modb(account_id)
        await self.create_db(db)
        await self.refresh_views(db, "modb")
        return db

    async def save_box(self, account_id: str, mailbox: str, **fields: Any) -> dict[str, Any]:
        """A vmbox as Kazoo writes it (the fixture's shape), with a fresh id."""
        box = fixture("vmbox000000000000000000000000003.json")
        now = gregorian_now()
        box.update(
            _id=secrets.token_hex(16),
            mailbox=mailbox,
            pvt_account_db=encoded_account_db(account_id),
            pvt_account_id=account_id,
            pvt_created=now,
            pvt_modified=now,
            **fields,
        )
        await self.save(encoded_account_db(account_id), box)
        return box

    async def record_message(
        self, account_id: str, box_id: str, audio: bytes, *, link_to: str | None = None
    ) -> dict[str, Any]:
        """A message as Kazoo 4.3's callflow leaves it (the fixture's shape): attachment ``vm-new_message.mp3``,
        no folder in the metadata; with ``link_to``, the audio stays in that account-db media document behind a
        ``kz_att_link`` soft attachment, as the migrator of 4.3 leaves it."""
        db = await self.create_modb(account_id)
        message = fixture("201710-vm_message0000000000000000000001.json")
        now = gregorian_now()
        message_id = f"{db[-6:]}-{secrets.token_hex(16)}"
        message.update(
            _id=message_id,
            pvt_account_db=db,
            pvt_account_id=account_id,
            source_id=box_id,
            pvt_created=now,
            pvt_modified=now,
            utc_seconds=now,
        )
        metadata = message["metadata"]
        metadata.pop("folder")
        metadata.update(media_id=message_id, timestamp=now)
        stub = message.pop("_attachments")["vm-new_message.mp3"]
        if link_to is None:
            message["_attachments"] = {
                "vm-new_message.mp3": {
                    "content_type": stub["content_type"],
                    "data": base64.b64encode(audio).decode("ascii"),
                }
            }
        else:
            account_db = encoded_account_db(account_id)
            media = {
                "_id": link_to,
                "pvt_type": "private_media",
                "media_source": "recording",
                "_attachments": {
                    "vm-new_message.mp3": {"content_type": "audio/mpeg", "data": base64.b64encode(audio).decode()}
                },
            }
            await self.save(account_db, media)
            message["pvt_attachments"] = {
                "vm-new_message.mp3": {
                    "content_type": "audio/mpeg",
                    "length": 0,
                    "stub": False,
                    "handler": {"kz_att_link": {"att_dbname": account_db, "att_docid": link_to}},
                }
            }
        await self.save(db, message)
        return message
