"""Reading a Crossbar request: the body by its content type, the envelope, verb tunnelling and parameters.

Follows Kazoo 4.3's ``api_util:get_req_data`` (and api_util:extract_file): a JSON body is an envelope
``{"data": ...}``; multipart parts are read one by one by their own content type (JSON part → request data,
anything else → a file); base64 bodies are decoded; any other body is one file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiMapping

from kazoo_vm import jsontext
from kazoo_vm.domain.inputs import UploadedFile
from kazoo_vm.errors import InvalidJson, PayloadTooLarge, RequestTimeout, ValidationFailed

JSON_TYPES = frozenset({"application/json", "application/x-json"})
BASE64_TYPES = frozenset({"application/base64", "application/x-base64"})
FORM_TYPE = "application/x-www-form-urlencoded"
_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,]*)?,", re.ASCII)
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass
class ParsedRequest:
    """Everything a handler needs from the HTTP request, already decoded."""

    method: str
    request_id: str
    query: MultiMapping[str]
    content_type: str
    envelope: dict[str, Any] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    api_version: int = 2

    @property
    def data(self) -> Any:
        return self.envelope.get("data")

    @property
    def data_object(self) -> dict[str, Any]:
        """Request data as an object (``{}`` when absent or a list)."""
        data = self.envelope.get("data")
        return data if isinstance(data, dict) else {}

    def value(self, key: str) -> Any:
        """Kazoo's ``cb_context:req_value``: request data first, then the query string, then the envelope."""
        data = self.envelope.get("data")
        if isinstance(data, dict) and key in data:
            return data[key]
        if key in self.query:
            return self.query[key]
        return self.envelope.get(key)

    def flag(self, key: str) -> bool:
        value = self.value(key)
        return value is True or (isinstance(value, str) and value.lower() == "true")


def request_id_of(request: web.Request) -> str:
    """Echo a sane ``X-Request-Id``, else a new 32-hex id (api_resource:get_request_id)."""
    given = request.headers.get("X-Request-Id", "")
    return given if _REQUEST_ID.match(given) else secrets.token_hex(16)


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


async def _read_limited(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_json(raw: bytes) -> Any:
    try:
        return jsontext.loads(raw)
    except UnicodeDecodeError as exc:
        raise InvalidJson("All JSON must be valid UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise InvalidJson(f"{exc.msg} around {exc.pos}") from exc
    except jsontext.JsonRejected as exc:
        raise InvalidJson(str(exc)) from exc


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """A JSON request body as an envelope: an object whose ``data`` is required (unless the body is empty)."""
    if not raw.strip():
        return {}
    body = _decode_json(raw)
    if not isinstance(body, dict):
        raise InvalidJson("JSON body must be an object")
    envelope = {str(key).lower(): value for key, value in body.items()}
    if "data" not in envelope:
        # Kazoo's envelope schema (draft 3, "required": true) demands data in any non-empty body.
        raise ValidationFailed.single("data", "required", "Field is required but missing")
    if not isinstance(envelope["data"], dict | list):
        raise ValidationFailed.single(
            "data",
            "type",
            "Value did not match type(s): object, array",
            target=["object", "array"],
            value=envelope["data"],
        )
    return envelope


def _decode_base64(raw: bytes) -> UploadedFile:
    text = raw.decode("ascii", errors="replace").strip()
    content_type = "application/octet-stream"
    prefix = _DATA_URI.match(text)
    if prefix:
        content_type = prefix.group("type") or content_type
        text = text[prefix.end() :]
    try:
        data = base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed.single("file", "encoding", "failed to decode base64 data") from exc
    if not data and text:
        raise ValidationFailed.single("file", "encoding", "failed to decode base64 data")
    return UploadedFile(content_type=content_type, data=data)


def _raw_file(raw: bytes, content_type: str, transfer_encoding: str | None) -> UploadedFile:
    if (transfer_encoding or "").strip().lower() == "base64":
        try:
            raw = base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed.single("file", "encoding", "failed to decode base64 data") from exc
    return UploadedFile(content_type=content_type or "application/octet-stream", data=raw)


def _parse_form(raw: bytes) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    stripped = text.strip()
    # curl -d '{"data":...}' sends a JSON text as x-www-form-urlencoded; Kazoo then parses it as JSON.
    if stripped.startswith(("{", "[")):
        return parse_envelope(raw)
    return {"data": dict(parse_qsl(text, keep_blank_values=True))} if stripped else {}


async def _parse_multipart(request: web.Request, limit: int) -> tuple[dict[str, Any], list[UploadedFile]]:
    envelope: dict[str, Any] = {}
    files: list[UploadedFile] = []
    size = 0
    reader: MultipartReader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue  # nested multipart: Kazoo does not descend either
        chunks: list[bytes] = []
        while True:
            chunk = await part.read_chunk(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(limit)
            chunks.append(chunk)
        raw = b"".join(chunks)
        part_type = media_type(part.headers.get("Content-Type"))
        if part_type in ("", *JSON_TYPES):
            # A part without content type is JSON to Kazoo; a bare data object (no envelope) is accepted too.
            body = parse_envelope(raw) if _looks_like_envelope(raw) else {"data": _decode_json(raw)}
            envelope.update(body)
        elif part_type in BASE64_TYPES:
            # Each file part replaces the one before (api_util extract_file → cb_context:set_req_files): the last
            # audio part of a multipart request is the upload.
            files = [_decode_base64(raw)]
        else:
            upload = (
                _raw_file(raw, part_type, part.headers.get("Content-Transfer-Encoding"))
                if part_type
                else UploadedFile("application/octet-stream", raw)
            )
            # aiohttp's parser of Content-Disposition costs as much as the rest of an upload's parsing, even for a
            # part without the header: it is asked only when there is one.
            if part.headers.get("Content-Disposition") and part.filename:
                upload = UploadedFile(upload.content_type, upload.data, part.filename)
            files = [upload]
    return envelope, files


def _looks_like_envelope(raw: bytes) -> bool:
    try:
        body = jsontext.loads(raw) if raw.strip() else {}
    except ValueError:
        return True  # let parse_envelope report the JSON error (JSONDecodeError, UnicodeDecodeError, JsonRejected)
    return isinstance(body, dict) and ("data" in body or not body)


async def _parse_body(
    request: web.Request, content_type: str, max_body_bytes: int
) -> tuple[dict[str, Any], list[UploadedFile]]:
    envelope: dict[str, Any] = {}
    files: list[UploadedFile] = []
    if content_type.startswith("multipart/"):
        try:
            return await _parse_multipart(request, max_body_bytes)
        except (ValueError, HttpProcessingError) as exc:
            # aiohttp's multipart reader: no boundary, no starting boundary, a body cut short, a part whose
            # header block is malformed or too long (BadHttpMessage, LineTooLong). JSON errors are KazooErrors.
            reason = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
            raise ValidationFailed.single("multipart", "invalid", str(reason)[:200], target="body") from exc
    raw = await _read_limited(request, max_body_bytes)
    if content_type in ("", *JSON_TYPES):
        envelope = parse_envelope(raw)
    elif content_type == FORM_TYPE:
        envelope = _parse_form(raw)
    elif content_type in BASE64_TYPES:
        if raw:
            files.append(_decode_base64(raw))
    elif raw:
        files.append(_raw_file(raw, content_type, request.headers.get("Content-Transfer-Encoding")))
    return envelope, files


async def parse_request(
    request: web.Request, *, max_body_bytes: int, read_timeout_s: float | None = None, request_id: str | None = None
) -> ParsedRequest:
    """Decode ``request`` into a :class:`ParsedRequest` (raises Kazoo-shaped errors for bad bodies).

    The whole body must arrive within ``read_timeout_s``: a client trickling it in holds a connection and a
    buffer, so it is answered 408 and cut off. ``request_id``: the one the request was given already."""
    content_type = media_type(request.headers.get("Content-Type"))
    envelope: dict[str, Any] = {}
    files: list[UploadedFile] = []
    if request.can_read_body or request.body_exists:
        try:
            async with asyncio.timeout(read_timeout_s):
                envelope, files = await _parse_body(request, content_type, max_body_bytes)
        except TimeoutError:
            raise RequestTimeout(read_timeout_s or 0) from None
    method = request.method.upper()
    parsed = ParsedRequest(
        method=method,
        request_id=request_id or request_id_of(request),
        query=request.query,
        content_type=content_type,
        envelope=envelope,
        files=files,
        api_version=1 if request.path.startswith("/v1/") else 2,
    )
    if method == "POST":
        # Verb tunnelling (api_util:get_http_verb): ?verb=PUT or an envelope "verb" turns a POST into another method.
        tunnelled = request.query.get("verb") or envelope.get("verb")
        if isinstance(tunnelled, str) and tunnelled.strip():
            parsed.method = tunnelled.strip().upper()
    return parsed
