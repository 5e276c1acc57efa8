"""Folder changes and deletes, one message or many (cb_vmboxes post/4, delete/4;
kvm_message:change_folder)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from helpers import Api, create_box
from message_support import (
    DAY,
    gregorian_now,
    listed_ids,
    message_doc,
    new_message,
    raw,
)

from kazoo_vm.model import Document, JsonDict
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import Conflict


async def test_post_changes_the_folder_and_defaults_to_saved(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    message = await new_message(api, box["id"])
    path = f"/vmboxes/{box['id']}/messages/{message['media_id']}"

    status, body = await api.post(path, {})
    assert status == 200 and body["data"] == {**message, "folder": "saved"}
    status, body = await api.post(path, {"folder": "new"})
    assert body["data"]["folder"] == "new"
    status, body = await api.post(f"{path}?folder=deleted", {})
    assert body["data"]["folder"] == "deleted"
    doc = await message_doc(store, api.account.id, message["media_id"])
    assert doc["metadata"]["folder"] == "deleted" and "pvt_deleted" not in doc  # the trash, not a delete
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert listed_ids(listing) == [message["media_id"]]
    status, body = await api.post(path, {"folder": "archive"})
    assert body["data"]["folder"] == "saved"
    # The folder may also sit in the envelope beside data (cb_context req_value: data, query string, envelope).
    status, body = await api.request("POST", path, json={"data": {}, "folder": "new"})
    assert status == 200 and body["data"]["folder"] == "new"
    status, body = await api.request(
        "POST", f"{path}?folder=saved", json={"data": {"folder": "deleted"}, "folder": "new"}
    )
    assert body["data"]["folder"] == "deleted"  # data wins over the query string and the envelope
    assert len(doc["_attachments"]) == 1
    _, audio = await raw(api, "GET", f"{path}/raw")
    assert audio.startswith(b"ID3")


async def test_delete_is_a_soft_delete_and_the_message_disappears(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    message = await new_message(api, box["id"])
    path = f"/vmboxes/{box['id']}/messages/{message['media_id']}"
    status, body = await api.delete(path)
    assert status == 200 and body["data"] == {**message, "folder": "deleted"}
    doc = await message_doc(store, api.account.id, message["media_id"])
    assert doc["pvt_deleted"] is True and doc["metadata"]["folder"] == "deleted"
    assert (await api.get(path))[0] == 404
    assert (await api.delete(path))[0] == 404
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert listing["data"] == []


async def test_bulk_folder_change_reports_succeeded_and_failed_as_objects(api: Api) -> None:
    box = await create_box(api)
    other = await create_box(api, name="other", mailbox="3001")
    mine = [(await new_message(api, box["id"]))["media_id"] for _ in range(3)]
    theirs = (await new_message(api, other["id"]))["media_id"]
    missing = "202001-" + "0" * 32
    status, body = await api.post(
        f"/vmboxes/{box['id']}/messages", {"messages": [*mine, theirs, missing, "junk"], "folder": "saved"}
    )
    assert status == 200
    assert sorted(body["data"]["succeeded"]) == sorted(mine)
    assert body["data"]["failed"] == {theirs: "not_found", missing: "not_found", "junk": "not_found"}
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert {item["folder"] for item in listing["data"]} == {"saved"}
    status, listing = await api.get(f"/vmboxes/{other['id']}/messages")
    assert listing["data"][0]["folder"] == "new"

    status, body = await api.post(f"/vmboxes/{box['id']}/messages", {"messages": mine[:1]})
    assert body["data"] == {"succeeded": mine[:1]}  # folder defaults to saved (already saved: nothing to write)


async def test_bulk_post_needs_messages_an_existing_box_and_a_non_empty_source(api: Api) -> None:
    box = await create_box(api)
    message = await new_message(api, box["id"])
    path = f"/vmboxes/{box['id']}/messages"
    cases: list[JsonDict] = [{}, {"messages": []}, {"messages": "x"}]
    for data in cases:
        status, body = await api.post(path, data)
        assert status == 400
        assert body["data"] == {"messages": {"required": {"message": "No array of message ids are specified"}}}
    status, body = await api.post(f"/vmboxes/{'e' * 32}/messages", {"messages": [message["media_id"]]})
    assert status == 404
    for source in ("", [], [""]):
        status, body = await api.post(path, {"messages": [message["media_id"]], "source_id": source})
        assert status == 400
        assert body["data"]["source_id"]["required"]["message"] == (
            "empty source_id is specified. please set a single or a list of source_ids."
        )
    status, body = await api.post(path, {"messages": [message["media_id"]], "source_id": ["f" * 32]})
    assert status == 404 and body["data"]["cause"] == "f" * 32


async def test_bulk_change_refuses_expired_messages_and_saves_them_enforced(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    old = await new_message(api, box["id"], timestamp=gregorian_now() - 120 * DAY)
    fresh = await new_message(api, box["id"])
    _status, body = await api.post(
        f"/vmboxes/{box['id']}/messages", {"messages": [old["media_id"], fresh["media_id"]], "folder": "saved"}
    )
    assert body["data"] == {
        "succeeded": [fresh["media_id"]],
        "failed": {old["media_id"]: "prior_to_retention_duration"},
    }
    doc = await message_doc(store, api.account.id, old["media_id"])
    assert doc["metadata"]["folder"] == "deleted" and doc["metadata"]["retention"] == "enforced"


async def test_bulk_delete_by_ids_folder_or_all_only_in_this_box(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    other = await create_box(api, name="other", mailbox="3001")
    a, b, c, d = [(await new_message(api, box["id"]))["media_id"] for _ in range(4)]
    theirs = (await new_message(api, other["id"]))["media_id"]
    path = f"/vmboxes/{box['id']}/messages"
    await api.post(path, {"messages": [c, d], "folder": "saved"})

    status, body = await api.delete(path, {"messages": [a, theirs, "202001-" + "1" * 32]})
    assert status == 200 and body["data"] == {"succeeded": [a]}  # unknown ids are left out silently, as Kazoo
    status, body = await api.delete(f"{path}?folder=saved")
    assert sorted(body["data"]["succeeded"]) == sorted([c, d])
    status, body = await api.delete(path, {"messages": []})
    assert body["data"] == {}
    status, body = await api.delete(f"{path}?folder=archive")
    assert status == 400 and "enum" in body["data"]["folder"]
    status, body = await api.delete(path)
    assert body["data"] == {"succeeded": [b]}
    status, body = await api.delete(path)
    assert body["data"] == {}
    # "all" is Kazoo's word for every folder (get_folder_filter's default).
    e, f = [(await new_message(api, box["id"], folder=folder))["media_id"] for folder in ("new", "deleted")]
    status, body = await api.delete(f"{path}?folder=all")
    assert status == 200 and sorted(body["data"]["succeeded"]) == sorted([e, f])

    for message_id in (a, b, c, d, e, f):
        assert (await message_doc(store, api.account.id, message_id))["pvt_deleted"] is True
    status, listing = await api.get(f"/vmboxes/{other['id']}/messages")
    assert listed_ids(listing) == [theirs]


async def test_deleting_a_box_soft_deletes_its_messages(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    ids = [(await new_message(api, box["id"]))["media_id"] for _ in range(3)]
    status, _ = await api.delete(f"/vmboxes/{box['id']}")
    assert status == 200
    for message_id in ids:
        doc = await message_doc(store, api.account.id, message_id)
        assert doc["pvt_deleted"] is True and doc["metadata"]["folder"] == "deleted"
    status, body = await api.get("/vmboxes/messages")
    assert body["data"] == []


async def test_parallel_folder_changes_lose_nothing(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    ids = [(await new_message(api, box["id"]))["media_id"] for _ in range(4)]
    path = f"/vmboxes/{box['id']}/messages"
    requests = [api.post(f"{path}/{message_id}", {"folder": "saved"}) for message_id in ids]
    requests += [api.post(path, {"messages": ids, "folder": "saved"}) for _ in range(3)]
    requests += [api.post(f"{path}/{ids[0]}", {"folder": "saved"}) for _ in range(3)]
    results = await asyncio.gather(*requests)
    assert all(status == 200 for status, _ in results), results
    for _status, body in results[len(ids) : len(ids) + 3]:
        assert sorted(body["data"]["succeeded"]) == sorted(ids)
    _status, listing = await api.get(f"{path}?paginate=false")
    assert sorted(listed_ids(listing)) == sorted(ids)
    assert {item["folder"] for item in listing["data"]} == {"saved"}
    for message_id in ids:
        doc = await message_doc(store, api.account.id, message_id)
        assert len(doc["_attachments"]) == 1
    db = naming.message_db(api.account.id, ids[0])
    assert (await store.get_doc(db, ids[0]))["metadata"]["media_id"] == ids[0]


class RefusedYetTaken:
    """Writes of soft deletes go through, then answer as CouchDB can while a node fails: refused (409), although
    a copy took the write."""

    def __init__(self, store: CouchStore) -> None:
        self.store = store
        self.put_doc, self.bulk_docs = store.put_doc, store.bulk_docs
        self.refused = 0

    async def put(self, db: str, doc: Document) -> str:
        rev = await self.put_doc(db, doc)
        if doc.get("pvt_deleted") and not self.refused:
            self.refused += 1
            doc["_rev"] = rev  # the caller re-reads anyway
            raise Conflict("Document update conflict.", status=409)
        return rev

    async def bulk(self, db: str, docs: Sequence[Document]) -> list[JsonDict]:
        answers = await self.bulk_docs(db, docs)
        if any(doc.get("pvt_deleted") for doc in docs) and not self.refused:
            self.refused += 1
            return [
                {"id": answer["id"], "error": "conflict", "reason": "Document update conflict."} for answer in answers
            ]
        return answers


async def test_a_delete_refused_by_couchdb_although_a_copy_took_it_answers_200(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = await create_box(api)
    message = await new_message(api, box["id"])
    path = f"/vmboxes/{box['id']}/messages/{message['media_id']}"
    couch = RefusedYetTaken(store)
    monkeypatch.setattr(store, "put_doc", couch.put)

    status, body = await api.delete(path)
    assert couch.refused == 1
    assert status == 200 and body["data"] == {**message, "folder": "deleted"}
    doc = await message_doc(store, api.account.id, message["media_id"])
    assert doc["pvt_deleted"] is True and doc["_rev"].startswith("2-")  # written once
    assert (await api.delete(path))[0] == 404


async def test_a_bulk_delete_refused_by_couchdb_although_a_copy_took_it_reports_the_messages_deleted(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = await create_box(api)
    ids = [(await new_message(api, box["id"]))["media_id"] for _ in range(2)]
    couch = RefusedYetTaken(store)
    monkeypatch.setattr(store, "bulk_docs", couch.bulk)

    status, body = await api.delete(f"/vmboxes/{box['id']}/messages", {"messages": ids})
    assert couch.refused == 1
    assert status == 200 and sorted(body["data"]["succeeded"]) == sorted(ids) and "failed" not in body["data"]
    for message_id in ids:
        doc = await message_doc(store, api.account.id, message_id)
        assert doc["pvt_deleted"] is True and doc["_rev"].startswith("2-")
