"""Raw audio: GET with Kazoo's headers, Range and Accept negotiation; PUT replacing it; the ZIP of several.

Expectations: cb_vmboxes load_message_binary, api_resource to_binary/get_range (api_resource_tests Range cases).
"""

from __future__ import annotations

import base64
import io
import zipfile
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from helpers import Api, create_box
from message_support import (
    fake_mp3,
    fake_wav,
    gregorian,
    message_doc,
    put_message,
    raw,
)

from kazoo_vm.domain.messages.zip_download import ZipEntry, zip_chunks
from kazoo_vm.storage import couch, naming
from kazoo_vm.storage.couch import CouchStore

MOMENT = datetime(2026, 1, 15, 19, 38, 42, tzinfo=UTC)


async def message_with(api: Api, box_id: str, audio: bytes, audio_type: str = "audio/mpeg", **data: Any) -> str:
    status, body = await put_message(api, box_id, data, audio, audio_type)
    assert status == 201, body
    return str(body["data"]["media_id"])


async def test_raw_download_is_the_stored_bytes_with_kazoos_headers(api: Api) -> None:
    box = await create_box(api, timezone="America/New_York")
    audio = fake_mp3(20_000)
    message_id = await message_with(api, box["id"], audio, "audio/mp3", caller_id_number="1001")
    response, body = await raw(
        api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw", headers={"Accept": "audio/mp3"}
    )
    assert response.status == 200 and body == audio
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["Content-Length"] == str(len(audio))
    assert "ETag" not in response.headers and "Content-Range" not in response.headers
    _status, metadata = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    local = naming.to_datetime(metadata["data"]["timestamp"]).astimezone(ZoneInfo("America/New_York"))
    assert response.headers["Content-Disposition"] == f"attachment; filename=1001_{local:%Y-%m-%d_%H:%M:%S}.mp3"


@pytest.mark.parametrize(
    ("zone_on", "expected"),
    [("box", "Asia/Tokyo"), ("owner", "Europe/Paris"), ("account", "Australia/Sydney"), (None, "America/Los_Angeles")],
)
async def test_file_name_time_zone_comes_from_box_then_owner_then_account(
    api: Api, store: CouchStore, zone_on: str | None, expected: str
) -> None:
    db = api.account.account.db
    owner = {
        "_id": "a" * 32,
        "pvt_type": "user",
        "username": "u",
        **({"timezone": "Europe/Paris"} if zone_on == "owner" else {}),
    }
    await store.put_doc(db, owner)
    if zone_on == "account":
        api.account.account.doc["timezone"] = "Australia/Sydney"
        doc = await store.get_doc(naming.ACCOUNTS_DB, api.account.id)
        doc["timezone"] = "Australia/Sydney"
        await store.put_doc(naming.ACCOUNTS_DB, doc)
    fields: dict[str, Any] = {"owner_id": owner["_id"]}
    if zone_on == "box":
        fields["timezone"] = "Asia/Tokyo"
    box = await create_box(api, **fields)
    message_id = await message_with(api, box["id"], fake_wav(), "audio/x-wav", timestamp=gregorian(MOMENT))
    response, _ = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    local = MOMENT.astimezone(ZoneInfo(expected))
    assert response.headers["Content-Disposition"] == f"attachment; filename=anonymous_{local:%Y-%m-%d_%H:%M:%S}.wav"
    assert response.headers["Content-Type"] == "audio/wav"


@pytest.mark.parametrize(
    ("header", "status", "expected", "content_range"),
    [
        ("bytes=0-0", 206, b"a", "bytes 0-0/7"),
        ("bytes=1-3", 206, b"bcd", "bytes 1-3/7"),
        ("bytes=6-6", 206, b"g", "bytes 6-6/7"),
        ("bytes=4-", 206, b"efg", "bytes 4-6/7"),
        ("bytes=0-6", 200, b"abcdefg", "bytes 0-6/7"),
        ("bytes=0-9", 200, b"abcdefg", "bytes 0-6/7"),
        ("bytes=-2", 200, b"abcdefg", "bytes 0-6/7"),
        ("bytes=0-1,3-4", 200, b"abcdefg", "bytes 0-6/7"),
    ],
)
async def test_range_requests_as_kazoos_api_resource_tests(
    api: Api, store: CouchStore, header: str, status: int, expected: bytes, content_range: str
) -> None:
    box = await create_box(api)
    message_id = await message_with(api, box["id"], fake_mp3(10))
    db = naming.message_db(api.account.id, message_id)
    doc = await store.get_doc(db, message_id)
    name = next(iter(doc["_attachments"]))
    doc["_attachments"] = {name: {"content_type": "audio/mpeg", "data": base64.b64encode(b"abcdefg").decode()}}
    await store.put_doc(db, doc)
    response, body = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw", headers={"Range": header})
    assert (response.status, body) == (status, expected)
    assert response.headers["Content-Range"] == content_range
    assert response.headers["Accept-Ranges"] == "bytes"


async def test_accept_negotiation_gives_406_in_the_envelope(api: Api) -> None:
    box = await create_box(api)
    audio = fake_mp3()
    message_id = await message_with(api, box["id"], audio)
    path = f"/vmboxes/{box['id']}/messages/{message_id}/raw"
    status, body = await api.get(path, headers={"Accept": "application/json"})
    assert status == 406 and body["error"] == "406" and body["status"] == "error"
    for accept in ("*/*", "audio/*", "application/json;q=0.9, audio/mpeg", "application/octet-stream"):
        response, data = await raw(api, "GET", path, headers={"Accept": accept})
        assert response.status == 200 and data == audio, accept
    response, data = await raw(api, "GET", f"{path}?accept=audio/mpeg", headers={"Accept": "application/json"})
    assert response.status == 200 and data == audio


async def test_message_without_audio_and_unknown_message(api: Api) -> None:
    box = await create_box(api)
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {})
    message_id = body["data"]["media_id"]
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert status == 404
    assert body["data"] == {"cause": "voicemail message does not have any audio file", "message": "bad identifier"}
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{'0' * 6}-{'0' * 32}/raw")
    assert status == 404


async def test_put_raw_replaces_every_attachment_in_one_write(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    message_id = await message_with(api, box["id"], fake_mp3())
    replacement = fake_wav()
    status, _body = await api.request(
        "PUT",
        f"/vmboxes/{box['id']}/messages/{message_id}/raw",
        body=aiohttp.MultipartWriter("mixed"),
    )
    assert status == 400  # an empty multipart body carries no file
    response, _payload = await raw(
        api,
        "PUT",
        f"/vmboxes/{box['id']}/messages/{message_id}/raw",
        data=replacement,
        headers={"Content-Type": "audio/x-wav"},
    )
    assert response.status == 201
    doc = await message_doc(store, api.account.id, message_id)
    hex_part = message_id.split("-")[1]
    assert list(doc["_attachments"]) == [f"{hex_part}.wav"] and doc["media_filename"] == f"{hex_part}.wav"
    response, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert stored == replacement and response.headers["Content-Disposition"].endswith(".wav")


async def test_zip_of_several_messages_streams_their_audio_named_as_downloads(api: Api) -> None:
    box = await create_box(api, timezone="Etc/UTC")
    other = await create_box(api, name="other", mailbox="3001")
    first, second = fake_mp3(30_000), fake_wav(10_000)
    one = await message_with(api, box["id"], first, caller_id_number="1001", timestamp=gregorian(MOMENT))
    two = await message_with(api, box["id"], second, "audio/wav", caller_id_number="1001", timestamp=gregorian(MOMENT))
    same_name = await message_with(api, box["id"], fake_mp3(5), caller_id_number="1001", timestamp=gregorian(MOMENT))
    theirs = await message_with(api, other["id"], fake_mp3())
    _status, no_audio = await api.put(f"/vmboxes/{box['id']}/messages", {})
    ids = [one, two, same_name, theirs, no_audio["data"]["media_id"], "202001-" + "3" * 32, "junk"]

    response, body = await raw(
        api,
        "POST",
        f"/vmboxes/{box['id']}/messages/raw",
        json={"data": {"messages": ids}},
        headers={"Accept": "application/zip", "X-Request-Id": "zipreq1"},
    )
    assert response.status == 200, body[:200]
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == "attachment; filename=zipreq1.zip"
    archive = zipfile.ZipFile(io.BytesIO(body))
    stamp = f"{MOMENT:%Y-%m-%d_%H:%M:%S}"
    assert archive.namelist() == [f"1001_{stamp}.mp3", f"1001_{stamp}.wav", f"1001_{stamp}_2.mp3"]
    assert archive.read(f"1001_{stamp}.mp3") == first
    assert archive.read(f"1001_{stamp}.wav") == second
    assert archive.testzip() is None


async def test_zip_errors(api: Api) -> None:
    box = await create_box(api)
    path = f"/vmboxes/{box['id']}/messages/raw"
    status, body = await api.post(path, {"messages": []}, headers={"Accept": "application/zip"})
    assert status == 400 and "messages" in body["data"]
    status, body = await api.post(path, {"messages": ["202001-" + "4" * 32]}, headers={"Accept": "application/zip"})
    assert status == 404 and body["message"] == "not_found"
    status, body = await api.post(path, {"messages": ["x"]}, headers={"Accept": "application/json"})
    assert status == 406
    status, body = await api.post(f"/vmboxes/{'9' * 32}/messages/raw", {"messages": ["x"]})
    assert status == 404 and body["message"] == "bad_identifier"


async def test_zip_stream_pulls_audio_a_chunk_at_a_time() -> None:
    """The archive is produced while the recordings are read: never more than one chunk ahead of the output."""
    pulled = 0
    chunk = bytes(range(256)) * 256

    def source() -> Any:
        async def chunks() -> Any:
            nonlocal pulled
            for _ in range(50):
                pulled += 1
                yield chunk

        return chunks

    written = 0
    ahead = []
    async for piece in zip_chunks([ZipEntry("a.mp3", 50 * len(chunk), source()), ZipEntry("b.mp3", None, source())]):
        written += len(piece)
        ahead.append(pulled * len(chunk) - written)
    assert pulled == 100
    assert max(ahead) <= len(chunk)


async def test_zip_request_without_content_type_still_streams(api: Api) -> None:
    box = await create_box(api)
    audio = fake_mp3()
    message_id = await message_with(api, box["id"], audio, caller_id_number="7")
    response, body = await raw(
        api,
        "POST",
        f"/vmboxes/{box['id']}/messages/raw",
        data=f'{{"data":{{"messages":["{message_id}"]}}}}'.encode(),
        skip_auto_headers=["Content-Type"],
    )
    assert response.status == 200
    assert response.headers["X-RFC2616"] == "Section 14.17 (Try it, you'll like it)"
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert [archive.read(name) for name in archive.namelist()] == [audio]


async def test_put_raw_takes_a_multipart_audio_part(api: Api) -> None:
    box = await create_box(api)
    message_id = await message_with(api, box["id"], fake_mp3())
    replacement = fake_mp3()
    writer = aiohttp.MultipartWriter("mixed")
    writer.append(replacement, {"Content-Type": "audio/mp3"})
    status, body = await api.request("PUT", f"/vmboxes/{box['id']}/messages/{message_id}/raw", body=writer)
    assert status == 201 and body["data"]["media_id"] == message_id
    _, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert stored == replacement


@pytest.mark.parametrize(("start", "length"), [(0, 1), (3, 10), (9, 2), (0, 25), (24, 1), (5, 0)])
async def test_a_range_is_cut_from_a_whole_attachment_stream(start: int, length: int) -> None:
    data = bytes(range(25))

    async def chunks() -> Any:
        for offset in range(0, len(data), 4):
            yield data[offset : offset + 4]

    assert b"".join([piece async for piece in couch.sliced(chunks(), start, length)]) == data[start : start + length]
