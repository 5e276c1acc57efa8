"""Crash safety: the migrator is killed at every single write it makes, either just after it (the write reached
CouchDB, the answer was lost) or instead of it (it never reached CouchDB), then run again.

At the moment of the crash no legacy message may be lost (each is still in its box's array or already in its MODB
with identical audio, never twice); after the rerun every migratable message exists exactly once with identical
audio and the box's array holds only the failures.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from migration_support import (
    Crash,
    InterruptibleStore,
    WritePlan,
    audio_for,
    box_entries,
    gregorian,
    legacy_box,
    legacy_entry,
    media_doc,
    migrated_messages,
    modbs_of,
    run_migration,
    save_all,
)

from kazoo_vm.domain import accounts
from kazoo_vm.domain.legacy.entries import media_id_of
from kazoo_vm.model import Document
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

BOX = "crashbox"
MIGRATABLE = {
    "a1" * 16: gregorian(2016, 3, 1),
    "a2" * 16: gregorian(2016, 3, 2),
    "b1" * 16: gregorian(2016, 4, 9),
    "c1" * 16: None,  # no timestamp: the media document's pvt_modified (2016-05), gone once purged
    "c2" * 16: None,  # no timestamp anywhere but the box's pvt_modified (2015-02)
    "d1" * 16: gregorian(2016, 4, 30),
}
MEDIA_MODIFIED = {"c1" * 16: gregorian(2016, 5, 5)}
FAILING = {"e1" * 16: "no_media"}  # and one entry without media_id
BOX_MODIFIED = gregorian(2015, 2, 1)


def expected_id(legacy_id: str) -> str:
    return naming.message_id(MIGRATABLE[legacy_id] or MEDIA_MODIFIED.get(legacy_id) or BOX_MODIFIED, legacy_id)


@dataclass
class Scenario:
    account_id: str


async def legacy_account(store: CouchStore) -> Scenario:
    account, _ = await accounts.create_account(store, name="crash test")
    entries = [legacy_entry(legacy_id, timestamp) for legacy_id, timestamp in MIGRATABLE.items()]
    entries[0]["migration_error"] = "no_modb"  # left by Kazoo's migrator: retried
    entries.insert(2, legacy_entry("e1" * 16, gregorian(2016, 3, 5)))
    entries.append(legacy_entry(None, gregorian(2016, 3, 5)))
    docs: list[Document] = [legacy_box(account.id, BOX, entries, pvt_modified=BOX_MODIFIED)]
    docs += [
        media_doc(
            account.id,
            legacy_id,
            BOX,
            audio_for(legacy_id, 700),
            **({"pvt_modified": MEDIA_MODIFIED[legacy_id]} if legacy_id in MEDIA_MODIFIED else {}),
        )
        for legacy_id in MIGRATABLE
    ]
    await save_all(store, account.id, docs)
    return Scenario(account_id=account.id)


async def assert_nothing_lost(store: CouchStore, scenario: Scenario, where: str) -> None:
    """Every legacy message is in the array, or in its MODB with identical audio; none is there twice."""
    in_box = {media_id_of(entry) for entry in await box_entries(store, scenario.account_id, BOX)}
    found = await migrated_messages(store, scenario.account_id)
    assert set(found) <= set(MIGRATABLE), where
    for legacy_id in MIGRATABLE:
        copies = found.get(legacy_id, [])
        assert len(copies) <= 1, f"{where}: {legacy_id} duplicated"
        for copy in copies:
            assert copy.doc["_id"] == expected_id(legacy_id), where
            assert copy.audio == audio_for(legacy_id, 700), f"{where}: {legacy_id} in its MODB without its audio"
        assert copies or legacy_id in in_box, f"{where}: {legacy_id} lost"
    for legacy_id in FAILING:
        assert legacy_id in in_box, f"{where}: failed entry {legacy_id} dropped"
    assert None in in_box, f"{where}: entry without media_id dropped"


async def assert_converged(store: CouchStore, scenario: Scenario, where: str) -> None:
    found = await migrated_messages(store, scenario.account_id)
    assert {k: [m.doc["_id"] for m in v] for k, v in found.items()} == {k: [expected_id(k)] for k in MIGRATABLE}, where
    for legacy_id, (copy,) in found.items():
        assert copy.audio == audio_for(legacy_id, 700), where
    remaining = await box_entries(store, scenario.account_id, BOX)
    assert sorted((media_id_of(e) or "", e.get("migration_error")) for e in remaining) == sorted(
        [("", "no_media_id"), *FAILING.items()]
    ), where
    for db in await modbs_of(store, scenario.account_id):
        for design in ("_design/mailbox_messages", "_design/kazoo_vm_messages"):
            assert (await store.get_doc(db, design))["_id"] == design, f"{where}: {db} lacks {design}"


async def run_interrupted(couch_url: str, scenario: Scenario, plan: WritePlan, **options: object) -> bool:
    """Run until the planned crash; True when it crashed (a run with fewer writes simply finishes)."""
    store = InterruptibleStore(couch_url, plan)
    try:
        await run_migration(store, scenario.account_id, batch_size=2, workers=1, **options)  # type: ignore[arg-type]
    except Crash:
        return True
    finally:
        await store.close()
    return False


# Every kind of write the migrator makes: MODB creation, its design documents, documents with their audio, the box
# (timestamp pinning and the final update), and the purge of legacy media. With --purge-legacy-media the run makes
# all of them, and a crash before the purge leaves what a run without it leaves, so that is the run tested.
WRITE_KINDS = {"create_modb", "design_docs", "messages", "box", "purge"}


@pytest.mark.parametrize("mode", ["after", "instead"], ids=["after-write", "instead-of-write"])
async def test_killed_at_any_write_a_rerun_converges_without_loss(couch_url: str, store: CouchStore, mode: str) -> None:
    rehearsal = WritePlan()
    clean = await legacy_account(store)
    assert not await run_interrupted(couch_url, clean, rehearsal, purge_legacy_media=True)
    await assert_converged(store, clean, "uninterrupted run")
    total = rehearsal.writes
    assert set(rehearsal.log) == WRITE_KINDS, rehearsal.log

    for crash_at in range(1, total + 1):
        where = f"crash {mode} write {crash_at}/{total} ({rehearsal.log[crash_at - 1]})"
        scenario = await legacy_account(store)
        plan = WritePlan(crash_at=crash_at, mode=mode)
        assert await run_interrupted(couch_url, scenario, plan, purge_legacy_media=True), where
        await assert_nothing_lost(store, scenario, where)

        report = await run_migration(store, scenario.account_id, batch_size=2, workers=1, purge_legacy_media=True)

        await assert_converged(store, scenario, where)
        assert report.totals()["failed"] == 2, where
        media = await store.all_docs(naming.account_db(scenario.account_id), keys=list(MIGRATABLE))
        assert all(isinstance(row.value, dict) and row.value.get("deleted") for row in media), where


async def test_killed_twice_in_a_row_still_converges(couch_url: str, store: CouchStore) -> None:
    scenario = await legacy_account(store)
    for crash_at, mode in ((3, "after"), (4, "instead")):
        assert await run_interrupted(couch_url, scenario, WritePlan(crash_at=crash_at, mode=mode))
        await assert_nothing_lost(store, scenario, f"crash {mode} write {crash_at}")

    await run_migration(store, scenario.account_id, batch_size=2, workers=1)

    await assert_converged(store, scenario, "after two crashes")
