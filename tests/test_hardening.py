"""Hostile and unlucky input: every answer is a Kazoo-shaped 4xx, nothing is left behind, work is bounded, file
names name no path, and messages moved into a box being deleted are never stranded."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from helpers import Api, create_box
from message_support import message_doc, new_message, raw

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.auth.tokens import ADMINS_ONLY, KEY_DOC_ID
from kazoo_vm.config import Settings, load_settings
from kazoo_vm.model import MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import DocumentNotFound, StorageFault


async def box_ids(store: CouchStore, api: Api) -> list[str]:
    status, body = await api.get("/vmboxes")
    assert status == 200
    return [item["id"] for item in body["data"]]


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in an answer")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1" + "0" * 400])
async def test_non_finite_or_huge_numbers_are_a_400_that_leaves_nothing_behind(
    api: Api, store: CouchStore, number: str
) -> None:
    before = await box_ids(store, api)
    body = '{"data": {"name": "N", "mailbox": "3100", "pin": "1234", "media": {"x": NUMBER}}}'.replace("NUMBER", number)
    response, text = await raw(api, "PUT", "/vmboxes", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    answer = strict(text.decode())
    assert answer["error"] == "400" and "json" in answer["data"]
    assert await box_ids(store, api) == before
    with pytest.raises(DocumentNotFound):
        await store.get_doc(api.account.account.db, "vmbox_mailbox_3100")
    await create_box(api, mailbox="3100")


async def test_deep_nesting_in_a_body_a_multipart_part_or_a_start_key_is_a_400(api: Api) -> None:
    deep = "[" * 500 + "]" * 500
    status, body = await api.request(
        "PUT",
        "/vmboxes",
        body='{"data": {"name": "D", "x": DEEP}}'.replace("DEEP", deep),
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and "nested" in body["data"]["json"]["invalid"]["message"]
    very_deep = '{"data": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    status, body = await api.request("PUT", "/vmboxes", body=very_deep, headers={"Content-Type": "application/json"})
    assert status == 400
    box = await create_box(api, mailbox="3200")
    form = (
        "--b\r\nContent-Type: application/json\r\n\r\n"
        '{"data": {"x": ' + "[" * 2000 + "]" * 2000 + "}}\r\n--b\r\nContent-Type: audio/mpeg\r\n\r\nID3abc\r\n--b--\r\n"
    )
    status, body = await api.request(
        "PUT", f"/vmboxes/{box['id']}/messages", body=form, headers={"Content-Type": "multipart/mixed; boundary=b"}
    )
    assert status == 400 and "json" in body["data"]
    import base64

    key = base64.urlsafe_b64encode(("[" * 3000 + "]" * 3000).encode()).decode().rstrip("=")
    status, body = await api.get(f"/vmboxes/{box['id']}/messages?start_key={key}")
    assert status == 400 and body["data"]["start_key"]
    status, _ = await api.get("/vmboxes?start_key=" + key)
    assert status == 200
    status, _ = await api.get("/vmboxes?filter_name=" + "[" * 2000)
    assert status == 200


async def test_a_multipart_part_with_hundreds_of_header_lines_is_a_400(api: Api) -> None:
    box = await create_box(api, mailbox="3300")
    headers = "".join(f"X-Junk-{n}: {n}\r\n" for n in range(400))
    form = f"--b\r\n{headers}Content-Type: audio/mpeg\r\n\r\nID3abc\r\n--b--\r\n"
    status, body = await api.request(
        "PUT", f"/vmboxes/{box['id']}/messages", body=form, headers={"Content-Type": "multipart/mixed; boundary=b"}
    )
    assert status == 400 and "multipart" in body["data"]


@pytest.mark.parametrize(
    "query",
    [
        "created_to=1",
        "created_from=1",
        "created_to=99999999999999999",
        "created_from=99999999999999999&created_to=99999999999999999",
    ],
)
async def test_extreme_listing_timestamps_are_a_400(api: Api, query: str) -> None:
    box = await create_box(api, mailbox="3400")
    for path in (f"/vmboxes/{box['id']}/messages", "/vmboxes/messages"):
        status, body = await api.get(f"{path}?{query}")
        assert status == 400 and body["error"] == "400", body


async def test_extreme_start_key_timestamps_are_a_400(api: Api) -> None:
    import base64

    box = await create_box(api, mailbox="3500")
    for key in ([box["id"], 99999999999999999], [box["id"], -5], [202001, [box["id"], 10**16], None]):
        raw_key = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
        status, body = await api.get(f"/vmboxes/{box['id']}/messages?start_key={raw_key}")
        assert status == 400, body


async def test_a_failed_box_write_releases_its_claim(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = store.put_doc

    async def refusing(db: str, doc: dict[str, Any]) -> str:
        if doc.get("pvt_type") == "vmbox":
            raise StorageFault("refused", status=500, reason="refused")
        return await real_put(db, doc)

    monkeypatch.setattr(store, "put_doc", refusing)
    status, _ = await api.put("/vmboxes", {"name": "F", "mailbox": "3600"})
    assert status == 500
    monkeypatch.setattr(store, "put_doc", real_put)
    await create_box(api, mailbox="3600")


async def test_a_claim_whose_box_gave_up_the_number_in_couchdb_does_not_block_it(api: Api, store: CouchStore) -> None:
    db = api.account.account.db
    renumbered = await create_box(api, name="R", mailbox="3700")
    doc = await store.get_doc(db, renumbered["id"])
    doc["mailbox"] = "3701"
    await store.put_doc(db, doc)  # straight into CouchDB: the claim on 3700 stays behind
    await create_box(api, name="S", mailbox="3700")
    deleted = await create_box(api, name="T", mailbox="3702")
    gone = await store.get_doc(db, deleted["id"])
    await store.delete_doc(db, deleted["id"], gone["_rev"])
    await create_box(api, name="U", mailbox="3702")


async def test_bulk_lists_beyond_the_maximum_are_a_400(api: Api, settings: Settings) -> None:
    box = await create_box(api, mailbox="3800")
    too_many = [f"{n:032x}" for n in range(settings.max_bulk_messages + 1)]
    path = f"/vmboxes/{box['id']}/messages"
    for method, route in (("POST", path), ("DELETE", path), ("POST", path + "/raw")):
        status, body = await api.request(method, route, data={"messages": too_many, "folder": "saved"})
        assert status == 400 and "maxItems" in body["data"]["messages"], (method, route, body)


async def test_caller_ids_never_name_a_path_in_downloads_or_zip_entries(api: Api) -> None:
    box = await create_box(api, mailbox="3900")
    evil = ["../../../etc/evil", "..\\..\\win", "a/b", "x\x01y"]
    ids = [(await new_message(api, box["id"], caller_id_number=cid))["media_id"] for cid in evil]
    names = []
    for message_id in ids:
        response, _ = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message_id}/raw")
        assert response.status == 200
        names.append(response.headers["Content-Disposition"].split("filename=", 1)[1])
    response, body = await raw(
        api,
        "POST",
        f"/vmboxes/{box['id']}/messages/raw",
        json={"data": {"messages": ids}},
        headers={"Accept": "application/zip"},
    )
    assert response.status == 200
    names += zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert len(names) == 8
    for name in names:
        assert "/" not in name and "\\" not in name and ".." not in name, name
        assert not any(ord(ch) < 32 for ch in name), name


async def test_system_auth_admits_admins_only(client: TestClient[Any, Any], couch_url: str) -> None:
    store: CouchStore = client.app[appkeys.STORE]
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{couch_url}/{naming.SYSTEM_AUTH_DB}/_security") as response,
    ):
        assert await response.json() == ADMINS_ONLY
    assert await store.get_doc(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)


async def test_the_signing_key_can_come_from_a_file(aiohttp_client: Any, couch_url: str, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(pem)
    settings = load_settings({"KAZOO_VM_TOKEN_KEY_FILE": str(key_file)}, couch_url=couch_url, data_dir=tmp_path)
    assert settings.token_key_file == key_file
    first = await aiohttp_client(create_app(settings, sync_design_docs=False))
    second = await aiohttp_client(create_app(settings, sync_design_docs=False))
    token = first.app[appkeys.TOKENS].issue("a" * 32, None, "cb_api_auth")
    assert second.app[appkeys.TOKENS].verify(token).account_id == "a" * 32
    stored = await first.app[appkeys.STORE].get_doc(naming.SYSTEM_AUTH_DB, KEY_DOC_ID)
    assert stored["pvt_private_key_pem"].encode() != pem


async def test_a_cascade_delete_records_who_deleted(api: Api, store: CouchStore) -> None:
    box = await create_box(api, mailbox="4100")
    message = await new_message(api, box["id"])
    before = await message_doc(store, api.account.id, message["media_id"])
    before["pvt_auth_user_id"] = "c" * 32  # as if a user had created it
    await store.put_doc(naming.message_db(api.account.id, before["_id"]), before)
    status, _ = await api.delete(f"/vmboxes/{box['id']}", headers={"X-Request-Id": "the-deleting-request"})
    assert status == 200
    after = await message_doc(store, api.account.id, message["media_id"])
    assert after["pvt_deleted"] is True
    assert after["pvt_request_id"] == "the-deleting-request"
    assert after["pvt_auth_account_id"] == api.account.id
    assert "pvt_auth_user_id" not in after


@pytest.mark.parametrize("action", ["move", "copy"])
async def test_messages_moved_or_copied_into_a_box_being_deleted_are_never_stranded(
    api: Api, store: CouchStore, action: str
) -> None:
    source = await create_box(api, name="From", mailbox="4200")
    dest = await create_box(api, name="To", mailbox="4201")
    ids = [(await new_message(api, source["id"]))["media_id"] for _ in range(12)]
    data = {"source_id": dest["id"]} if action == "move" else {"source_id": [dest["id"]]}

    async def one(message_id: str) -> tuple[int, Any]:
        return await api.post(f"/vmboxes/{source['id']}/messages/{message_id}", data)

    async def delete_later() -> tuple[int, Any]:
        await asyncio.sleep(0.05)
        return await api.delete(f"/vmboxes/{dest['id']}")

    answers = await asyncio.gather(*(one(message_id) for message_id in ids), delete_later())
    assert answers[-1][0] == 200
    db_rows: list[MessageDoc] = []
    for status, body in answers[:-1]:
        assert status in (200, 404), body
        if status == 200:
            new_ids = [body["data"]["id"]] if action == "move" else body["data"].get("succeeded", [])
            for new_id in new_ids:
                db_rows.append(await message_doc(store, api.account.id, new_id))
    # Whatever the client was told was moved or copied into the box now exists, soft-deleted with the box.
    for doc in db_rows:
        assert doc["source_id"] == dest["id"] and doc.get("pvt_deleted") is True, doc
    # And no live message of the deleted box is left behind anywhere.
    month = naming.message_db(api.account.id, ids[0])
    all_rows = await store.all_docs(month, include_docs=True)
    stranded = [
        row.id
        for row in all_rows
        if row.doc and row.doc.get("source_id") == dest["id"] and not row.doc.get("pvt_deleted")
    ]
    assert stranded == []
