"""Moving and copying messages between boxes: Kazoo's transforms, audio carried along, crash safety and
concurrency (kvm_messages:move_to_vmbox, kvm_message:copy_to_vmboxes)."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from helpers import Api, create_box
from message_support import (
    fake_mp3,
    gregorian,
    gregorian_now,
    listed_ids,
    message_doc,
    month_start,
    put_message,
    raw,
)

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DocumentNotFound


async def make(api: Api, box_id: str, **data: Any) -> tuple[str, bytes]:
    audio = fake_mp3()
    status, body = await put_message(api, box_id, data, audio)
    assert status == 201, body
    return str(body["data"]["media_id"]), audio


async def audio_of(api: Api, box_id: str, message_id: str) -> bytes:
    response, body = await raw(api, "GET", f"/vmboxes/{box_id}/messages/{message_id}/raw")
    assert response.status == 200, body
    return body


async def box_contents(api: Api, box_id: str) -> list[str]:
    status, body = await api.get(f"/vmboxes/{box_id}/messages?paginate=false")
    assert status == 200
    return listed_ids(body)


async def test_move_creates_a_new_current_month_message_and_removes_the_old(api: Api, store: CouchStore) -> None:
    source = await create_box(api, name="src", mailbox="100")
    dest = await create_box(api, name="dst", mailbox="200", timezone="Europe/Paris")
    earlier = gregorian(month_start(-1) + timedelta(days=4))
    message_id, audio = await make(api, source["id"], timestamp=earlier, folder="saved", caller_id_number="555")

    status, body = await api.post(f"/vmboxes/{source['id']}/messages/{message_id}", {"source_id": dest["id"]})
    assert status == 200, body
    moved = body["data"]
    new_id = moved["id"]
    year, month = naming.year_month(gregorian_now())
    assert new_id.startswith(f"{year:04d}{month:02d}-") and new_id != message_id
    assert moved["metadata"]["media_id"] == new_id
    assert moved["source_id"] == dest["id"] and moved["history"] == [source["id"]]
    assert moved["metadata"]["folder"] == "new"
    assert (
        abs(moved["metadata"]["timestamp"] - gregorian_now()) < 120
        and moved["utc_seconds"] == moved["metadata"]["timestamp"]
    )
    assert moved["metadata"]["to"] == f"200@{api.account.account.realm}"
    assert moved["metadata"]["caller_id_number"] == "555"
    assert moved["name"].startswith("mailbox 200 message ")
    assert not [key for key in moved if key.startswith(("_", "pvt_"))]

    assert await box_contents(api, source["id"]) == []
    assert await box_contents(api, dest["id"]) == [new_id]
    assert await audio_of(api, dest["id"], new_id) == audio
    stored = await message_doc(store, api.account.id, new_id)
    assert stored["pvt_account_db"] == naming.encode_db(naming.message_db(api.account.id, new_id))
    assert "pvt_move" not in stored
    with pytest.raises(DocumentNotFound):
        await message_doc(store, api.account.id, message_id)  # hard-deleted, as Kazoo's move_doc does
    assert (await api.get(f"/vmboxes/{source['id']}/messages/{message_id}"))[0] == 404


async def test_copy_to_several_boxes_keeps_the_original(api: Api, store: CouchStore) -> None:
    source = await create_box(api, name="src", mailbox="100")
    first = await create_box(api, name="a", mailbox="200")
    second = await create_box(api, name="b", mailbox="300")
    message_id, audio = await make(api, source["id"], folder="saved")
    status, body = await api.post(
        f"/vmboxes/{source['id']}/messages/{message_id}", {"source_id": [first["id"], second["id"]]}
    )
    assert status == 200 and set(body["data"]) == {"succeeded"}
    copies = body["data"]["succeeded"]
    assert len(copies) == 2
    assert await box_contents(api, source["id"]) == [message_id]
    for box, copy_id in zip((first, second), copies, strict=True):
        status, metadata = await api.get(f"/vmboxes/{box['id']}/messages/{copy_id}")
        assert metadata["data"]["folder"] == "new" and metadata["data"]["media_id"] == copy_id
        assert metadata["data"]["to"].startswith(f"{box['mailbox']}@")
        assert abs(metadata["data"]["timestamp"] - gregorian_now()) < 120
        assert await audio_of(api, box["id"], copy_id) == audio
        stored = await message_doc(store, api.account.id, copy_id)
        assert stored["history"] == [source["id"]] and stored["source_id"] == box["id"]
    status, original = await api.get(f"/vmboxes/{source['id']}/messages/{message_id}")
    assert original["data"]["folder"] == "saved"


async def test_bulk_move_and_copy_report_new_ids(api: Api) -> None:
    source = await create_box(api, name="src", mailbox="100")
    dest = await create_box(api, name="dst", mailbox="200")
    ids = [(await make(api, source["id"]))[0] for _ in range(3)]
    missing = "202001-" + "2" * 32
    status, body = await api.post(
        f"/vmboxes/{source['id']}/messages", {"messages": [*ids[:2], missing], "source_id": [dest["id"]]}
    )
    assert status == 200 and len(body["data"]["succeeded"]) == 2 and body["data"]["failed"] == {missing: "not_found"}
    copies = body["data"]["succeeded"]
    assert sorted(await box_contents(api, source["id"])) == sorted(ids)
    status, body = await api.post(f"/vmboxes/{source['id']}/messages", {"messages": ids, "source_id": dest["id"]})
    assert status == 200 and len(body["data"]["succeeded"]) == 3 and "failed" not in body["data"]
    assert not set(body["data"]["succeeded"]) & set(ids)
    assert await box_contents(api, source["id"]) == []
    assert sorted(await box_contents(api, dest["id"])) == sorted(copies + body["data"]["succeeded"])


async def test_move_follows_a_kz_att_link_and_materialises_the_audio(api: Api, store: CouchStore) -> None:
    source = await create_box(api, name="src", mailbox="100")
    dest = await create_box(api, name="dst", mailbox="200")
    message_id, _ = await make(api, source["id"])
    audio = fake_mp3()
    media_id = "e" * 32
    await store.put_doc(
        api.account.account.db,
        {
            "_id": media_id,
            "pvt_type": "private_media",
            "_attachments": {"legacy.mp3": {"content_type": "audio/mpeg", "data": base64.b64encode(audio).decode()}},
        },
    )
    db = naming.message_db(api.account.id, message_id)
    doc = await store.get_doc(db, message_id)
    del doc["_attachments"]
    doc["media_filename"] = "legacy.mp3"
    doc["pvt_attachments"] = {
        "legacy.mp3": {
            "content_type": "audio/mpeg",
            "length": len(audio),
            "handler": {"kz_att_link": {"att_dbname": naming.encode_db(api.account.account.db), "att_docid": media_id}},
        }
    }
    await store.put_doc(db, doc)
    assert await audio_of(api, source["id"], message_id) == audio

    status, body = await api.post(f"/vmboxes/{source['id']}/messages/{message_id}", {"source_id": dest["id"]})
    assert status == 200, body
    new_id = body["data"]["id"]
    stored = await message_doc(store, api.account.id, new_id)
    assert "pvt_attachments" not in stored and stored["_attachments"]["legacy.mp3"]["length"] == len(audio)
    assert await audio_of(api, dest["id"], new_id) == audio


async def test_parallel_moves_and_folder_changes_leave_each_message_exactly_once(api: Api) -> None:
    source = await create_box(api, name="src", mailbox="100")
    first = await create_box(api, name="a", mailbox="200")
    second = await create_box(api, name="b", mailbox="300")
    ids = [(await make(api, source["id"]))[0] for _ in range(4)]
    path = f"/vmboxes/{source['id']}/messages"
    requests = []
    for message_id in ids:
        requests += [api.post(f"{path}/{message_id}", {"source_id": first["id"]}) for _ in range(2)]
        requests += [api.post(f"{path}/{message_id}", {"source_id": second["id"]})]
        requests += [api.post(f"{path}/{message_id}", {"folder": "saved"})]
    requests += [api.post(path, {"messages": ids, "source_id": first["id"]}) for _ in range(2)]
    requests += [api.post(path, {"messages": ids, "folder": "saved"})]
    # Readers meet messages in transit too, and finish those moves alongside the movers.
    requests += [api.get("/vmboxes/messages?paginate=false"), api.get("/vmboxes")]
    requests += [api.get(f"{path}/{message_id}") for message_id in ids]
    results = await asyncio.gather(*requests)
    assert all(status in (200, 404) for status, _ in results), [r for r in results if r[0] not in (200, 404)]
    account_listing = results[-len(ids) - 2][1]
    shown = [item["media_id"] for entry in account_listing["data"] for item in entry.values()]
    assert len(shown) == len(set(shown)) <= len(ids)  # never a message twice, whatever was under way

    everywhere = Counter(
        [
            *await box_contents(api, source["id"]),
            *await box_contents(api, first["id"]),
            *await box_contents(api, second["id"]),
        ]
    )
    assert await box_contents(api, source["id"]) == []
    assert sum(everywhere.values()) == len(ids) and set(everywhere.values()) == {1}
    _status, all_messages = await api.get("/vmboxes/messages?paginate=false")
    assert len(all_messages["data"]) == len(ids)
