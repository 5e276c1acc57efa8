"""Voicemail messages as CouchDB keeps them: documents in monthly databases (MODBs), listed through Kazoo's
``mailbox_messages`` views and counted through the reduce views of our ``kazoo_vm_messages``
(``couch_design_docs/modb/``).

Listings. ``listing_by_mailbox`` has keys ``[box, timestamp]``, ``listing_by_timestamp`` keys ``[timestamp, box]``;
:class:`ListingView` says how to build and read them, so the domain asks for "messages of box B between T1 and T2,
newest first, from this key" without spelling a key.

Counts. Kazoo reads one row per message for its counts (kvm_messages count_per_folder, one query per folder). We read
grouped reduce rows from ``_design/kazoo_vm_messages`` instead, so the cost does not grow with the number of messages:

* a MODB whose whole month lies inside the window: one ``by_box_folder`` query, ``group_level=2`` →
  one row per (box, folder);
* the partial months at either end of the window: ``by_period`` (keys ``[bucket size, bucket start, box,
  folder]`` for day, hour and second buckets), whole days and hours as grouped rows, only the seconds of the
  first and last partial hour at second resolution; when the part of the month outside the window is the
  shorter one (the future, in the current month) the whole month is counted and that part subtracted.
  At most 6 queries per partial month, rows bounded by days × boxes × folders.

A message on its way to another box (a recorded move plan) is counted under the pseudo-folder ``in_transit``, never
under its folder, so it is not counted beside its copy.

Moved away. A moved message's source document is not deleted but replaced by a small marker of type
:data:`MOVED_TYPE`. On a cluster, a write cut off by a dying node can leave a stale revision of the source as a
conflicting leaf, possibly on one copy only, coming back with that node; CouchDB prefers any live leaf to a deleted
one, so a deleted source would come back as a message beside its copy. The marker is live and longer than any such
leaf, so CouchDB keeps choosing it. Every view (Kazoo's included) selects on ``pvt_type``, so no listing or count
sees it; the readers here take it for a missing message.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from kazoo_vm.model import FOLDERS, JsonDict, MessageDoc, MessageMetadata, MovePlan
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, ViewRow
from kazoo_vm.storage.design_docs import query_view
from kazoo_vm.storage.errors import DatabaseNotFound, DocumentNotFound, NotFound
from kazoo_vm.storage.updates import update_doc, update_shaped

LISTING_DESIGN = "mailbox_messages"


MOVED_TYPE: Final = "mailbox_message_moved"
"""``pvt_type`` of the marker that replaces a moved source (see the module's docstring)."""


def is_moved_away(raw: JsonDict) -> bool:
    return raw.get("pvt_type") == MOVED_TYPE


def as_message(raw: JsonDict) -> MessageDoc:
    """The JSON of a message document, seen as a message: the same dict, every key kept (whether it is a live
    message is the domain's to check, from ``pvt_type`` and ``pvt_deleted``)."""
    return cast(MessageDoc, raw)


def as_metadata(raw: JsonDict) -> MessageMetadata:
    """A message's ``metadata`` object (or the caller data a request or a legacy entry gives for it)."""
    return cast(MessageMetadata, raw)


async def read_message(store: CouchStore, db: str, message_id: str) -> MessageDoc:
    """One GET in the message's MODB; :class:`~kazoo_vm.storage.errors.NotFound` when the database or the document
    does not exist (also for the marker of a message moved away)."""
    return _present_message(await store.get_doc(db, message_id))


async def known_messages(store: CouchStore, db: str, message_ids: Sequence[str]) -> dict[str, MessageDoc | None]:
    """The documents CouchDB knows among ``message_ids`` of one MODB, in one ``_all_docs`` request: None for a
    deleted one (a tombstone, or the marker of a message moved away); ids it never knew are left out.
    :class:`DatabaseNotFound` when the MODB does not exist."""
    rows = await store.docs_by_id(db, message_ids)
    return {
        row.id: as_message(row.doc) if isinstance(row.doc, dict) and not is_moved_away(row.doc) else None
        for row in rows
        if row.id
    }


async def messages_by_id(store: CouchStore, db: str, message_ids: Sequence[str]) -> dict[str, MessageDoc]:
    """The existing documents among ``message_ids`` of one MODB (deleted ones and ids CouchDB never knew are left
    out); :class:`DatabaseNotFound` when the MODB does not exist."""
    known = await known_messages(store, db, message_ids)
    return {message_id: doc for message_id, doc in known.items() if doc is not None}


def listed_message(row: ViewRow) -> MessageDoc | None:
    """The document of a listing row read with ``include_docs``."""
    return as_message(row.doc) if isinstance(row.doc, dict) else None


async def update_message(
    store: CouchStore,
    db: str,
    message_id: str,
    change: Callable[[MessageDoc], MessageDoc | None],
    *,
    current: MessageDoc | None = None,
    delete: bool = False,
) -> MessageDoc:
    """:func:`kazoo_vm.storage.updates.update_doc` for a message (:class:`DocumentNotFound` when it was moved
    away)."""
    return await update_shaped(store, db, message_id, change, _present_message, current=current, delete=delete)


async def message_or_move(store: CouchStore, db: str, message_id: str) -> tuple[MessageDoc | None, MovePlan | None]:
    """One GET: ``(message, None)``, or for the marker of a message moved away ``(None, the move it records)``;
    ``(None, None)`` when the message or its database is gone."""
    try:
        raw = await store.get_doc(db, message_id)
    except NotFound:
        return None, None
    if not is_moved_away(raw):
        return as_message(raw), None
    plan = raw.get("pvt_moved_to")
    return None, cast(MovePlan, plan) if isinstance(plan, dict) else None


def _present_message(raw: JsonDict) -> MessageDoc:
    if is_moved_away(raw):
        raise DocumentNotFound(f"{raw.get('_id')} was moved away")
    return as_message(raw)


async def retire_moved(store: CouchStore, db: str, source: MessageDoc, plan: MovePlan, now: int) -> None:
    """Replace the source of a finished move by its marker (see the module's docstring), whatever its revision by
    now; nothing to do when it is a marker already or gone."""

    def marker(current: JsonDict) -> JsonDict | None:
        if is_moved_away(current):
            return None
        kept = {key: current[key] for key in _MARKER_KEPT if key in current}
        return {**kept, "pvt_type": MOVED_TYPE, "pvt_deleted": True, "pvt_moved_to": dict(plan), "pvt_modified": now}

    # The first attempt writes on the revision the mover read; a 409 re-reads (a concurrent run may have retired it).
    with suppress(DocumentNotFound):
        await update_doc(store, db, source["_id"], marker, current=dict(source))


# What the marker keeps of the source: identity, owner, and creation time (for retention and operators' scripts).
_MARKER_KEPT = ("_id", "_rev", "pvt_account_id", "pvt_account_db", "pvt_created")


@dataclass(frozen=True)
class ListingView:
    """One of Kazoo's two listing views: how its keys are built and read."""

    name: str
    low_key: Callable[[int], list[Any]]  # the smallest key at a timestamp
    high_key: Callable[[int], list[Any]]  # the largest key at a timestamp
    timestamp_of: Callable[[Any], Any]
    box_of: Callable[[Any], Any]


def box_listing_view(box_id: str) -> ListingView:
    """``listing_by_mailbox``: one box's messages by time."""
    return ListingView(
        name="listing_by_mailbox",
        low_key=lambda ts: [box_id, ts],
        high_key=lambda ts: [box_id, ts],
        timestamp_of=lambda key: key[1] if isinstance(key, list) and len(key) > 1 else None,
        box_of=lambda key: box_id,
    )


def account_listing_view() -> ListingView:
    """``listing_by_timestamp``: every box's messages by time."""
    return ListingView(
        name="listing_by_timestamp",
        low_key=lambda ts: [ts],
        high_key=lambda ts: [ts, {}],
        timestamp_of=lambda key: key[0] if isinstance(key, list) and key else None,
        box_of=lambda key: key[1] if isinstance(key, list) and len(key) > 1 else None,
    )


def box_key(box_id: str, timestamp: int) -> list[Any]:
    """The ``listing_by_mailbox`` key of a box's message at ``timestamp`` (Kazoo's own start keys have it)."""
    return [box_id, timestamp]


async def listing_rows(
    store: CouchStore,
    db: str,
    view: ListingView,
    *,
    low: int,
    high: int,
    descending: bool,
    limit: int,
    after: Any = None,
    skip: int = 0,
    with_docs: bool = False,
) -> list[ViewRow] | None:
    """Up to ``limit`` rows of one MODB's listing for the messages stamped ``low``..``high``, newest first when
    ``descending``; from the listing key ``after`` on (skipping ``skip`` rows with that key already read) to
    continue where a previous call stopped. None when the MODB does not exist."""
    far = view.high_key(high) if descending else view.low_key(low)
    end = view.low_key(low) if descending else view.high_key(high)
    start = far if after is None else after
    try:
        return await query_view(
            store, db, "modb", LISTING_DESIGN, view.name,
            startkey=start, endkey=end, descending=descending, limit=limit, skip=skip or None,
            include_docs=with_docs or None,
        )  # fmt: skip
    except DatabaseNotFound:
        return None


COUNTS_DESIGN = "kazoo_vm_messages"
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
        # The part after ``high`` is the future when counting up to now, normally empty: one query at second
        # resolution reads it, rather than a run per day, hour and second bucket.
        tail = [(1, high + 1, span[1])] if high < span[1] else []
        return True, [*segments(span[0], low - 1), *tail]
    return False, segments(low, high)


def _period_query(store: CouchStore, db: str, run: tuple[int, int, int]) -> Awaitable[list[ViewRow]]:
    size, first, last = run
    return query_view(
        store, db, "modb", COUNTS_DESIGN, "by_period", startkey=[size, first], endkey=[size, last, {}], group_level=4
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
        queries.append(query_view(store, db, "modb", COUNTS_DESIGN, "by_box_folder", group_level=2))
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


async def in_transit_ids(store: CouchStore, db: str, box_id: str) -> list[str]:
    rows = await query_view(
        store, db, "modb", COUNTS_DESIGN, "by_box_folder",
        startkey=[box_id, IN_TRANSIT], endkey=[box_id, IN_TRANSIT, {}], reduce=False,
    )  # fmt: skip
    return [str(row.id) for row in rows if row.id]


async def all_listed(store: CouchStore, db: str) -> list[ViewRow]:
    """Every message of the MODB as a ``listing_by_timestamp`` row (the value has ``media_id``, which names a
    move's destination while a move is unfinished). Never repairs the design document: read-only callers ask."""
    return await store.view(db, LISTING_DESIGN, "listing_by_timestamp")


async def box_modb_count(store: CouchStore, db: str, box_id: str, low: int, high: int, *, at_most: int) -> int:
    """New + saved messages of a box stamped ``low``..``high`` in one MODB, counted up to ``at_most``: rows are
    read (``limit``), not reduced, so the cost is bounded by ``at_most`` whatever the size of the box.

    One query reads both folders, which are neighbours in the view (``[box, "new", t]`` then ``[box, "saved", t]``),
    and counts the rows inside the window. Only when its ``at_most`` rows included some outside it (saved
    messages older than ``low`` in the oldest month of retention, new ones stamped after ``high``) does each folder
    get its own exact query."""
    counted_folders = ("new", "saved")

    def counted(rows: list[ViewRow]) -> int:
        return sum(1 for row in rows if row.key[1] in counted_folders and _inside(row.key[2], low, high))

    try:
        rows = await query_view(
            store, db, "modb", COUNTS_DESIGN, "by_box_folder",
            startkey=[box_id, "new", low], endkey=[box_id, "saved", high], reduce=False, limit=at_most,
        )  # fmt: skip
        found = counted(rows)
        if len(rows) < at_most or found == len(rows):
            return min(at_most, found)
        queries = [
            query_view(
                store,
                db,
                "modb",
                COUNTS_DESIGN,
                "by_box_folder",
                startkey=[box_id, folder, low],
                endkey=[box_id, folder, high],
                reduce=False,
                limit=at_most,
            )
            for folder in counted_folders
        ]
        return min(at_most, sum(len(rows) for rows in await _all_or_missing(queries)))
    except DatabaseNotFound:
        return 0


def _inside(timestamp: Any, low: int, high: int) -> bool:
    return isinstance(timestamp, int | float) and not isinstance(timestamp, bool) and low <= timestamp <= high
