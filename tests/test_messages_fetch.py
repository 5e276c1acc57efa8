"""GET /vmboxes/{B}/messages/{M}: one read, Kazoo's shapes, retention, and the API document's folder rule.

Expectations: cb_vmboxes load_message, kvm_message:fetch, kvm_util enforce_retention.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Api, create_box
from message_support import DAY, gregorian_now, message_doc, new_message

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

RETENTION_MESSAGE = "this message is prior to retention policy, no update operation is permitted"


async def test_fetch_answers_the_metadata_only_with_transcription(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    metadata = await new_message(api, box["id"], caller_id_number="1001", caller_id_name="Bob")
    message_id = metadata["media_id"]
    doc = await message_doc(store, api.account.id, message_id)
    doc["transcription"] = {"result": "success", "text": "call me back"}
    await store.put_doc(naming.message_db(api.account.id, message_id), doc)

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 200
    assert body["data"] == {**metadata, "transcription": {"result": "success", "text": "call me back"}}
    assert "id" not in body["data"] and "revision" not in body


async def test_message_of_another_box_or_deleted_is_404_bad_identifier(api: Api) -> None:
    box = await create_box(api)
    other = await create_box(api, name="other", mailbox="3001")
    message_id = (await new_message(api, box["id"]))["media_id"]
    status, body = await api.get(f"/vmboxes/{other['id']}/messages/{message_id}")
    assert status == 404
    assert body["message"] == "bad_identifier"
    assert body["data"] == {"cause": message_id, "message": "bad identifier"}

    status, _ = await api.delete(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 200
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 404 and body["data"]["cause"] == message_id


@pytest.mark.parametrize(
    "message_id",
    ["not-a-message", "202401-XYZ", "202401-" + "0" * 31, "0" * 31, "209912-" + "a" * 32, "202413-" + "a" * 32],
)
async def test_ids_that_cannot_exist_are_404(api: Api, message_id: str) -> None:
    box = await create_box(api)
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 404
    assert body["data"]["cause"] == message_id


async def test_malformed_id_never_reaches_couchdb_and_a_good_one_costs_one_read(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = await create_box(api)
    message_id = (await new_message(api, box["id"]))["media_id"]
    touched: list[tuple[str, str]] = []
    real_get, real_view, real_all = store.get_doc, store.view, store.all_docs

    async def get_doc(db: str, doc_id: str, **params: Any) -> Any:
        touched.append((db, doc_id))
        return await real_get(db, doc_id, **params)

    async def view(db: str, *args: Any, **params: Any) -> Any:
        touched.append((db, "view"))
        return await real_view(db, *args, **params)

    async def all_docs(db: str, **params: Any) -> Any:
        touched.append((db, "all_docs"))
        return await real_all(db, **params)

    monkeypatch.setattr(store, "get_doc", get_doc)
    monkeypatch.setattr(store, "view", view)
    monkeypatch.setattr(store, "all_docs", all_docs)

    status, _ = await api.get(f"/vmboxes/{box['id']}/messages/..%2Fetc")
    assert status == 404
    status, _ = await api.post(f"/vmboxes/{box['id']}/messages/bogus", {"folder": "saved"})
    assert status == 404
    for method, path in (("DELETE", "bogus"), ("GET", "bogus/raw"), ("GET", f"202400-{'a' * 32}/raw")):
        status, _ = await api.request(method, f"/vmboxes/{box['id']}/messages/{path}")
        assert status == 404, (method, path)
    status, _ = await api.request(
        "PUT", f"/vmboxes/{box['id']}/messages/bogus/raw", body=b"ID3", headers={"Content-Type": "audio/mpeg"}
    )
    assert status == 404
    assert [call for call in touched if call[0] != naming.ACCOUNTS_DB] == []

    touched.clear()
    status, _ = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 200
    assert [call for call in touched if call[0] != naming.ACCOUNTS_DB] == [
        (naming.message_db(api.account.id, message_id), message_id)
    ]


async def test_unknown_legacy_id_is_404(api: Api) -> None:
    box = await create_box(api)
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{'a' * 32}")
    assert status == 404 and body["data"]["cause"] == "a" * 32


async def test_message_without_folder_is_answered_and_saved_as_new(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    message_id = (await new_message(api, box["id"]))["media_id"]
    db = naming.message_db(api.account.id, message_id)
    doc = await store.get_doc(db, message_id)
    del doc["metadata"]["folder"]
    await store.put_doc(db, doc)
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert "folder" not in listing["data"][0]

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 200 and body["data"]["folder"] == "new"
    stored = await store.get_doc(db, message_id)
    assert stored["metadata"]["folder"] == "new"
    assert len(stored["_attachments"]) == 1  # the audio survives the repair
    status, boxes = await api.get("/vmboxes")
    assert boxes["data"][0]["folders"] == {"new": 1, "saved": 0}


async def test_expired_message_is_shown_retention_enforced_and_refused_on_change(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    old = gregorian_now() - 100 * DAY
    message_id = (await new_message(api, box["id"], timestamp=old, folder="saved"))["media_id"]

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 200
    assert body["data"]["folder"] == "deleted"
    assert body["data"]["retention"] == "enforced"
    assert body["data"]["retention_message"] == RETENTION_MESSAGE
    stored = await message_doc(store, api.account.id, message_id)
    assert stored["metadata"]["folder"] == "saved"  # a fetch does not write

    for method in ("POST", "DELETE"):
        status, body = await api.request(method, f"/vmboxes/{box['id']}/messages/{message_id}", data={"folder": "new"})
        assert status == 400, method
        refusal = body["data"][message_id]["date_range"]
        assert refusal["message"] == "cannot make changes to messages prior to retention duration"
        assert abs(refusal["cause"] - (gregorian_now() - 93 * DAY - 3600)) < 120

    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert listing["data"] == []
