"""The one place that talks to CouchDB.

Built on aiocouch's server session (``aiocouch.CouchDB``) and its request primitive, but addressing databases
and documents by path ourselves, because:

* aiocouch's ``couchdb[name]`` costs a HEAD per access, and a request must make no more round trips than its work
  needs;
* aiocouch's ``AllDocsView`` does not URL-quote the database name, so ``_all_docs`` of ``account/xx/yy/...``
  fails (pinned by tests/test_aiocouch_workarounds.py);
* aiocouch's ``View.get`` raises on reduce responses, which carry no ``offset``/``total_rows`` (pinned there too);
* aiocouch's public calls replace a failure by an exception carrying their own message, CouchDB's ``reason`` (which
  tells a missing database from a missing document) only on its chained cause, and raise ``ValueError`` for any
  status their table does not list (416, 5xx); its request primitive gives us status and reason as they are;
* aiocouch reads attachments whole into memory (pinned too): audio and ZIPs are streamed through its session here;
* aiocouch's request primitive (``RemoteServer._request``) decodes every response body twice, once to look for
  ``reason`` (even on success) and once for the result (pinned too): JSON requests go through its session here and
  decode the body once.

Every failure leaves this module as a :mod:`kazoo_vm.storage.errors` type.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiocouch
import aiohttp

from kazoo_vm.model import Document, JsonDict
from kazoo_vm.storage.errors import (
    AlreadyExists,
    Conflict,
    DatabaseNotFound,
    StorageError,
    StorageFault,
    StorageUnreachable,
    error_for_status,
)
from kazoo_vm.storage.instrument import CouchCall, audio_sent, couch_call
from kazoo_vm.storage.request_ids import check_request_ids

log = logging.getLogger(__name__)

# View query parameters whose values CouchDB expects JSON-encoded.
_JSON_PARAMS = frozenset({"key", "keys", "startkey", "endkey", "start_key", "end_key"})
_JSON_HEADERS = {"Content-Type": "application/json"}
# Marks the tombstone of a write that lost a race on a cluster and was taken back (see CouchStore._give_way).
GAVE_WAY = "pvt_gave_way"
# Waits before looking again for a database whose creation raced another's (see CouchStore.create_db).
_CREATION_RACE_PAUSES_S = (0.05, 0.1, 0.2, 0.4, 0.8)
# Database names remembered as existing, at most (the memo is emptied beyond it).
_MAX_SEEN_DATABASES = 100_000


def quote_name(name: str) -> str:
    """A database name or document id as one URL path segment (``/`` becomes ``%2F``)."""
    return quote(name, safe="")


@lru_cache(maxsize=4096)
def _quoted_db(db: str) -> str:
    # Remembered: the same account and monthly databases are named request after request (document ids are not).
    return quote(db, safe="")


def doc_path(db: str, doc_id: str) -> str:
    # Design documents keep their literal "_design/" prefix in the path.
    if doc_id.startswith("_design/"):
        return f"/{_quoted_db(db)}/_design/{quote_name(doc_id[len('_design/') :])}"
    return f"/{_quoted_db(db)}/{quote_name(doc_id)}"


def _encode_params(params: Mapping[str, Any]) -> dict[str, str]:
    encoded: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key in _JSON_PARAMS:
            encoded[key] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        else:
            encoded[key] = str(value)
    return encoded


@dataclass(frozen=True)
class ViewRow:
    id: str | None
    key: Any
    value: Any
    doc: JsonDict | None


@dataclass(frozen=True)
class AttachmentStream:
    """An open attachment download; ``chunks`` must be consumed inside the ``open_attachment`` context."""

    status: int
    content_type: str
    length: int
    content_range: str | None
    response: aiohttp.ClientResponse
    span: tuple[int, int] | None = None

    @property
    def known_length(self) -> int | None:
        """The length CouchDB announced, or None when it sent the body chunked."""
        return self.length if "Content-Length" in self.response.headers else None

    def chunks(self, size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """The bytes asked for: the span alone, also when CouchDB (some versions, or a proxy) ignored ``Range``
        and answered with the whole attachment."""
        raw = self._raw_chunks(size)
        if self.span is not None and self.status != 206:
            start, end = self.span
            return sliced(raw, start, end - start + 1)
        return raw

    async def _raw_chunks(self, size: int) -> AsyncIterator[bytes]:
        async for chunk in self.response.content.iter_chunked(size):
            audio_sent(len(chunk))
            yield chunk


class DocWithAttachments:
    """A document read with its attachments (:meth:`CouchStore.open_doc_with_attachments`)."""

    def __init__(self, doc: JsonDict, reader: aiohttp.MultipartReader | None) -> None:
        self.doc = doc
        self._reader = reader

    async def attachment(self, name: str) -> tuple[AsyncIterator[bytes], int | None] | None:
        """The bytes of attachment ``name`` and its length, or None when the document has no such attachment.
        The multipart parts come in order: an attachment passed over cannot be read afterwards."""
        if self._reader is None:
            stub = (self.doc.get("_attachments") or {}).get(name)
            if not isinstance(stub, dict) or not isinstance(stub.get("data"), str):
                return None
            data = base64.b64decode(stub["data"])
            return _once(data), len(data)
        while True:
            part = await self._reader.next()
            if part is None:
                return None
            if isinstance(part, aiohttp.BodyPartReader) and _part_named(part, name):
                length = part.headers.get("Content-Length")
                return _part_chunks(part), int(length) if length and length.isdigit() else None


def _part_named(part: aiohttp.BodyPartReader, name: str) -> bool:
    """Whether a part of CouchDB's ``multipart/related`` answer is attachment ``name``. CouchDB writes
    ``Content-Disposition: attachment; filename="<name>"``: that exact text is recognised without parsing it, as
    aiohttp's parser of the header (``part.filename``) builds and compiles a regular expression on every call; any
    other form of the header is parsed."""
    disposition = part.headers.get(aiohttp.hdrs.CONTENT_DISPOSITION, "")
    if disposition == f'attachment; filename="{name}"':
        return True
    if not disposition or (
        disposition.startswith('attachment; filename="') and disposition.endswith('"') and "\\" not in disposition
    ):
        return False  # no name, or another attachment's plain name
    return part.filename == name


async def _once(data: bytes) -> AsyncIterator[bytes]:
    audio_sent(len(data))
    yield data


async def _part_chunks(part: aiohttp.BodyPartReader, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(size):
        audio_sent(len(chunk))
        yield chunk


async def sliced(chunks: AsyncIterator[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    """Bytes ``start`` .. ``start + length - 1`` of a stream: serves a range when CouchDB answered the request
    for it with the whole attachment (CouchDB versions and proxies that ignore ``Range``)."""
    position = 0
    async for chunk in chunks:
        low, high = max(start - position, 0), min(start + length - position, len(chunk))
        position += len(chunk)
        if low < high:
            yield chunk[low:high]
        if position >= start + length:
            break


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return bare, parts.username, parts.password


class CouchStore:
    """A CouchDB server: databases, documents, views and attachments, with typed errors."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        missing_db_recheck_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``timeout_s``: how long CouchDB may stay silent (to connect, or between two reads of an answer)
        before the request fails as :class:`StorageUnreachable`. A hung server (stopped process, black-holed
        network) is noticed after that long; a long answer that keeps flowing (a big attachment) is not cut.
        ``missing_db_recheck_s``: how long a database :meth:`existing_databases` found missing is taken as missing
        without asking again (0: asked every time), by ``clock``."""
        base, user, password = _split_credentials(url)
        self.base_url = base
        self._silence_s = timeout_s
        # Every HTTP request this store sends (JSON calls, attachments, views), counted where it is measured for
        # the metrics and the request's log line (:meth:`_call`): what tests and benchmarks compare with the CouchDB
        # work an API request needs.
        self.requests_sent = 0
        self._seen_databases: set[str] = set()
        self._missing_databases: dict[str, float] = {}  # name -> when found missing (monotonic seconds)
        self._missing_db_recheck_s = missing_db_recheck_s
        self._copies_known: int | None = None  # the cluster's n (see _copies)
        self._clock = clock
        self._couch = aiocouch.CouchDB(
            base,
            user=user,
            password=password,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s),
            auto_decompress=True,
            # Each answer is checked to be its own request's (see request_ids).
            middlewares=(check_request_ids,),
        )
        self._remote = self._couch._server

    @property
    def _session(self) -> aiohttp.ClientSession:
        session: aiohttp.ClientSession = self._remote._http_session
        return session

    async def close(self) -> None:
        await self._couch.close()

    def _call(self, method: str, path: str, *, kind: str | None = None) -> AbstractContextManager[CouchCall]:
        """Count and measure the one request sent inside the block (:func:`instrument.couch_call`)."""
        self.requests_sent += 1
        return couch_call(method, path, kind=kind)

    # -- the request primitive -------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One JSON request through aiocouch's session (its auth and headers), the body decoded once."""
        kwargs: dict[str, Any] = {}
        sent_headers = dict(headers or {})
        if body is not None:
            kwargs["data"] = json.dumps(body, separators=(",", ":"))
            sent_headers.update(_JSON_HEADERS)
        if sent_headers:
            kwargs["headers"] = sent_headers
        if params:
            kwargs["params"] = _encode_params(params)
        with self._call(method, path):
            try:
                async with self._session.request(method, self.base_url + path, **kwargs) as response:
                    raw = await response.read()
                    status = response.status
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise StorageUnreachable(f"CouchDB at {self.base_url} is unreachable: {exc!r}") from exc
            except aiohttp.ClientError as exc:
                raise StorageError(f"CouchDB request {method} {path} failed: {exc!r}") from exc
            try:
                result = json.loads(raw) if raw else None
            except ValueError as exc:
                if status >= 400:
                    raise error_for_status(status, None, f"{method} {path}") from exc
                raise StorageError(f"CouchDB answered {method} {path} with a body that is not JSON") from exc
            if status >= 400:
                reason = result.get("reason") if isinstance(result, dict) else None
                raise error_for_status(status, reason, f"{method} {path}")
        return result

    # -- server ------------------------------------------------------------------------------------------

    async def server_info(self) -> JsonDict:
        result: JsonDict = await self._json("GET", "/")
        return result

    async def all_dbs_page(self, after: str | None, limit: int) -> list[str]:
        """At most ``limit`` database names sorted after ``after`` (from the first when None): one page of
        ``_all_dbs``, so that a cluster of many thousands of databases is never listed in one response."""
        params: dict[str, Any] = {"limit": limit + 1}
        if after is not None:
            params["start_key"] = after
        result: list[str] = await self._json("GET", "/_all_dbs", params=params)
        # start_key is inclusive: ``after`` itself is dropped here rather than skipped with ``skip=1``, as it may have
        # been deleted since. The server's own order is kept (no comparison here), so paging never loses a name.
        if result and result[0] == after:
            result = result[1:]
        return result[:limit]

    # -- databases ---------------------------------------------------------------------------------------

    async def create_db(self, db: str) -> bool:
        """Create ``db``; True when this call created it, False when it already existed."""
        for pause in (*_CREATION_RACE_PAUSES_S, None):
            try:
                await self._json("PUT", f"/{quote_name(db)}")
            except AlreadyExists:
                break
            except StorageFault as failed:
                # A cluster creating one database for several clients at once can answer some of them 500
                # "conflict" (each wrote its shard map document; fabric_db_create) while the creation that won is
                # still under way: once it shows, the database exists; if it never does, this call tries again.
                if failed.reason != "conflict" or pause is None:
                    raise
                await asyncio.sleep(pause)
                if await self.db_exists(db):
                    break
            else:
                self._saw_databases([db])
                return True
        self._saw_databases([db])
        return False

    async def put_security(self, db: str, security: JsonDict) -> None:
        """Replace the database's ``_security`` object (who may read and write it)."""
        await self._json("PUT", f"/{quote_name(db)}/_security", body=security)

    async def existing_databases(self, names: Sequence[str]) -> list[str]:
        """Those of ``names`` that exist. A database once seen existing is taken to exist from then on (one deleted
        since answers its queries with ``DatabaseNotFound``, which callers read as empty); one found missing is
        taken as missing for ``missing_db_recheck_s`` seconds (created since by another process, it is seen
        within that bound; by this one, at once). The rest cost one ``_all_dbs`` request over their range
        together, nothing when every one is already known."""
        now = self._clock()
        unknown = [name for name in names if name not in self._seen_databases and not self._known_missing(name, now)]
        if unknown:
            found = set(await self.all_dbs_between(min(unknown), max(unknown)))
            self._saw_databases(name for name in unknown if name in found)
            if self._missing_db_recheck_s > 0:
                if len(self._missing_databases) > _MAX_SEEN_DATABASES:
                    self._missing_databases.clear()
                self._missing_databases.update((name, now) for name in unknown if name not in found)
        return [name for name in names if name in self._seen_databases]

    def _known_missing(self, name: str, now: float) -> bool:
        found_missing = self._missing_databases.get(name)
        return found_missing is not None and now - found_missing < self._missing_db_recheck_s

    def _saw_databases(self, names: Iterable[str]) -> None:
        if len(self._seen_databases) > _MAX_SEEN_DATABASES:
            self._seen_databases.clear()
        for name in names:
            self._seen_databases.add(name)
            self._missing_databases.pop(name, None)

    async def db_exists(self, db: str) -> bool:
        try:
            await self._json("GET", f"/{quote_name(db)}")
        except DatabaseNotFound:
            return False
        return True

    # -- documents --------------------------------------------------------------------------------------

    async def get_doc(self, db: str, doc_id: str, **params: Any) -> JsonDict:
        result: JsonDict = await self._json("GET", doc_path(db, doc_id), params=params)
        return result

    async def put_doc(self, db: str, doc: Document) -> str:
        """Save ``doc`` (create when it has no ``_rev``); sets and returns the new ``_rev``.

        On a cluster the write waits for every copy (``w`` = the database's ``n``): CouchDB counts only copies that
        took a write towards ``w``, so 201 then means that no copy took a racing write of the same revision, and
        409 that no copy answered that it took ours. A 202 (some copies took it, not all: a race, or a copy down)
        is settled by :meth:`_yield_if_contested`, which raises :class:`Conflict` when this write loses."""
        url = self.base_url + doc_path(db, doc["_id"])
        copies = await self._copies(db)
        params = {"w": str(copies)} if copies > 1 else None
        with self._call("PUT", doc_path(db, doc["_id"])):
            try:
                async with self._session.put(url, json=doc, params=params) as response:
                    result = await response.json(content_type=None)
                    if response.status == 412:
                        # "Invalid attachment stub": the revision the stubs refer to is not (or no longer) on the
                        # copies, e.g. a conflicting leaf removed meanwhile: a stale revision, like a 409.
                        raise Conflict(
                            f"CouchDB answered 412 ({result.get('reason')}) for PUT {doc['_id']}", status=412
                        )
                    if response.status >= 400:
                        raise error_for_status(response.status, result.get("reason"), f"PUT {doc_path(db, doc['_id'])}")
                    accepted_only = response.status == 202
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise StorageUnreachable(f"CouchDB at {self.base_url} is unreachable: {exc!r}") from exc
            except (aiohttp.ClientError, ValueError) as exc:
                raise StorageError(f"CouchDB request PUT {doc['_id']} failed: {exc!r}") from exc
        rev = str(result["rev"])
        if accepted_only:
            await self._yield_if_contested(db, doc, rev)
        doc["_rev"] = rev
        return rev

    async def _copies(self, db: str) -> int:
        """How many copies the server keeps of each document: the cluster ``n`` CouchDB reports for ``db`` (1 on a
        server without shards), read once per store. kazoo_vm makes every database with the cluster's defaults, so
        one database answers for all of them."""
        if self._copies_known is None:
            cluster = (await self._json("GET", f"/{quote_name(db)}")).get("cluster")
            self._copies_known = int(cluster.get("n") or 1) if isinstance(cluster, dict) else 1
        return self._copies_known

    async def get_doc_from_every_copy(self, db: str, doc_id: str, **params: Any) -> JsonDict:
        """:meth:`get_doc` reading every copy (``r`` = ``n``), for a caller settling a race: a quorum read may miss
        a racing revision that sits on one copy only."""
        return await self.get_doc(db, doc_id, r=await self._copies(db), **params)

    async def _leaves(self, db: str, doc_id: str, **params: Any) -> list[JsonDict]:
        """Every leaf revision of ``doc_id`` (deleted ones too), each with its branch's history (``revs=true``)."""
        leaves = await self._json(
            "GET",
            doc_path(db, doc_id),
            params={"open_revs": "all", "revs": True, **params},
            headers={"Accept": "application/json"},
        )
        return [leaf["ok"] for leaf in leaves if isinstance(leaf, dict) and isinstance(leaf.get("ok"), dict)]

    async def _yield_if_contested(self, db: str, doc: Document, rev: str) -> None:
        """After a 202: give way to a rival revision of the same document when :meth:`_contest` says so, raising
        :class:`Conflict` (callers re-read and retry as after a 409). A 202 with no rival (a copy down, nobody
        racing) is a success."""
        # Every copy is read: a rival may sit on one copy alone.
        branches = await self._leaves(db, doc["_id"], r=await self._copies(db))
        ours = next((branch for branch in branches if branch.get("_rev") == rev), None)
        parent = _parent_digest(doc.get("_rev"), branches, rev)
        if await self._contest(db, doc["_id"], rev, ours, branches, parent):
            raise Conflict(f"{doc['_id']} {rev} was taken by some copies only, beside a rival that wins", status=409)

    async def _contest(
        self, db: str, doc_id: str, rev: str, ours: JsonDict | None, branches: list[JsonDict], parent: str | None
    ) -> bool:
        """Settle our leaf ``rev`` (``ours``: as read, None when no copy that answered holds it) against its rivals;
        True when it gave way (deleted: the rival's state stays).

        Two writers racing from one revision (or creating one id) through different nodes each reach some copies,
        each copy taking whichever came first, and the document ends up with conflicting leaves. A rival is a
        branch that forks beside ours, from the revision our write was based on (``parent``). As every write waits
        for all copies, no racing writer got a 201: each got a 202, and each read the same rivals from every copy
        (each rival was on its copy before the other write reached it). So one rule, applied by each, leaves one:
        CouchDB's own choice of winner, the highest revision, unless a rival went on since (its branch is longer,
        or ends in a deletion: a moved message removed, a released claim). When no copy that answered holds our
        leaf (the copy that took it went down meanwhile) while a rival shows, ours gives way: its rival, reading
        the same copies, cannot see it either and keeps its own. A third writer may still have written on top of a
        leaf that gives way a moment later: for moves, :func:`kazoo_vm.domain.messages.transit` confirms a plan
        from every copy before acting on it."""
        generation, _, digest = rev.partition("-")
        rivals = [
            other
            for other in branches
            if other.get("_rev") != rev
            and not other.get(GAVE_WAY)
            and _forks_beside(other, int(generation), digest, parent)
        ]
        if not rivals:
            return False
        names = [str(other["_rev"]) for other in rivals]
        beaten = ours is None or any(
            other.get("_deleted") or _rev_order(str(other["_rev"])) > _rev_order(rev) for other in rivals
        )
        if not beaten:
            log.warning("write of %s/%s contested by %s: keeping it (it wins)", db, doc_id, names)
            return False
        log.warning("write of %s/%s contested by %s: giving way", db, doc_id, names)
        await self._give_way(db, doc_id, rev, _ancestry(ours or {}, digest, parent))
        return True

    async def _give_way(self, db: str, doc_id: str, rev: str, ancestry: Sequence[str]) -> None:
        """Delete our leaf ``rev`` of a lost race, marked as such so that no other writer takes the tombstone
        for a rival that went on (a deleted branch of a message that was moved away looks the same).

        The tombstone is written as replication writes (``new_edits=false``, with the branch's ``ancestry``, newest
        hash first), not as an edit: an edit of ``rev`` is refused by every copy that does not hold ``rev``, yet
        CouchDB's read repair may bring ``rev`` to such a copy a moment later, where it would live on (and, having
        the greater hash, be what a read answers). A replicated tombstone is taken by every copy, and it is
        written with ``w`` = all copies (``n``): a read answers with the live leaf of any copy still lacking the
        tombstone, so the caller's re-read must not come before every copy has it."""
        generation = int(rev.partition("-")[0])
        tombstone = uuid.uuid4().hex
        doc = {
            "_id": doc_id,
            "_rev": f"{generation + 1}-{tombstone}",
            "_revisions": {"start": generation + 1, "ids": [tombstone, *ancestry]},
            "_deleted": True,
            GAVE_WAY: True,
        }
        with suppress(StorageError):
            copies = await self._copies(db)
            await self._json(
                "POST",
                f"/{quote_name(db)}/_bulk_docs",
                params={"w": copies},
                body={"docs": [doc], "new_edits": False},
            )

    async def delete_doc(self, db: str, doc_id: str, rev: str) -> str:
        result: JsonDict = await self._json("DELETE", doc_path(db, doc_id), params={"rev": rev})
        return str(result["rev"])

    async def bulk_docs(self, db: str, docs: Sequence[Document]) -> list[JsonDict]:
        """``_bulk_docs``: one result per document, ``{"id","rev"}`` or ``{"id","error","reason"}``."""
        result: list[JsonDict] = await self._json("POST", f"/{quote_name(db)}/_bulk_docs", body={"docs": list(docs)})
        return result

    async def all_docs(self, db: str, *, keys: Sequence[str] | None = None, **params: Any) -> list[ViewRow]:
        path = f"/{quote_name(db)}/_all_docs"
        if keys is not None:
            raw = await self._json("POST", path, params=params, body={"keys": list(keys)})
        else:
            raw = await self._json("GET", path, params=params)
        return [_row(row) for row in raw.get("rows", []) if "error" not in row]

    async def docs_by_id(self, db: str, ids: Sequence[str], *, attachments: bool = False) -> list[ViewRow]:
        """The documents with these ids, in one request (``_all_docs`` with ``keys``): a row per id CouchDB knows,
        whose ``doc`` is None for a deleted one (a tombstone); ids it never knew have no row. ``attachments`` inlines
        the attachments' bytes (base64)."""
        return await self.all_docs(db, keys=ids, include_docs=True, attachments=attachments or None)

    # -- views --------------------------------------------------------------------------------------------

    async def view(
        self,
        db: str,
        design: str,
        view: str,
        *,
        keys: Sequence[Any] | None = None,
        **params: Any,
    ) -> list[ViewRow]:
        """Query a view (map or reduce); ``params`` are CouchDB's, key-like ones JSON-encoded here."""
        path = f"/{quote_name(db)}/_design/{quote_name(design)}/_view/{quote_name(view)}"
        if keys is not None:
            raw = await self._json("POST", path, params=params, body={"keys": list(keys)})
        else:
            raw = await self._json("GET", path, params=params)
        return [_row(row) for row in raw.get("rows", [])]

    # -- attachments ---------------------------------------------------------------------------------------

    @asynccontextmanager
    async def open_attachment(
        self, db: str, doc_id: str, name: str, *, span: tuple[int, int] | None = None
    ) -> AsyncIterator[AttachmentStream]:
        """Stream an attachment, or the inclusive byte span ``span`` of it."""
        url = self.base_url + doc_path(db, doc_id) + "/" + quote_name(name)
        headers = {"Range": f"bytes={span[0]}-{span[1]}"} if span is not None else {}
        with self._call("GET", url, kind="attachment") as call:
            try:
                async with self._session.get(url, headers=headers, auto_decompress=False) as response:
                    if response.status >= 400:
                        reason = None
                        with suppress(ValueError, aiohttp.ClientError):
                            reason = (await response.json(content_type=None)).get("reason")
                        raise error_for_status(response.status, reason, f"GET attachment {doc_id}/{name}")
                    call.answered()
                    yield AttachmentStream(
                        status=response.status,
                        content_type=response.headers.get("Content-Type", "application/octet-stream"),
                        length=int(response.headers.get("Content-Length", "0") or 0),
                        content_range=response.headers.get("Content-Range"),
                        response=response,
                        span=span,
                    )
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise StorageUnreachable(f"CouchDB at {self.base_url} is unreachable: {exc!r}") from exc

    @asynccontextmanager
    async def open_doc_with_attachments(self, db: str, doc_id: str) -> AsyncIterator[DocWithAttachments]:
        """A document and its attachments in one request (``attachments=true``): CouchDB answers
        ``multipart/related``, the document first, then each attachment, read while they arrive; a server that
        answers JSON instead (the development server) inlines them as base64. Everything must be read inside
        this context."""
        url = self.base_url + doc_path(db, doc_id) + "?attachments=true"
        headers = {"Accept": "multipart/related, application/json"}
        with self._call("GET", url, kind="attachment"):
            try:
                async with self._session.get(url, headers=headers, auto_decompress=False) as response:
                    if response.status >= 400:
                        reason = None
                        with suppress(ValueError, aiohttp.ClientError):
                            reason = (await response.json(content_type=None)).get("reason")
                        raise error_for_status(response.status, reason, f"GET {doc_id} with attachments")
                    # The raw header, not ``response.content_type``: aiohttp parses that with the email package, and
                    # remembers the result per header text, which is new for each answer (its boundary).
                    content_type = response.headers.get(aiohttp.hdrs.CONTENT_TYPE, "")
                    if content_type.split(";", 1)[0].strip().lower() == "multipart/related":
                        reader = aiohttp.MultipartReader(response.headers, response.content)
                        first = await reader.next()
                        if not isinstance(first, aiohttp.BodyPartReader):
                            raise StorageError(f"CouchDB sent no document part for {doc_id}")
                        yield DocWithAttachments(json.loads(await first.read()), reader)
                    else:
                        yield DocWithAttachments(json.loads(await response.read()), None)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise StorageUnreachable(f"CouchDB at {self.base_url} is unreachable: {exc!r}") from exc

    async def read_attachment(self, db: str, doc_id: str, name: str) -> bytes:
        async with self.open_attachment(db, doc_id, name) as stream:
            return await stream.response.read()

    async def put_attachment(
        self, db: str, doc_id: str, name: str, rev: str | None, data: bytes, content_type: str
    ) -> str:
        """Store an attachment; returns the document's new revision."""
        url = self.base_url + doc_path(db, doc_id) + "/" + quote_name(name)
        params = {"rev": rev} if rev else {}
        with self._call("PUT", url, kind="attachment"):
            try:
                async with self._session.put(
                    url, data=data, params=params, headers={"Content-Type": content_type}
                ) as response:
                    body = await response.json(content_type=None)
                    if response.status >= 400:
                        raise error_for_status(response.status, body.get("reason"), f"PUT attachment {doc_id}/{name}")
                    return str(body["rev"])
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise StorageUnreachable(f"CouchDB at {self.base_url} is unreachable: {exc!r}") from exc

    async def delete_attachment(self, db: str, doc_id: str, name: str, rev: str) -> str:
        result: JsonDict = await self._json(
            "DELETE", doc_path(db, doc_id) + "/" + quote_name(name), params={"rev": rev}
        )
        return str(result["rev"])

    async def update_seq(self, db: str) -> str:
        """The database's current update sequence: where a ``_changes`` reader starts to hear only what follows."""
        info: JsonDict = await self._json("GET", f"/{quote_name(db)}")
        return str(info["update_seq"]) if not isinstance(info["update_seq"], str) else info["update_seq"]

    async def changes(self, db: str, since: str, *, timeout_ms: int, limit: int = 500) -> tuple[list[JsonDict], str]:
        """One ``_changes`` long poll: the documents changed after ``since`` (waiting up to ``timeout_ms`` for the
        first), deleted ones left out, and the sequence to continue from. The wait is kept below the store's
        silence timeout: CouchDB says nothing while it waits, and a longer wait would be taken for a hung server."""
        timeout_ms = min(timeout_ms, int(self._silence_s * 800))
        params = {"feed": "longpoll", "since": since, "timeout": timeout_ms, "include_docs": True, "limit": limit}
        result: JsonDict = await self._json("GET", f"/{quote_name(db)}/_changes", params=params)
        docs = [row["doc"] for row in result.get("results", []) if row.get("doc") and not row.get("deleted")]
        last = result.get("last_seq", since)
        return docs, last if isinstance(last, str) else str(last)

    async def all_dbs_between(self, start: str, end: str) -> list[str]:
        """Database names from ``start`` to ``end`` inclusive (``_all_dbs`` with a key range), e.g. one
        account's MODBs, without listing every database of the server."""
        result: list[str] = await self._json("GET", "/_all_dbs", params={"start_key": start, "end_key": end})
        return [name for name in result if start <= name <= end]

    async def view_cleanup(self, db: str) -> None:
        """``_view_cleanup``: remove the index files of design documents the database no longer has."""
        await self._json("POST", f"/{quote_name(db)}/_view_cleanup", body={})


def _revision_at(leaf: JsonDict, generation: int) -> str | None:
    """The hash of the revision at ``generation`` on the branch of ``leaf`` (read with ``revs=true``)."""
    history = leaf.get("_revisions") or {}
    ids, start = history.get("ids") or [], int(history.get("start") or 0)
    depth = start - generation
    return str(ids[depth]) if 0 <= depth < len(ids) else None


def _forks_beside(other: JsonDict, generation: int, digest: str, parent: str | None) -> bool:
    """Whether the branch of leaf ``other`` forks beside revision ``generation-digest``: it holds another revision
    at that generation, grown from ``parent`` (the hash one generation before; None: not checked). An older,
    shorter branch and a branch written on top of ours do not."""
    beside = _revision_at(other, generation)
    if beside is None or beside == digest:
        return False
    return parent is None or _revision_at(other, generation - 1) == parent


def _parent_digest(sent_rev: Any, branches: list[JsonDict], rev: str) -> str | None:
    """The hash of the revision our write ``rev`` was based on: the ``_rev`` we sent, else the one before ours on
    our own branch; None when neither is known (a create whose leaf the read did not see)."""
    if isinstance(sent_rev, str) and "-" in sent_rev:
        return sent_rev.partition("-")[2]
    generation = int(rev.partition("-")[0])
    for branch in branches:
        if branch.get("_rev") == rev:
            return _revision_at(branch, generation - 1)
    return None


def _ancestry(leaf: JsonDict, digest: str, parent: str | None) -> list[str]:
    """The revision hashes of ``leaf``'s branch, newest first (from ``revs=true``), else those we know of it."""
    ids = (leaf.get("_revisions") or {}).get("ids")
    if isinstance(ids, list) and ids and ids[0] == digest:
        return [str(each) for each in ids]
    return [digest] if parent is None else [digest, parent]


def _rev_order(rev: str) -> tuple[int, str]:
    """CouchDB's order of live leaf revisions: the longer history wins, then the greater hash."""
    generation, _, digest = rev.partition("-")
    return int(generation), digest


def _row(raw: JsonDict) -> ViewRow:
    return ViewRow(id=raw.get("id"), key=raw.get("key"), value=raw.get("value"), doc=raw.get("doc"))


__all__ = [
    "AttachmentStream",
    "Conflict",
    "CouchStore",
    "DocWithAttachments",
    "JsonDict",
    "ViewRow",
    "doc_path",
    "quote_name",
]
