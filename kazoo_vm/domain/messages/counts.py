"""Message counts per box and folder within the retention window, from the ``_count`` reduce views that
:mod:`kazoo_vm.storage.messages` queries; all MODBs are queried concurrently, a missing MODB counts nothing.

Counts of the pseudo-folder ``in_transit`` are the sign of a move a crash left unfinished: the box listing then
finishes those moves and counts again, which costs nothing when there are none.
"""

from __future__ import annotations

import asyncio

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import retention, transit
from kazoo_vm.model import FOLDERS
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.messages import Counts


def _window(settings: Settings) -> tuple[int, int]:
    now = naming.now_gregorian()
    return retention.cutoff(settings, now), now


_Month = tuple[str, int, int, tuple[int, int]]


def _months(account: Account, settings: Settings) -> list[_Month]:
    """``(MODB, first second, last second, month span)`` for every month of the retention window."""
    low, high = _window(settings)
    months = []
    for year, month in naming.months_between(naming.year_month(low), naming.year_month(high)):
        span = stored_messages.month_span(year, month)
        months.append((naming.modb(account.id, year, month), max(low, span[0]), min(high, span[1]), span))
    return months


async def _existing_months(store: CouchStore, settings: Settings, account: Account) -> list[_Month]:
    """The months of the retention window whose MODB exists: a missing one is never queried."""
    months = _months(account, settings)
    existing = set(await store.existing_databases([month[0] for month in months]))
    return [month for month in months if month[0] in existing]


async def _per_modb(store: CouchStore, settings: Settings, account: Account) -> list[tuple[str, Counts]]:
    months = await _existing_months(store, settings, account)
    counted = await asyncio.gather(
        *(stored_messages.modb_counts(store, db, low, high, span) for db, low, high, span in months)
    )
    return [(month[0], counts) for month, counts in zip(months, counted, strict=True)]


async def account_counts(scope: Scope) -> dict[str, dict[str, int]]:
    """``{box id: {"new": n, "saved": s, "deleted": d}}`` for every box with messages inside retention.

    Moves a crash left unfinished (rows in ``in_transit``) are finished first, then everything is counted
    again, so each of those messages is counted once, in its new box.
    """
    per_modb = await _per_modb(scope.store, scope.settings, scope.account)
    pending = [(db, box) for db, counts in per_modb for box, folder in counts if folder == stored_messages.IN_TRANSIT]
    if pending:
        for db, box in pending:
            for message_id in await stored_messages.in_transit_ids(scope.store, db, box):
                await transit.settle_quietly(scope, message_id)
        per_modb = await _per_modb(scope.store, scope.settings, scope.account)
    result: dict[str, dict[str, int]] = {}
    for _db, counts in per_modb:
        for (box, folder), value in counts.items():
            if folder in FOLDERS:
                folders = result.setdefault(box, {})
                folders[folder] = folders.get(folder, 0) + value
    return result


async def box_count(scope: Scope, box_id: str, at_most: int) -> int:
    """New + saved messages of one box within retention, counted up to ``at_most``: what the mailbox-full check
    compares (kvm_messages count/2), at a cost bounded by ``at_most`` rather than by the size of the box.
    Messages on their way out of the box do not count."""
    months = await _existing_months(scope.store, scope.settings, scope.account)
    counted = [
        stored_messages.box_modb_count(scope.store, db, box_id, low, high, at_most=at_most)
        for db, low, high, _span in months
    ]
    return min(at_most, sum(await asyncio.gather(*counted)))
