"""Next month's databases made ahead of time: every account's MODB with its design documents and built indexes,
throttled, idempotent, from the command line and by the service in the last days of a month, one process at a time."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from helpers import TestAccount
from migration_support import CountingStore

from kazoo_vm import cli
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import design_docs
from kazoo_vm.storage.leases import read_marker
from kazoo_vm.storage.rollover import (
    MARKER_DB,
    Pace,
    due_month,
    next_month,
    precreate_ahead,
    precreate_modbs,
    precreate_when_due,
)


class FakeTime:
    """A clock that only moves when slept on: pacing is checked without waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def at(year: int, month: int, day: int, hour: int = 12) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def marker_id() -> str:
    return f"test_precreate_{uuid.uuid4().hex}"


async def modb_designs(store: CouchStore, db: str) -> set[str]:
    return {str(row.id) for row in await store.all_docs(db, start_key="_design/", end_key="_design0")}


def test_next_month_rolls_over_the_year() -> None:
    assert next_month(2026, 12) == (2027, 1)
    assert next_month(2026, 1) == (2026, 2)


async def test_precreate_gives_every_account_its_modb_with_design_documents(
    store: CouchStore, account: TestAccount
) -> None:
    report = await precreate_modbs(store, 2031, 5, rate=1000)
    modb = naming.modb(account.id, 2031, 5)
    stored = {str(row.id) for row in await store.all_docs(modb, start_key="_design/", end_key="_design0")}
    assert stored == {str(doc["_id"]) for doc in design_docs("modb")}
    assert report.accounts >= 1 and report.created >= 1 and report.failed == 0
    assert report.accounts == report.created + report.existing


async def test_precreate_again_creates_nothing(store: CouchStore, account: TestAccount) -> None:
    await precreate_modbs(store, 2031, 6, rate=1000)
    again = await precreate_modbs(store, 2031, 6, rate=1000)
    assert again.created == 0 and again.existing == again.accounts >= 1


async def test_pacing_starts_the_n_th_database_no_earlier_than_n_over_the_rate() -> None:
    fake = FakeTime()
    pace = Pace(10.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(11):
        await pace.wait()
    assert fake.now - 1000.0 == pytest.approx(1.0)
    assert len(fake.slept) == 10


def test_next_month_is_due_only_in_the_last_days_of_a_month() -> None:
    assert due_month(at(2031, 1, 28), 3) is None
    assert due_month(at(2031, 1, 29), 3) == (2031, 2)
    assert due_month(at(2031, 2, 26, 0), 3) == (2031, 3)  # February 2031 has 28 days
    assert due_month(at(2031, 12, 31, 23), 1) == (2032, 1)
    assert due_month(at(2031, 12, 30, 23), 1) is None


async def test_the_service_asks_couchdb_nothing_before_the_last_days_of_a_month(couch_url: str) -> None:
    counting = CountingStore(couch_url)
    try:
        result = await precreate_when_due(
            counting, holder="a", rate=1000, days=3, clock=lambda: at(2031, 7, 10), marker_id=marker_id()
        )
    finally:
        await counting.close()
    assert result.status == "not_due"
    assert counting.requests == []


async def test_in_the_last_days_one_process_makes_next_month_s_modbs_at_its_rate_and_records_the_month(
    store: CouchStore, account: TestAccount, couch_url: str
) -> None:
    marker = marker_id()
    pacing = FakeTime()
    result = await precreate_when_due(
        store,
        holder="a",
        rate=200,
        days=3,
        clock=lambda: at(2032, 3, 30),
        pace=Pace(200, clock=pacing.clock, sleep=pacing.sleep),
        marker_id=marker,
    )
    assert result.status == "done" and result.month == (2032, 4)
    assert result.report is not None and result.report.failed == 0
    assert result.report.accounts >= 2  # the shared test server holds many accounts
    assert pacing.now - 1000.0 >= (result.report.accounts - 1) / 200 - 1e-6
    db = naming.modb(account.id, 2032, 4)
    assert await modb_designs(store, db) == {str(doc["_id"]) for doc in design_docs("modb")}
    recorded = await read_marker(store, MARKER_DB, marker)
    assert recorded is not None and recorded["month"] == "203204" and "lease" not in recorded

    counting = CountingStore(couch_url)
    try:
        again = await precreate_when_due(
            counting, holder="b", rate=200, days=3, clock=lambda: at(2032, 3, 31), marker_id=marker
        )
    finally:
        await counting.close()
    assert again.status == "current"
    assert counting.requests == [f"GET /{MARKER_DB}/{marker}"]


async def test_two_processes_racing_for_the_lease_make_the_month_once(store: CouchStore) -> None:
    marker = marker_id()
    # A walk of the same month left by a stopped process after the last account: taking over finishes it at once.
    await store.put_doc(
        MARKER_DB, {"_id": marker, "lease": {"job": "203205", "holder": "gone", "expires": 0, "after": "~"}}
    )
    results = await asyncio.gather(
        *(
            precreate_when_due(store, holder=holder, rate=1000, days=3, clock=lambda: at(2032, 4, 29), marker_id=marker)
            for holder in ("a", "b")
        )
    )
    assert sorted(result.status for result in results) == ["busy", "done"]
    recorded = await read_marker(store, MARKER_DB, marker)
    assert recorded is not None and recorded["month"] == "203205"


async def test_a_live_lease_of_another_process_is_left_alone(store: CouchStore, account: TestAccount) -> None:
    marker = marker_id()
    now = at(2032, 5, 30)
    await store.put_doc(
        MARKER_DB, {"_id": marker, "lease": {"job": "203206", "holder": "other", "expires": now + 30, "after": None}}
    )
    result = await precreate_when_due(store, holder="me", rate=1000, days=3, clock=lambda: now, marker_id=marker)
    assert result.status == "busy"
    assert not await store.db_exists(naming.modb(account.id, 2032, 6))


async def test_the_service_checks_again_every_interval(couch_url: str) -> None:
    fake = FakeTime()
    counting = CountingStore(couch_url)

    async def sleep(seconds: float) -> None:
        await fake.sleep(seconds)
        if len(fake.slept) == 3:
            raise asyncio.CancelledError

    try:
        with pytest.raises(asyncio.CancelledError):
            await precreate_ahead(
                counting, holder="a", rate=20, days=3, every_s=600, clock=lambda: at(2031, 7, 10), sleep=sleep
            )
    finally:
        await counting.close()
    assert fake.slept == [600, 600, 600]
    assert counting.requests == []  # never due on the 10th


def test_the_precreate_command_prints_its_summary(
    couch_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", couch_url)
    assert cli.main(["modbs", "precreate", "--month", "2031-08", "--rate", "1000"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["month"] == [2031, 8] and summary["failed"] == 0 and summary["accounts"] >= 1


def test_the_precreate_command_refuses_a_bad_month(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["modbs", "precreate", "--month", "2031-13"])
    assert "YYYYMM" in capsys.readouterr().err
