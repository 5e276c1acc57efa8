#!/usr/bin/env python3
"""Benchmark: the message listings and the box listing against the bare CouchDB view queries they need.

Runs on each engine of ``bench/engines.py`` in turn (the bundled development server, and a real CouchDB 3 given by
``--couch-url``/``KAZOO_VM_TEST_COUCH_URL`` or started from ``--couchdb-kit``/``KAZOO_VM_COUCHDB_KIT``) with the
service in-process, fills two accounts with boxes and messages spread over the last three months (one MODB each),
and prints, in one table, per engine:

* per listing endpoint, its time through HTTP (envelope, paging, filters) next to the time of the bare view
  queries it needs, for the small and the large account;
* the box listing (``GET /vmboxes``, with counts from grouped ``_count`` views) for both sizes, next to
  Kazoo's way of counting (one row read per message, ``mailbox_messages/count_per_folder``).

Times are medians over ``--repeat`` runs, after one warm-up that builds the view indexes (reported apart).

    .venv/bin/python bench/bench_message_listing.py                   # 1,000 vs 10,000 messages
    KAZOO_VM_COUCHDB_KIT=../shared/couchdb/couchdb .venv/bin/python bench/bench_message_listing.py --large 50000

On the bundled development server most of the time goes into building PouchDB's view indexes, and a reduce
is computed by reading the index rows in range (CouchDB keeps reductions in the view B-tree instead); the "rows
CouchDB answers" lines show what the service itself has to handle.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engines
from aiohttp.test_utils import TestClient, TestServer

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import load_settings
from kazoo_vm.domain import accounts
from kazoo_vm.domain.messages import retention
from kazoo_vm.domain.messages.documents import new_message_doc
from kazoo_vm.model import BoxDoc, MessageDoc
from kazoo_vm.storage import messages as message_counts
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import DatabaseNotFound, StorageFault

DAY = 86_400
FOLDERS = ("new", "saved", "saved", "deleted")  # a realistic mix: more saved than new, a few in the trash


@dataclass
class BenchAccount:
    label: str
    messages: int
    account: accounts.Account
    token: str
    boxes: list[str]


async def fill(client: TestClient[Any, Any], store: CouchStore, label: str, messages: int, boxes: int) -> BenchAccount:
    """An account with ``boxes`` boxes (made through the API) and ``messages`` messages written in bulk."""
    account, _ = await accounts.create_account(store, name=f"bench {label}")
    token = client.app[appkeys.TOKENS].issue(account.id, None, "cb_api_auth")
    box_ids = []
    for number in range(boxes):
        response = await client.put(
            f"/v2/accounts/{account.id}/vmboxes",
            json={"data": {"name": f"box {number}", "mailbox": str(1000 + number)}},
            headers={"X-Auth-Token": token},
        )
        box_ids.append((await response.json())["data"]["id"])
    settings = client.app[appkeys.SETTINGS]
    audio = base64.b64encode(os.urandom(256)).decode()
    now = naming.now_gregorian()
    span = 85 * DAY  # three or four MODBs, all inside the 93-day retention
    by_db: dict[str, list[MessageDoc]] = defaultdict(list)
    for index in range(messages):
        timestamp = now - 60 - (index * span) // messages
        box = BoxDoc(_id=box_ids[index % boxes], mailbox=str(1000 + index % boxes))
        message_id = naming.message_id(timestamp)
        doc = new_message_doc(
            account_id=account.id,
            box=box,
            message_id=message_id,
            utc_seconds=timestamp,
            metadata={
                "caller_id_number": f"{5550000 + index % 97}",
                "caller_id_name": "Bench",
                "from": "5550000@bench.example",
                "to": f"{box['mailbox']}@bench.example",
                "call_id": f"call-{index}",
                "length": 3000,
                "timestamp": timestamp,
                "folder": FOLDERS[index % len(FOLDERS)],
            },
            attachment_name=f"{message_id[7:]}.mp3",
            default_timezone=settings.default_timezone,
        )
        doc["_attachments"] = {f"{message_id[7:]}.mp3": {"content_type": "audio/mpeg", "data": audio}}
        by_db[naming.message_db(account.id, message_id)].append(doc)
    for db, docs in by_db.items():
        await ensure_database(store, db, "modb")
        for start in range(0, len(docs), 1000):
            await store.bulk_docs(db, docs[start : start + 1000])
    return BenchAccount(label, messages, account, token, box_ids)


def window(store: CouchStore, settings: Any) -> tuple[int, int]:
    now = naming.now_gregorian()
    return retention.cutoff(settings, now), now


def months(low: int, high: int) -> list[tuple[int, int]]:
    return naming.months_between(naming.year_month(low), naming.year_month(high))


# -- the bare view queries each endpoint needs -------------------------------------------------------------------


async def view(store: CouchStore, db: str, design: str, name: str, **params: Any) -> list[Any]:
    """A view query; a MODB that was never created answers nothing (the endpoints skip it the same way)."""
    try:
        return await store.view(db, design, name, **params)
    except DatabaseNotFound:
        return []


async def bare_box_listing(store: CouchStore, settings: Any, bench: BenchAccount) -> int:
    """crossbar_listing plus the grouped count queries of every MODB in the window."""
    low, high = window(store, settings)
    queries: list[Awaitable[Any]] = [view(store, bench.account.db, "vmboxes", "crossbar_listing")]
    for year, month in months(low, high):
        db = naming.modb(bench.account.id, year, month)
        first, last = message_counts.month_span(year, month)
        whole, runs = message_counts.plan(max(low, first), min(high, last), (first, last))
        if whole:
            queries.append(view(store, db, "kazoo_vm_messages", "by_box_folder", group_level=2))
        for size, start, end in runs:
            queries.append(
                view(
                    store,
                    db,
                    "kazoo_vm_messages",
                    "by_period",
                    startkey=[size, start],
                    endkey=[size, end, {}],
                    group_level=4,
                )
            )
    return sum(len(rows) for rows in await asyncio.gather(*queries))


async def kazoo_style_counts(store: CouchStore, settings: Any, bench: BenchAccount) -> int:
    """Kazoo 4.3's kvm_messages:count/1: every row of count_per_folder, per folder, per MODB."""
    low, high = window(store, settings)
    queries = [
        view(
            store,
            naming.modb(bench.account.id, year, month),
            "mailbox_messages",
            "count_per_folder",
            startkey=[folder, high],
            endkey=[folder, low],
            descending=True,
        )
        for year, month in months(low, high)
        for folder in ("new", "saved", "deleted")
    ]
    return sum(len(rows) for rows in await asyncio.gather(*queries))


async def bare_box_page(
    store: CouchStore, settings: Any, bench: BenchAccount, page: int | None, docs: bool = False
) -> None:
    """listing_by_mailbox from the newest MODB on, as many rows as a page needs (all without a page)."""
    low, high = window(store, settings)
    box = bench.boxes[0]
    wanted = None if page is None else page + 1
    for year, month in months(low, high):
        rows = await view(
            store,
            naming.modb(bench.account.id, year, month),
            "mailbox_messages",
            "listing_by_mailbox",
            startkey=[box, high],
            endkey=[box, low],
            descending=True,
            limit=wanted,
            include_docs=docs or None,
        )
        if wanted is not None:
            wanted -= len(rows)
            if wanted <= 0:
                return


async def bare_account_page(store: CouchStore, settings: Any, bench: BenchAccount) -> None:
    low, high = window(store, settings)
    year, month = naming.year_month(high)
    await view(
        store,
        naming.modb(bench.account.id, year, month),
        "mailbox_messages",
        "listing_by_timestamp",
        startkey=[high, {}],
        endkey=[low],
        descending=True,
        limit=51,
    )


# -- measuring -------------------------------------------------------------------------------------------------------


async def median_ms(job: Callable[[], Awaitable[Any]], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await job()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def http(client: TestClient[Any, Any], bench: BenchAccount, path: str) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        response = await client.get(f"/v2/accounts/{bench.account.id}{path}", headers={"X-Auth-Token": bench.token})
        body = await response.json()
        assert response.status == 200, body
        return body

    return call


async def run(args: argparse.Namespace) -> None:
    results: list[tuple[str, Result]] = []
    with engines.engines(args) as found:
        for engine in found:
            print(f"-- {engine.name}", flush=True)
            settings = load_settings({}, couch_url=engine.url, data_dir=Path(tempfile.mkdtemp()))
            client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, sync_design_docs=False)))
            await client.start_server()
            try:
                results.append((engine.name, await measure(client, args)))
            finally:
                await client.close()
    report(results, args)


async def build_indexes(patient: CouchStore, settings: Any, bench: BenchAccount) -> None:
    """Query every view the endpoints use once, so the timed runs do not include building the indexes (that can
    take longer than the service's CouchDB timeout, hence a store without one)."""
    low, high = window(patient, settings)
    for year, month in months(low, high):
        db = naming.modb(bench.account.id, year, month)
        for design, name in (
            ("mailbox_messages", "listing_by_mailbox"),
            ("mailbox_messages", "listing_by_timestamp"),
            ("mailbox_messages", "count_per_folder"),
            ("kazoo_vm_messages", "by_box_folder"),
            ("kazoo_vm_messages", "by_period"),
        ):
            for attempt in range(10):
                try:
                    await view(patient, db, design, name, limit=1)
                    break
                except StorageFault:
                    # The development server gives up on a request after 120 s while the index keeps building.
                    if attempt == 9:
                        raise


async def measure(client: TestClient[Any, Any], args: argparse.Namespace) -> Result:
    store = client.app[appkeys.STORE]
    patient = CouchStore(client.app[appkeys.SETTINGS].couch_url or "", timeout_s=3600)
    settings = client.app[appkeys.SETTINGS]
    benches = []
    for label, count in (("small", args.small), ("large", args.large)):
        started = time.perf_counter()
        bench = await fill(client, store, label, count, args.boxes)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        await build_indexes(patient, settings, bench)
        print(f"{label}: {count:,} messages in {args.boxes} boxes written in {filled:.1f} s; "
              f"first queries (view indexes built) {time.perf_counter() - started:.1f} s")  # fmt: skip
        benches.append(bench)
    await patient.close()

    rows: list[tuple[str, list[float]]] = []
    box = "/vmboxes/{box}/messages"
    cases: list[tuple[str, Callable[[BenchAccount], Callable[[], Awaitable[Any]]]]] = [
        ("GET /vmboxes  (counts)", lambda b: http(client, b, "/vmboxes")),
        ("  bare: listing + grouped _count views", lambda b: lambda: bare_box_listing(store, settings, b)),
        ("  Kazoo's count: a row per message", lambda b: lambda: kazoo_style_counts(store, settings, b)),
        (f"GET {box}?page_size=50", lambda b: http(client, b, box.format(box=b.boxes[0]) + "?page_size=50")),
        ("  bare: listing_by_mailbox, limit 51", lambda b: lambda: bare_box_page(store, settings, b, 50)),
        (f"GET {box}?page_size=50&filter_folder=new",
         lambda b: http(client, b, box.format(box=b.boxes[0]) + "?page_size=50&filter_folder=new")),
        ("  bare: listing_by_mailbox + docs, limit 51", lambda b: lambda: bare_box_page(store, settings, b, 50, True)),
        (f"GET {box}?paginate=false", lambda b: http(client, b, box.format(box=b.boxes[0]) + "?paginate=false")),
        ("  bare: listing_by_mailbox, every MODB", lambda b: lambda: bare_box_page(store, settings, b, None)),
        ("GET /vmboxes/messages?page_size=50", lambda b: http(client, b, "/vmboxes/messages?page_size=50")),
        ("  bare: listing_by_timestamp, limit 51", lambda b: lambda: bare_account_page(store, settings, b)),
    ]  # fmt: skip
    for name, make in cases:
        rows.append((name, [await median_ms(make(bench), args.repeat) for bench in benches]))

    grouped = [await bare_box_listing(store, settings, bench) for bench in benches]
    kazoo = [await kazoo_style_counts(store, settings, bench) for bench in benches]
    return Result([bench.messages for bench in benches], rows, grouped, kazoo)


@dataclass
class Result:
    sizes: list[int]
    rows: list[tuple[str, list[float]]]
    grouped_rows: list[int]
    kazoo_rows: list[int]


def report(results: list[tuple[str, Result]], args: argparse.Namespace) -> None:
    """One table: a column per engine and account size."""
    if not results:
        return
    names = [name for name, _ in results[0][1].rows]
    width = max(len(name) for name in [*names, "rows CouchDB answers for the counts"])
    columns = [f"{engine} {size:,}" for engine, result in results for size in result.sizes]
    cell = max(14, *(len(column) for column in columns))
    print()
    print(f"{f'median of {args.repeat} runs, ms':<{width}}  " + "  ".join(f"{c:>{cell}}" for c in columns))
    for index, name in enumerate(names):
        values = [value for _, result in results for value in result.rows[index][1]]
        print(f"{name:<{width}}  " + "  ".join(f"{value:>{cell}.1f}" for value in values))
    picks: tuple[tuple[str, Callable[[Result], list[int]]], ...] = (
        ("rows CouchDB answers for the counts", lambda result: result.grouped_rows),
        ("rows for Kazoo-style counting", lambda result: result.kazoo_rows),
    )
    for label, pick in picks:
        values = [value for _, result in results for value in pick(result)]
        print(f"{label:<{width}}  " + "  ".join(f"{value:>{cell},}" for value in values))
    print()
    for engine, result in results:
        listing = dict(result.rows)["GET /vmboxes  (counts)"]
        page = dict(result.rows)["GET /vmboxes/{box}/messages?page_size=50"]
        small, large = result.sizes
        print(f"{engine}: box listing {listing[0]:.1f} ms with {small:,} messages, {listing[1]:.1f} ms with "
              f"{large:,} ({listing[1] / listing[0]:.2f}x for {large / small:.0f}x the messages); "
              f"50-message page {page[0]:.1f} ms vs {page[1]:.1f} ms")  # fmt: skip
    print("note: the development server (PouchDB) computes a reduce by reading the index rows in range at query\n"
          "time; CouchDB keeps reductions in its view B-tree, so there the grouped counts cost about the same for any\n"
          "number of messages. The rows answered above are what the service has to handle on either.")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000, help="messages in the small account (default 1,000)")
    parser.add_argument("--large", type=int, default=10_000, help="messages in the large account (default 10,000)")
    parser.add_argument("--boxes", type=int, default=10, help="boxes per account (default 10)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (default 5)")
    engines.add_arguments(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
