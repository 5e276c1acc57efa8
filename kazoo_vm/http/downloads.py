"""Audio downloads in HTTP, as Kazoo's api_resource and cb_vmboxes answer them.

* Accept negotiation against the types a download can be served as (``?DOWNLOAD_MIME_TYPES``), with the
  ``accept`` request value overriding the header (api_resource accept_override).
* Single byte ranges ``bytes=S-E`` / ``bytes=S-`` (api_resource get_range); anything else is served whole.
* ``Content-Disposition`` with the file name unquoted, as Kazoo sends it (cb_vmboxes load_attachment_from_message).

The domain says what to send (:class:`kazoo_vm.domain.messages.downloads.Download`); this module says how.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kazoo_vm.domain.messages.downloads import AudioBody
from kazoo_vm.errors import NotAcceptable

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


def require_acceptable(accept_value: Any, accept_header: str | None, provided: list[str]) -> None:
    """406 (in the envelope) when the client accepts none of ``provided``; the ``accept`` request value overrides
    the header (api_resource accept_override)."""
    wanted = accept_value if isinstance(accept_value, str) and accept_value else accept_header
    if negotiate(wanted, provided) is None:
        raise NotAcceptable(provided)


def content_disposition(file_name: str) -> str:
    """Kazoo's header: the name unquoted (cb_vmboxes load_attachment_from_message)."""
    return f"attachment; filename={file_name}"


def audio_response(file_name: str, content_type: str, wanted: ByteRange | None, body: AudioBody) -> web.StreamResponse:
    """The response head for ``GET .../raw``: ``Content-Range`` whenever a range was asked, 206 only for a part
    (api_resource to_binary)."""
    headers = {"Content-Disposition": content_disposition(file_name), "Accept-Ranges": "bytes"}
    if wanted is not None:
        headers["Content-Range"] = wanted.content_range
    partial = wanted is not None and wanted.partial
    response = web.StreamResponse(status=206 if partial else 200, headers=headers)
    response.content_type = content_type
    if body.length is not None:
        response.content_length = body.length  # else sent chunked
    return response
