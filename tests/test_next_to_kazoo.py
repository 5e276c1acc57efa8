"""Side by side with a Kazoo 4.3 node on one CouchDB: both writers see the same truth and neither rewrites the
other's documents behind its back.

The Kazoo node (``tests/kazoo_node.py``) writes through its own HTTP session what Kazoo writes: its design
documents as its loader stores them, boxes, callflow-recorded messages, renumberings and deletions. The checks go
through the API and through Kazoo's own view queries.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import Api, TestAccount, make_account
from kazoo_node import (
    KazooNode,
    current_modb,
    encoded_account_db,
    gregorian_now,
    kazoo_design_docs,
)
from message_support import fake_mp3, new_message, raw
from migration_support import FIXTURE_BOX, load_fixture_box, migrated_messages, run_migration

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.domain import accounts
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_design_docs

ACCOUNTS_DB = "accounts"
UNIQUE = {"mailbox": {"unique": {"message": "Invalid mailbox number or already exists"}}}


def class_of(db: str) -> str:
    db_class = naming.database_class(db)
    assert db_class is not None, db
    return db_class


async def our_design_docs_written(store: CouchStore, encoded_dbs: list[str]) -> int:
    """What bringing the design documents of these databases (named as in URLs) up to date writes."""
    written = 0
    for encoded in encoded_dbs:
        db = unquote(encoded)
        written += await ensure_design_docs(store, db, class_of(db))
    return written


@pytest.fixture
async def kazoo(couch_url: str) -> AsyncIterator[KazooNode]:
    node = KazooNode(couch_url)
    yield node
    await node.close()


async def create_box(api: Api, mailbox: str, **fields: Any) -> tuple[int, Any]:
    return await api.put("/vmboxes", {"name": f"box {mailbox}", "mailbox": mailbox, **fields})


async def all_design_revs(kazoo: KazooNode, dbs: list[str]) -> dict[tuple[str, str], str]:
    revs: dict[tuple[str, str], str] = {}
    for db in dbs:
        revs.update({(db, ddoc_id): rev for ddoc_id, rev in (await kazoo.design_revs(db)).items()})
    return revs


# Design documents


async def test_design_documents_a_kazoo_node_loaded_survive_restarts_of_the_service(
    aiohttp_client: Any, settings: Settings, kazoo: KazooNode, account: TestAccount, store: CouchStore
) -> None:
    account_db = encoded_account_db(account.id)
    modb = await kazoo.create_modb(account.id)
    await kazoo.refresh_views(ACCOUNTS_DB, "accounts")
    await kazoo.refresh_views(account_db, "account")
    dbs = [ACCOUNTS_DB, account_db, modb]
    await our_design_docs_written(store, dbs)  # our own design documents, which a Kazoo node never writes
    before = await all_design_revs(kazoo, dbs)
    assert (modb, "_design/mailbox_messages") in before and (account_db, "_design/attributes") in before

    for _ in range(3):
        app: web.Application = create_app(settings, sync_design_docs=True)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        restarted = client.app[appkeys.STORE]
        # What the start-up sync does to each database finds every design document current.
        assert await our_design_docs_written(restarted, dbs) == 0
        status, _ = await Api(client, account).get("/vmboxes")
        assert status == 200
        await client.close()
        assert await kazoo.refresh_views(account_db, "account") == 0  # and the Kazoo node has nothing to redo
        assert await kazoo.refresh_views(modb, "modb") == 0

    assert await all_design_revs(kazoo, dbs) == before


async def test_databases_the_service_creates_carry_kazoos_design_documents_in_kazoos_form(
    client: TestClient[Any, Any], store: CouchStore, kazoo: KazooNode
) -> None:
    created = await make_account(client, "Made By kazoo_vm")
    api = Api(client, created)
    status, box = await create_box(api, "4100")
    assert status == 201
    await new_message(api, box["data"]["id"])  # creates this month's MODB
    account_db = encoded_account_db(created.id)
    modb = current_modb(created.id)
    for db, db_class in ((ACCOUNTS_DB, "accounts"), (account_db, "account"), (modb, "modb")):
        for wanted in kazoo_design_docs(db_class):
            stored = await kazoo.get(db, wanted["_id"])
            assert stored is not None, (db, wanted["_id"])
            assert {key: value for key, value in stored.items() if key != "_rev"} == wanted
        assert await kazoo.refresh_views(db, db_class) == 0
    names = set(await kazoo.design_revs(account_db))
    assert {"_design/attributes", "_design/vmboxes", "_design/media", "_design/users"} <= names
    assert "_design/mailbox_messages" in await kazoo.design_revs(modb)
    assert "_design/accounts" in await kazoo.design_revs(ACCOUNTS_DB)


async def test_kazoos_view_queries_see_what_the_api_wrote(
    client: TestClient[Any, Any], api: Api, account: TestAccount, store: CouchStore, kazoo: KazooNode
) -> None:
    user = await accounts.create_user(store, account_id=account.id, username="owner", password="secret")
    status, box = await create_box(api, "4200", owner_id=user["_id"])
    assert status == 201
    box_id = box["data"]["id"]
    message = await new_message(api, box_id)
    account_db = encoded_account_db(account.id)

    # kvm_messages:count_by_owner and cb_vmboxes:check_uniqueness
    owned = await kazoo.view(account_db, "attributes", "owned", key=[user["_id"], "vmbox"])
    assert [row["value"] for row in owned] == [box_id]
    assert [row["id"] for row in await kazoo.view(account_db, "vmboxes", "listing_by_mailbox", key=4200)] == [box_id]
    assert [row["id"] for row in await kazoo.view(account_db, "users", "list_by_username", key="owner")] == [
        user["_id"]
    ]
    realm = account.account.realm
    by_realm = await kazoo.view(ACCOUNTS_DB, "accounts", "listing_by_realm", key=realm)
    assert [row["value"]["account_id"] for row in by_realm] == [account.id]
    listed = await kazoo.view(
        current_modb(account.id), "mailbox_messages", "listing_by_mailbox", startkey=[box_id], endkey=[box_id, {}]
    )
    assert [row["value"]["media_id"] for row in listed] == [message["media_id"]]
    assert listed[0]["value"]["folder"] == "new"


# Mailbox numbers: vmboxes/listing_by_mailbox is the truth


async def test_a_number_a_kazoo_node_gave_a_box_is_taken(api: Api, account: TestAccount, kazoo: KazooNode) -> None:
    await kazoo.save_box(account.id, "3001")
    status, body = await create_box(api, "3001")
    assert status == 400 and body["data"] == UNIQUE


async def test_a_box_renumbered_by_a_kazoo_node_frees_its_old_number_at_once_and_holds_the_new(
    api: Api, account: TestAccount, kazoo: KazooNode
) -> None:
    status, box = await create_box(api, "4300")
    assert status == 201
    await kazoo.update(encoded_account_db(account.id), box["data"]["id"], mailbox="4301")
    status, body = await create_box(api, "4301")
    assert status == 400 and body["data"] == UNIQUE
    status, other = await create_box(api, "4300")  # the claim this service took for 4300 does not block it
    assert status == 201, other
    status, body = await api.patch(f"/vmboxes/{box['data']['id']}", {"mailbox": "4300"})
    assert status == 400 and body["data"] == UNIQUE


async def test_a_box_deleted_by_a_kazoo_node_frees_its_number(api: Api, account: TestAccount, kazoo: KazooNode) -> None:
    account_db = encoded_account_db(account.id)
    status, soft = await create_box(api, "4400")
    assert status == 201
    status, hard = await create_box(api, "4401")
    assert status == 201
    await kazoo.update(account_db, soft["data"]["id"], pvt_deleted=True)
    await kazoo.delete(account_db, hard["data"]["id"])
    for number in ("4400", "4401"):
        status, body = await create_box(api, number)
        assert status == 201, body
        rows = await kazoo.view(account_db, "vmboxes", "listing_by_mailbox", key=int(number))
        assert [row["id"] for row in rows] == [body["data"]["id"]]


# Messages recorded by Kazoo's callflow


async def kazoo_box(api: Api, mailbox: str) -> str:
    status, box = await create_box(api, mailbox)
    assert status == 201
    box_id: str = box["data"]["id"]
    return box_id


@pytest.mark.parametrize("linked", [False, True], ids=["attachment", "kz_att_link"])
async def test_a_message_kazoos_callflow_recorded_works_with_every_endpoint(
    api: Api, account: TestAccount, kazoo: KazooNode, linked: bool
) -> None:
    source = (await kazoo.save_box(account.id, "4500"))["_id"]
    other, third = await kazoo_box(api, "4501"), await kazoo_box(api, "4502")
    audio = fake_mp3()
    link = "vm-media-0000000000000000000000001" if linked else None
    message = await kazoo.record_message(account.id, source, audio, link_to=link)
    message_id = message["_id"]
    base = f"/vmboxes/{source}/messages"

    status, body = await api.get(base)
    assert status == 200 and [item["media_id"] for item in body["data"]] == [message_id]
    status, body = await api.get(f"{base}/{message_id}")
    assert status == 200 and body["data"]["media_id"] == message_id
    response, played = await raw(api, "GET", f"{base}/{message_id}/raw")
    assert response.status == 200 and played == audio
    response, zipped = await raw(
        api, "POST", f"{base}/raw", json={"data": {"messages": [message_id]}}, headers={"Accept": "application/zip"}
    )
    assert response.status == 200
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        assert [archive.read(name) for name in archive.namelist()] == [audio]

    status, body = await api.post(f"{base}/{message_id}", {"folder": "saved"})
    assert status == 200, body
    status, body = await api.post(f"{base}/{message_id}", {"source_id": [third]})
    assert status == 200 and len(body["data"]["succeeded"]) == 1, body
    copy_id = body["data"]["succeeded"][0]
    status, body = await api.post(f"{base}/{message_id}", {"source_id": other})
    assert status == 200, body
    moved_id = body["data"]["id"]
    response, played = await raw(api, "GET", f"/vmboxes/{other}/messages/{moved_id}/raw")
    assert response.status == 200 and played == audio

    modb = current_modb(account.id)
    listed = await kazoo.view(modb, "mailbox_messages", "listing_by_mailbox", startkey=[other], endkey=[other, {}])
    assert [row["id"] for row in listed] == [moved_id]
    copied = await kazoo.view(modb, "mailbox_messages", "listing_by_mailbox", startkey=[third], endkey=[third, {}])
    assert [row["id"] for row in copied] == [copy_id]
    response, played = await raw(api, "GET", f"/vmboxes/{third}/messages/{copy_id}/raw")
    assert response.status == 200 and played == audio
    assert (
        await kazoo.view(modb, "mailbox_messages", "listing_by_mailbox", startkey=[source], endkey=[source, {}]) == []
    )


async def test_a_message_the_service_writes_is_one_kazoos_callflow_plays(
    api: Api, account: TestAccount, kazoo: KazooNode
) -> None:
    """kvm_message / kz_media_file read the message document: its type, box, metadata.media_id and the one
    attachment ``media_filename`` names."""
    box = await kazoo_box(api, "4600")
    message = await new_message(api, box)
    doc = await kazoo.get(current_modb(account.id), message["media_id"])
    assert doc is not None
    assert doc["pvt_type"] == "mailbox_message" and doc["source_id"] == box
    assert doc["metadata"]["media_id"] == doc["_id"]
    attachments = doc["_attachments"]
    assert list(attachments) == [doc["media_filename"]]
    assert attachments[doc["media_filename"]]["content_type"] == "audio/mpeg"
    assert doc["pvt_account_db"] == current_modb(account.id)
    assert doc["pvt_created"] <= gregorian_now()


async def test_message_counts_agree_between_the_api_and_kazoos_views(
    api: Api, account: TestAccount, kazoo: KazooNode
) -> None:
    """kvm_messages:count/2 sums one count_per_box_folder query per folder: a message without a folder is listed
    but counted in no folder, by Kazoo and by the service alike."""
    box = await kazoo_box(api, "4700")
    await kazoo.record_message(account.id, box, fake_mp3())
    await new_message(api, box)
    await new_message(api, box, folder="saved")
    modb = current_modb(account.id)
    by_folder = {
        folder: len(
            await kazoo.view(
                modb, "mailbox_messages", "count_per_box_folder", startkey=[box, folder], endkey=[box, folder, {}]
            )
        )
        for folder in ("new", "saved")
    }
    assert by_folder == {"new": 1, "saved": 1}
    status, listing = await api.get("/vmboxes")
    assert status == 200
    assert next(item for item in listing["data"] if item["id"] == box)["messages"] == sum(by_folder.values())
    status, messages = await api.get(f"/vmboxes/{box}/messages")
    listed = await kazoo.view(modb, "mailbox_messages", "listing_by_mailbox", startkey=[box], endkey=[box, {}])
    assert sorted(item["media_id"] for item in messages["data"]) == sorted(row["id"] for row in listed)
    assert len(listed) == 3


async def test_the_migrator_migrates_a_box_kazoo_recorded_into_and_leaves_those_messages_alone(
    api: Api, account: TestAccount, store: CouchStore, kazoo: KazooNode
) -> None:
    """Kazoo's legacy fixture box (a 3.x messages array) that a 4.3 node has recorded into since its upgrade."""
    await load_fixture_box(store, account.id)
    recorded = await kazoo.record_message(account.id, FIXTURE_BOX, fake_mp3())
    await run_migration(store, account.id)
    modb = current_modb(account.id)
    after = await kazoo.get(modb, recorded["_id"])
    assert after is not None and after["_rev"] == recorded["_rev"]
    migrated = await migrated_messages(store, account.id)
    assert migrated  # the legacy entries were migrated around it
    status, body = await api.get(f"/vmboxes/{FIXTURE_BOX}/messages?paginate=false")
    assert status == 200 and recorded["_id"] in [item["media_id"] for item in body["data"]]
    listed = await kazoo.view(
        modb, "mailbox_messages", "listing_by_mailbox", startkey=[FIXTURE_BOX], endkey=[FIXTURE_BOX, {}]
    )
    assert recorded["_id"] in [row["id"] for row in listed]


def test_the_kazoo_node_reads_kazoos_own_files() -> None:
    assert {doc["_id"] for doc in kazoo_design_docs("account")} == {
        "_design/attributes",
        "_design/media",
        "_design/users",
        "_design/vmboxes",
    }
    assert all("kazoo" not in doc for doc in kazoo_design_docs("modb"))
    assert naming.ACCOUNTS_DB == ACCOUNTS_DB
