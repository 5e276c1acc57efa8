"""What an audio download serves, as cb_vmboxes finds it; :mod:`kazoo_vm.http.downloads` turns it into HTTP.

* The file name ``<caller id number>_<YYYY-MM-DD>_<HH:MM:SS><.ext>`` in the box's time zone
  (cb_vmboxes generate_media_name, kz_time pretty_print_datetime).
* Finding what a single download or a ZIP serves (cb_vmboxes load_message_binary, load_messages_binaries).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from kazoo_vm.domain.box_timezone import box_timezone
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import audio, retention
from kazoo_vm.domain.messages.audio import AudioRef
from kazoo_vm.domain.messages.bulk import read_settled
from kazoo_vm.domain.messages.changes import fetch_message, message_ids
from kazoo_vm.domain.messages.documents import folder_of, zone
from kazoo_vm.domain.messages.lookup import may_exist, resolve_ids
from kazoo_vm.domain.messages.records import is_box_message
from kazoo_vm.domain.messages.zip_download import ZipEntry, unique_names
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import BadIdentifier, NothingFound
from kazoo_vm.model import JsonDict, MessageDoc, MessageMetadata
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import DocWithAttachments
from kazoo_vm.storage.errors import NotFound
from kazoo_vm.storage.messages import as_message

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_IN_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


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
    name = f"{_path_safe(caller)}_{moment:%Y-%m-%d_%H:%M:%S}{extension}"
    return _CONTROL.sub("", name)  # a header value must not break the response's header block


def _path_safe(caller: str) -> str:
    """A caller id as part of a file name that names no path when saved or unzipped: no separators (``/``,
    ``\\``), no ``..``, no control characters (a caller id is whatever the calling network sent)."""
    text = _UNSAFE_IN_NAME.sub("_", caller)
    while ".." in text:
        text = text.replace("..", "_")
    return text or "unknown"


NO_AUDIO = "voicemail message does not have any audio file"


@dataclass(frozen=True)
class AudioBody:
    """The bytes of a recording (or of the part asked for), read from CouchDB while they are sent; ``length``
    None when unknown (sent chunked)."""

    chunks: AsyncIterator[bytes]
    length: int | None


@asynccontextmanager
async def open_audio(scope: Scope, ref: AudioRef, part: tuple[int, int] | None = None) -> AsyncIterator[AudioBody]:
    """Open a recording, the whole of it or the inclusive byte span ``part``; the bytes must be read inside this
    context."""
    async with scope.store.open_attachment(ref.db, ref.doc_id, ref.name, span=part) as stream:
        length = ref.length if part is None else part[1] - part[0] + 1
        if length is None:
            length = stream.known_length
        yield AudioBody(stream.chunks(), length)


@dataclass(frozen=True)
class Download:
    """A recording ready to be served: where it is and the file name clients see; ``whole`` the recording itself
    when it arrived with the message (see :func:`single_download`)."""

    audio: AudioRef
    file_name: str
    whole: AudioBody | None = None

    @asynccontextmanager
    async def open(self, scope: Scope, part: tuple[int, int] | None = None) -> AsyncIterator[AudioBody]:
        """The bytes to send: what already arrived when the whole recording is wanted, else a read of ``part``."""
        if self.whole is not None and part is None:
            yield self.whole
            return
        async with open_audio(scope, self.audio, part) as body:
            yield body


def _caller_and_time(doc: MessageDoc) -> tuple[Any, Any]:
    found = doc.get("metadata")
    metadata: MessageMetadata = found if isinstance(found, dict) else {}
    timestamp = metadata.get("timestamp")
    if not isinstance(timestamp, int):
        timestamp = doc.get("utc_seconds")
    return metadata.get("caller_id_number"), timestamp


# Box time zones for file names, ``(account id, box id) -> (when read, zone)``: Kazoo reads the box through its
# document cache too (cb_vmboxes load_message_binary, kz_datamgr:open_cache_doc). Kept at most
# Settings.account_cache_s seconds, so a zone changed through any process names files within that bound.
_ZONES: dict[tuple[str, str], tuple[float, str]] = {}
_MAX_ZONES = 10_000


async def _box_zone(scope: Scope, box_id: str) -> str:
    key = (scope.account.id, box_id)
    now = time.monotonic()
    kept = _ZONES.get(key)
    if kept is not None and now - kept[0] < scope.settings.account_cache_s:
        return kept[1]
    zone_name = await box_timezone(scope, await load_box(scope, box_id))
    if scope.settings.account_cache_s > 0:
        if len(_ZONES) >= _MAX_ZONES:
            _ZONES.clear()
        _ZONES[key] = (now, zone_name)
    return zone_name


@asynccontextmanager
async def single_download(scope: Scope, box_id: str, raw_id: str, *, whole: bool = False) -> AsyncIterator[Download]:
    """``GET /{B}/messages/{M}/raw``: what to send. When the ``whole`` recording is wanted and the id names its
    MODB, the message and its audio come in one request (the box's time zone from the bounded cache above);
    anything unusual (a legacy id, a folderless, expired or moving message, linked audio, an error) takes the
    general way. The bytes must be read inside this context."""
    if not may_exist(raw_id):
        raise BadIdentifier(raw_id)  # before the box is read: an id that names nothing costs no request
    if whole and naming.is_message_id(raw_id):
        try:
            async with scope.store.open_doc_with_attachments(scope.db(raw_id), raw_id) as read:
                found = await _with_audio(scope, box_id, read)
                if found is not None:
                    yield found
                    return
        except NotFound:
            pass
    yield await _download(scope, box_id, raw_id)


async def _with_audio(scope: Scope, box_id: str, read: DocWithAttachments) -> Download | None:
    """The download of a message read with its attachments, or None when the general way must answer."""
    doc = as_message(read.doc)
    if not is_box_message(doc, box_id) or folder_of(doc) is None or retention.is_prior(doc, scope.oldest()):
        return None
    ref = await audio.locate(scope.store, scope.db(doc["_id"]), doc)
    if ref is None or ref.doc_id != doc["_id"]:
        return None
    timezone = await _box_zone(scope, box_id)
    found = await read.attachment(ref.name)
    if found is None:
        return None
    chunks, length = found
    if ref.length is None and length is not None:
        ref = replace(ref, length=length)
    caller, timestamp = _caller_and_time(doc)
    return Download(ref, media_file_name(caller, timestamp, ref.extension, timezone), AudioBody(chunks, length))


async def _download(scope: Scope, box_id: str, raw_id: str) -> Download:
    """The message (fetched as for GET, so a folderless one is saved as ``new``) and its box's time zone (for the
    file name), read at the same time; the audio is read later, as a whole or in part."""
    fetched, timezone = await asyncio.gather(
        fetch_message(scope, box_id, raw_id), _box_zone(scope, box_id), return_exceptions=True
    )
    for outcome in (fetched, timezone):
        if isinstance(outcome, BaseException):
            raise outcome
    assert isinstance(fetched, dict) and isinstance(timezone, str)
    ref = await audio.locate(scope.store, scope.db(fetched["_id"]), fetched)
    if ref is None:
        raise BadIdentifier(NO_AUDIO)
    caller, timestamp = _caller_and_time(fetched)
    return Download(ref, media_file_name(caller, timestamp, ref.extension, timezone))


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
    raw_ids = message_ids(data, scope.settings.max_bulk_messages)
    box = await load_box(scope, box_id)
    resolved = (await resolve_ids(scope, box_id, raw_ids, box)).ids
    docs = await read_settled(scope, list(resolved))
    timezone = await box_timezone(scope, box)
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
