"""Typed documents keep what they do not name: fields a client, Kazoo or a script stored on a box or a message
(kazoo_vm.model's shapes list only the keys kazoo_vm reads) go back to CouchDB and to clients unchanged through
every write kazoo_vm makes of the document."""

from __future__ import annotations

from typing import Any

from helpers import Api, create_box
from message_support import message_doc, new_message

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

CUSTOM: dict[str, Any] = {"x_crm_ticket": "T-1234", "x_routing": {"queue": "sales", "weights": [3, 1]}}
CUSTOM_METADATA: dict[str, Any] = {"x_transcript_vendor": "acme", "x_score": 0.75}


async def _with_custom_fields(store: CouchStore, account_id: str, message_id: str) -> None:
    db = naming.message_db(account_id, message_id)
    doc = await store.get_doc(db, message_id)
    doc.update(CUSTOM)
    doc["metadata"].update(CUSTOM_METADATA)
    await store.put_doc(db, doc)


def _assert_custom_fields_kept(doc: Any) -> None:
    for key, value in CUSTOM.items():
        assert doc[key] == value, key
    for key, value in CUSTOM_METADATA.items():
        assert doc["metadata"][key] == value, key


async def test_a_messages_unknown_fields_survive_a_folder_change_and_a_move(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="src", mailbox="100")
    other = await create_box(api, name="dst", mailbox="200")
    message_id = str((await new_message(api, box["id"]))["media_id"])
    await _with_custom_fields(store, api.account.id, message_id)

    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{message_id}", {"folder": "saved"})
    assert status == 200, body
    saved = await message_doc(store, api.account.id, message_id)
    assert saved["metadata"]["folder"] == "saved"
    _assert_custom_fields_kept(saved)
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{message_id}")
    assert status == 200, body
    for key, value in CUSTOM_METADATA.items():
        assert body["data"][key] == value, key

    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{message_id}", {"source_id": other["id"]})
    assert status == 200, body
    moved = await message_doc(store, api.account.id, body["data"]["id"])
    assert moved["source_id"] == other["id"]
    _assert_custom_fields_kept(moved)


async def test_a_boxs_unknown_fields_survive_a_patch_and_a_replace(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="kept", mailbox="300", **CUSTOM)
    db = naming.account_db(api.account.id)

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"name": "patched"})
    assert status == 200, body
    patched = await store.get_doc(db, box["id"])
    assert patched["name"] == "patched"
    for key, value in CUSTOM.items():
        assert patched[key] == value and body["data"][key] == value, key

    status, body = await api.post(f"/vmboxes/{box['id']}", {"name": "replaced", "mailbox": "300", **CUSTOM})
    assert status == 200, body
    replaced = await store.get_doc(db, box["id"])
    assert replaced["name"] == "replaced"
    for key, value in CUSTOM.items():
        assert replaced[key] == value and body["data"][key] == value, key
