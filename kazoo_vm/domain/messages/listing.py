"""Message listings across monthly databases, paged the way crossbar_view load_modb pages them.

``GET /vmboxes/{B}/messages`` reads one box's listing and ``GET /vmboxes/messages`` every box's
(:mod:`kazoo_vm.storage.messages` owns the views and their keys), newest MODB first (oldest first
with ``ascending=true``), within ``created_from``..``created_to`` (Kazoo's defaults and range checks,
crossbar_view time_range). Rows are read in batches of about as many as the page still needs, so a page costs
what it shows; filtered-out rows do not use up the page (KCRO-24), the scan simply goes on, into older MODBs too.

The opaque ``start_key``/``next_start_key`` is base64url of ``[YYYYMM, view key, doc id]``: the MODB, key and
document of the first row not yet shown, so a continuation is exact even across months and among rows that share
a timestamp. A Kazoo-style key ``[box, timestamp]`` is understood too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.filters import DocFilter
from kazoo_vm.domain.legacy import ids as legacy_ids
from kazoo_vm.domain.messages import retention, transit
from kazoo_vm.domain.messages.listing_query import ListingQuery, Window
from kazoo_vm.domain.paging import Paging, encode_start_key
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import ValidationFailed
from kazoo_vm.model import JsonDict, LegacySummary, MessageDoc
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import ViewRow
from kazoo_vm.storage.messages import (
    ListingView,
    account_listing_view,
    as_message,
    box_key,
    box_listing_view,
    listed_message,
)

MAX_BATCH = 500
# The metadata fields the listing views emit as each row's value (couch_design_docs/modb/mailbox_messages.json).
ROW_METADATA_PATHS = frozenset(
    f"metadata.{field}"
    for field in ("timestamp", "from", "to", "caller_id_number", "caller_id_name", "call_id", "folder", "length")
)
BAD_START_KEY = "start_key is not a key this listing handed out"


@dataclass(frozen=True)
class Position:
    """Where a scan starts: a MODB month, a view key, and the document id among rows sharing that key."""

    yyyymm: int
    key: Any
    doc_id: str | None = None

    def encode(self) -> str:
        return encode_start_key([self.yyyymm, self.key, self.doc_id])


def _is_timestamp(value: Any) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and naming.EARLIEST_TIMESTAMP <= value <= naming.LATEST_TIMESTAMP
    )


def decode_position(raw: Any, view: ListingView, box_id: str | None) -> Position:
    """A client's start key: ours ``[YYYYMM, key, id]``, or Kazoo's ``[box, timestamp]`` for a box listing."""
    if isinstance(raw, list) and len(raw) == 3 and isinstance(raw[0], int) and isinstance(raw[1], list):
        ts = view.timestamp_of(raw[1])
        if _is_timestamp(ts) and (raw[2] is None or isinstance(raw[2], str)):
            return Position(raw[0], raw[1], raw[2])
    if box_id is not None and isinstance(raw, list) and len(raw) == 2 and raw[0] == box_id and _is_timestamp(raw[1]):
        year, month = naming.year_month(raw[1])
        return Position(year * 100 + month, box_key(box_id, raw[1]), None)
    raise ValidationFailed.single("start_key", "invalid", BAD_START_KEY)


@dataclass(frozen=True)
class Entry:
    """A listing row: where it sits (for ordering and continuation) and what it shows."""

    yyyymm: int
    key: Any
    doc_id: str
    value: JsonDict  # the listing view's value (Kazoo's summary of the message)
    filter_doc: MessageDoc | None  # what filters see: the document, or the value as its metadata

    @property
    def position(self) -> Position:
        return Position(self.yyyymm, self.key, self.doc_id)

    def order(self) -> tuple[int, Any, str]:
        return (self.yyyymm, self.key, self.doc_id)


def _months(window: Window, descending: bool, start: Position | None) -> list[tuple[int, int]]:
    months = naming.months_between(naming.year_month(window.low), naming.year_month(window.high))
    if not descending:
        months.reverse()
    if start is not None:
        months = [
            (year, month)
            for year, month in months
            if (year * 100 + month <= start.yyyymm if descending else year * 100 + month >= start.yyyymm)
        ]
    return months


class Demand:
    """How many rows the next view query should ask for: what the page still needs plus one (for the next
    start key), doubling while filters keep rejecting rows, all of a MODB in chunks when not paginating."""

    def __init__(self, paging: Paging, filtered: bool) -> None:
        self.paging = paging
        self.filtered = filtered
        self.shown = 0
        self._last = 0

    def next_limit(self) -> int:
        if not self.paging.paginate:
            return MAX_BATCH
        wanted = max(1, self.paging.page_size - self.shown + 1)
        if self.filtered and self._last:
            wanted = max(wanted, self._last * 2)
        self._last = min(wanted, MAX_BATCH)
        return self._last


_PAST_THE_END = Position(0, None)


def _within(start: Position | None, view: ListingView, window: Window, descending: bool) -> Position | None:
    """A resume position clamped to the window: before it → start at the window's edge, after it → nothing is
    left (CouchDB refuses a start key beyond the end key with 400)."""
    if start is None:
        return None
    ts = view.timestamp_of(start.key)
    if not isinstance(ts, int):
        return None
    before, after = (ts > window.high, ts < window.low) if descending else (ts < window.low, ts > window.high)
    if after:
        return _PAST_THE_END
    return None if before else start


def _shown_before(resume: Position, row: ViewRow, descending: bool) -> bool:
    """Rows sharing the resume key come in id order; those before the resume id were on an earlier page."""
    if resume.doc_id is None or row.key != resume.key:
        return False
    return str(row.id) > resume.doc_id if descending else str(row.id) < resume.doc_id


async def view_entries(
    scope: Scope,
    view: ListingView,
    window: Window,
    descending: bool,
    start: Position | None,
    demand: Demand,
    docs: bool,
) -> AsyncGenerator[Entry, None]:
    """Rows of ``view`` in every MODB of the window, in listing order, from ``start`` on."""
    for year, month in _months(window, descending, start):
        yyyymm = year * 100 + month
        db = naming.modb(scope.account.id, year, month)
        resume = _within(start if start is not None and start.yyyymm == yyyymm else None, view, window, descending)
        if resume == _PAST_THE_END:
            return
        key, skip = (resume.key if resume else None), 0
        while True:
            limit = demand.next_limit()
            rows = await stored_messages.listing_rows(
                scope.store, db, view, low=window.low, high=window.high, descending=descending, limit=limit,
                after=key, skip=skip, with_docs=docs,
            )  # fmt: skip
            if rows is None:
                break
            for row in rows:
                # The next query restarts at the last key, skipping the rows with that key already read.
                skip = skip + 1 if row.key == key else 1
                key = row.key
                if resume is not None and _shown_before(resume, row, descending):
                    continue
                if transit.in_transit_row(str(row.id), row.value) and await transit.settle_quietly(scope, str(row.id)):
                    continue  # a source on its way to another box: finished now, listed there from here on
                value = dict(row.value or {})
                shown = listed_message(row) if docs else as_message({"metadata": value})
                yield Entry(yyyymm, row.key, str(row.id), value, shown)
            if len(rows) < limit:
                break


async def merged(entries: AsyncIterator[Entry], extra: list[Entry], descending: bool) -> AsyncGenerator[Entry, None]:
    """Merge view rows with already-sorted in-memory entries (not yet migrated legacy messages)."""
    pending = list(extra)

    def before(a: Entry, b: Entry) -> bool:
        return a.order() > b.order() if descending else a.order() < b.order()

    async for entry in entries:
        while pending and before(pending[0], entry):
            yield pending.pop(0)
        yield entry
    for entry in pending:
        yield entry


@dataclass(frozen=True)
class Page:
    items: list[JsonDict]
    start_key: str
    next_start_key: str | None


async def collect(
    entries: AsyncIterator[Entry],
    paging: Paging,
    doc_filter: DocFilter,
    demand: Demand,
    render: Callable[[Entry], JsonDict],
) -> tuple[list[JsonDict], Position | None]:
    """Fill one page; the position of the first row not shown is the next start key."""
    items: list[JsonDict] = []
    next_position: Position | None = None
    async for entry in entries:
        if paging.paginate and len(items) >= paging.page_size:
            next_position = entry.position
            break
        if doc_filter.active and not (entry.filter_doc is not None and doc_filter.matches(entry.filter_doc)):
            continue
        items.append(render(entry))
        demand.shown = len(items)
    return items, next_position


def render_item(entry: Entry, oldest: int) -> JsonDict:
    """A view value as Kazoo shows it: retention-enforced when older than the window (kvm_util enforce_retention)."""
    timestamp = entry.value.get("timestamp")
    if isinstance(timestamp, int) and timestamp < oldest:
        return retention.enforce(entry.value)
    return entry.value


def legacy_entries(
    items: list[LegacySummary], box_id: str, window: Window, descending: bool, start: Position | None
) -> list[Entry]:
    """Listing entries for legacy summaries: inside the window, in order, after ``start``."""
    entries = []
    for item in items:
        timestamp, media_id = item.get("timestamp"), item.get("media_id")
        if (
            not isinstance(timestamp, int)
            or not isinstance(media_id, str)
            or not window.low <= timestamp <= window.high
        ):
            continue
        year, month = naming.year_month(timestamp)
        value: JsonDict = {**item}
        entry = Entry(year * 100 + month, box_key(box_id, timestamp), media_id, value, as_message({"metadata": value}))
        entries.append(entry)
    entries.sort(key=Entry.order, reverse=descending)
    if start is not None:
        origin = (start.yyyymm, start.key, start.doc_id or ("\uffff" if descending else ""))
        entries = [e for e in entries if (e.order() <= origin if descending else e.order() >= origin)]
    return entries


async def list_messages(
    scope: Scope,
    view: ListingView,
    query: ListingQuery,
    render: Callable[[Entry], JsonDict],
    *,
    box_id: str | None = None,
    legacy_items: list[LegacySummary] | None = None,
) -> Page:
    """One page of a listing; ``legacy_items`` (a box's not yet migrated messages) are merged in by time."""
    window, descending, paging, doc_filter = query.window, query.descending, query.paging, query.doc_filter
    start = decode_position(paging.start_key, view, box_id) if paging.start_key_given else None
    demand = Demand(paging, doc_filter.active)
    # Filters on the metadata the listing rows carry are checked on the rows: no document is read for them.
    docs = doc_filter.active and not doc_filter.reads_only(ROW_METADATA_PATHS)
    rows = view_entries(scope, view, window, descending, start, demand, docs)
    extra = legacy_entries(legacy_items, str(box_id), window, descending, start) if legacy_items else []
    stream = merged(rows, extra, descending) if extra else rows
    try:
        items, next_position = await collect(stream, paging, doc_filter, demand, render)
    finally:
        await stream.aclose()
    if query.start_key is not None:
        start_key = str(query.start_key)
    else:
        edge = window.high if descending else window.low
        year, month = naming.year_month(edge)
        start_key = Position(year * 100 + month, view.high_key(edge) if descending else view.low_key(edge)).encode()
    return Page(items, start_key, next_position.encode() if next_position else None)


async def box_messages(scope: Scope, box_id: str, query: ListingQuery) -> Page:
    """``GET /vmboxes/{B}/messages``: the box's messages, with its not yet migrated legacy ones merged in."""
    box = await load_box(scope, box_id)
    legacy = await legacy_ids.legacy_summaries(scope, box)
    oldest = scope.oldest()
    return await list_messages(
        scope, box_listing_view(box["_id"]), query, lambda entry: render_item(entry, oldest),
        box_id=box["_id"], legacy_items=legacy,
    )  # fmt: skip


async def account_messages(scope: Scope, query: ListingQuery) -> Page:
    """``GET /vmboxes/messages``: every box's messages, each item ``{"<box id>": {summary}}`` (cb_vmboxes
    message_summary_normalizer)."""
    oldest = scope.oldest()
    view = account_listing_view()

    def render(entry: Entry) -> JsonDict:
        return {str(view.box_of(entry.key)): render_item(entry, oldest)}

    return await list_messages(scope, view, query, render)


async def box_entries(scope: Scope, box_id: str, window: Window) -> list[Entry]:
    """Every listed message of a box in the window (no paging): what a bulk delete chooses from."""
    demand = Demand(Paging(paginate=False, page_size=MAX_BATCH), filtered=False)
    return [entry async for entry in view_entries(scope, box_listing_view(box_id), window, True, None, demand, False)]
