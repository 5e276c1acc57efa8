"""``kazoo-vm doctor``: each problem planted in a real server, reported, repaired by ``--fix``, and gone after.

The module runs against its own fresh development server, so that what other tests leave behind (legacy boxes,
claims, moves in flight) is not counted here. Every test leaves that server healthy.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Api, create_box
from message_support import new_message
from migration_support import legacy_box, legacy_entry

from kazoo_vm import cli, devserver
from kazoo_vm.config import Settings, load_settings
from kazoo_vm.doctor.checks import MOVE_GRACE_S, Level, Report, diagnose
from kazoo_vm.domain.vmboxes import CLAIM_TYPE
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import naming, server
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import design_docs, ensure_database
from kazoo_vm.storage.errors import DocumentNotFound
from kazoo_vm.storage.messages import MOVED_TYPE


@pytest.fixture(scope="module")
def doctor_couch() -> Iterator[str]:
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    bundled = devserver.start(port=0, data_dir=None, cache_dir=cache)
    try:
        yield bundled.url
    finally:
        bundled.stop()


@pytest.fixture
def settings(doctor_couch: str, tmp_path: Path) -> Settings:
    return load_settings({}, couch_url=doctor_couch, data_dir=tmp_path)


def only(report: Report, check: str, level: Level) -> list[str]:
    """The messages of ``check``'s findings at ``level``."""
    return [finding.message for finding in report.of(check) if finding.level is level]


async def assert_healthy(store: CouchStore, settings: Settings) -> Report:
    report = await diagnose(store, settings)
    assert report.ok, report.render()
    return report


async def test_a_healthy_server_passes_every_check(store: CouchStore, settings: Settings, api: Api) -> None:
    box = await create_box(api, name="Healthy", mailbox="3100")
    await new_message(api, box["id"])
    report = await assert_healthy(store, settings)
    assert only(report, "server", Level.OK)[0].startswith("CouchDB 3.")
    assert only(report, "credentials", Level.OK) == [
        only(report, "credentials", Level.OK)[0],
        "may create databases",
    ]
    assert "may list _all_dbs" in only(report, "credentials", Level.OK)[0]
    for check in ("design_docs", "claims", "moves", "legacy", "system_auth"):
        assert only(report, check, Level.OK), (check, report.render())
    assert only(report, "cluster", Level.INFO)  # the development server has no cluster API
    assert "0 problem(s)" in report.render()


async def test_missing_and_changed_design_documents_are_reported_with_the_rebuild_and_fixed(
    store: CouchStore, settings: Settings, api: Api
) -> None:
    box = await create_box(api, name="Designs", mailbox="3200")
    message = await new_message(api, box["id"])
    modb = naming.message_db(api.account.id, message["media_id"])
    account_db = naming.account_db(api.account.id)
    gone = await store.get_doc(modb, "_design/mailbox_messages")
    await store.delete_doc(modb, gone["_id"], gone["_rev"])
    changed = await store.get_doc(account_db, "_design/vmboxes")
    # A view we query that means something else (an extra view alone would not count: Kazoo's nodes add some).
    listing = next(iter(changed["views"]))
    changed["views"][listing] = {"map": "function(doc) { emit(doc.colour, null); }"}
    await store.put_doc(account_db, changed)

    report = await diagnose(store, settings)
    assert not report.ok
    [finding] = report.of("design_docs")
    assert finding.level is Level.PROBLEM
    assert "2 design document(s) missing or out of date in 2 database(s)" in finding.message
    assert "a sync rebuilds 2 index(es)" in finding.message
    assert f"{modb}: _design/mailbox_messages (missing)" in finding.details
    assert f"{account_db}: _design/vmboxes (changed)" in finding.details

    fixed = await diagnose(store, settings, fix=True)
    assert fixed.ok, fixed.render()
    assert fixed.of("design_docs")[0].fixed == "wrote 2 design document(s)", fixed.render()
    assert "FIXED" in fixed.render()
    wanted = {doc["_id"]: doc for doc in design_docs("account")}
    assert (await store.get_doc(account_db, "_design/vmboxes"))["views"] == wanted["_design/vmboxes"]["views"]
    await store.get_doc(modb, "_design/mailbox_messages")
    await assert_healthy(store, settings)


async def test_an_orphaned_mailbox_claim_is_reported_and_deleted_but_a_claim_being_saved_is_not(
    store: CouchStore, settings: Settings, api: Api
) -> None:
    account_db = naming.account_db(api.account.id)
    box = await create_box(api, name="Claimed", mailbox="3300")
    doc = await store.get_doc(account_db, box["id"])
    await store.delete_doc(account_db, doc["_id"], doc["_rev"])  # deleted behind the service's back
    # A claim whose box is being saved right now (no box yet, claimed a moment ago) is held, not orphaned.
    pending: JsonDict = {
        "_id": "vmbox_mailbox_3301",
        "vmbox_id": "not-saved-yet",
        "mailbox": 3301,
        "pvt_type": CLAIM_TYPE,
        "pvt_created": naming.now_gregorian(),
    }
    await store.put_doc(account_db, pending)

    report = await diagnose(store, settings)
    [finding] = report.of("claims")
    assert finding.level is Level.PROBLEM and finding.message.startswith("1 orphaned mailbox claim")
    assert finding.details == [f"{account_db}: mailbox 3300 (box {box['id']})"]

    fixed = await diagnose(store, settings, fix=True)
    assert fixed.ok and fixed.of("claims")[0].fixed == "deleted 1"
    with pytest.raises(DocumentNotFound):
        await store.get_doc(account_db, "vmbox_mailbox_3300")
    assert (await store.get_doc(account_db, "vmbox_mailbox_3301"))["vmbox_id"] == "not-saved-yet"
    await store.delete_doc(account_db, pending["_id"], pending["_rev"])
    await assert_healthy(store, settings)


async def test_a_half_finished_move_is_reported_and_finished_but_a_move_under_way_is_not(
    store: CouchStore, settings: Settings, api: Api
) -> None:
    source = await create_box(api, name="From", mailbox="3400")
    dest = await create_box(api, name="To", mailbox="3401")
    stuck = await new_message(api, source["id"])
    recent = await new_message(api, source["id"])
    now = naming.now_gregorian()
    plans = {}
    for message, at in ((stuck, now - MOVE_GRACE_S - 60), (recent, now)):
        doc = await store.get_doc(naming.message_db(api.account.id, message["media_id"]), message["media_id"])
        plan = {"id": naming.message_id(now), "vmbox_id": dest["id"], "from_vmbox_id": source["id"], "at": at}
        doc["pvt_move"] = plan
        doc["metadata"]["media_id"] = plan["id"]
        await store.put_doc(naming.message_db(api.account.id, doc["_id"]), doc)
        plans[message["media_id"]] = plan

    report = await diagnose(store, settings)
    [finding] = report.of("moves")
    assert finding.level is Level.PROBLEM and finding.message == "1 half-finished move(s) of messages"
    target = plans[stuck["media_id"]]["id"]
    assert finding.details[0].endswith(f"{stuck['media_id']} → box {dest['id']}")

    fixed = await diagnose(store, settings, fix=True)
    assert fixed.of("moves")[0].fixed == "finished 1"
    status, body = await api.get(f"/vmboxes/{dest['id']}/messages")
    assert status == 200
    assert target in [item["media_id"] for item in body["data"]]
    moved = await store.get_doc(naming.message_db(api.account.id, target), target)
    assert moved["source_id"] == dest["id"] and "pvt_move" not in moved
    retired = await store.get_doc(naming.message_db(api.account.id, stuck["media_id"]), stuck["media_id"])
    assert retired["pvt_type"] == MOVED_TYPE and retired["pvt_moved_to"]["id"] == target
    # The move under way was left to its request; the next listing finishes it, as the service always does.
    assert (await api.get(f"/vmboxes/{source['id']}/messages"))[0] == 200
    await assert_healthy(store, settings)


async def test_legacy_messages_left_to_migrate_are_a_warning_that_points_at_migrate(
    store: CouchStore, settings: Settings, api: Api
) -> None:
    account_db = naming.account_db(api.account.id)
    box = legacy_box(api.account.id, "legacybox1", [legacy_entry("a" * 32), legacy_entry("b" * 32)], mailbox="3500")
    await store.put_doc(account_db, box)

    report = await diagnose(store, settings)
    [finding] = report.of("legacy")
    assert finding.level is Level.WARNING
    assert finding.message.startswith("2 legacy message(s) in 1 box(es) left to migrate")
    assert "kazoo-vm migrate" in finding.message
    assert report.ok  # a warning, not a failure: the API serves legacy messages until they are migrated
    await store.delete_doc(account_db, box["_id"], box["_rev"])
    await assert_healthy(store, settings)


async def test_a_system_auth_open_to_everyone_is_reported_and_restricted_to_admins(
    store: CouchStore, settings: Settings, api: Api
) -> None:
    await server.put_security(store, naming.SYSTEM_AUTH_DB, {"admins": {}, "members": {}})
    report = await diagnose(store, settings)
    [finding] = report.of("system_auth")
    assert finding.level is Level.PROBLEM and "signing key" in finding.message

    fixed = await diagnose(store, settings, fix=True)
    assert fixed.of("system_auth")[0].fixed == "_security now admits server admins only"
    security = await server.security(store, naming.SYSTEM_AUTH_DB)
    assert security["members"] == {"roles": ["_admin"]}
    assert security["admins"]["roles"] == ["_admin"]
    await assert_healthy(store, settings)


def test_the_command_exits_non_zero_on_problems_and_fix_says_what_it_did(
    doctor_couch: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def plant() -> None:
        store = CouchStore(doctor_couch)
        try:
            await ensure_database(store, naming.ACCOUNTS_DB, "accounts")
            doc = await store.get_doc(naming.ACCOUNTS_DB, "_design/kazoo_vm_accounts")
            await store.delete_doc(naming.ACCOUNTS_DB, doc["_id"], doc["_rev"])
        finally:
            await store.close()

    asyncio.run(plant())
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", doctor_couch)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM" in out and "accounts: _design/kazoo_vm_accounts (missing)" in out
    assert "--fix" in out
    assert cli.main(["doctor", "--fix"]) == 0
    out = capsys.readouterr().out
    assert "FIXED" in out and "wrote 1 design document(s)" in out
    assert cli.main(["doctor"]) == 0
    assert "1 problem(s)" not in capsys.readouterr().out


def test_an_unreachable_couchdb_is_a_problem_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", "http://admin:secret@127.0.0.1:1")
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM  server  not reachable" in out
    assert "secret" not in out
