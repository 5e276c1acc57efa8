#!/usr/bin/env python3
"""Benchmark: the legacy migrator against a raw CouchDB copy of the same data, on the same server, in one run.

Runs on each engine of ``bench/engines.py`` in turn (the bundled development server, and a real CouchDB 3 given by
``--couch-url``/``KAZOO_VM_TEST_COUCH_URL`` or started from ``--couchdb-kit``/``KAZOO_VM_COUCHDB_KIT``), fills one
account with legacy boxes (``messages`` arrays) and ``private_media`` documents holding audio, then measures:

* raw copy: ``_all_docs?include_docs&attachments=true`` of the media documents and ``_bulk_docs`` of documents
  carrying that audio into per-month scratch databases, with the same batch size and concurrency: the least
  work any migration must do;
* ``kazoo-vm migrate`` on the account (the same code path as the CLI);
* a rerun of the migrator, which finds nothing left to do.

    .venv/bin/python bench/bench_migration.py                      # 2,000 messages
    .venv/bin/python bench/bench_migration.py --messages 20000 --audio-bytes 32000
    KAZOO_VM_COUCHDB_KIT=../shared/couchdb/couchdb .venv/bin/python bench/bench_migration.py
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import os
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engines

from kazoo_vm.concurrency import gather_or_cancel
from kazoo_vm.config import Settings
from kazoo_vm.domain import accounts
from kazoo_vm.domain.legacy.outcomes import Options
from kazoo_vm.migrate.driver import Selection, migrate
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import query_view

FIRST_MONTH = (2016, 1)


def month_start(index: int) -> int:
    year, month = FIRST_MONTH
    month += index
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return naming.from_datetime(datetime(year, month, 1, tzinfo=UTC))


async def seed(store: CouchStore, account_id: str, args: argparse.Namespace) -> dict[str, list[str]]:
    """Legacy boxes and media documents; returns the legacy ids of each box."""
    db = naming.account_db(account_id)
    audio = base64.b64encode(os.urandom(args.audio_bytes)).decode()
    per_box: dict[str, list[str]] = defaultdict(list)
    media: list[JsonDict] = []
    entries: dict[str, list[JsonDict]] = defaultdict(list)
    per_box_count = -(-args.messages // args.boxes)
    for index in range(args.messages):
        box_id = f"legacybox{index % args.boxes:04d}"
        legacy_id = naming.new_doc_id()
        # A box's messages in time order (as 3.x appended them), spread evenly over the months.
        position = index // args.boxes
        timestamp = month_start(position * args.months // per_box_count) + 60 * position
        per_box[box_id].append(legacy_id)
        entries[box_id].append(
            {
                "media_id": legacy_id,
                "timestamp": timestamp,
                "folder": "new",
                "length": 5000,
                "from": "15554443344@bench.example",
                "to": "1001@bench.example",
                "caller_id_number": "15554443344",
                "caller_id_name": "Bench",
                "call_id": f"call-{index}",
            }
        )
        media.append(
            {
                "_id": legacy_id,
                "pvt_type": "private_media",
                "source_type": "voicemail",
                "source_id": box_id,
                "media_type": "mp3",
                "streamable": True,
                "utc_seconds": timestamp,
                "_attachments": {f"{legacy_id}.mp3": {"content_type": "audio/mpeg", "data": audio}},
            }
        )
        if len(media) >= 500:
            await store.bulk_docs(db, media)
            media = []
    if media:
        await store.bulk_docs(db, media)
    boxes = [
        {
            "_id": box_id,
            "pvt_type": "vmbox",
            "name": box_id,
            "mailbox": str(1000 + n),
            "messages": box_entries,
            "pvt_created": month_start(0),
            "pvt_modified": month_start(0),
        }
        for n, (box_id, box_entries) in enumerate(entries.items())
    ]
    await store.bulk_docs(db, boxes)
    # Kazoo's box listing keeps vmboxes/crossbar_listing built in a live system; build it here too.
    await query_view(store, db, "account", "vmboxes", "crossbar_listing", limit=1)
    return per_box


async def raw_copy(store: CouchStore, account_id: str, per_box: dict[str, list[str]], args: argparse.Namespace) -> int:
    """Read audio and write it into per-month scratch databases with _bulk_docs: the floor for any migrator."""
    source = naming.account_db(account_id)
    scratch = f"bench_raw_copy_{account_id}"
    for month in range(args.months):
        year, number = naming.year_month(month_start(month))
        await store.create_db(f"{scratch}-{year:04d}{number:02d}")
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for ids in per_box.values():
        for start in range(0, len(ids), args.batch_size):
            queue.put_nowait(ids[start : start + args.batch_size])
    copied = 0

    async def worker() -> None:
        nonlocal copied
        while not queue.empty():
            batch = queue.get_nowait()
            rows = await store.all_docs(source, keys=batch, include_docs=True, attachments=True)
            by_db: dict[str, list[JsonDict]] = defaultdict(list)
            for row in rows:
                assert row.doc is not None
                year, month = naming.year_month(int(row.doc["utc_seconds"]))
                by_db[f"{scratch}-{year:04d}{month:02d}"].append(
                    {"_id": row.doc["_id"], "_attachments": row.doc["_attachments"]}
                )
            for db, docs in by_db.items():
                results = await store.bulk_docs(db, docs)
                copied += sum(1 for result in results if "error" not in result)

    await gather_or_cancel(worker() for _ in range(args.workers))
    return copied


async def run(url: str, args: argparse.Namespace) -> tuple[float, float, float]:
    store = CouchStore(url, timeout_s=300)
    try:
        account, _ = await accounts.create_account(store, name="bench migration")
        started = time.perf_counter()
        per_box = await seed(store, account.id, args)
        seconds = time.perf_counter() - started
        print(
            f"seeded {args.messages} legacy messages ({args.audio_bytes} bytes of audio each) in {args.boxes} boxes "
            f"over {args.months} months in {seconds:.1f}s; batch {args.batch_size}, workers {args.workers}"
        )

        started = time.perf_counter()
        copied = await raw_copy(store, account.id, per_box, args)
        raw_s = time.perf_counter() - started
        assert copied == args.messages, copied

        options = Options(purge_legacy_media=False)
        settings = Settings(couch_url=url, default_timezone="UTC")
        run = functools.partial(
            migrate,
            store,
            Selection(account_ids=(account.id,)),
            settings,
            options=options,
            batch_size=args.batch_size,
            workers=args.workers,
        )
        started = time.perf_counter()
        report = await run()
        migrate_s = time.perf_counter() - started
        assert report.totals()["migrated"] == args.messages and report.ok, report.totals()

        started = time.perf_counter()
        rerun = await run()
        rerun_s = time.perf_counter() - started
        assert rerun.totals()["entries"] == 0, rerun.totals()

        return raw_s, migrate_s, rerun_s
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="legacy messages to migrate (default 2000)")
    parser.add_argument("--boxes", type=int, default=20, help="boxes they are spread over (default 20)")
    parser.add_argument("--months", type=int, default=6, help="months they are spread over (default 6)")
    parser.add_argument("--audio-bytes", type=int, default=8000, help="audio size per message (default 8000)")
    parser.add_argument("--batch-size", type=int, default=100, help="messages per batch (default 100)")
    parser.add_argument("--workers", type=int, default=10, help="concurrent boxes (default 10)")
    engines.add_arguments(parser)
    args = parser.parse_args()
    results: list[tuple[str, tuple[float, float, float]]] = []
    with engines.engines(args) as found:
        for engine in found:
            print(f"-- {engine.name}", flush=True)
            results.append((engine.name, asyncio.run(run(engine.url, args))))

    def line(label: str, cells: list[str]) -> None:
        print(f"{label:44}" + "".join(cells))

    print()
    line("", [f" {name + ' s':>16} {'msgs/s':>8}" for name, _ in results])
    for index, label in enumerate(("raw CouchDB copy (_all_docs + _bulk_docs)", "kazoo-vm migrate")):
        line(label, [f" {times[index]:16.2f} {args.messages / times[index]:8.0f}" for _, times in results])
    line("migrator / raw copy (throughput)", [f" {times[0] / times[1]:16.0%} {'':8}" for _, times in results])
    line("rerun of the migrator (nothing left to do)", [f" {times[2]:16.2f} {'':8}" for _, times in results])


if __name__ == "__main__":
    main()
