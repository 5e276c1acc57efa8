#!/usr/bin/env python3
"""Benchmark: the whole-cluster costs at the size of a real Kazoo cluster, on a real Apache CouchDB 3.5.

Builds accounts the way the service does (account database, accounts document, one box, the current and two
previous months' MODBs with their design documents), then, at each size in turn (the same cluster grown), measures
(``--only`` picks some):

* a start-up after our design documents changed (the marker removed: a forced walk of every database) and an
  ordinary start-up (nothing changed): time to the first answer of GET /vmboxes, time to "sync done", CouchDB
  requests made until then, Python memory (peak RSS growth), GET /vmboxes latency while the sync runs and after,
  and their ratio;
* the migrator over every account: time to its first migrated message, its total, and a rerun with nothing to do;
* ``kazoo-vm modbs precreate`` of next month at a given rate;
* view index files per MODB on disk (when the bench started the CouchDB itself).

    .venv/bin/python bench/bench_scale.py                       # 250 and 1,000 accounts (1,000 and 4,000 dbs)
    .venv/bin/python bench/bench_scale.py --sizes 1000,3000     # 4,000 and 12,000 databases
    .venv/bin/python bench/bench_scale.py --couch-url http://admin:admin@127.0.0.1:5984   # a running CouchDB
    .venv/bin/python bench/bench_scale.py --data /dev/shm/scale --sizes 3000 --build-only  # build once, keep
    .venv/bin/python bench/bench_scale.py --data /dev/shm/scale --sizes 3000 --only sync,quiet  # reuse it

By default it starts a single node (q=1) of ``../shared/couchdb/couchdb`` in a temporary directory and stops it at
the end; with ``--data`` the node's data stays there for the next run (the node is stopped all the same). The
migrator gets a fresh legacy box in every 20th account before each of its measures, so a reused dataset gives it
work again. ``KAZOO_VM_BENCH_CODE=<dir>`` measures the ``kazoo_vm`` package found in that directory instead (an
older checkout), with this bench.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import dataclasses
import functools
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

sys.path.insert(0, os.environ.get("KAZOO_VM_BENCH_CODE") or str(Path(__file__).resolve().parents[1]))

from kazoo_vm import app as app_module
from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.domain import accounts
from kazoo_vm.domain.legacy.outcomes import Options
from kazoo_vm.events import Events, MessageChange, MessageEvent
from kazoo_vm.migrate.driver import Selection, migrate
from kazoo_vm.model import Document, JsonDict
from kazoo_vm.storage import couch as couch_module
from kazoo_vm.storage import design_sync, naming, rollover
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import DocumentNotFound

ROOT = Path(__file__).resolve().parents[1]
COUCHDB = ROOT.parent / "shared" / "couchdb" / "couchdb"


class Requests:
    """Counts every JSON request any CouchStore of this process makes, and apart those made by the start-up
    design-document sync (its task and the worker tasks it starts, which inherit its context)."""

    count = 0
    sync = 0
    in_sync: contextvars.ContextVar[bool] = contextvars.ContextVar("in_sync", default=False)

    @classmethod
    def install(cls) -> None:
        original = couch_module.CouchStore._json

        async def counted(self: CouchStore, method: str, path: str, **kwargs: Any) -> Any:
            if cls.in_sync.get():
                cls.sync += 1
            else:
                cls.count += 1
            return await original(self, method, path, **kwargs)

        couch_module.CouchStore._json = counted  # type: ignore[method-assign]
        # Document writes (the lease) do not go through _json.
        put = couch_module.CouchStore.put_doc

        async def counted_put(self: CouchStore, db: str, doc: Document) -> str:
            if cls.in_sync.get():
                cls.sync += 1
            else:
                cls.count += 1
            return await put(self, db, doc)

        couch_module.CouchStore.put_doc = counted_put  # type: ignore[method-assign]


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """Samples the process's RSS every 20 ms; ``growth_mb`` is the peak over the baseline."""

    def __init__(self) -> None:
        self.baseline = rss_kb()
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kb())
            await asyncio.sleep(0.02)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak = max(self.peak, rss_kb())
        return (self.peak - self.baseline) / 1024


def months_back(count: int) -> list[tuple[int, int]]:
    year, month = naming.year_month(naming.now_gregorian())
    months = [(year, month)]
    for _ in range(count - 1):
        year, month = naming.previous_month(year, month)
        months.append((year, month))
    return months


async def bounded(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> None:
    queue: asyncio.Queue[Callable[[], Awaitable[Any]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            await queue.get_nowait()()

    await asyncio.gather(*(worker() for _ in range(limit)))


async def build(store: CouchStore, count: int, start: int, months: int) -> list[str]:
    """``count`` more accounts with their databases; returns their ids."""
    made: list[str] = []

    async def one(index: int) -> None:
        account, _ = await accounts.create_account(store, name=f"scale {index}", realm=f"scale{index}.bench.example")
        db = naming.account_db(account.id)
        await store.bulk_docs(db, [{"_id": "box0", "pvt_type": "vmbox", "name": "box 0", "mailbox": "1000"}])
        for year, month in months_back(months):
            await ensure_database(store, naming.modb(account.id, year, month), "modb")
        # A live system keeps the box listing's index built (every GET /vmboxes reads it); build it here too.
        await store.view(db, "vmboxes", "crossbar_listing", limit=0)
        made.append(account.id)

    await bounded([functools.partial(one, index) for index in range(start, start + count)], 16)
    return made


async def seed_legacy(store: CouchStore, account_ids: list[str]) -> int:
    """A fresh legacy box of two messages with audio in every 20th account, for the migrator to migrate (so a
    reused dataset gives it work again); returns the number of legacy messages."""
    audio = base64.b64encode(os.urandom(2000)).decode()
    stamp = naming.now_gregorian() - 86400 * 400
    chosen = account_ids[::20]

    async def one(account_id: str) -> None:
        ids = [naming.new_doc_id() for _ in range(2)]
        entries = [
            {"media_id": legacy, "timestamp": stamp + n, "folder": "new", "length": 3000, "call_id": legacy}
            for n, legacy in enumerate(ids)
        ]
        box: JsonDict = {
            "_id": f"legacy-{naming.new_doc_id()[:12]}",
            "pvt_type": "vmbox",
            "name": "legacy",
            "mailbox": str(2000 + int(ids[0][:4], 16) % 7000),
            "messages": entries,
        }
        media: list[JsonDict] = [
            {
                "_id": legacy,
                "pvt_type": "private_media",
                "source_type": "voicemail",
                "source_id": box["_id"],
                "media_type": "mp3",
                "utc_seconds": stamp,
                "_attachments": {f"{legacy}.mp3": {"content_type": "audio/mpeg", "data": audio}},
            }
            for legacy in ids
        ]
        await store.bulk_docs(naming.account_db(account_id), [box, *media])

    await bounded([functools.partial(one, account_id) for account_id in chosen], 8)
    return 2 * len(chosen)


async def count_databases(store: CouchStore) -> int:
    count, after = 0, None
    while names := await store.all_dbs_page(after, 5000):
        count += len(names)
        after = names[-1]
    return count


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def start_up(settings: Settings, account_id: str, *, forced: bool) -> dict[str, float]:
    """Start the service in this process; measure until its design-document sync is done, then after."""
    store = CouchStore(str(settings.couch_url))
    if forced:
        try:
            marker = await store.get_doc(design_sync.MARKER_DB, design_sync.MARKER_ID)
            await store.delete_doc(design_sync.MARKER_DB, design_sync.MARKER_ID, marker["_rev"])
        except DocumentNotFound:
            pass  # no walk recorded yet
    await store.close()

    done = asyncio.Event()
    original = design_sync.sync_if_changed

    async def watched(*args: Any, **kwargs: Any) -> design_sync.SyncResult:
        Requests.in_sync.set(True)
        try:
            return await original(*args, **kwargs)
        finally:
            done.set()

    setattr(app_module, "sync_if_changed", watched)  # noqa: B010 - the bench watches the app's call
    memory = PeakRss()
    memory.start()
    before, before_sync = Requests.count, Requests.sync
    started = time.perf_counter()
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    serving = Requests.count - before  # the start-up's own requests, before the first GET /vmboxes
    try:
        token = client.app[appkeys.TOKENS].issue(account_id, None, "cb_api_auth")
        headers = {"X-Auth-Token": token}
        url = client.make_url(f"/v2/accounts/{account_id}/vmboxes")

        async def timed() -> float:
            t0 = time.perf_counter()
            # Through the client's session, not TestClient.get, which keeps every response until it is closed
            # (thousands here: megabytes that are the bench's, not the service's).
            async with client.session.get(url, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body
            return time.perf_counter() - t0

        await timed()
        first_answer = time.perf_counter() - started
        during: list[float] = []
        while not done.is_set():
            during.append(await timed())
        sync_done = time.perf_counter() - started
        requests = serving + Requests.sync - before_sync
        growth = await memory.stop()
        after = [await timed() for _ in range(max(50, min(len(during), 300)))]
    finally:
        await client.close()
        setattr(app_module, "sync_if_changed", original)  # noqa: B010
    return {
        "first_answer_s": first_answer,
        "sync_done_s": sync_done,
        "requests": requests,
        "rss_growth_mb": growth,
        "during_n": len(during),
        "during_median_ms": statistics.median(during) * 1000 if during else float("nan"),
        "during_p95_ms": percentile(during, 0.95) * 1000,
        "after_median_ms": statistics.median(after) * 1000,
        "after_p95_ms": percentile(after, 0.95) * 1000,
    }


async def vmboxes_requests(settings: Settings, account_id: str) -> int:
    """CouchDB requests one GET /vmboxes makes (subtracted from the start-up counts)."""
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, sync_design_docs=False)))
    await client.start_server()
    try:
        token = client.app[appkeys.TOKENS].issue(account_id, None, "cb_api_auth")
        before = Requests.count
        response = await client.get(f"/v2/accounts/{account_id}/vmboxes", headers={"X-Auth-Token": token})
        await response.read()
        return Requests.count - before
    finally:
        await client.close()


async def migrator(store: CouchStore, settings: Settings) -> dict[str, float]:
    first: list[float] = []
    started = time.perf_counter()

    async def heard(event: MessageEvent) -> None:
        if event.change is MessageChange.MIGRATED and not first:
            first.append(time.perf_counter() - started)

    memory = PeakRss()
    memory.start()
    report = await migrate(store, Selection(), settings, options=Options(), events=Events([heard]))
    total = time.perf_counter() - started
    growth = await memory.stop()
    started = time.perf_counter()
    rerun = await migrate(store, Selection(), settings, options=Options())
    rerun_s = time.perf_counter() - started
    return {
        "first_s": first[0] if first else float("nan"),
        "total_s": total,
        "migrated": report.totals()["migrated"],
        "rss_growth_mb": growth,
        "rerun_s": rerun_s,
        "rerun_entries": rerun.totals()["entries"],
    }


def index_files_per_modb(data_dir: Path | None) -> float:
    if data_dir is None:
        return float("nan")
    files = [path for path in data_dir.rglob("*.view")]
    modbs = {path.parent.parent.name for path in files if "-20" in str(path)}
    modb_files = [path for path in files if "-20" in str(path)]
    return len(modb_files) / len(modbs) if modbs else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


MEASURES = ("sync", "quiet", "migrate", "precreate")


def load_built(data_dir: Path | None) -> list[str]:
    listing = data_dir / "accounts.txt" if data_dir is not None else None
    return listing.read_text().split() if listing is not None and listing.is_file() else []


def save_built(data_dir: Path | None, built: list[str]) -> None:
    if data_dir is not None:
        (data_dir / "accounts.txt").write_text("\n".join(built) + "\n")


async def run(url: str, data_dir: Path | None, args: argparse.Namespace) -> None:
    Requests.install()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(size) for size in args.sizes.split(",")]
    measures = set(args.only.split(",")) if args.only else set(MEASURES)
    wanted: dict[str, Any] = {
        "couch_url": url,
        "default_timezone": "UTC",
        "retention_days": 93,
        "design_sync_workers": args.sync_workers,
        "design_sync_share": args.sync_share,
        "modb_precreate_rate": 0,
    }
    # Only the settings this version of the service has: the bench also measures older checkouts (PYTHONPATH).
    known = {item.name for item in dataclasses.fields(Settings)}
    settings = Settings(**{key: value for key, value in wanted.items() if key in known})
    store = CouchStore(url, timeout_s=300)
    results: dict[int, dict[str, float]] = {}
    built = load_built(data_dir)
    try:
        for size in sizes:
            started = time.perf_counter()
            if size > len(built):
                built += await build(store, size - len(built), len(built), args.months)
                save_built(data_dir, built)
            accounts_now = built[:size]
            databases = await count_databases(store)
            print(
                f"{size} accounts ready ({databases} databases) in {time.perf_counter() - started:.0f}s",
                flush=True,
            )
            if args.build_only:
                continue
            probe = accounts_now[0]
            row: dict[str, float] = {"databases": databases}
            per_get = await vmboxes_requests(settings, probe)
            row["get_requests"] = per_get
            if "sync" in measures:
                forced = await start_up(settings, probe, forced=True)
                forced["median_ratio"] = forced["during_median_ms"] / forced["after_median_ms"]
                forced["p95_ratio"] = forced["during_p95_ms"] / forced["after_p95_ms"]
                row |= {f"forced_{key}": value for key, value in forced.items()}
            if "quiet" in measures:
                quiet = await start_up(settings, probe, forced=False)
                row |= {f"quiet_{key}": value for key, value in quiet.items()}
            if "migrate" in measures:
                await seed_legacy(store, accounts_now)
                row |= {f"migrate_{key}": value for key, value in (await migrator(store, settings)).items()}
            if "precreate" in measures:
                year, month = rollover.next_month(*naming.year_month(naming.now_gregorian()))
                precreated = await rollover.precreate_modbs(store, year, month, rate=args.rate)
                row["precreate_s"] = precreated.seconds
                row["precreate_created"] = precreated.created
            row["index_files_per_modb"] = index_files_per_modb(data_dir)
            results[size] = row
            print(f"measured {size} accounts", flush=True)
    finally:
        await store.close()
    if results:
        print_table(results)


LABELS = [
    ("databases", "databases", "{:.0f}"),
    ("get_requests", "CouchDB requests per GET /vmboxes", "{:.0f}"),
    ("forced_first_answer_s", "forced sync start: first answer (s)", "{:.2f}"),
    ("forced_sync_done_s", "forced sync start: sync done (s)", "{:.1f}"),
    ("forced_requests", "forced sync start: CouchDB requests", "{:.0f}"),
    ("forced_rss_growth_mb", "forced sync start: peak RSS growth (MB)", "{:.1f}"),
    ("forced_during_median_ms", "GET /vmboxes during sync, median (ms)", "{:.1f}"),
    ("forced_during_p95_ms", "GET /vmboxes during sync, p95 (ms)", "{:.1f}"),
    ("forced_after_median_ms", "GET /vmboxes after sync, median (ms)", "{:.1f}"),
    ("forced_after_p95_ms", "GET /vmboxes after sync, p95 (ms)", "{:.1f}"),
    ("forced_median_ratio", "GET /vmboxes during / after sync, median", "{:.2f}"),
    ("forced_p95_ratio", "GET /vmboxes during / after sync, p95", "{:.2f}"),
    ("quiet_first_answer_s", "unchanged start: first answer (s)", "{:.2f}"),
    ("quiet_sync_done_s", "unchanged start: sync done (s)", "{:.2f}"),
    ("quiet_requests", "unchanged start: CouchDB requests", "{:.0f}"),
    ("quiet_rss_growth_mb", "unchanged start: peak RSS growth (MB)", "{:.1f}"),
    ("quiet_after_median_ms", "GET /vmboxes after start, median (ms)", "{:.1f}"),
    ("migrate_first_s", "migrator: first message migrated (s)", "{:.2f}"),
    ("migrate_total_s", "migrator: total (s)", "{:.1f}"),
    ("migrate_migrated", "migrator: messages migrated", "{:.0f}"),
    ("migrate_rss_growth_mb", "migrator: peak RSS growth (MB)", "{:.1f}"),
    ("migrate_rerun_s", "migrator rerun, nothing to do (s)", "{:.1f}"),
    ("precreate_s", "precreate next month (s)", "{:.1f}"),
    ("precreate_created", "precreate: databases created", "{:.0f}"),
    ("index_files_per_modb", "view index files per MODB", "{:.2f}"),
]


def print_table(results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    header = f"| {'accounts':44} | " + " | ".join(f"{size:>10,}" for size in sizes) + " |"
    print()
    print(header)
    print("|" + "-" * 46 + "|" + "|".join("-" * 12 for _ in sizes) + "|")
    for key, label, fmt in LABELS:
        cells = " | ".join(f"{fmt.format(results[size].get(key, float('nan'))):>10}" for size in sizes)
        print(f"| {label:44} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250,1000", help="account counts, smallest first (default 250,1000)")
    parser.add_argument("--months", type=int, default=3, help="MODBs per account (default 3)")
    parser.add_argument("--rate", type=float, default=100.0, help="precreate rate, databases a second (default 100)")
    parser.add_argument("--sync-workers", type=int, default=1, help="KAZOO_VM_DESIGN_SYNC_WORKERS (default 1)")
    parser.add_argument("--sync-share", type=float, default=0.5, help="KAZOO_VM_DESIGN_SYNC_SHARE (default 0.5)")
    parser.add_argument("--couch-url", help="a running CouchDB (default: start a node of ../shared/couchdb)")
    parser.add_argument(
        "--data",
        type=Path,
        help="keep the node's data in this directory and reuse it on the next run (accounts already built are kept;"
        " the node is stopped at the end, its data left): build a big dataset once, e.g. /dev/shm/kazoo-vm-scale",
    )
    parser.add_argument("--only", help=f"measure only these, comma-separated: {','.join(MEASURES)} (default all)")
    parser.add_argument("--build-only", action="store_true", help="build the accounts, measure nothing")
    args = parser.parse_args()
    if args.couch_url:
        asyncio.run(run(args.couch_url, None, args))
        return
    keep = args.data is not None
    data = args.data or Path(
        tempfile.mkdtemp(prefix="kazoo-vm-scale-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    )
    data.mkdir(parents=True, exist_ok=True)
    ini = data / "q1.ini"
    ini.write_text("[cluster]\nq = 1\n[couchdb]\nmax_dbs_open = 2000\n")
    port = int((data / "port").read_text()) if (data / "port").is_file() else free_port()
    (data / "port").write_text(str(port))
    url = (
        subprocess.run(
            [str(COUCHDB), "start", "--port", str(port), "--data", str(data / "node"), "--ini", str(ini)],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    try:
        asyncio.run(run(url, data, args))
    finally:
        subprocess.run([str(COUCHDB), "stop", "--data", str(data / "node")], check=False, capture_output=True)
        if not keep:
            subprocess.run(["rm", "-rf", str(data)], check=False)


if __name__ == "__main__":
    main()
