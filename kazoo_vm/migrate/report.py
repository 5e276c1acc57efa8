"""What a migration run did: totals per account and box, every old id → new id, every failure with its reason.

Written as JSON by ``kazoo-vm migrate --report FILE`` and summarised on stdout (``--dry-run`` lists every action).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from kazoo_vm.domain.legacy.outcomes import Outcome, Status
from kazoo_vm.model import JsonDict

COUNTERS = ("entries", *(status.value for status in Status), "purged")


def _zero() -> dict[str, int]:
    return {name: 0 for name in COUNTERS}


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


@dataclass
class BoxReport:
    totals: dict[str, int] = field(default_factory=_zero)
    migrated: dict[str, str | None] = field(default_factory=dict)
    already_migrated: dict[str, str | None] = field(default_factory=dict)
    planned: dict[str, JsonDict] = field(default_factory=dict)
    failed: list[JsonDict] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.totals["entries"] += 1
        self.totals[outcome.status.value] += 1
        self.totals["purged"] += int(outcome.purged)
        key = outcome.legacy_id or ""
        if outcome.status is Status.MIGRATED:
            self.migrated[key] = outcome.new_id
        elif outcome.status is Status.ALREADY:
            self.already_migrated[key] = outcome.new_id
        elif outcome.status is Status.PLANNED:
            self.planned[key] = {"new_id": outcome.new_id, "action": outcome.detail}
        elif outcome.status is Status.FAILED:
            failure: JsonDict = {"media_id": outcome.legacy_id, "reason": outcome.reason}
            if outcome.new_id:
                failure["new_id"] = outcome.new_id
            if outcome.legacy_id is None:
                failure["entry"] = outcome.entry
            self.failed.append(failure)

    def as_json(self) -> JsonDict:
        shown: JsonDict = {"totals": self.totals}
        for name in ("migrated", "already_migrated", "planned", "failed"):
            value = getattr(self, name)
            if value:
                shown[name] = value
        return shown


@dataclass
class AccountReport:
    boxes: dict[str, BoxReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        totals = _zero()
        for box in self.boxes.values():
            for name, value in box.totals.items():
                totals[name] += value
        return totals

    def as_json(self) -> JsonDict:
        shown: JsonDict = {
            "totals": self.totals(),
            "boxes": {box_id: box.as_json() for box_id, box in self.boxes.items()},
        }
        if self.errors:
            shown["errors"] = self.errors
        return shown


@dataclass
class Report:
    dry_run: bool = False
    purge_legacy_media: bool = False
    started_at: str = field(default_factory=_now)
    finished_at: str | None = None
    accounts: dict[str, AccountReport] = field(default_factory=dict)

    def account(self, account_id: str) -> AccountReport:
        return self.accounts.setdefault(account_id, AccountReport())

    def add(self, account_id: str, box_id: str, outcomes: list[Outcome]) -> None:
        box = self.account(account_id).boxes.setdefault(box_id, BoxReport())
        for outcome in outcomes:
            box.add(outcome)

    def error(self, account_id: str, message: str) -> None:
        self.account(account_id).errors.append(message)

    def finish(self) -> None:
        self.finished_at = _now()

    def totals(self) -> dict[str, int]:
        totals = _zero()
        for account in self.accounts.values():
            for name, value in account.totals().items():
                totals[name] += value
        return totals

    @property
    def ok(self) -> bool:
        """False when anything failed: exit status non-zero."""
        return self.totals()[Status.FAILED.value] == 0 and not any(a.errors for a in self.accounts.values())

    def as_json(self) -> JsonDict:
        return {
            "dry_run": self.dry_run,
            "purge_legacy_media": self.purge_legacy_media,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "ok": self.ok,
            "totals": {
                **self.totals(),
                "accounts": len(self.accounts),
                "boxes": sum(len(a.boxes) for a in self.accounts.values()),
            },
            "accounts": {account_id: account.as_json() for account_id, account in self.accounts.items()},
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")

    def print_summary(self, out: TextIO) -> None:
        """Every planned action (dry run) and every failure, then the totals."""
        for account_id, account in self.accounts.items():
            for message in account.errors:
                print(f"account {account_id}: error: {message}", file=out)
            for box_id, box in account.boxes.items():
                where = f"account {account_id} box {box_id}"
                for old, plan in box.planned.items():
                    print(f"{where}: would migrate {old} -> {plan['new_id']} ({plan['action']})", file=out)
                for failure in box.failed:
                    new = f" (-> {failure['new_id']})" if failure.get("new_id") else ""
                    verb = "would fail" if self.dry_run else "failed"
                    print(f"{where}: {verb} {_label(failure)}{new}: {failure['reason']}", file=out)
        totals = self.totals()
        counts = ", ".join(f"{name} {totals[name]}" for name in COUNTERS if totals[name] or name == "failed")
        prefix = "dry run, nothing written: " if self.dry_run else ""
        print(f"{prefix}{len(self.accounts)} account(s): {counts}", file=out)


def _label(failure: JsonDict) -> str:
    if failure.get("media_id"):
        return str(failure["media_id"])
    entry: Any = failure.get("entry")
    return f"entry without media_id {json.dumps(entry, sort_keys=True)}"
