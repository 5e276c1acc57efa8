"""The HTTP side of audio downloads, as Kazoo's api_resource and cb_vmboxes do it.

* Accept negotiation against the types a download can be served as (``?DOWNLOAD_MIME_TYPES``), with the
  ``accept`` request value overriding the header (api_resource accept_override).
* Single byte ranges ``bytes=S-E`` / ``bytes=S-`` (api_resource get_range); anything else is served whole.
* The file name ``<caller id number>_<YYYY-MM-DD>_<HH:MM:SS><.ext>`` in the box's time zone
  (cb_vmboxes generate_media_name, kz_time pretty_print_datetime).
* Finding what a single download or a ZIP serves (cb_vmboxes load_message_binary, load_messages_binaries).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.messages import audio
from kazoo_vm.domain.messages.audio import AudioRef
from kazoo_vm.domain.messages.bulk import read_settled
from kazoo_vm.domain.messages.changes import fetch_message, message_ids
from kazoo_vm.domain.messages.documents import zone
from kazoo_vm.domain.messages.lookup import may_exist, resolve_ids
from kazoo_vm.domain.messages.records import Scope, is_box_message
from kazoo_vm.domain.messages.zip_download import ZipEntry, unique_names
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import BadIdentifier, NothingFound
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import naming

# cb_vmboxes ?DOWNLOAD_MIME_TYPES: octet-stream, the audio types, the multipart and form types.
AUDIO_DOWNLOAD_TYPES = [
    "application/octet-stream",
    "audio/x-wav",
    "audio/wav",
    "audio/mpeg",
    "audio/mp3",
    "audio/ogg",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/mixed",
]
ZIP_DOWNLOAD_TYPES = ["application/zip"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d+)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _media_ranges(accept: str) -> list[tuple[float, int, str]]:
    ranges: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        fields = [item.strip() for item in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        quality = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranges.append((-quality, position, media))
    return sorted(ranges)


def negotiate(accept: Any, provided: list[str]) -> str | None:
    """The provided type to answer with, or None when the client accepts none of them (406)."""
    if not isinstance(accept, str) or not accept.strip():
        return provided[0]
    for _quality, _position, media in _media_ranges(accept):
        major, _, minor = media.partition("/")
        for candidate in provided:
            c_major, _, c_minor = candidate.partition("/")
            if media == "*/*" or (major == c_major and minor in ("*", c_minor)):
                return candidate
    return None


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive
    total: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def partial(self) -> bool:
        return self.length < self.total

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.total}"


def byte_range(header: str | None, total: int) -> ByteRange | None:
    """The range to serve for a ``Range`` header: None without one; the whole file when it is not a single
    satisfiable ``bytes=S-E``/``bytes=S-`` range (api_resource get_range answers those with the whole file)."""
    if header is None or total <= 0:
        return None
    match = _RANGE.match(header)
    whole = ByteRange(0, total - 1, total)
    if not match:
        return whole
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else total - 1
    if start > end or end >= total:
        return whole
    return ByteRange(start, end, total)


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


def media_file_name(caller_id_number: Any, gregorian_seconds: Any, extension: str, timezone: str | None) -> str:
    """``<cid>_<YYYY-MM-DD>_<HH:MM:SS><ext>``; ``unknown`` without a caller id number, UTC for an unknown zone."""
    caller = caller_id_number if isinstance(caller_id_number, str) and caller_id_number else "unknown"
    seconds = gregorian_seconds if isinstance(gregorian_seconds, int) and not isinstance(gregorian_seconds, bool) else 0
    if isinstance(gregorian_seconds, str) and gregorian_seconds.isdigit():
        seconds = int(gregorian_seconds)
    try:
        moment = naming.to_datetime(seconds)
    except (ValueError, OverflowError, OSError):
        moment = naming.to_datetime(naming.now_gregorian())  # no usable timestamp on the message
    tz = zone(timezone, "")
    if tz is not None:
        moment = moment.astimezone(tz)
    name = f"{caller}_{moment:%Y-%m-%d_%H:%M:%S}{extension}"
    return _CONTROL.sub("", name)  # a header value must not break the response's header block


NO_AUDIO = "voicemail message does not have any audio file"


@dataclass(frozen=True)
class Download:
    """A recording ready to be served: where it is and the file name clients see."""

    audio: AudioRef
    file_name: str


def _caller_and_time(doc: JsonDict) -> tuple[Any, Any]:
    found = doc.get("metadata")
    metadata: JsonDict = found if isinstance(found, dict) else {}
    timestamp = metadata.get("timestamp")
    if not isinstance(timestamp, int):
        timestamp = doc.get("utc_seconds")
    return metadata.get("caller_id_number"), timestamp


async def single_download(scope: Scope, box_id: str, raw_id: str) -> Download:
    """``GET /{B}/messages/{M}/raw``: the message (fetched as for GET, so a folderless one is saved as ``new``)
    and its box (for the time zone of the file name) are read at the same time."""
    if not may_exist(raw_id):
        raise BadIdentifier(raw_id)  # before the box is read: an id that names nothing costs no request
    fetched, box = await asyncio.gather(
        fetch_message(scope, box_id, raw_id), load_box(scope.store, scope.account, box_id), return_exceptions=True
    )
    for outcome in (fetched, box):
        if isinstance(outcome, BaseException):
            raise outcome
    assert isinstance(fetched, dict) and isinstance(box, dict)
    ref = await audio.locate(scope.store, scope.db(fetched["_id"]), fetched)
    if ref is None:
        raise BadIdentifier(NO_AUDIO)
    timezone = await box_timezone(scope.store, scope.settings, scope.account, box)
    caller, timestamp = _caller_and_time(fetched)
    return Download(ref, media_file_name(caller, timestamp, ref.extension, timezone))


@dataclass(frozen=True)
class Served:
    """What a raw download answers: status (206 for a part), headers, type, length (None: unknown, chunked)
    and the bytes, read from CouchDB while they are sent."""

    status: int
    headers: dict[str, str]
    content_type: str
    length: int | None
    chunks: AsyncIterator[bytes]


@asynccontextmanager
async def serve(scope: Scope, download: Download, range_header: str | None) -> AsyncIterator[Served]:
    """Open the recording for ``GET .../raw``, the whole of it or the one range asked for (api_resource
    to_binary: ``Content-Range`` whenever a range was asked, 206 only for a part). The bytes must be sent
    inside this context."""
    ref = download.audio
    wanted = byte_range(range_header, ref.length) if ref.length is not None else None
    partial = wanted is not None and wanted.partial
    couch_range = f"bytes={wanted.start}-{wanted.end}" if wanted is not None and partial else None
    async with scope.store.open_attachment(ref.db, ref.doc_id, ref.name, byte_range=couch_range) as stream:
        # Kazoo's header, name unquoted (cb_vmboxes load_attachment_from_message).
        headers = {"Content-Disposition": f"attachment; filename={download.file_name}", "Accept-Ranges": "bytes"}
        chunks: AsyncIterator[bytes] = stream.chunks()
        length = ref.length
        if wanted is not None:
            headers["Content-Range"] = wanted.content_range
            length = wanted.length
            if partial and stream.status != 206:
                chunks = sliced(chunks, wanted.start, wanted.length)
        elif length is None and "Content-Length" in stream.response.headers:
            length = stream.length
        yield Served(206 if partial else 200, headers, ref.content_type, length, chunks)


def attachment_chunks(scope: Scope, ref: AudioRef) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        async with scope.store.open_attachment(ref.db, ref.doc_id, ref.name) as stream:
            async for chunk in stream.chunks():
                yield chunk

    return chunks


async def zip_entries(scope: Scope, box_id: str, data: JsonDict) -> list[ZipEntry]:
    """``POST /{B}/messages/raw``: the archive entries for the box's messages among ``data.messages`` that have
    audio, in request order, named as single downloads are; ids that name nothing are skipped, none at all is
    404 (cb_vmboxes load_messages_binaries)."""
    raw_ids = message_ids(data)
    box = await load_box(scope.store, scope.account, box_id)
    resolved = (await resolve_ids(scope, box_id, raw_ids, box)).ids
    docs = await read_settled(scope, list(resolved))
    timezone = await box_timezone(scope.store, scope.settings, scope.account, box)
    names: list[str] = []
    refs: list[AudioRef] = []
    for message_id in resolved:
        doc = docs.get(message_id)
        if not is_box_message(doc, box_id):
            continue
        assert doc is not None
        ref = await audio.locate(scope.store, scope.db(message_id), doc)
        if ref is None:
            continue
        caller, timestamp = _caller_and_time(doc)
        names.append(media_file_name(caller, timestamp, ref.extension, timezone))
        refs.append(ref)
    if not refs:
        raise NothingFound("none of the messages has audio")
    return [
        ZipEntry(name, ref.length, attachment_chunks(scope, ref))
        for name, ref in zip(unique_names(names), refs, strict=True)
    ]
