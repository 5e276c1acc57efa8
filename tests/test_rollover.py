"""Next month's databases made ahead of time: every account's MODB with its design documents and built indexes,
throttled, idempotent, from the command line."""

from __future__ import annotations

import json

import pytest
from helpers import TestAccount

from kazoo_vm import cli
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import design_docs
from kazoo_vm.storage.rollover import next_month, precreate_modbs


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


async def test_precreate_keeps_to_its_rate(store: CouchStore, account: TestAccount) -> None:
    report = await precreate_modbs(store, 2031, 7, rate=200)
    assert report.accounts >= 2  # the shared test server holds many accounts
    assert report.seconds >= (report.accounts - 1) / 200


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
