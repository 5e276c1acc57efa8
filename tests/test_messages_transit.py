"""A move that crashed half-way (kazoo_vm.domain.messages.transit): whatever reads the message next finishes
the move, and no answer shows the message twice or loses it.

A move records its plan on the source, creates the target, then removes the source. The crash is simulated at
the two points where it leaves something behind: before the target is written (the source alone, with its
plan) and after (source and target both in CouchDB).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from helpers import Api, create_box
from message_support import fake_mp3, listed_ids, message_doc, put_message, raw

from kazoo_vm.domain.messages import transit
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, quote_name
from kazoo_vm.storage.errors import DocumentNotFound, StorageFault


@dataclass
class Crashed:
    source_box: str
    dest_box: str
    other_box: str
    message_id: str
    planned_id: str
    audio: bytes


async def crash_a_move(api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch, point: str) -> Crashed:
    source = await create_box(api, name="src", mailbox="100")
    dest = await create_box(api, name="dst", mailbox="200")
    other = await create_box(api, name="other", mailbox="300")
    audio = fake_mp3()
    status, body = await put_message(api, source["id"], {"caller_id_number": "42"}, audio)
    assert status == 201, body
    message_id = body["data"]["media_id"]

    async def crash(*args: Any) -> None:
        raise RuntimeError(f"the process died {point}")

    with monkeypatch.context() as patched:
        patched.setattr(transit, "_retire" if point == "after the target" else "put_new_message", crash)
        status, _ = await api.post(f"/vmboxes/{source['id']}/messages/{message_id}", {"source_id": dest["id"]})
    assert status == 500
    stored = await message_doc(store, api.account.id, message_id)
    planned = stored["pvt_move"]["id"]
    assert stored["metadata"]["media_id"] == planned  # what tells a listing row in transit from the others
    if point == "after the target":
        assert (await message_doc(store, api.account.id, planned))["source_id"] == dest["id"]
    else:
        with pytest.raises(DocumentNotFound):
            await message_doc(store, api.account.id, planned)
    return Crashed(source["id"], dest["id"], other["id"], message_id, planned, audio)


Reader = Callable[[Api, Crashed], Awaitable[None]]


async def source_listing(api: Api, crashed: Crashed) -> None:
    status, body = await api.get(f"/vmboxes/{crashed.source_box}/messages")
    assert status == 200 and body["data"] == [] and body["page_size"] == 0


async def account_listing(api: Api, crashed: Crashed) -> None:
    status, body = await api.get("/vmboxes/messages?paginate=false")
    shown = [item["media_id"] for entry in body["data"] for item in entry.values()]
    assert status == 200 and crashed.message_id not in shown and shown.count(crashed.planned_id) <= 1


async def box_counts(api: Api, crashed: Crashed) -> None:
    status, body = await api.get("/vmboxes")
    items = {item["id"]: item for item in body["data"]}
    assert status == 200
    assert items[crashed.source_box]["messages"] == 0
    assert items[crashed.dest_box]["messages"] == 1 and items[crashed.dest_box]["folders"] == {"new": 1, "saved": 0}


async def fetch(api: Api, crashed: Crashed) -> None:
    status, body = await api.get(f"/vmboxes/{crashed.source_box}/messages/{crashed.message_id}")
    assert status == 404 and body["data"]["cause"] == crashed.message_id


async def fetch_audio(api: Api, crashed: Crashed) -> None:
    status, _ = await api.get(f"/vmboxes/{crashed.source_box}/messages/{crashed.message_id}/raw")
    assert status == 404


async def folder_change(api: Api, crashed: Crashed) -> None:
    status, _ = await api.post(f"/vmboxes/{crashed.source_box}/messages/{crashed.message_id}", {"folder": "saved"})
    assert status == 404


async def bulk_delete(api: Api, crashed: Crashed) -> None:
    status, body = await api.delete(f"/vmboxes/{crashed.source_box}/messages", {"messages": [crashed.message_id]})
    assert status == 200 and body["data"] == {}


async def bulk_copy(api: Api, crashed: Crashed) -> None:
    path = f"/vmboxes/{crashed.source_box}/messages"
    status, body = await api.post(path, {"messages": [crashed.message_id], "source_id": [crashed.other_box]})
    assert status == 200 and body["data"] == {"failed": {crashed.message_id: "not_found"}}


async def zip_download(api: Api, crashed: Crashed) -> None:
    status, _ = await api.post(
        f"/vmboxes/{crashed.source_box}/messages/raw",
        {"messages": [crashed.message_id]},
        headers={"Accept": "application/zip"},
    )
    assert status == 404


async def the_same_move_again(api: Api, crashed: Crashed) -> None:
    path = f"/vmboxes/{crashed.source_box}/messages/{crashed.message_id}"
    status, body = await api.post(path, {"source_id": crashed.dest_box})
    assert status == 200 and body["data"]["id"] == crashed.planned_id


async def a_move_elsewhere(api: Api, crashed: Crashed) -> None:
    path = f"/vmboxes/{crashed.source_box}/messages/{crashed.message_id}"
    status, _ = await api.post(path, {"source_id": crashed.other_box})
    assert status == 404  # the recorded move wins: finished, not overridden


async def the_same_move_in_bulk(api: Api, crashed: Crashed) -> None:
    path = f"/vmboxes/{crashed.source_box}/messages"
    status, body = await api.post(path, {"messages": [crashed.message_id], "source_id": crashed.dest_box})
    assert status == 200 and body["data"] == {"succeeded": [crashed.planned_id]}


READERS: list[Reader] = [
    source_listing,
    account_listing,
    box_counts,
    fetch,
    fetch_audio,
    folder_change,
    bulk_delete,
    bulk_copy,
    zip_download,
    the_same_move_again,
    a_move_elsewhere,
    the_same_move_in_bulk,
]


@pytest.mark.parametrize("reader", READERS, ids=lambda reader: reader.__name__)
@pytest.mark.parametrize("point", ["before the target", "after the target"])
async def test_the_next_read_finishes_a_crashed_move(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch, point: str, reader: Reader
) -> None:
    crashed = await crash_a_move(api, store, monkeypatch, point)
    await reader(api, crashed)

    # The move is finished: the source is gone (a marker of the move), the target holds the message and its audio.
    with pytest.raises(DocumentNotFound):
        await message_doc(store, api.account.id, crashed.message_id)
    target = await message_doc(store, api.account.id, crashed.planned_id)
    assert "pvt_move" not in target and target["metadata"]["caller_id_number"] == "42"
    _, source_listing_body = await api.get(f"/vmboxes/{crashed.source_box}/messages")
    _, dest_listing = await api.get(f"/vmboxes/{crashed.dest_box}/messages")
    _, other_listing = await api.get(f"/vmboxes/{crashed.other_box}/messages")
    assert listed_ids(source_listing_body) == [] and listed_ids(other_listing) == []
    assert listed_ids(dest_listing) == [crashed.planned_id]
    response, audio = await raw(api, "GET", f"/vmboxes/{crashed.dest_box}/messages/{crashed.planned_id}/raw")
    assert response.status == 200 and audio == crashed.audio


async def test_a_listing_row_is_in_transit_only_when_its_media_id_names_another_document() -> None:
    assert transit.in_transit_row("202401-" + "a" * 32, {"media_id": "202402-" + "b" * 32})
    assert not transit.in_transit_row("202401-" + "a" * 32, {"media_id": "202401-" + "a" * 32})
    assert not transit.in_transit_row("202401-" + "a" * 32, {"timestamp": 1})  # no media_id: nothing to go by


async def test_a_zip_of_a_box_still_holding_a_crashed_move_skips_it(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = await crash_a_move(api, store, monkeypatch, "after the target")
    _status, body = await put_message(api, crashed.source_box, {"caller_id_number": "7"}, fake_mp3())
    kept = body["data"]["media_id"]
    response, data = await raw(
        api,
        "POST",
        f"/vmboxes/{crashed.source_box}/messages/raw",
        json={"data": {"messages": [crashed.message_id, kept]}},
        headers={"Accept": "application/zip"},
    )
    assert response.status == 200
    assert [name.split("_")[0] for name in zipfile.ZipFile(io.BytesIO(data)).namelist()] == ["7"]


async def test_a_move_that_cannot_be_finished_yet_does_not_break_listings(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = await crash_a_move(api, store, monkeypatch, "before the target")

    async def still_failing(*args: Any) -> None:
        raise StorageFault("CouchDB answered 500")

    with monkeypatch.context() as patched:
        patched.setattr(transit, "put_new_message", still_failing)
        status, body = await api.get(f"/vmboxes/{crashed.source_box}/messages")
        # Kept where it is, never lost; its media_id already names the id it will have once moved.
        assert status == 200 and listed_ids(body) == [crashed.planned_id]
        status, body = await api.get("/vmboxes")
        assert status == 200 and {item["id"]: item["messages"] for item in body["data"]}[crashed.dest_box] == 0

    status, body = await api.get(f"/vmboxes/{crashed.source_box}/messages")
    assert status == 200 and body["data"] == []
    _, dest_listing = await api.get(f"/vmboxes/{crashed.dest_box}/messages")
    assert listed_ids(dest_listing) == [crashed.planned_id]


async def test_a_moved_source_stays_gone_when_a_stale_revision_of_it_turns_up_later(
    api: Api, store: CouchStore, couch_url: str
) -> None:
    """On a cluster a node that was down can bring back, once restarted, a revision of the source that only it
    took (a write cut off as it died). Planted here as its replication would (``new_edits=false``), forked from the
    message's first revision: the moved source must not come back as a message beside its copy."""
    source = await create_box(api, name="src", mailbox="100")
    dest = await create_box(api, name="dst", mailbox="200")
    status, body = await put_message(api, source["id"], {"caller_id_number": "42"}, fake_mp3())
    assert status == 201, body
    message_id = body["data"]["media_id"]
    db = naming.message_db(api.account.id, message_id)
    first = await store.get_doc(db, message_id)
    status, moved = await api.post(f"/vmboxes/{source['id']}/messages/{message_id}", {"source_id": dest["id"]})
    assert status == 200, moved

    stale = {key: value for key, value in first.items() if key not in ("_rev", "_attachments")}
    stale["metadata"] = {**first["metadata"], "folder": "saved"}
    stale_hash = "f" * 32
    stale.update(_rev=f"2-{stale_hash}", _revisions={"start": 2, "ids": [stale_hash, first["_rev"].split("-", 1)[1]]})
    async with aiohttp.ClientSession() as http:
        url = f"{couch_url.rstrip('/')}/{quote_name(db)}/_bulk_docs"
        async with http.post(url, json={"docs": [stale], "new_edits": False}) as response:
            assert response.status == 201, await response.text()

    assert (await store.get_doc(db, message_id, conflicts=True))["_conflicts"] == [f"2-{stale_hash}"]
    with pytest.raises(DocumentNotFound):
        await message_doc(store, api.account.id, message_id)
    status, _ = await api.get(f"/vmboxes/{source['id']}/messages/{message_id}")
    assert status == 404
    _, source_listing = await api.get(f"/vmboxes/{source['id']}/messages")
    _, dest_listing = await api.get(f"/vmboxes/{dest['id']}/messages")
    assert listed_ids(source_listing) == [] and listed_ids(dest_listing) == [moved["data"]["id"]]
