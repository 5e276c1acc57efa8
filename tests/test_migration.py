"""The legacy migrator against the dev server: Kazoo's fixture box, awkward accounts, reruns, repairs, purge,
dry run, concurrent box writes."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from helpers import TestAccount
from migration_support import (
    FIXTURE_BOX,
    TIMEZONE,
    InterruptibleStore,
    WritePlan,
    audio_for,
    box_entries,
    existing_target,
    gregorian,
    legacy_box,
    legacy_entry,
    load_fixture_box,
    media_doc,
    migrated_messages,
    modbs_of,
    run_migration,
    save_all,
    seed_box,
    server_state,
)

from kazoo_vm.domain.legacy.documents import migrated_doc
from kazoo_vm.domain.legacy.entries import fallback_timestamp
from kazoo_vm.domain.legacy.outcomes import Status
from kazoo_vm.domain.legacy.routine import migrate_entries
from kazoo_vm.domain.messages.documents import new_message_doc
from kazoo_vm.migrate.driver import batches
from kazoo_vm.model import BoxDoc, Document, LegacyEntry
from kazoo_vm.storage import naming
from kazoo_vm.storage.boxes import as_box, read_box
from kazoo_vm.storage.couch import CouchStore

# Kazoo's fixture (kvm_migrate_account_tests): msg01-04 carry 2017-10 timestamps; msg05 and msg07 take the media
# document's pvt_modified (2017-10); msg06's media document has no pvt_ timestamps, so the box's pvt_modified
# (2017-09) is used; msg08 has no media document; two entries have no media_id.
FIXTURE_EXPECTED = {
    "vmbox01-msg01-should-migrate": "201710-vmbox01-msg01-should-migrate",
    "vmbox01-msg02-migrate-retries1": "201710-vmbox01-msg02-migrate-retries1",
    "vmbox01-msg03-migrate-retries2": "201710-vmbox01-msg03-migrate-retries2",
    "vmbox01-msg04-migrate-retries3": "201710-vmbox01-msg04-migrate-retries3",
    "vmbox01-msg05-private-media-timestamp": "201710-vmbox01-msg05-private-media-timestamp",
    "vmbox01-msg06-now_s": "201709-vmbox01-msg06-now_s",
    "vmbox01-msg07-private-media-timestamp": "201710-vmbox01-msg07-private-media-timestamp",
}


async def test_kazoo_fixture_box_migrates_to_expected_ids_and_audio(store: CouchStore, account: TestAccount) -> None:
    audio = await load_fixture_box(store, account.id)

    report = await run_migration(store, account.id)

    found = await migrated_messages(store, account.id)
    assert {legacy: [m.doc["_id"] for m in docs] for legacy, docs in found.items()} == {
        legacy: [new] for legacy, new in FIXTURE_EXPECTED.items()
    }
    for legacy, new_id in FIXTURE_EXPECTED.items():
        (message,) = found[legacy]
        assert message.db == naming.modb(account.id, int(new_id[:4]), int(new_id[4:6]))
        assert message.audio == audio[legacy]
    box_report = report.as_json()["accounts"][account.id]["boxes"][FIXTURE_BOX]
    assert box_report["migrated"] == FIXTURE_EXPECTED
    assert sorted((f["media_id"] or "", f["reason"]) for f in box_report["failed"]) == [
        ("", "no_media_id"),
        ("", "no_media_id"),
        ("vmbox01-msg08-no_private_media-box_timestamp", "no_media"),
    ]
    assert not report.ok


async def test_failed_fixture_entries_stay_in_the_box_with_their_reason(
    store: CouchStore, account: TestAccount
) -> None:
    await load_fixture_box(store, account.id)

    await run_migration(store, account.id)

    entries = await box_entries(store, account.id, FIXTURE_BOX)
    assert entries == [
        {"media_id": "vmbox01-msg08-no_private_media-box_timestamp", "timestamp": None, "migration_error": "no_media"},
        {"from": "15554443344@10.0.1.1", "migration_error": "no_media_id"},
        {"migration_error": "no_media_id"},
    ]


async def test_migrated_fixture_document_is_a_kazoo_4_message(store: CouchStore, account: TestAccount) -> None:
    await load_fixture_box(store, account.id)

    await run_migration(store, account.id)

    (message,) = (await migrated_messages(store, account.id))["vmbox01-msg01-should-migrate"]
    doc = message.doc
    assert doc["_id"] == doc["metadata"]["media_id"] == "201710-vmbox01-msg01-should-migrate"
    assert doc["pvt_type"] == "mailbox_message"
    assert doc["pvt_moved_to_modb"] == "true"
    assert doc["pvt_previous_id"] == "vmbox01-msg01-should-migrate"
    assert doc["pvt_account_id"] == account.id
    assert doc["pvt_account_db"] == naming.encode_db(message.db)
    assert doc["pvt_node"].startswith("kazoo_vm@") and len(doc["pvt_document_hash"]) == 32
    assert doc["source_id"] == FIXTURE_BOX and doc["source_type"] == "voicemail"
    assert doc["utc_seconds"] == doc["pvt_created"] == doc["pvt_modified"] == 63675605708
    assert doc["name"] == "mailbox 3367 message 2017-10-18 21:15:8"  # no box timezone: America/Los_Angeles
    assert doc["metadata"] == {
        "media_id": "201710-vmbox01-msg01-should-migrate",
        "call_id": "af671260365e0d9c5c6ef80dfa00cd47",
        "caller_id_name": "NO ONE",
        "caller_id_number": "15554443344",
        "folder": "new",
        "from": "15554443344@10.0.1.1",
        "from_user": "15554443344",
        "from_realm": "10.0.1.1",
        "length": 20520,
        "timestamp": 63675605708,
        "to": "1001@4a6863.sip.2600hz.local",
        "to_user": "1001",
        "to_realm": "4a6863.sip.2600hz.local",
    }
    assert doc["media_filename"] == "vmbox01-msg01-should-migrate.mp3"
    assert list(doc["_attachments"]) == ["vmbox01-msg01-should-migrate.mp3"]
    assert doc["_attachments"]["vmbox01-msg01-should-migrate.mp3"]["content_type"] == "audio/mpeg"
    assert "pvt_attachments" not in doc


async def test_entry_without_timestamp_gets_the_fallback_written_before_its_document(
    store: CouchStore, account: TestAccount
) -> None:
    await load_fixture_box(store, account.id)

    await run_migration(store, account.id)

    (msg06,) = (await migrated_messages(store, account.id))["vmbox01-msg06-now_s"]
    assert msg06.doc["metadata"]["timestamp"] == 63673774878  # the box's pvt_modified
    assert msg06.doc["metadata"]["folder"] == "saved"


def test_migrated_document_has_exactly_the_fields_of_a_new_kazoo_4_message() -> None:
    box: BoxDoc = {"_id": "b" * 32, "mailbox": "1001", "timezone": "Europe/Paris"}
    legacy_id = "0123456789abcdef0123456789abcdef"
    entry = legacy_entry(legacy_id, 63_800_000_000, folder="saved")
    doc = migrated_doc(
        account_id="a" * 32,
        box=box,
        legacy_id=legacy_id,
        entry=entry,
        timestamp=63_800_000_000,
        attachment_name=f"{legacy_id}.mp3",
        default_timezone=TIMEZONE,
        node="kazoo_vm@migrator",
    )
    fields = {key: value for key, value in entry.items() if key != "media_id"}
    reference = new_message_doc(
        account_id="a" * 32,
        box=box,
        message_id=doc["_id"],
        utc_seconds=63_800_000_000,
        metadata=fields,
        attachment_name=f"{legacy_id}.mp3",
        default_timezone=TIMEZONE,
        node="kazoo_vm@migrator",
    )
    assert doc == {**reference, "pvt_moved_to_modb": "true", "pvt_previous_id": legacy_id}


async def test_missing_modb_is_created_with_its_views(store: CouchStore, account: TestAccount) -> None:
    await load_fixture_box(store, account.id)

    await run_migration(store, account.id)

    october = naming.modb(account.id, 2017, 10)
    assert sorted(await modbs_of(store, account.id)) == [naming.modb(account.id, 2017, 9), october]
    rows = await store.view(
        october, "mailbox_messages", "listing_by_mailbox", startkey=[FIXTURE_BOX], endkey=[FIXTURE_BOX, {}]
    )
    assert sorted(row.value["media_id"] for row in rows) == sorted(
        v for v in FIXTURE_EXPECTED.values() if v.startswith("201710")
    )
    rows = await store.view(october, "kazoo_vm_messages", "by_previous_id", key="vmbox01-msg01-should-migrate")
    assert [row.id for row in rows] == ["201710-vmbox01-msg01-should-migrate"]


async def test_rerun_changes_nothing_and_duplicates_nothing(store: CouchStore, account: TestAccount) -> None:
    await load_fixture_box(store, account.id)
    await run_migration(store, account.id)
    before = await migrated_messages(store, account.id)
    box_before = await store.get_doc(naming.account_db(account.id), FIXTURE_BOX)

    report = await run_migration(store, account.id)

    after = await migrated_messages(store, account.id)
    assert {k: [(m.doc["_id"], m.doc["_rev"]) for m in v] for k, v in after.items()} == {
        k: [(m.doc["_id"], m.doc["_rev"]) for m in v] for k, v in before.items()
    }
    assert (await store.get_doc(naming.account_db(account.id), FIXTURE_BOX))["_rev"] == box_before["_rev"]
    assert report.totals()["migrated"] == 0 and report.totals()["failed"] == 3


async def test_awkward_account_migrates_every_recoverable_message_and_reports_the_rest(
    store: CouchStore, account: TestAccount
) -> None:
    """Entries spread over three months: dated, undated (media timestamps, then the box's), a media document that
    was deleted, one with no attachment, one missing, repeated entries, a numeric-string timestamp."""
    ids = {
        name: f"{index:032x}"
        for index, name in enumerate(
            [
                "march",
                "april",
                "may",
                "undated",
                "undated_bare",
                "deleted_media",
                "no_audio",
                "missing_media",
                "string_ts",
                "twice",
            ],
            1,
        )
    }
    march, april, may = gregorian(2016, 3, 31, 23), gregorian(2016, 4, 1, 0), gregorian(2016, 5, 20)
    entries = [
        legacy_entry(ids["march"], march),
        legacy_entry(ids["april"], april, folder="saved"),
        legacy_entry(ids["may"], may, folder="deleted"),
        legacy_entry(ids["undated"], "undefined"),
        legacy_entry(ids["undated_bare"]),
        legacy_entry(ids["deleted_media"], may),
        legacy_entry(ids["no_audio"], may),
        legacy_entry(ids["missing_media"], may),
        legacy_entry(ids["string_ts"], str(april)),
        legacy_entry(ids["twice"], march),
        legacy_entry(ids["twice"], march),
        legacy_entry(None, may),
    ]
    box = legacy_box(account.id, "legacybox", entries, pvt_modified=gregorian(2016, 2, 10))
    media = [
        media_doc(account.id, ids[name], "legacybox", audio_for(ids[name], 1000 + 100 * index))
        for index, name in enumerate(["march", "april", "may", "string_ts", "twice", "undated_bare"])
    ]
    media.append(
        media_doc(
            account.id, ids["undated"], "legacybox", audio_for(ids["undated"]), pvt_modified=may, pvt_created=march
        )
    )
    media.append(media_doc(account.id, ids["no_audio"], "legacybox", None))
    media.append(
        media_doc(account.id, ids["deleted_media"], "legacybox", audio_for(ids["deleted_media"]), pvt_deleted=True)
    )
    await save_all(store, account.id, [box, *media])
    # 3.22's delete_after_notify hard-deleted the media document: a tombstone.
    gone = await store.get_doc(naming.account_db(account.id), ids["deleted_media"])
    await store.delete_doc(naming.account_db(account.id), ids["deleted_media"], gone["_rev"])
    # A media document soft-deleted by 3.22's phone menu still has its audio: it migrates (Kazoo's link could not
    # read it).
    soft = media_doc(account.id, "f" * 32, "legacybox", audio_for("f" * 32), pvt_deleted=True)
    await save_all(store, account.id, [soft])
    box = await read_box(store, naming.account_db(account.id), "legacybox")
    box["messages"].append(legacy_entry("f" * 32, may, folder="deleted"))
    await store.put_doc(naming.account_db(account.id), box)

    report = await run_migration(store, account.id, batch_size=3)

    found = await migrated_messages(store, account.id)
    expected = {
        ids["march"]: f"201603-{ids['march']}",
        ids["april"]: f"201604-{ids['april']}",
        ids["may"]: f"201605-{ids['may']}",
        ids["undated"]: f"201605-{ids['undated']}",  # media pvt_modified
        ids["undated_bare"]: f"201602-{ids['undated_bare']}",  # the box's pvt_modified
        ids["string_ts"]: f"201604-{ids['string_ts']}",
        ids["twice"]: f"201603-{ids['twice']}",
        "f" * 32: f"201605-{'f' * 32}",
    }
    assert {legacy: [m.doc["_id"] for m in docs] for legacy, docs in found.items()} == {
        k: [v] for k, v in expected.items()
    }
    for legacy, docs in found.items():
        assert docs[0].audio == audio_for(legacy, len(docs[0].audio or b"")) and docs[0].audio
    assert found[ids["may"]][0].doc["metadata"]["folder"] == "deleted" and "pvt_deleted" not in found[ids["may"]][0].doc
    remaining = await box_entries(store, account.id, "legacybox")
    assert sorted((e.get("media_id", ""), e["migration_error"]) for e in remaining) == sorted(
        [
            (ids["deleted_media"], "media_deleted"),
            (ids["no_audio"], "no_audio"),
            (ids["missing_media"], "no_media"),
            ("", "no_media_id"),
        ]
    )
    totals = report.totals()
    assert (totals["migrated"], totals["failed"]) == (8, 4)


async def test_timestamps_no_month_can_hold_fall_back_as_missing_ones_do(
    store: CouchStore, account: TestAccount
) -> None:
    """Year 0, year 31690, and a Unix time written by mistake (year 46) name no MODB; Kazoo's fallback dates them."""
    recorded = gregorian(2016, 6, 6)
    odd = {"01" * 16: 5, "02" * 16: 10**12, "03" * 16: 1_480_000_000}
    box = legacy_box(account.id, "odd", [legacy_entry(legacy_id, timestamp) for legacy_id, timestamp in odd.items()])
    media = [media_doc(account.id, legacy_id, "odd", audio_for(legacy_id), pvt_modified=recorded) for legacy_id in odd]
    await save_all(store, account.id, [box, *media])

    report = await run_migration(store, account.id)

    assert report.ok
    found = await migrated_messages(store, account.id)
    assert {legacy: [m.doc["_id"] for m in docs] for legacy, docs in found.items()} == {
        legacy_id: [f"201606-{legacy_id}"] for legacy_id in odd
    }
    assert all(docs[0].doc["metadata"]["timestamp"] == recorded for docs in found.values())


def test_fallback_timestamp_follows_kazoos_order() -> None:
    """Media ``pvt_modified``, its ``pvt_created``, the box's ``pvt_modified``, its ``pvt_created``, then now
    (kvm_migrate_account get_timestamp; the box's through the keys Kazoo meant); unusable values skip."""
    t = [gregorian(2016, month) for month in range(1, 6)]
    media = {"pvt_modified": t[0], "pvt_created": t[1]}
    box: BoxDoc = {"pvt_modified": t[2], "pvt_created": t[3]}
    now = t[4]

    assert fallback_timestamp(media, box, now) == t[0]
    assert fallback_timestamp({"pvt_created": t[1]}, box, now) == t[1]
    assert fallback_timestamp({"pvt_modified": "undefined"}, box, now) == t[2]
    assert fallback_timestamp(None, {"pvt_created": t[3]}, now) == t[3]
    # The box's pvt_modified is year 0; "modified" is the key Kazoo's view reads by mistake.
    assert fallback_timestamp({}, as_box({"pvt_modified": 5, "modified": t[0]}), now) == now


async def test_entries_outside_the_batch_are_left_untouched(store: CouchStore, account: TestAccount) -> None:
    """Kazoo's update_message_array dropped every entry of the box not failed in *this* batch."""
    box = await seed_box(
        store, account.id, "partial", {f"{index:032x}": gregorian(2016, 3, index) for index in range(1, 5)}
    )
    entries = box["messages"]

    outcomes = await migrate_entries(
        store, account_id=account.id, box=box, entries=entries[:2], default_timezone=TIMEZONE
    )

    assert [o.status for o in outcomes] == [Status.MIGRATED, Status.MIGRATED]
    assert await box_entries(store, account.id, "partial") == entries[2:]


async def test_target_left_by_kazoos_own_migrator_gets_the_real_audio(store: CouchStore, account: TestAccount) -> None:
    """Kazoo's migrator wrote the document with a kz_att_link stub and (after its defect) kept the entry."""
    legacy_id = "ab" * 16
    box = await seed_box(store, account.id, "halfway", {legacy_id: gregorian(2016, 7, 4)})
    link = {"kz_att_link": {"att_dbname": naming.encode_db(naming.account_db(account.id)), "att_docid": legacy_id}}
    await existing_target(
        store,
        account.id,
        box,
        "c0ffee.mp3",
        pvt_attachments={"c0ffee.mp3": {"content_type": "audio/mpeg", "length": 0, "stub": False, "handler": link}},
    )
    modb = naming.modb(account.id, 2016, 7)

    report = await run_migration(store, account.id)

    (message,) = (await migrated_messages(store, account.id))[legacy_id]
    assert message.audio == audio_for(legacy_id)
    assert "pvt_attachments" not in message.doc
    assert message.doc["media_filename"] == f"{legacy_id}.mp3"
    assert report.totals()["migrated"] == 1
    assert await box_entries(store, account.id, "halfway") == []
    # The view the message API needs was installed into the MODB this run did not create.
    assert await store.view(modb, "kazoo_vm_messages", "by_previous_id", key=legacy_id)


async def test_target_with_a_damaged_copy_is_repaired(store: CouchStore, account: TestAccount) -> None:
    legacy_id = "cd" * 16
    box = await seed_box(store, account.id, "damaged", {legacy_id: gregorian(2016, 8, 1)})
    truncated = base64.b64encode(audio_for(legacy_id)[:100]).decode()
    await existing_target(
        store,
        account.id,
        box,
        f"{legacy_id}.mp3",
        _attachments={f"{legacy_id}.mp3": {"content_type": "audio/mpeg", "data": truncated}},
    )

    await run_migration(store, account.id)

    (message,) = (await migrated_messages(store, account.id))[legacy_id]
    assert message.audio == audio_for(legacy_id)


async def test_audio_replaced_by_a_client_is_never_overwritten(store: CouchStore, account: TestAccount) -> None:
    legacy_id = "ce" * 16
    box = await seed_box(store, account.id, "replaced", {legacy_id: gregorian(2016, 8, 2)})
    await existing_target(
        store,
        account.id,
        box,
        "upload.wav",
        _attachments={
            "upload.wav": {"content_type": "audio/wav", "data": base64.b64encode(b"RIFF new audio").decode()}
        },
    )

    report = await run_migration(store, account.id, purge_legacy_media=True)

    (message,) = (await migrated_messages(store, account.id))[legacy_id]
    assert message.audio == b"RIFF new audio"
    assert report.totals()["already_migrated"] == 1
    assert await box_entries(store, account.id, "replaced") == []
    # Its legacy audio was never copied, so it is not purged.
    assert (await store.get_doc(naming.account_db(account.id), legacy_id))["_id"] == legacy_id


async def test_unrelated_document_at_the_target_id_is_reported_and_the_entry_kept(
    store: CouchStore, account: TestAccount
) -> None:
    legacy_id = "ef" * 16
    box = await seed_box(store, account.id, "clash", {legacy_id: gregorian(2016, 9, 9)})
    (entry,) = box["messages"]
    modb = naming.modb(account.id, 2016, 9)
    await store.create_db(modb)
    await store.put_doc(modb, {"_id": f"201609-{legacy_id}", "pvt_type": "mailbox_message", "source_id": "other"})

    report = await run_migration(store, account.id)

    assert report.as_json()["accounts"][account.id]["boxes"]["clash"]["failed"] == [
        {"media_id": legacy_id, "reason": "id_conflict", "new_id": f"201609-{legacy_id}"}
    ]
    assert await box_entries(store, account.id, "clash") == [{**entry, "migration_error": "id_conflict"}]


async def test_purge_deletes_legacy_media_only_after_a_verified_copy(store: CouchStore, account: TestAccount) -> None:
    audio = await load_fixture_box(store, account.id)

    report = await run_migration(store, account.id, purge_legacy_media=True)

    assert report.totals()["purged"] == len(FIXTURE_EXPECTED)
    rows = await store.all_docs(naming.account_db(account.id), keys=list(audio))
    assert all(isinstance(row.value, dict) and row.value.get("deleted") for row in rows)
    found = await migrated_messages(store, account.id)
    assert all(found[legacy][0].audio == audio[legacy] for legacy in FIXTURE_EXPECTED)
    # A rerun with the media gone still recognises the verified copies.
    rerun = await run_migration(store, account.id, purge_legacy_media=True)
    assert rerun.totals()["failed"] == 3 and rerun.totals()["migrated"] == 0


async def test_a_copy_that_fails_verification_is_not_purged_and_its_entry_stays(
    couch_url: str, store: CouchStore, account: TestAccount
) -> None:
    """The audio is damaged on its way into CouchDB: the read-back check catches it, so the legacy media is
    kept and the entry stays (``audio_mismatch``); the next run repairs the copy, and only then purges."""
    legacy_id = "9c" * 16
    await seed_box(store, account.id, "garbled", {legacy_id: gregorian(2016, 10, 1)})

    async def garble(what: str, args: tuple[Any, ...]) -> None:
        if what == "bulk_docs":
            for doc in args[1]:
                for stub in (doc.get("_attachments") or {}).values():
                    stub["data"] = base64.b64encode(b"not the recording").decode()

    interruptible = InterruptibleStore(couch_url, WritePlan(before_write=garble))
    try:
        report = await run_migration(interruptible, account.id, purge_legacy_media=True)
    finally:
        await interruptible.close()

    assert report.as_json()["accounts"][account.id]["boxes"]["garbled"]["failed"] == [
        {"media_id": legacy_id, "reason": "audio_mismatch", "new_id": f"201610-{legacy_id}"}
    ]
    assert report.totals()["purged"] == 0
    assert (await store.get_doc(naming.account_db(account.id), legacy_id))["_id"] == legacy_id
    assert [e["migration_error"] for e in await box_entries(store, account.id, "garbled")] == ["audio_mismatch"]

    rerun = await run_migration(store, account.id, purge_legacy_media=True)

    assert rerun.ok and rerun.totals()["purged"] == 1
    (message,) = (await migrated_messages(store, account.id))[legacy_id]
    assert message.audio == audio_for(legacy_id)
    assert await box_entries(store, account.id, "garbled") == []


async def test_dry_run_writes_nothing_and_lists_the_plan(store: CouchStore, account: TestAccount) -> None:
    """Not a database, a document or a revision changes anywhere: not even the design documents a bare MODB lacks."""
    await load_fixture_box(store, account.id)
    september = naming.modb(account.id, 2017, 9)
    await store.create_db(september)  # made by someone else, without any design document
    before = await server_state(store, account.id)

    report = await run_migration(store, account.id, dry_run=True)

    assert await server_state(store, account.id) == before
    planned = report.as_json()["accounts"][account.id]["boxes"][FIXTURE_BOX]["planned"]
    assert {old: plan["new_id"] for old, plan in planned.items()} == FIXTURE_EXPECTED
    assert {old: plan["action"] for old, plan in planned.items()} == {
        old: "create" if new.startswith("201709") else "create_modb" for old, new in FIXTURE_EXPECTED.items()
    }
    assert report.totals()["failed"] == 3


async def test_box_written_concurrently_keeps_both_changes(
    couch_url: str, store: CouchStore, account: TestAccount
) -> None:
    """An API write lands between the migrator's read of the box and its write: the migrator retries from a
    fresh read, so the API's change survives and the migration still completes."""
    await load_fixture_box(store, account.id)
    db = naming.account_db(account.id)

    interferences: list[int] = []

    async def rename_box_first(what: str, args: tuple[Any, ...]) -> None:
        # The first three box writes of the migrator (its pin, then its final write, twice) each lose the race.
        if what == "put_doc" and args[1].get("_id") == FIXTURE_BOX and len(interferences) < 3:
            interferences.append(plan.writes)
            current = await store.get_doc(db, FIXTURE_BOX)
            current["name"] = f"renamed {len(interferences)}"
            current["messages"] = [*current["messages"], {"folder": "new", "note": f"added {len(interferences)}"}]
            await store.put_doc(db, current)

    plan = WritePlan(before_write=rename_box_first)
    interruptible = InterruptibleStore(couch_url, plan)
    try:
        report = await run_migration(interruptible, account.id)
    finally:
        await interruptible.close()

    box = await store.get_doc(db, FIXTURE_BOX)
    assert len(interferences) == 3
    assert box["name"] == "renamed 3"
    added = [{k: v for k, v in e.items() if k != "migration_error"} for e in box["messages"] if "note" in e]
    assert added == [{"folder": "new", "note": f"added {n}"} for n in (1, 2, 3)]
    assert not any(e.get("media_id") in FIXTURE_EXPECTED for e in box["messages"])
    assert report.totals()["migrated"] == len(FIXTURE_EXPECTED)


async def test_no_entry_is_dropped_across_batches_boxes_and_workers(
    couch_url: str, store: CouchStore, account: TestAccount
) -> None:
    """Kazoo's update_message_array rewrote a whole box from one batch's results and dropped what the batch had
    not failed. Here three boxes of one account, worked on by three workers in batches of two, have
    failures in every batch, and an entry arrives in each box while the run is under way: every entry that was
    not migrated is still there, exactly as it was, plus its migration_error when this run tried it."""
    docs: list[Document] = []
    failing: dict[str, dict[str, LegacyEntry]] = {}
    migratable: dict[str, str] = {}
    for box_index in range(3):
        box_id = f"many{box_index}"
        entries, failing[box_id] = [], {}
        for message_index in range(7):
            legacy_id = f"{box_index + 1:02x}{message_index:030x}"
            entry = legacy_entry(legacy_id, gregorian(2016, 1 + message_index % 3, 1 + box_index))
            entries.append(entry)
            if message_index % 2 == 1:  # a failure in each of the first three batches of two
                failing[box_id][legacy_id] = entry
            else:
                migratable[legacy_id] = naming.message_id(entry["timestamp"], legacy_id)
                docs.append(media_doc(account.id, legacy_id, box_id, audio_for(legacy_id, 400)))
        docs.append(legacy_box(account.id, box_id, entries))
    await save_all(store, account.id, docs)
    db = naming.account_db(account.id)
    arrivals: dict[str, LegacyEntry] = {}

    async def a_call_lands(what: str, args: tuple[Any, ...]) -> None:
        box_id = args[1].get("_id") if what == "put_doc" else None
        if box_id in failing and box_id not in arrivals:
            arrivals[box_id] = legacy_entry(f"{9:02x}{len(arrivals):030x}", gregorian(2016, 9, 9))
            current = await store.get_doc(db, box_id)
            current["messages"].append(arrivals[box_id])
            await store.put_doc(db, current)

    interruptible = InterruptibleStore(couch_url, WritePlan(before_write=a_call_lands))
    try:
        report = await run_migration(interruptible, account.id, batch_size=2, workers=3)
    finally:
        await interruptible.close()

    found = await migrated_messages(store, account.id)
    assert {legacy: [m.doc["_id"] for m in copies] for legacy, copies in found.items()} == {
        legacy: [new] for legacy, new in migratable.items()
    }
    assert sorted(arrivals) == sorted(failing)
    for box_id, failed_entries in failing.items():
        expected = [{**entry, "migration_error": "no_media"} for entry in failed_entries.values()] + [arrivals[box_id]]
        assert await box_entries(store, account.id, box_id) == expected
    assert report.totals()["failed"] == 9


@pytest.mark.parametrize("workers", [1, 4])
async def test_many_boxes_and_batches_are_all_migrated(store: CouchStore, account: TestAccount, workers: int) -> None:
    expected: dict[str, str] = {}
    for box_index in range(5):
        timestamps = {
            f"{box_index:02x}{index:030x}": gregorian(2016, 1 + index % 3, 1 + box_index) for index in range(7)
        }
        await seed_box(store, account.id, f"box{box_index}", timestamps, audio_size=500)
        expected.update({legacy_id: naming.message_id(ts, legacy_id) for legacy_id, ts in timestamps.items()})

    report = await run_migration(store, account.id, batch_size=3, workers=workers)

    found = await migrated_messages(store, account.id)
    assert {k: [m.doc["_id"] for m in v] for k, v in found.items()} == {k: [v] for k, v in expected.items()}
    assert report.ok and report.totals()["migrated"] == 35
    for box_index in range(5):
        assert await box_entries(store, account.id, f"box{box_index}") == []


async def test_media_shared_by_two_boxes_migrates_once_and_the_other_entry_is_reported(
    store: CouchStore, account: TestAccount
) -> None:
    legacy_id = "5a" * 16
    timestamp = gregorian(2016, 10, 10)
    await save_all(
        store,
        account.id,
        [
            legacy_box(account.id, "boxa", [legacy_entry(legacy_id, timestamp)]),
            legacy_box(account.id, "boxb", [legacy_entry(legacy_id, timestamp)]),
            media_doc(account.id, legacy_id, "boxa", audio_for(legacy_id)),
        ],
    )

    report = await run_migration(store, account.id, workers=1)

    (message,) = (await migrated_messages(store, account.id))[legacy_id]
    assert message.doc["source_id"] == "boxa"
    assert await box_entries(store, account.id, "boxa") == []
    assert [e["migration_error"] for e in await box_entries(store, account.id, "boxb")] == ["id_conflict"]
    assert report.totals()["failed"] == 1


async def test_message_name_uses_the_owners_timezone_when_the_box_has_none(
    store: CouchStore, account: TestAccount
) -> None:
    legacy_id = "6b" * 16
    owner = {"_id": "ownerparis", "pvt_type": "user", "timezone": "Europe/Paris"}
    await save_all(store, account.id, [owner])
    await seed_box(
        store, account.id, "owned", {legacy_id: gregorian(2016, 7, 14, 22)}, owner_id="ownerparis", timezone=None
    )

    await run_migration(store, account.id)

    (message,) = (await migrated_messages(store, account.id))[legacy_id]
    assert message.doc["name"] == "mailbox 1001 message 2016-07-15 0:0:0"


def test_batches_keep_array_order_with_repeats_and_unidentified_entries_in_the_first() -> None:
    entries = [
        legacy_entry("a"),
        legacy_entry("b"),
        legacy_entry(None),
        legacy_entry("c"),
        legacy_entry("a"),
        legacy_entry("d"),
    ]

    groups = batches(entries, 2)

    assert [[e.get("media_id") for e in group] for group in groups] == [["a", "b", "a", None], ["c", "d"]]


async def test_unknown_or_malformed_account_is_reported_as_an_error(store: CouchStore) -> None:
    report = await run_migration(store, "0" * 32)
    malformed = await run_migration(store, "not-an-account")

    assert report.as_json()["accounts"]["0" * 32]["errors"] == ["account not found"]
    assert malformed.as_json()["accounts"]["not-an-account"]["errors"] == ["not an account id"]
    assert not report.ok and not malformed.ok
