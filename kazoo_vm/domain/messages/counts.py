"""Message counts per box and folder within the retention window, from ``_count`` reduce views.

Kazoo reads one row per message for its counts (kvm_messages count_per_folder, one query per folder). We read
grouped reduce rows from ``_design/kazoo_vm_counts`` instead, so the cost does not grow with the number of messages:

* a MODB whose whole month lies inside the window: one ``by_box_folder`` query, ``group_level=2`` →
  one row per (box, folder);
* the partial months at either end of the window: ``by_period`` (keys ``[bucket size, bucket start, box,
  folder]`` for day, hour and second buckets), whole days and hours as grouped rows, only the seconds of the
  first and last partial hour at second resolution; when the part of the month outside the window is the
  shorter one (the future, in the current month) the whole month is counted and that part subtracted.
  At most 6 queries per partial month, rows bounded by days × boxes × folders.

All MODBs are queried concurrently; a missing MODB counts nothing.

A message on its way to another box (a recorded move plan, :mod:`.transit`) is counted under the pseudo-folder
``in_transit``, never under its folder, so it is not counted beside its copy. Rows of that pseudo-folder are
the sign of a move a crash left unfinished: the box listing then finishes those moves and counts again, which
costs nothing when there are none.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.messages import retention, transit
from kazoo_vm.domain.messages.documents import FOLDERS
from kazoo_vm.domain.messages.records import Scope
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, ViewRow
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.errors import DatabaseNotFound

DESIGN = "kazoo_vm_counts"
RESOLUTIONS = (86_400, 3_600, 1)
IN_TRANSIT = "in_transit"
_COUNTED = (*FOLDERS, IN_TRANSIT)

Counts = Counter[tuple[str, str]]  # (box id, folder) -> messages


def month_span(year: int, month: int) -> tuple[int, int]:
    """First and last Gregorian second of a UTC month."""
    start = naming.from_datetime(datetime(year, month, 1, tzinfo=UTC))
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, naming.from_datetime(datetime(next_year, next_month, 1, tzinfo=UTC)) - 1


def segments(low: int, high: int, resolutions: tuple[int, ...] = RESOLUTIONS) -> list[tuple[int, int, int]]:
    """Cover the seconds ``low..high`` (inclusive) with as few aligned buckets as possible.

    Returns ``(size, first bucket start, last bucket start)`` runs, coarse buckets in the middle and finer ones
    at the ragged ends (a segment-tree decomposition). Gregorian day boundaries are UTC midnights.
    """
    if low > high:
        return []
    size, finer = resolutions[0], resolutions[1:]
    if not finer:
        return [(size, low, high)]
    first = -(-low // size) * size  # first bucket starting at or after low
    end = (high + 1) // size * size  # end (exclusive) of the last bucket ending at or before high
    if first >= end:
        return segments(low, high, finer)
    runs = segments(low, first - 1, finer) if low < first else []
    runs.append((size, first, end - size))
    if end <= high:
        runs += segments(end, high, finer)
    return runs


def _add(counts: Counts, box: object, folder: object, value: object) -> None:
    if isinstance(box, str) and folder in _COUNTED and isinstance(value, int):
        counts[(box, str(folder))] += value


def plan(low: int, high: int, span: tuple[int, int]) -> tuple[bool, list[tuple[int, int, int]]]:
    """How to count the seconds ``low..high`` of a month: ``(True, runs)`` = the whole month minus the
    ``by_period`` runs, ``(False, runs)`` = the sum of the runs."""
    if (low, high) == span:
        return True, []
    if (span[1] - span[0]) - (high - low) < high - low:
        return True, [*segments(span[0], low - 1), *segments(high + 1, span[1])]
    return False, segments(low, high)


def _period_query(store: CouchStore, db: str, run: tuple[int, int, int]) -> Awaitable[list[ViewRow]]:
    size, first, last = run
    return query_view(
        store, db, "modb", DESIGN, "by_period", startkey=[size, first], endkey=[size, last, {}], group_level=4
    )


async def modb_counts(store: CouchStore, db: str, low: int, high: int, span: tuple[int, int]) -> Counts:
    """Counts of one MODB for the seconds ``low..high`` of its month ``span``.

    A partial month is counted either from its covered part, or as the whole month minus the uncovered part,
    whichever is shorter: for the current month the uncovered part is the future, which is normally empty.
    """
    counts: Counts = Counter()
    whole, runs = plan(low, high, span)
    queries: list[Awaitable[list[ViewRow]]] = []
    if whole:
        queries.append(query_view(store, db, "modb", DESIGN, "by_box_folder", group_level=2))
    queries += [_period_query(store, db, run) for run in runs]
    try:
        results = await _all_or_missing(queries)
    except DatabaseNotFound:
        return counts
    if whole:
        for row in results[0]:
            _add(counts, row.key[0], row.key[1], row.value)
        for rows in results[1:]:
            for row in rows:
                _add(counts, row.key[2], row.key[3], -row.value if isinstance(row.value, int) else row.value)
        return +counts  # drop the zeros (and anything odd) the subtraction leaves
    for rows in results:
        for row in rows:
            _add(counts, row.key[2], row.key[3], row.value)
    return counts


async def _all_or_missing(queries: Sequence[Awaitable[list[ViewRow]]]) -> list[list[ViewRow]]:
    """Run view queries of one MODB together; DatabaseNotFound once every one of them has finished."""
    results = await asyncio.gather(*queries, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if not isinstance(result, BaseException)]


def _window(settings: Settings) -> tuple[int, int]:
    now = naming.now_gregorian()
    return retention.cutoff(settings, now), now


def _months(account: Account, settings: Settings) -> list[tuple[str, int, int, tuple[int, int]]]:
    """``(MODB, first second, last second, month span)`` for every month of the retention window."""
    low, high = _window(settings)
    months = []
    for year, month in naming.months_between(naming.year_month(low), naming.year_month(high)):
        span = month_span(year, month)
        months.append((naming.modb(account.id, year, month), max(low, span[0]), min(high, span[1]), span))
    return months


async def _per_modb(store: CouchStore, settings: Settings, account: Account) -> list[tuple[str, Counts]]:
    months = _months(account, settings)
    counted = await asyncio.gather(*(modb_counts(store, db, low, high, span) for db, low, high, span in months))
    return [(month[0], counts) for month, counts in zip(months, counted, strict=True)]


async def _in_transit_ids(store: CouchStore, db: str, box_id: str) -> list[str]:
    rows = await query_view(
        store, db, "modb", DESIGN, "by_box_folder",
        startkey=[box_id, IN_TRANSIT], endkey=[box_id, IN_TRANSIT, {}], reduce=False,
    )  # fmt: skip
    return [str(row.id) for row in rows if row.id]


async def account_counts(scope: Scope) -> dict[str, dict[str, int]]:
    """``{box id: {"new": n, "saved": s, "deleted": d}}`` for every box with messages inside retention.

    Moves a crash left unfinished (rows in ``in_transit``) are finished first, then everything is counted
    again, so each of those messages is counted once, in its new box.
    """
    per_modb = await _per_modb(scope.store, scope.settings, scope.account)
    pending = [(db, box) for db, counts in per_modb for box, folder in counts if folder == IN_TRANSIT]
    if pending:
        for db, box in pending:
            for message_id in await _in_transit_ids(scope.store, db, box):
                await transit.settle_quietly(scope, message_id)
        per_modb = await _per_modb(scope.store, scope.settings, scope.account)
    result: dict[str, dict[str, int]] = {}
    for _db, counts in per_modb:
        for (box, folder), value in counts.items():
            if folder in FOLDERS:
                folders = result.setdefault(box, {})
                folders[folder] = folders.get(folder, 0) + value
    return result


async def _box_modb_count(store: CouchStore, db: str, box_id: str, low: int, high: int, span: tuple[int, int]) -> int:
    try:
        if (low, high) == span:
            rows = await query_view(
                store, db, "modb", DESIGN, "by_box_folder", startkey=[box_id], endkey=[box_id, {}], group_level=2
            )
            return sum(row.value for row in rows if row.key[1] in ("new", "saved"))
        queries = [
            query_view(
                store,
                db,
                "modb",
                DESIGN,
                "by_box_folder",
                startkey=[box_id, folder, low],
                endkey=[box_id, folder, high],
            )
            for folder in ("new", "saved")
        ]
        return sum(row.value for rows in await _all_or_missing(queries) for row in rows)
    except DatabaseNotFound:
        return 0


async def box_count(store: CouchStore, settings: Settings, account: Account, box_id: str) -> int:
    """New + saved messages of one box within retention: what the mailbox-full check compares
    (kvm_messages count/2). Messages on their way out of the box do not count."""
    months = _months(account, settings)
    counted = [_box_modb_count(store, db, box_id, low, high, span) for db, low, high, span in months]
    return sum(await asyncio.gather(*counted))
