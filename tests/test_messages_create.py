"""PUT /vmboxes/{B}/messages: documents stored as Kazoo stores them, Kazoo's defaults, and the limits.

Expectations: cb_vmboxes create_new_message_document and kzd_box_message (document shape).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import Api, create_box
from message_support import (
    fake_mp3,
    fake_wav,
    gregorian,
    gregorian_now,
    message_doc,
    month_start,
    multipart,
    put_message,
    raw,
)

from kazoo_vm.domain.messages.documents import METADATA_KEYS
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

MESSAGE_ID = re.compile(r"^\d{6}-[0-9a-f]{32}$")


async def test_multipart_create_stores_document_and_audio_in_the_modb_as_kazoo(api: Api, store: CouchStore) -> None:
    box = await create_box(api, mailbox="1010", timezone="America/New_York")
    audio = fake_mp3()
    data = {"folder": "new", "caller_id_name": "pqc_cb_storage", "caller_id_number": "pqc_cb_storage"}
    response, body = await raw(api, "PUT", f"/vmboxes/{box['id']}/messages", data=multipart(data, audio, "audio/mp3"))
    payload = json.loads(body)
    assert response.status == 201, payload
    metadata = payload["data"]
    message_id = metadata["media_id"]
    assert MESSAGE_ID.match(message_id)
    assert response.headers["Location"].endswith(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert "revision" not in payload

    doc = await message_doc(store, api.account.id, message_id)
    hex_part = message_id.split("-")[1]
    year, month = naming.year_month(doc["utc_seconds"])
    assert message_id.startswith(f"{year:04d}{month:02d}-")
    assert doc["pvt_type"] == "mailbox_message"
    assert doc["source_id"] == box["id"]
    assert doc["pvt_account_db"] == naming.encode_db(naming.message_db(api.account.id, message_id))
    assert doc["pvt_account_id"] == api.account.id
    assert doc["description"] == "voicemail message with media"
    assert doc["source_type"] == "voicemail" and doc["media_source"] == "recording" and doc["streamable"] is True
    local = naming.to_datetime(doc["utc_seconds"]).astimezone(ZoneInfo("America/New_York"))
    assert doc["name"] == (
        f"mailbox 1010 message {local:%Y-%m-%d} {local.hour}:{local.minute}:{local.second}"
    )  # kzd_box_message:create_message_name: date padded, time not, in the box's zone
    assert doc["metadata"] == metadata
    assert set(metadata) == set(METADATA_KEYS)
    assert metadata["media_id"] == message_id and metadata["timestamp"] == doc["utc_seconds"]
    assert doc["pvt_created"] == doc["pvt_modified"] == doc["utc_seconds"]
    assert doc["pvt_node"] and re.match(r"^[0-9a-f]{32}$", doc["pvt_document_hash"])
    assert doc["media_filename"] == f"{hex_part}.mp3"
    stub = doc["_attachments"][f"{hex_part}.mp3"]
    assert stub["content_type"] == "audio/mpeg" and stub["length"] == len(audio)

    fetched, stored = await raw(
        api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw", headers={"Accept": "audio/mp3"}
    )
    assert fetched.status == 200 and stored == audio


async def test_request_data_gets_kazoo_defaults_and_an_existing_at_is_not_suffixed_again(api: Api) -> None:
    box = await create_box(api, mailbox="3000")
    realm = api.account.account.realm
    response, payload = await raw(
        api,
        "PUT",
        f"/vmboxes/{box['id']}/messages",
        json={"data": {"from": "alice@example.com", "extra": {"ignored": 1}}},
    )
    body = json.loads(payload)
    assert response.status == 201, body
    assert response.headers["Location"].endswith(f"/vmboxes/{box['id']}/messages/{body['data']['media_id']}")
    metadata = body["data"]
    assert metadata["from"] == "alice@example.com"
    assert metadata["from_user"] == "alice" and metadata["from_realm"] == "example.com"
    assert metadata["to"] == f"3000@{realm}" and metadata["to_user"] == "3000" and metadata["to_realm"] == realm
    assert metadata["caller_id_number"] == "anonymous" and metadata["caller_id_name"] == "anonymous"
    assert re.match(r"^[0-9a-f]{24}$", metadata["call_id"])
    assert metadata["length"] == 1 and metadata["folder"] == "new"
    assert abs(metadata["timestamp"] - gregorian_now()) < 120
    assert "extra" not in metadata

    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {"caller_id_number": "6001", "to": "7000"})
    assert status == 201 and body["data"]["from"] == f"6001@{realm}"
    assert body["data"]["to"] == f"7000@{realm}"


async def test_timestamp_picks_the_month_database_and_the_id_prefix(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    earlier = gregorian(month_start(-1) + timedelta(days=3, hours=5))
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {"timestamp": earlier, "folder": "saved"})
    assert status == 201, body
    year, month = naming.year_month(earlier)
    assert body["data"]["media_id"].startswith(f"{year:04d}{month:02d}-")
    assert body["data"]["timestamp"] == earlier and body["data"]["folder"] == "saved"
    db = naming.modb(api.account.id, year, month)
    design = await store.get_doc(db, "_design/mailbox_messages")
    assert set(design["views"]) >= {"listing_by_mailbox", "listing_by_timestamp", "count_per_box_folder"}
    assert (await store.get_doc(db, "_design/kazoo_vm_messages"))["views"]["by_box_folder"]["reduce"] == "_count"


async def test_json_only_create_then_audio_put_on_raw(api: Api) -> None:
    box = await create_box(api)
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {"caller_id_number": "6001"})
    assert status == 201
    message_id = body["data"]["media_id"]
    response, _ = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert response.status == 404
    audio = fake_wav()
    response, payload = await raw(
        api, "PUT", f"/vmboxes/{box['id']}/messages/{message_id}/raw", data=audio, headers={"Content-Type": "audio/wav"}
    )
    assert response.status == 201, payload
    response, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert stored == audio and response.headers["Content-Type"] == "audio/wav"


async def test_form_data_upload_and_base64_body_are_accepted(api: Api) -> None:
    box = await create_box(api)
    audio = fake_mp3()
    status, body = await put_message(api, box["id"], {"caller_id_number": "1"}, audio, "audio/mpeg", "form-data")
    assert status == 201, body
    message_id = body["data"]["media_id"]
    _, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert stored == audio

    # A base64 body decodes to octet-stream; the bytes say it is an MP3.
    other = fake_mp3()
    response, payload = await raw(
        api,
        "PUT",
        f"/vmboxes/{box['id']}/messages/{message_id}/raw",
        data=base64.b64encode(other),
        headers={"Content-Type": "application/base64"},
    )
    assert response.status == 201, payload
    response, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert stored == other and response.headers["Content-Type"] == "audio/mpeg"


async def test_unknown_audio_type_is_refused_and_nothing_is_stored(api: Api) -> None:
    box = await create_box(api)
    status, body = await put_message(api, box["id"], {}, b"OggS" + bytes(100), "audio/ogg")
    assert status == 400
    assert body["message"] == "validation error"
    assert body["data"]["file"]["enum"]["value"] == "audio/ogg"
    assert body["data"]["file"]["enum"]["target"] == ["audio/mp4", "audio/mpeg", "audio/wav"]
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert listing["data"] == []

    status, body = await put_message(api, box["id"], {}, b"just some text", "application/octet-stream")
    assert status == 400 and "enum" in body["data"]["file"]


async def test_schema_errors_and_missing_box(api: Api) -> None:
    box = await create_box(api)
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {"folder": "archive", "length": "long"})
    assert status == 400
    assert "enum" in body["data"]["folder"] and "type" in body["data"]["length"]
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {"caller_id_name": "x" * 36})
    assert status == 400 and "maxLength" in body["data"]["caller_id_name"]

    status, body = await put_message(api, "0" * 32, {}, fake_mp3())
    assert status == 404 and body["message"] == "bad_identifier"


async def test_of_several_audio_parts_the_last_one_is_kept(api: Api, store: CouchStore) -> None:
    """api_util extract_multipart: each file part replaces the one before (cb_context:set_req_files)."""
    box = await create_box(api)
    last = fake_wav()
    writer = multipart({}, fake_mp3(), "audio/mpeg")
    writer.append(last, {"Content-Type": "audio/wav"})
    status, body = await api.request("PUT", f"/vmboxes/{box['id']}/messages", body=writer)
    assert status == 201, body
    message_id = body["data"]["media_id"]
    doc = await message_doc(store, api.account.id, message_id)
    assert list(doc["_attachments"]) == [doc["media_filename"]] and doc["media_filename"].endswith(".wav")
    response, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
    assert response.status == 200 and stored == last


async def test_audio_put_requires_a_file(api: Api) -> None:
    box = await create_box(api)
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {})
    message_id = body["data"]["media_id"]
    status, body = await api.put(f"/vmboxes/{box['id']}/messages/{message_id}/raw", {})
    assert status == 400
    assert body["data"]["file"]["required"]["message"] == "Please provide a media file"


async def test_parallel_creates_into_a_new_monthly_database_all_succeed(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    when = gregorian(month_start(-2) + timedelta(days=1))
    results = await asyncio.gather(
        *(put_message(api, box["id"], {"timestamp": when + n}, fake_mp3()) for n in range(6))
    )
    assert [status for status, _ in results] == [201] * 6
    year, month = naming.year_month(when)
    db = naming.modb(api.account.id, year, month)
    rows = await store.all_docs(db)
    assert len([row for row in rows if not str(row.id).startswith("_design/")]) == 6
    assert {"_design/mailbox_messages", "_design/kazoo_vm_messages"} <= {str(row.id) for row in rows}


@pytest.mark.parametrize(
    ("sent_type", "stored_type", "extension"),
    [("audio/mp3", "audio/mpeg", "mp3"), ("audio/x-wav", "audio/wav", "wav"), ("audio/mp4", "audio/mp4", "mp4")],
)
async def test_curl_form_upload_stores_the_audio_under_kazoos_name_and_type(
    api: Api, store: CouchStore, sent_type: str, stored_type: str, extension: str
) -> None:
    """The API document's ``curl -F "content=@message.json; type=application/json" -F "content=@voice.mp3;
    type=audio/mp3"``, byte for byte as curl sends it (form-data parts with file names)."""
    box = await create_box(api)
    boundary = "------------------------d74496d66958873e"
    audio = fake_mp3(300)
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="message.json"\r\n'.encode(),
            b"Content-Type: application/json\r\n\r\n",
            b'{"data":{"caller_id_name":"someone","caller_id_number":"6001","folder":"saved","from":"someone@far.com"}}',
            f"\r\n--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="content"; filename="voice.{extension}"\r\n'.encode(),
            f"Content-Type: {sent_type}\r\n\r\n".encode(),
            audio,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    response, payload = await raw(
        api,
        "PUT",
        f"/vmboxes/{box['id']}/messages",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 201, payload
    metadata = json.loads(payload)["data"]
    assert metadata["caller_id_number"] == "6001" and metadata["folder"] == "saved"
    assert metadata["from"] == "someone@far.com"
    doc = await message_doc(store, api.account.id, metadata["media_id"])
    name = f"{metadata['media_id'].split('-')[1]}.{extension}"
    assert list(doc["_attachments"]) == [name] and doc["_attachments"][name]["content_type"] == stored_type
    fetched, stored = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{metadata['media_id']}/raw")
    assert stored == audio and fetched.headers["Content-Type"] == stored_type


@pytest.mark.parametrize(("timestamp", "validator"), [(5, "minimum"), (-3, "minimum"), (10**15, "maximum")])
async def test_a_timestamp_that_names_no_month_is_refused(api: Api, timestamp: int, validator: str) -> None:
    box = await create_box(api)
    status, body = await api.put(f"/vmboxes/{box['id']}/messages", {"timestamp": timestamp})
    assert status == 400 and body["message"] == "validation error"
    assert body["data"]["timestamp"][validator]["value"] == timestamp
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert listing["data"] == []


async def test_a_message_created_with_an_earlier_timestamp_is_stamped_with_the_request_time(
    api: Api, store: CouchStore
) -> None:
    """crossbar_doc:save sets pvt_created/pvt_modified; the message's own time stays in its metadata."""
    box = await create_box(api, name="stamped", mailbox="1020")
    earlier = gregorian_now() - 3 * 86_400
    status, body = await put_message(api, box["id"], {"timestamp": earlier}, fake_mp3())
    assert status == 201, body
    doc = await message_doc(store, api.account.id, body["data"]["media_id"])
    assert doc["metadata"]["timestamp"] == doc["utc_seconds"] == earlier
    assert doc["pvt_created"] == doc["pvt_modified"]
    assert abs(doc["pvt_created"] - gregorian_now()) < 120
