"""Helpers shared by the message tests (no tests here): uploads, raw requests, time, direct CouchDB reads."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import ClientResponse
from helpers import Api

from kazoo_vm.model import MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.messages import read_message

GREGORIAN_OFFSET = 62_167_219_200
DAY = 86_400


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET


def gregorian(moment: datetime) -> int:
    return int(moment.timestamp()) + GREGORIAN_OFFSET


def month_start(offset: int = 0) -> datetime:
    """The first instant of the current UTC month, moved ``offset`` months."""
    now = datetime.now(tz=UTC)
    index = now.year * 12 + now.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def fake_mp3(size: int = 4096) -> bytes:
    """Bytes that look like an MP3 (an ID3 tag) followed by random payload, so every upload is distinct."""
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + os.urandom(size)


def fake_wav(size: int = 2048) -> bytes:
    body = os.urandom(size)
    return b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body


def multipart(
    data: dict[str, Any] | None, audio: bytes | None, audio_type: str, subtype: str = "mixed"
) -> aiohttp.MultipartWriter:
    """Kazoo's own test upload (pqc_cb_vmboxes new_message): a JSON envelope part, then the audio part."""
    writer = aiohttp.MultipartWriter(subtype)
    if data is not None:
        writer.append(json.dumps({"data": data}), {"Content-Type": "application/json"})
    if audio is not None:
        writer.append(audio, {"Content-Type": audio_type})
    return writer


async def put_message(
    api: Api,
    box_id: str,
    data: dict[str, Any] | None = None,
    audio: bytes | None = None,
    audio_type: str = "audio/mpeg",
    subtype: str = "mixed",
) -> tuple[int, Any]:
    """PUT a message: JSON only when there is no audio, else multipart with both."""
    path = f"/vmboxes/{box_id}/messages"
    if audio is None:
        return await api.put(path, data or {})
    return await api.request("PUT", path, body=multipart(data or {}, audio, audio_type, subtype))


async def new_message(api: Api, box_id: str, **data: Any) -> dict[str, Any]:
    """Create a message with a fresh fake MP3; returns the response data (the metadata)."""
    status, body = await put_message(api, box_id, data, fake_mp3())
    assert status == 201, body
    result: dict[str, Any] = body["data"]
    return result


async def raw(api: Api, method: str, path: str, **kwargs: Any) -> tuple[ClientResponse, bytes]:
    """A request whose answer is not necessarily JSON: the response (for headers) and the body bytes."""
    headers = {**api.account.headers, **kwargs.pop("headers", {})}
    response = await api.client.request(method, api.url(path), headers=headers, **kwargs)
    return response, await response.read()


async def message_doc(store: CouchStore, account_id: str, message_id: str) -> MessageDoc:
    return await read_message(store, naming.message_db(account_id, message_id), message_id)


def listed_ids(body: Any) -> list[str]:
    return [item["media_id"] for item in body["data"]]
