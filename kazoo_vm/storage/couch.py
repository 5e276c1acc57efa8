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
* aiocouch reads attachments whole into memory (pinned too): audio and ZIPs are streamed through its session here.

Every failure leaves this module as a :mod:`kazoo_vm.storage.errors` type.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiocouch
import aiohttp
from aiocouch.exception import RemoteResponseError

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.errors import (
    AlreadyExists,
    Conflict,
    DatabaseNotFound,
    StorageError,
    StorageUnreachable,
    error_for_status,
)

# View query parameters whose values CouchDB expects JSON-encoded.
_JSON_PARAMS = frozenset({"key", "keys", "startkey", "endkey", "start_key", "end_key"})


def quote_name(name: str) -> str:
    """A database name or document id as one URL path segment (``/`` becomes ``%2F``)."""
    return quote(name, safe="")


def doc_path(db: str, doc_id: str) -> str:
    # Design documents keep their literal "_design/" prefix in the path.
    if doc_id.startswith("_design/"):
        return f"/{quote_name(db)}/_design/{quote_name(doc_id[len('_design/') :])}"
    return f"/{quote_name(db)}/{quote_name(doc_id)}"


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

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        base, user, password = _split_credentials(url)
        self.base_url = base
        self._couch = aiocouch.CouchDB(
            base,
            user=user,
            password=password,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            auto_decompress=True,
        )
        self._remote = self._couch._server

    @property
    def _session(self) -> aiohttp.ClientSession:
        session: aiohttp.ClientSession = self._remote._http_session
        return session

    async def close(self) -> None:
        await self._couch.close()

    # -- the request primitive -------------------------------------------------------------------------

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["json"] = body
        try:
            _, result = await self._remote._request(method, path, params=_encode_params(params or {}), **kwargs)
        except RemoteResponseError as exc:
            raise error_for_status(exc.status, exc.reason, f"{method} {path}") from exc
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise StorageUnreachable(f"CouchDB at {self.base_url} is unreachable: {exc!r}") from exc
        except aiohttp.ClientError as exc:
            raise StorageError(f"CouchDB request {method} {path} failed: {exc!r}") from exc
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
        try:
            await self._json("PUT", f"/{quote_name(db)}")
        except AlreadyExists:
            return False
        return True

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

    async def put_doc(self, db: str, doc: JsonDict) -> str:
        """Save ``doc`` (create when it has no ``_rev``); sets and returns the new ``_rev``."""
        result: JsonDict = await self._json("PUT", doc_path(db, doc["_id"]), body=doc)
        doc["_rev"] = result["rev"]
        return str(result["rev"])

    async def delete_doc(self, db: str, doc_id: str, rev: str) -> str:
        result: JsonDict = await self._json("DELETE", doc_path(db, doc_id), params={"rev": rev})
        return str(result["rev"])

    async def bulk_docs(self, db: str, docs: Sequence[JsonDict]) -> list[JsonDict]:
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
        try:
            async with self._session.get(url, headers=headers, auto_decompress=False) as response:
                if response.status >= 400:
                    reason = None
                    with suppress(ValueError, aiohttp.ClientError):
                        reason = (await response.json(content_type=None)).get("reason")
                    raise error_for_status(response.status, reason, f"GET attachment {doc_id}/{name}")
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

    async def read_attachment(self, db: str, doc_id: str, name: str) -> bytes:
        async with self.open_attachment(db, doc_id, name) as stream:
            return await stream.response.read()

    async def put_attachment(
        self, db: str, doc_id: str, name: str, rev: str | None, data: bytes, content_type: str
    ) -> str:
        """Store an attachment; returns the document's new revision."""
        url = self.base_url + doc_path(db, doc_id) + "/" + quote_name(name)
        params = {"rev": rev} if rev else {}
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

    async def all_dbs_between(self, start: str, end: str) -> list[str]:
        """Database names from ``start`` to ``end`` inclusive (``_all_dbs`` with a key range), e.g. one
        account's MODBs, without listing every database of the server."""
        result: list[str] = await self._json("GET", "/_all_dbs", params={"start_key": start, "end_key": end})
        return [name for name in result if start <= name <= end]

    async def view_cleanup(self, db: str) -> None:
        """``_view_cleanup``: remove the index files of design documents the database no longer has."""
        await self._json("POST", f"/{quote_name(db)}/_view_cleanup", body={})


def _row(raw: JsonDict) -> ViewRow:
    return ViewRow(id=raw.get("id"), key=raw.get("key"), value=raw.get("value"), doc=raw.get("doc"))


__all__ = [
    "AttachmentStream",
    "Conflict",
    "CouchStore",
    "JsonDict",
    "ViewRow",
    "doc_path",
    "quote_name",
]
