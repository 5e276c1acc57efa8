"""Message counts in the box listing (cb_vmboxes merge_summary_fold),
computed from grouped ``_count`` reduce views over exactly the retention window."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from helpers import Api, create_box
from message_support import (
    DAY,
    gregorian,
    gregorian_now,
    month_start,
    new_message,
)

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.messages import modb_counts, month_span, plan, segments

RETENTION = 93 * DAY + 3600


def covered(runs: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    return [(first, last + size - 1) for size, first, last in runs]


def test_segments_cover_a_range_exactly_with_aligned_buckets() -> None:
    rng = random.Random(7)
    for _ in range(500):
        low = 63_900_000_000 + rng.randrange(0, 90 * DAY)
        high = low + rng.choice([0, 1, 59, 3_599, 3_600, DAY - 1, DAY, 3 * DAY + 17, 31 * DAY])
        runs = segments(low, high)
        spans = covered(runs)
        assert spans[0][0] == low and spans[-1][1] == high
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))
        assert all(first % size == 0 and last % size == 0 for size, first, last in runs)
        assert len(runs) <= 5


def test_month_span_is_the_whole_utc_month() -> None:
    start, end = month_span(2024, 2)
    assert naming.to_datetime(start).isoformat() == "2024-02-01T00:00:00+00:00"
    assert naming.to_datetime(end + 1).isoformat() == "2024-03-01T00:00:00+00:00"
    assert month_span(2023, 12)[1] + 1 == month_span(2024, 1)[0]


async def test_box_listing_counts_new_and_saved_within_retention(api: Api, store: CouchStore) -> None:
    busy = await create_box(api, name="busy", mailbox="100")
    quiet = await create_box(api, name="quiet", mailbox="200")
    trash_only = await create_box(api, name="trash", mailbox="300")
    cutoff = gregorian_now() - RETENTION
    previous = gregorian(month_start(-1) + timedelta(days=3))
    for data in (
        {"folder": "new"},
        {"folder": "new", "timestamp": previous},
        {"folder": "saved", "timestamp": previous + 7},
        {"folder": "saved"},
        {"folder": "saved", "timestamp": cutoff + 600},  # inside, in the oldest (partial) month
        {"folder": "new", "timestamp": cutoff - 600},  # just outside retention: not counted
        {"folder": "deleted"},  # trash: not in messages, not in folders
    ):
        await new_message(api, busy["id"], **data)
    gone = await new_message(api, busy["id"])
    await api.delete(f"/vmboxes/{busy['id']}/messages/{gone['media_id']}")
    await new_message(api, trash_only["id"], folder="deleted")

    status, body = await api.get("/vmboxes")
    assert status == 200
    items = {item["id"]: item for item in body["data"]}
    assert items[busy["id"]]["messages"] == 5
    assert items[busy["id"]]["folders"] == {"new": 2, "saved": 3}
    assert items[quiet["id"]]["messages"] == 0 and "folders" not in items[quiet["id"]]
    # A box whose only message is in the trash has a count entry, so it shows folders (Kazoo does the same).
    assert items[trash_only["id"]]["messages"] == 0 and items[trash_only["id"]]["folders"] == {"new": 0, "saved": 0}


async def test_a_legacy_messages_array_adds_to_the_modb_counts(api: Api, store: CouchStore) -> None:
    """cb_vmboxes merge_summary_fold: ``messages`` = the legacy array's length + new + saved; ``folders`` only
    from the MODB counts."""
    box = await create_box(api)
    await new_message(api, box["id"], folder="new")
    await new_message(api, box["id"], folder="saved")
    doc = await store.get_doc(api.account.account.db, box["id"])
    doc["messages"] = [{"media_id": f"{n:032x}", "folder": "new", "timestamp": gregorian_now() - 60} for n in (1, 2, 3)]
    await store.put_doc(api.account.account.db, doc)
    _status, body = await api.get("/vmboxes")
    assert body["data"][0]["messages"] == 3 + 2
    assert body["data"][0]["folders"] == {"new": 1, "saved": 1}


async def test_counts_come_from_grouped_reduce_queries_not_message_rows(
    api: Api, store: CouchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = await create_box(api)
    for _ in range(12):
        await new_message(api, box["id"])
    queries: list[tuple[str, str, dict[str, Any]]] = []
    real_view = store.view

    async def view(db: str, design: str, name: str, **params: Any) -> Any:
        rows = await real_view(db, design, name, **params)
        queries.append((design, name, {**params, "rows": len(rows)}))
        return rows

    monkeypatch.setattr(store, "view", view)
    _status, body = await api.get("/vmboxes")
    assert body["data"][0]["messages"] == 12
    counting = [query for query in queries if query[0] != "vmboxes"]
    assert counting and all(design == "kazoo_vm_messages" for design, _, _ in counting)
    assert all(params.get("group_level") in (2, 4) for _, _, params in counting)
    assert sum(params["rows"] for _, _, params in counting) < 12  # grouped rows, not one per message


async def test_partial_month_counts_are_exact_whichever_way_they_are_computed(api: Api, store: CouchStore) -> None:
    """Counts of one MODB over many windows, through both plans (covered runs, or whole month minus the rest),
    against a count done by hand."""
    box = await create_box(api)
    start = month_start(-1)
    first, last = month_span(start.year, start.month)
    offsets = [0, 1, 3_599, 3_600, 36_000 + 15, 36_000 + 16, 9 * DAY, 9 * DAY + 7, 19 * DAY + DAY - 1]
    placed = []
    for number, offset in enumerate(offsets):
        folder = ("new", "saved", "deleted")[number % 3]
        await new_message(api, box["id"], timestamp=first + offset, folder=folder)
        placed.append((first + offset, folder))
    last_offset = last - first
    await new_message(api, box["id"], timestamp=last, folder="new")
    placed.append((last, "new"))
    db = naming.modb(api.account.id, start.year, start.month)
    windows = [
        (0, last_offset),
        (1, last_offset),
        (0, 36_000 + 15),
        (3_600, 9 * DAY + 6),
        (36_000 + 16, last_offset - 1),
    ]
    windows += [(5, last_offset - 5), (9 * DAY, 9 * DAY + 7), (last_offset, last_offset)]
    plans = set()
    for low_offset, high_offset in windows:
        low, high = first + low_offset, first + high_offset
        plans.add(plan(low, high, (first, last))[0])
        counted = await modb_counts(store, db, low, high, (first, last))
        expected = Counter((box["id"], folder) for stamp, folder in placed if low <= stamp <= high)
        assert counted == expected, (low_offset, high_offset)
    assert plans == {True, False}
