"""Legacy ids in the message API: unmigrated entries are listed, an operation on a legacy id migrates that
message first (the migrator's routine) and answers with the new id, and the old id keeps working afterwards."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

from aiohttp import ClientResponse
from helpers import Api, create_box
from migration_support import (
    CountingStore,
    InterruptibleStore,
    WritePlan,
    audio_for,
    box_entries,
    gregorian,
    legacy_entry,
    media_doc,
    migrated_messages,
    run_migration,
    save_all,
)

from kazoo_vm.config import Settings
from kazoo_vm.domain.legacy import ids as legacy_ids
from kazoo_vm.domain.messages import retention
from kazoo_vm.model import MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

DAY = 86_400
OLD_A = "a0" * 16
OLD_B = "b0" * 16
OLD_UNDATED = "c0" * 16
NO_AUDIO = "d0" * 16


async def legacy_messages(api: Api, store: CouchStore, box_id: str) -> dict[str, int]:
    """Give an API-created box a 3.x ``messages`` array (two dated entries, one undated whose media document
    dates it, one without audio) and the media documents; returns each legacy id's timestamp."""
    now = naming.now_gregorian()
    stamps = {OLD_A: now - 2 * DAY, OLD_B: now - 9 * DAY, OLD_UNDATED: now - 5 * DAY, NO_AUDIO: now - 3 * DAY}
    db = naming.account_db(api.account.id)
    box = await store.get_doc(db, box_id)
    box["messages"] = [
        legacy_entry(OLD_A, stamps[OLD_A], caller_id_number="2001"),
        legacy_entry(OLD_B, str(stamps[OLD_B]), folder="saved"),
        legacy_entry(OLD_UNDATED, None),
        legacy_entry(NO_AUDIO, stamps[NO_AUDIO]),
    ]
    await store.put_doc(db, box)
    await save_all(
        store,
        api.account.id,
        [
            media_doc(api.account.id, OLD_A, box_id, audio_for(OLD_A)),
            media_doc(api.account.id, OLD_B, box_id, audio_for(OLD_B)),
            media_doc(api.account.id, OLD_UNDATED, box_id, audio_for(OLD_UNDATED), pvt_modified=stamps[OLD_UNDATED]),
        ],
    )
    return stamps


def new_id(legacy_id: str, stamps: dict[str, int]) -> str:
    return naming.message_id(stamps[legacy_id], legacy_id)


async def raw(api: Api, method: str, path: str, **kwargs: Any) -> tuple[ClientResponse, bytes]:
    headers = {**api.account.headers, **kwargs.pop("headers", {})}
    response = await api.client.request(method, api.url(path), headers=headers, **kwargs)
    return response, await response.read()


async def test_listing_shows_unmigrated_entries_merged_in_time_order(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    status, created = await api.put(f"/vmboxes/{box['id']}/messages", {"timestamp": naming.now_gregorian() - 4 * DAY})
    assert status == 201, created
    modern = created["data"]["media_id"]

    status, body = await api.get(f"/vmboxes/{box['id']}/messages")

    assert status == 200, body
    assert [item["media_id"] for item in body["data"]] == [OLD_A, NO_AUDIO, modern, OLD_UNDATED, OLD_B]
    legacy_a = body["data"][0]
    assert legacy_a["timestamp"] == stamps[OLD_A] and legacy_a["caller_id_number"] == "2001"
    assert body["data"][4]["folder"] == "saved" and body["data"][4]["timestamp"] == stamps[OLD_B]
    # Listing migrates nothing.
    assert len(await box_entries(store, api.account.id, box["id"])) == 4


async def test_get_with_a_legacy_id_migrates_it_and_answers_with_the_new_id(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{OLD_A}")

    assert status == 200, body
    assert body["data"]["media_id"] == new_id(OLD_A, stamps)
    assert body["data"]["caller_id_number"] == "2001"
    found = await migrated_messages(store, api.account.id)
    assert [m.doc["_id"] for m in found[OLD_A]] == [new_id(OLD_A, stamps)]
    assert found[OLD_A][0].audio == audio_for(OLD_A)
    assert OLD_A not in [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])]


async def test_old_id_still_finds_the_message_once_migrated(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    await run_migration(store, api.account.id)
    assert [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])] == [NO_AUDIO]

    for legacy_id in (OLD_A, OLD_B, OLD_UNDATED):
        status, body = await api.get(f"/vmboxes/{box['id']}/messages/{legacy_id}")
        assert status == 200, body
        assert body["data"]["media_id"] == new_id(legacy_id, stamps)


async def test_raw_audio_of_a_legacy_id_is_the_legacy_audio(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])

    response, audio = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{OLD_B}/raw")

    assert response.status == 200
    assert audio == audio_for(OLD_B)
    assert response.headers["Content-Type"].startswith("audio/mpeg")


async def test_folder_change_with_a_legacy_id_acts_on_the_migrated_message(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{OLD_A}", {"folder": "saved"})

    assert status == 200, body
    assert body["data"]["media_id"] == new_id(OLD_A, stamps) and body["data"]["folder"] == "saved"
    (message,) = (await migrated_messages(store, api.account.id))[OLD_A]
    assert message.doc["metadata"]["folder"] == "saved"


async def test_delete_with_a_legacy_id_deletes_the_migrated_message(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    status, body = await api.delete(f"/vmboxes/{box['id']}/messages/{OLD_B}")

    assert status == 200, body
    assert body["data"]["media_id"] == new_id(OLD_B, stamps) and body["data"]["folder"] == "deleted"
    assert (await api.get(f"/vmboxes/{box['id']}/messages/{OLD_B}"))[0] == 404
    assert (await api.get(f"/vmboxes/{box['id']}/messages/{new_id(OLD_B, stamps)}"))[0] == 404
    assert OLD_B not in [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])]


async def test_replacing_audio_through_a_legacy_id(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    response, body = await raw(
        api,
        "PUT",
        f"/vmboxes/{box['id']}/messages/{OLD_UNDATED}/raw",
        data=b"ID3 replaced",
        headers={"Content-Type": "audio/mpeg"},
    )

    assert response.status == 201, body
    moved = new_id(OLD_UNDATED, stamps)
    assert json.loads(body)["data"]["media_id"] == moved
    response, audio = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{moved}/raw")
    assert response.status == 200 and audio == b"ID3 replaced"
    # A later migration run keeps the client's audio.
    await run_migration(store, api.account.id)
    (message,) = (await migrated_messages(store, api.account.id))[OLD_UNDATED]
    assert message.audio == b"ID3 replaced"


async def test_bulk_change_migrates_legacy_ids_and_answers_with_the_new_ids(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    status, body = await api.post(
        f"/vmboxes/{box['id']}/messages", {"messages": [OLD_A, OLD_B, "e0" * 16], "folder": "new"}
    )

    assert status == 200, body
    assert sorted(body["data"]["succeeded"]) == sorted([new_id(OLD_A, stamps), new_id(OLD_B, stamps)])
    assert body["data"]["failed"] == {"e0" * 16: "not_found"}
    found = await migrated_messages(store, api.account.id)
    assert found[OLD_B][0].doc["metadata"]["folder"] == "new"


async def test_bulk_delete_of_the_whole_box_includes_unmigrated_messages(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])

    status, body = await api.delete(f"/vmboxes/{box['id']}/messages")

    assert status == 200, body
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    # Only the entry without audio is left: it could not be migrated, so it could not be deleted either.
    assert [item["media_id"] for item in listing["data"]] == [NO_AUDIO]


async def test_the_same_legacy_id_requested_in_parallel_gives_one_message(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    answers = await asyncio.gather(*(api.get(f"/vmboxes/{box['id']}/messages/{OLD_A}") for _ in range(6)))

    assert {status for status, _ in answers} == {200}
    assert {body["data"]["media_id"] for _, body in answers} == {new_id(OLD_A, stamps)}
    found = await migrated_messages(store, api.account.id)
    assert len(found[OLD_A]) == 1


async def test_legacy_entry_without_audio_is_404_and_stays_listed_with_its_reason(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{NO_AUDIO}")

    assert status == 404, body
    entries = {e["media_id"]: e for e in await box_entries(store, api.account.id, box["id"])}
    assert entries[NO_AUDIO]["migration_error"] == "no_media"
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert NO_AUDIO in [item["media_id"] for item in listing["data"]]


async def test_legacy_id_through_another_box_is_404_and_not_migrated(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    other = await create_box(api, name="Other", mailbox="3001")
    await legacy_messages(api, store, box["id"])

    status, _ = await api.get(f"/vmboxes/{other['id']}/messages/{OLD_A}")

    assert status == 404
    assert OLD_A in [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])]
    assert await migrated_messages(store, api.account.id) == {}


async def test_box_listing_counts_unmigrated_entries(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])

    status, body = await api.get("/vmboxes")

    assert status == 200
    (listed,) = [item for item in body["data"] if item["id"] == box["id"]]
    assert listed["messages"] == 4
    # One migrated (folder new) plus three still legacy: Kazoo adds the array length to new + saved.
    assert (await api.get(f"/vmboxes/{box['id']}/messages/{OLD_A}"))[0] == 200
    status, body = await api.get("/vmboxes")
    (listed,) = [item for item in body["data"] if item["id"] == box["id"]]
    assert listed["messages"] == 4
    assert listed["folders"] == {"new": 1, "saved": 0}


async def test_old_id_finds_the_message_after_it_got_a_fresh_id_in_the_same_box(api: Api, store: CouchStore) -> None:
    """``pvt_previous_id`` is what the old id resolves through, not the ``YYYYMM-<old id>`` shape."""
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    await run_migration(store, api.account.id)
    migrated = (await migrated_messages(store, api.account.id))[OLD_A][0]
    fresh: MessageDoc = {**migrated.doc, "_id": naming.message_id(stamps[OLD_A])}
    fresh.pop("_rev")
    fresh.pop("_attachments")
    fresh["metadata"] = {**fresh["metadata"], "media_id": fresh["_id"]}
    await store.put_doc(migrated.db, fresh)
    await store.delete_doc(migrated.db, migrated.doc["_id"], migrated.doc["_rev"])

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{OLD_A}")

    assert status == 200, body
    assert body["data"]["media_id"] == fresh["_id"]


async def test_bulk_change_with_legacy_ids_acts_on_the_migrated_messages(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])

    status, body = await api.post(f"/vmboxes/{box['id']}/messages", {"messages": [OLD_A, OLD_B], "folder": "saved"})

    assert status == 200, body
    assert len(body["data"]["succeeded"]) == 2
    found = await migrated_messages(store, api.account.id)
    assert [found[legacy][0].doc["metadata"]["folder"] for legacy in (OLD_A, OLD_B)] == ["saved", "saved"]
    assert [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])] == [OLD_UNDATED, NO_AUDIO]


async def test_unknown_legacy_id_is_404_once_everything_is_migrated(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])
    await run_migration(store, api.account.id)

    status, _ = await api.get(f"/vmboxes/{box['id']}/messages/{'f0' * 16}")

    assert status == 404


async def test_old_id_of_a_recent_message_is_found_in_the_retention_months_without_all_dbs(
    api: Api, store: CouchStore, couch_url: str, settings: Settings
) -> None:
    """One view query per MODB of the retention window, by name, in parallel; no ``_all_dbs``."""
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    await run_migration(store, api.account.id)
    now = naming.now_gregorian()
    counting = CountingStore(couch_url)
    try:
        found = await legacy_ids.find_migrated(counting, settings, api.account.id, box["id"], OLD_B, now=now)
    finally:
        await counting.close()

    assert found == new_id(OLD_B, stamps)
    window = naming.months_between(naming.year_month(retention.cutoff(settings, now)), naming.year_month(now))
    assert len(counting.requests) == len(window)
    assert all("/_design/kazoo_vm_messages/_view/by_previous_id" in request for request in counting.requests)


async def test_old_id_of_a_message_older_than_retention_still_finds_it(
    api: Api, store: CouchStore, couch_url: str, settings: Settings
) -> None:
    """Most legacy messages are years old: their old ids keep working (answered retention-enforced, as their
    new ids are), found by the deterministic ``YYYYMM-<old id>`` in the account's older MODBs, also once the
    legacy media was purged. An id that never was a legacy message costs no more than the retention months."""
    box = await create_box(api)
    legacy_id = "7e" * 16
    timestamp = gregorian(2016, 5, 20)
    db = naming.account_db(api.account.id)
    doc = await store.get_doc(db, box["id"])
    doc["messages"] = [legacy_entry(legacy_id, timestamp)]
    await store.put_doc(db, doc)
    await save_all(store, api.account.id, [media_doc(api.account.id, legacy_id, box["id"], audio_for(legacy_id))])
    await run_migration(store, api.account.id, purge_legacy_media=True)

    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{legacy_id}")

    assert status == 200, body
    assert body["data"]["media_id"] == f"201605-{legacy_id}"
    assert body["data"]["retention"] == "enforced"
    counting = CountingStore(couch_url)
    try:
        assert (
            await legacy_ids.find_migrated(counting, settings, api.account.id, box["id"], legacy_id)
            == f"201605-{legacy_id}"
        )
        assert await legacy_ids.find_migrated(counting, settings, api.account.id, "otherbox", legacy_id) is None
        assert sum(request.startswith("GET /_all_dbs") for request in counting.requests) == 2
        counting.requests.clear()
        assert await legacy_ids.find_migrated(counting, settings, api.account.id, box["id"], "f1" * 16) is None
    finally:
        await counting.close()
    # The retention months' views (four or five MODBs), and one read of the account database.
    assert not any(request.startswith("GET /_all_dbs") for request in counting.requests)
    assert len(counting.requests) <= 6, counting.requests


async def walk(api: Api, path: str, query: str, page_size: int) -> list[list[str]]:
    """Every page of a listing, following next_start_key."""
    pages: list[list[str]] = []
    params = f"{query}page_size={page_size}"
    while True:
        status, body = await api.get(f"{path}?{params}")
        assert status == 200, body
        pages.append([item["media_id"] for item in body["data"]])
        assert len(pages[-1]) <= page_size
        if "next_start_key" not in body:
            return pages
        params = f"{query}page_size={page_size}&start_key={body['next_start_key']}"


async def interleaved_box(api: Api, store: CouchStore) -> tuple[str, dict[str, int]]:
    """A box whose legacy entries (odd days ago) and MODB messages (even days ago) alternate in time, with one
    legacy entry and one MODB message sharing a timestamp; returns each id's timestamp."""
    box = await create_box(api)
    now = naming.now_gregorian()
    stamps: dict[str, int] = {}
    entries = []
    for index, days in enumerate((1, 3, 5, 7, 9, 4)):
        legacy_id = f"ab{index:030x}"
        stamps[legacy_id] = now - days * DAY
        entries.append(legacy_entry(legacy_id, stamps[legacy_id]))
    db = naming.account_db(api.account.id)
    doc = await store.get_doc(db, box["id"])
    doc["messages"] = entries
    await store.put_doc(db, doc)
    for days in (2, 4, 6, 8):
        status, created = await api.put(f"/vmboxes/{box['id']}/messages", {"timestamp": now - days * DAY})
        assert status == 201, created
        stamps[created["data"]["media_id"]] = now - days * DAY
    return box["id"], stamps


async def test_paging_over_interleaved_legacy_and_modb_messages_shows_each_once_in_time_order(
    api: Api, store: CouchStore
) -> None:
    box_id, stamps = await interleaved_box(api, store)
    path = f"/vmboxes/{box_id}/messages"
    status, whole = await api.get(f"{path}?paginate=false")
    assert status == 200, whole
    newest_first = [item["media_id"] for item in whole["data"]]
    assert sorted(newest_first) == sorted(stamps)
    assert [stamps[i] for i in newest_first] == sorted(stamps.values(), reverse=True)

    for page_size in (1, 2, 3):
        for query, expected in (("", newest_first), ("ascending=true&", newest_first[::-1])):
            pages = await walk(api, path, query, page_size)
            assert [message_id for page in pages for message_id in page] == expected, (query, page_size)


async def test_next_start_key_stays_valid_when_legacy_messages_migrate_between_pages(
    api: Api, store: CouchStore
) -> None:
    """A client pages on while legacy messages it saw (or has yet to see) get migrated: nothing shows twice,
    nothing is skipped, the not-yet-shown one comes under its new id."""
    box_id, stamps = await interleaved_box(api, store)
    path = f"/vmboxes/{box_id}/messages"
    status, first = await api.get(f"{path}?page_size=3")
    assert status == 200, first
    shown = [item["media_id"] for item in first["data"]]
    later = [legacy_id for legacy_id in stamps if legacy_id.startswith("ab") and legacy_id not in shown]
    save = [media_doc(api.account.id, legacy_id, box_id, audio_for(legacy_id)) for legacy_id in (shown[0], later[-1])]
    await save_all(store, api.account.id, save)
    for legacy_id in (shown[0], later[-1]):
        assert (await api.get(f"{path}/{legacy_id}"))[0] == 200

    rest: list[str] = []
    query = f"page_size=3&start_key={first['next_start_key']}"
    while query:
        status, body = await api.get(f"{path}?{query}")
        assert status == 200, body
        rest += [item["media_id"] for item in body["data"]]
        query = f"page_size=3&start_key={body['next_start_key']}" if "next_start_key" in body else ""

    # Newest first; among equal timestamps by id, descending (CouchDB's order of equal keys, reversed).
    remaining = {
        (naming.message_id(stamps[i], i) if i == later[-1] else i): stamps[i] for i in stamps if i not in shown
    }
    expected = sorted(remaining, key=lambda i: (remaining[i], i), reverse=True)
    assert rest == expected


async def test_move_with_a_legacy_id_moves_the_migrated_message(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    other = await create_box(api, name="Other", mailbox="3001")
    await legacy_messages(api, store, box["id"])

    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{OLD_A}", {"source_id": other["id"]})

    assert status == 200, body
    moved = body["data"]
    assert moved["source_id"] == other["id"] and moved["history"] == [box["id"]]
    assert naming.is_message_id(moved["id"]) and moved["metadata"]["media_id"] == moved["id"]
    assert OLD_A not in [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])]
    assert (await api.get(f"/vmboxes/{box['id']}/messages/{OLD_A}"))[0] == 404
    response, audio = await raw(api, "GET", f"/vmboxes/{other['id']}/messages/{moved['id']}/raw")
    assert response.status == 200 and audio == audio_for(OLD_A)


async def test_bulk_move_and_copy_with_legacy_ids_answer_with_new_ids(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    other = await create_box(api, name="Other", mailbox="3001")
    stamps = await legacy_messages(api, store, box["id"])

    status, copied = await api.post(f"/vmboxes/{box['id']}/messages", {"messages": [OLD_A], "source_id": [other["id"]]})
    assert status == 200, copied
    status, moved = await api.post(
        f"/vmboxes/{box['id']}/messages", {"messages": [OLD_B, NO_AUDIO], "source_id": other["id"]}
    )
    assert status == 200, moved

    assert moved["data"]["failed"] == {NO_AUDIO: "not_found"}
    new_ids = [*copied["data"]["succeeded"], *moved["data"]["succeeded"]]
    assert len(new_ids) == 2 and all(naming.is_message_id(i) for i in new_ids)
    status, listing = await api.get(f"/vmboxes/{other['id']}/messages")
    assert sorted(item["media_id"] for item in listing["data"]) == sorted(new_ids)
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    # The copied original stays (migrated, new id); the moved one is gone; the rest is still legacy.
    assert [item["media_id"] for item in listing["data"]] == [new_id(OLD_A, stamps), NO_AUDIO, OLD_UNDATED]


async def test_bulk_delete_of_legacy_ids_answers_with_new_ids(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])

    status, body = await api.delete(f"/vmboxes/{box['id']}/messages", {"messages": [OLD_A, OLD_UNDATED]})

    assert status == 200, body
    assert sorted(body["data"]["succeeded"]) == sorted([new_id(OLD_A, stamps), new_id(OLD_UNDATED, stamps)])
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert [item["media_id"] for item in listing["data"]] == [NO_AUDIO, OLD_B]


async def test_zip_of_legacy_ids_holds_the_legacy_audio(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await legacy_messages(api, store, box["id"])

    response, body = await raw(
        api,
        "POST",
        f"/vmboxes/{box['id']}/messages/raw",
        json={"data": {"messages": [OLD_A, OLD_B]}},
        headers={"Accept": "application/zip"},
    )

    assert response.status == 200, body[:200]
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert sorted(archive.read(name) for name in archive.namelist()) == sorted([audio_for(OLD_A), audio_for(OLD_B)])
    assert [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])] == [OLD_UNDATED, NO_AUDIO]


async def test_box_changed_through_the_api_during_a_run_keeps_both_changes(
    api: Api, store: CouchStore, couch_url: str
) -> None:
    """A client edits the box (PATCH) and migrates one of its messages by old id while the migrator is about to
    write the box: the migrator's write loses the race, reads the box again, and nothing of the client's is lost."""
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    edits: list[int] = []

    async def client_acts_first(what: str, args: tuple[Any, ...]) -> None:
        if what == "put_doc" and args[1].get("_id") == box["id"] and not edits:
            status, body = await api.patch(f"/vmboxes/{box['id']}", {"name": "Renamed meanwhile"})
            edits.append(status)
            assert status == 200, body
            assert (await api.post(f"/vmboxes/{box['id']}/messages/{OLD_A}", {"folder": "saved"}))[0] == 200

    interruptible = InterruptibleStore(couch_url, WritePlan(before_write=client_acts_first))
    try:
        report = await run_migration(interruptible, api.account.id)
    finally:
        await interruptible.close()

    assert edits == [200]
    status, shown = await api.get(f"/vmboxes/{box['id']}")
    assert status == 200 and shown["data"]["name"] == "Renamed meanwhile"
    assert [e.get("media_id") for e in await box_entries(store, api.account.id, box["id"])] == [NO_AUDIO]
    found = await migrated_messages(store, api.account.id)
    assert {legacy: [m.doc["_id"] for m in docs] for legacy, docs in found.items()} == {
        legacy: [new_id(legacy, stamps)] for legacy in (OLD_A, OLD_B, OLD_UNDATED)
    }
    assert found[OLD_A][0].doc["metadata"]["folder"] == "saved"
    assert report.totals()["failed"] == 1


async def test_a_message_written_before_its_box_was_updated_is_listed_once(api: Api, store: CouchStore) -> None:
    """A run stopped between writing the documents and updating the box leaves the entries in the array: the
    listing shows each message once, under its new id."""
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    db = naming.account_db(api.account.id)
    entries = await box_entries(store, api.account.id, box["id"])
    await run_migration(store, api.account.id)
    doc = await store.get_doc(db, box["id"])
    doc["messages"] = entries  # as if the run had stopped before its box update
    await store.put_doc(db, doc)

    status, body = await api.get(f"/vmboxes/{box['id']}/messages")

    assert status == 200, body
    assert [item["media_id"] for item in body["data"]] == [
        new_id(OLD_A, stamps),
        NO_AUDIO,
        new_id(OLD_UNDATED, stamps),
        new_id(OLD_B, stamps),
    ]


async def test_delete_all_leaves_legacy_entries_older_than_retention_alone(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    stamps = await legacy_messages(api, store, box["id"])
    ancient = "e0" * 16
    old_stamp = naming.now_gregorian() - 400 * DAY
    db = naming.account_db(api.account.id)
    doc = await store.get_doc(db, box["id"])
    doc["messages"].append(legacy_entry(ancient, old_stamp))
    await store.put_doc(db, doc)
    await save_all(store, api.account.id, [media_doc(api.account.id, ancient, box["id"], audio_for(ancient))])

    status, body = await api.delete(f"/vmboxes/{box['id']}/messages")

    assert status == 200, body
    assert "failed" not in body["data"] or ancient not in json.dumps(body["data"]["failed"])
    assert set(body["data"]["succeeded"]) == {new_id(OLD_A, stamps), new_id(OLD_B, stamps), new_id(OLD_UNDATED, stamps)}
    left = [entry["media_id"] for entry in (await store.get_doc(db, box["id"]))["messages"]]
    assert ancient in left  # neither migrated nor deleted: out of the retention window, as in Kazoo
