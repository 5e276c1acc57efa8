#!/usr/bin/env python3
"""Benchmark: single API requests under concurrency, against the bare CouchDB calls their work needs.

For each engine (the bundled development server, and a real Apache CouchDB 3.5 node started from
``../shared/couchdb/couchdb``, or one given with ``--couch-url``) it starts the service as its own process
(``kazoo-vm serve``, access log off), makes an account, boxes and messages, and drives, with an embedded load
generator (aiohttp, ``c`` workers looping), each request and the bare CouchDB requests that do its work, at every
concurrency of ``--concurrency``, each side for ``--seconds`` in all, interleaved in ``--rounds`` slices (service,
bare, bare, service, ...) so that load from elsewhere on the machine weighs on both alike:

* GET box                  vs one GET of the box document;
* GET message              vs one GET of the message document in its MODB;
* folder change            vs GET + PUT of the message document (each worker toggles new/saved on its own message);
* GET raw audio (100 KB)   vs one GET of the attachment;
* PUT message with audio   vs one PUT of the document with the same inline attachment (in a box of ``--small``
  messages, and again in a box of ``--large`` messages; then the two boxes against each other, interleaved too).
  The boxes are built once and found again by later runs on the same CouchDB (``--couch-url``).

It prints requests per second of both, their ratio and the service's CPU per request, then:

* the service CPU per token (``PUT /v2/api_auth``, the service process's user + system time over ``--tokens``
  sequential requests);
* the box listing with counts (``GET /vmboxes``) for an account of ``--small`` and of ``--large`` messages, median
  of ``--repeat``, and their ratio.

    .venv/bin/python bench/bench_fast_path.py                      # both engines, about 5 minutes
    .venv/bin/python bench/bench_fast_path.py --large 50000        # 1,000 vs 50,000 messages (longer)
    .venv/bin/python bench/bench_fast_path.py --engines dev        # the development server only
    .venv/bin/python bench/bench_fast_path.py --parts requests,put # skip the token and listing parts
    .venv/bin/python bench/bench_fast_path.py --service-tree /tmp/old  # serve another checkout (before/after)
    .venv/bin/python bench/bench_fast_path.py --profile /tmp/prof.txt  # the service under yappi (CPU clock)

The load generator shares the machine with the service and CouchDB: on a small machine the figures move with
whatever else runs; compare the ratios of one run, not the absolute figures of two.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines import devserver_url, single_node

from kazoo_vm.domain import accounts
from kazoo_vm.domain.messages.documents import new_message_doc
from kazoo_vm.model import JsonDict, MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, doc_path
from kazoo_vm.storage.design_docs import ensure_database
from kazoo_vm.storage.errors import NotFound
from kazoo_vm.storage.messages import COUNTS_DESIGN

ROOT = Path(__file__).resolve().parents[1]
COUCHDB_KIT = ROOT.parent / "shared" / "couchdb" / "couchdb"
AUDIO = os.urandom(100 * 1024)
AUDIO_B64 = base64.b64encode(AUDIO).decode()
DAY = 86_400

Call = Callable[[aiohttp.ClientSession, int], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- engines ----------------------------------------------------------------------------------------------------


@contextmanager
def real_engine(url: str | None) -> Iterator[str]:
    """The CouchDB at ``url``, or a single node of the CouchDB kit beside the project for this run."""
    if url:
        yield url
        return
    with single_node(str(COUCHDB_KIT)) as started:
        yield started


@contextmanager
def service(couch_url: str, profile: str | None = None, tree: Path = ROOT) -> Iterator[tuple[str, int]]:
    """``kazoo-vm serve`` as its own process; yields its base URL and pid. ``profile``: run it under yappi's CPU
    clock (``profiled_serve.py``), its functions by CPU written to that file when it stops. ``tree``: the source tree
    whose ``kazoo_vm`` serves (another checkout, to compare two versions with the same benchmark)."""
    port = free_port()
    env = {
        **os.environ,
        "KAZOO_VM_COUCH_URL": couch_url,
        "KAZOO_VM_PORT": str(port),
        "KAZOO_VM_LOG_LEVEL": "WARNING",
        "KAZOO_VM_SYNC_DESIGN_DOCS": "false",
        "KAZOO_VM_MAX_MESSAGE_COUNT": "100",
        # Notifications are queued (the outbox write is part of a request) but delivered by no one here: delivery
        # is not the answer's work (bench_notifications.py measures it).
        "KAZOO_VM_NOTIFY_WORKERS": "0",
    }
    command = [sys.executable, "-m", "kazoo_vm.cli", "serve"]
    if profile:
        command = [sys.executable, str(ROOT / "bench" / "profiled_serve.py"), str(Path(profile).resolve())]
    process = subprocess.Popen(command, env=env, cwd=tree, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process, "the service", timeout_s=60)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120 if profile else 15)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load generator -----------------------------------------------------------------------------------------


@dataclass
class Compared:
    ours: float  # requests per second
    theirs: float
    cpu_ms: float  # the service process's CPU per request of ours (when its pid is given)


async def compare(
    call: Call, bare: Call, concurrency: int, seconds: float, rounds: int, pid: int | None = None
) -> Compared:
    """Requests per second of ``call`` and of ``bare``, each run by ``concurrency`` workers for ``seconds`` in all,
    interleaved in ``rounds`` slices (service, bare, bare, service, ...) so that whatever else loads the machine
    meanwhile weighs on both sides alike; and the CPU the process ``pid`` spent per request of ``call``."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 2)) as ours,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 2)) as theirs,
    ):
        for worker in range(concurrency):  # warm-up: connections open, caches as a busy service has them
            await call(ours, worker)
            await bare(theirs, worker)
        done = {True: 0, False: 0}
        spent = {True: 0.0, False: 0.0}
        cpu = 0.0
        order = [side for number in range(rounds) for side in ((True, False) if number % 2 == 0 else (False, True))]
        for service_side in order:
            session, run = (ours, call) if service_side else (theirs, bare)
            cpu_before = cpu_seconds(pid) if pid and service_side else 0.0
            started = time.perf_counter()
            counts = await asyncio.gather(
                *(_loop(run, session, number, started + seconds / rounds) for number in range(concurrency))
            )
            spent[service_side] += time.perf_counter() - started
            done[service_side] += sum(counts)
            if pid and service_side:
                cpu += cpu_seconds(pid) - cpu_before
        return Compared(done[True] / spent[True], done[False] / spent[False], cpu * 1000 / max(done[True], 1))


async def _loop(run: Call, session: aiohttp.ClientSession, worker: int, stop: float) -> int:
    done = 0
    while time.perf_counter() < stop:
        await run(session, worker)
        done += 1
    return done


async def check(response: aiohttp.ClientResponse, *expected: int) -> bytes:
    body = await response.read()
    if response.status not in expected:
        raise RuntimeError(f"{response.method} {response.url} answered {response.status}: {body[:300]!r}")
    return body


# -- set-up -----------------------------------------------------------------------------------------------------


@dataclass
class Fixture:
    api: str
    couch: str
    couch_headers: dict[str, str]  # CouchDB's credentials, as a header
    account: accounts.Account
    token: str
    box: str
    messages: list[str]  # one per worker


def split(url: str) -> tuple[str, dict[str, str]]:
    parsed = URL(url)
    headers = {"Authorization": aiohttp.BasicAuth(parsed.user, parsed.password or "").encode()} if parsed.user else {}
    return str(parsed.with_user(None).with_password(None)).rstrip("/"), headers


async def multipart_message(session: aiohttp.ClientSession, url: str, token: str, data: JsonDict) -> JsonDict:
    writer = aiohttp.MultipartWriter("mixed")
    writer.append(json.dumps({"data": data}), {"Content-Type": "application/json"})
    writer.append(AUDIO, {"Content-Type": "audio/mpeg"})
    async with session.put(url, data=writer, headers={"X-Auth-Token": token}) as response:
        result: JsonDict = json.loads(await check(response, 201))
        return result


async def token_for(api: str, api_key: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{api}/v2/api_auth", json={"data": {"api_key": api_key}}) as response,
    ):
        token: str = json.loads(await check(response, 201))["auth_token"]
        return token


async def prepare(api: str, couch_url: str, store: CouchStore, workers: int) -> Fixture:
    account, api_key = await accounts.create_account(store, name="bench fast path")
    token = await token_for(api, api_key)
    async with aiohttp.ClientSession() as session:
        boxes = f"{api}/v2/accounts/{account.id}/vmboxes"
        async with session.put(
            boxes, json={"data": {"name": "bench", "mailbox": "1000", "timezone": "Europe/Paris"}},
            headers={"X-Auth-Token": token},
        ) as response:  # fmt: skip
            box = json.loads(await check(response, 201))["data"]["id"]
        messages = []
        for _ in range(workers):
            created = await multipart_message(session, f"{boxes}/{box}/messages", token, {"folder": "new"})
            messages.append(created["data"]["media_id"])
    couch, couch_headers = split(couch_url)
    return Fixture(api, couch, couch_headers, account, token, box, messages)


async def fill_box(
    store: CouchStore,
    account: accounts.Account,
    box_id: str,
    messages: int,
    folders: tuple[str, ...] = ("new", "saved", "deleted"),
) -> None:
    """``messages`` messages of ``box_id`` written in bulk (no audio), spread over the last 80 days, in
    ``folders`` in turn."""
    now = naming.now_gregorian()
    by_db: dict[str, list[MessageDoc]] = {}
    for index in range(messages):
        timestamp = now - 120 - (index * 80 * DAY) // messages
        message_id = naming.message_id(timestamp)
        doc = new_message_doc(
            account_id=account.id, box={"_id": box_id, "mailbox": "1000"}, message_id=message_id,
            utc_seconds=timestamp, metadata={"timestamp": timestamp, "folder": folders[index % len(folders)]},
            attachment_name=None, default_timezone="UTC",
        )  # fmt: skip
        by_db.setdefault(naming.message_db(account.id, message_id), []).append(doc)
    for db, docs in by_db.items():
        await ensure_database(store, db, "modb")
        for start in range(0, len(docs), 2000):
            await store.bulk_docs(db, docs[start : start + 2000])
        # Build the view indexes now (the first query waits for them), not inside a timed request.
        for view in ("by_box_folder", "by_period"):
            await store.view(db, COUNTS_DESIGN, view, limit=1, reduce=False)
        await store.view(db, "mailbox_messages", "listing_by_mailbox", limit=1)


# -- the requests -----------------------------------------------------------------------------------------------


def pairs(f: Fixture) -> list[tuple[str, Call, Call]]:
    account = f"{f.api}/v2/accounts/{f.account.id}/vmboxes/{f.box}"
    token = {"X-Auth-Token": f.token}
    box_doc = f.couch + doc_path(f.account.db, f.box)

    def message_doc(worker: int) -> str:
        message_id = f.messages[worker]
        return f.couch + doc_path(naming.message_db(f.account.id, message_id), message_id)

    folders: dict[int, str] = {}

    def toggled(worker: int) -> str:
        folders[worker] = "saved" if folders.get(worker, "new") == "new" else "new"
        return folders[worker]

    async def get_box(session: aiohttp.ClientSession, worker: int) -> None:
        async with session.get(account, headers=token) as response:
            await check(response, 200)

    async def bare_get_box(session: aiohttp.ClientSession, worker: int) -> None:
        async with session.get(box_doc, headers=f.couch_headers) as response:
            await check(response, 200)

    async def get_message(session: aiohttp.ClientSession, worker: int) -> None:
        async with session.get(f"{account}/messages/{f.messages[worker]}", headers=token) as response:
            await check(response, 200)

    async def bare_get_message(session: aiohttp.ClientSession, worker: int) -> None:
        async with session.get(message_doc(worker), headers=f.couch_headers) as response:
            await check(response, 200)

    async def change_folder(session: aiohttp.ClientSession, worker: int) -> None:
        body = {"data": {"folder": toggled(worker)}}
        async with session.post(f"{account}/messages/{f.messages[worker]}", json=body, headers=token) as response:
            await check(response, 200)

    async def bare_change_folder(session: aiohttp.ClientSession, worker: int) -> None:
        async with session.get(message_doc(worker), headers=f.couch_headers) as response:
            doc = json.loads(await check(response, 200))
        doc["metadata"]["folder"] = toggled(worker)
        async with session.put(message_doc(worker), json=doc, headers=f.couch_headers) as response:
            await check(response, 201, 202)

    async def get_audio(session: aiohttp.ClientSession, worker: int) -> None:
        async with session.get(f"{account}/messages/{f.messages[worker]}/raw", headers=token) as response:
            await check(response, 200)

    async def bare_get_audio(session: aiohttp.ClientSession, worker: int) -> None:
        message_id = f.messages[worker]
        async with session.get(f"{message_doc(worker)}/{message_id[7:]}.mp3", headers=f.couch_headers) as response:
            await check(response, 200)

    return [
        ("GET box", get_box, bare_get_box),
        ("GET message", get_message, bare_get_message),
        ("folder change", change_folder, bare_change_folder),
        ("GET raw audio 100 KB", get_audio, bare_get_audio),
    ]


def put_pair(f: Fixture, account_id: str, token: str, box: str) -> tuple[Call, Call]:
    """New messages go to the trash, so the box never fills up (Kazoo's limit: 100 new + saved) while the
    mailbox-full check still runs on every one."""
    url = f"{f.api}/v2/accounts/{account_id}/vmboxes/{box}/messages"

    async def put_message(session: aiohttp.ClientSession, worker: int) -> None:
        await multipart_message(session, url, token, {"folder": "deleted"})

    async def bare_put(session: aiohttp.ClientSession, worker: int) -> None:
        message_id = naming.message_id(naming.now_gregorian())
        doc = {
            "_id": message_id,
            "pvt_type": "mailbox_message",
            "source_id": box,
            "metadata": {"folder": "deleted", "timestamp": naming.now_gregorian()},
            "_attachments": {f"{message_id[7:]}.mp3": {"content_type": "audio/mpeg", "data": AUDIO_B64}},
        }
        url = f.couch + doc_path(naming.message_db(account_id, message_id), message_id)
        async with session.put(url, json=doc, headers=f.couch_headers) as response:
            await check(response, 201, 202)

    return put_message, bare_put


@dataclass
class BigBox:
    account_id: str
    api_key: str
    box: str


FIXTURES_DB = "kazoo_vm_bench_fixtures"


async def big_box(f: Fixture, store: CouchStore, size: int, mailbox: str) -> BigBox:
    """A box of ``size`` messages in the trash (not full by Kazoo's limit of 100 new + saved, but big), in an account
    of its own. Kept in the CouchDB, and found again by the next run on the same CouchDB (``--couch-url``): a box of
    50,000 messages takes minutes to write and index."""
    await store.create_db(FIXTURES_DB)
    marker = f"put-box-{size}"
    try:
        found = await store.get_doc(FIXTURES_DB, marker)
        return BigBox(found["account_id"], found["api_key"], found["box"])
    except NotFound:
        pass
    started = time.perf_counter()
    account, api_key = await accounts.create_account(store, name=f"bench box of {size}")
    token = await token_for(f.api, api_key)
    box = await new_box(f, account, token, mailbox)
    await fill_box(store, account, box, size, ("deleted",))
    await listing_time(f, account, token, 0)  # builds the count indexes
    await store.put_doc(FIXTURES_DB, {"_id": marker, "account_id": account.id, "api_key": api_key, "box": box})
    print(f"  (built a box of {size:,} messages in {time.perf_counter() - started:.0f} s)", flush=True)
    return BigBox(account.id, api_key, box)


async def listing_time(f: Fixture, account: accounts.Account, token: str, repeat: int) -> float:
    url = f"{f.api}/v2/accounts/{account.id}/vmboxes"
    times = []
    async with aiohttp.ClientSession(headers={"X-Auth-Token": token}) as session:
        for attempt in range(repeat + 1):
            started = time.perf_counter()
            async with session.get(url) as response:
                await check(response, 200)
            if attempt:  # the first one builds the view indexes
                times.append(time.perf_counter() - started)
    return statistics.median(times) if times else 0.0


async def new_box(f: Fixture, account: accounts.Account, token: str, mailbox: str) -> str:
    async with aiohttp.ClientSession(headers={"X-Auth-Token": token}) as session:
        url = f"{f.api}/v2/accounts/{account.id}/vmboxes"
        async with session.put(url, json={"data": {"name": f"box {mailbox}", "mailbox": mailbox}}) as response:
            box: str = json.loads(await check(response, 201))["data"]["id"]
            return box


# -- one engine ---------------------------------------------------------------------------------------------------


def row(label: str, *cells: str) -> None:
    print(f"  {label:<34}" + "".join(f"{cell:>14}" for cell in cells), flush=True)


@contextmanager
def profiled(pid: int, output: str | None) -> Iterator[None]:
    """py-spy recording the service process while the block runs (``--py-spy FILE``: collapsed stacks, one line per
    stack with its sample count, as flame-graph tools read them)."""
    if output is None:
        yield
        return
    spy = subprocess.Popen(
        [
            shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy",
            "record",
            "--pid",
            str(pid),
            "--output",
            output,
            "--rate",
            "200",
            "--format",
            "raw",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


async def run_engine(name: str, couch_url: str, args: argparse.Namespace) -> None:
    print(f"\n## {name}: {split(couch_url)[0]}", flush=True)
    store = CouchStore(couch_url, timeout_s=900)  # index builds of big boxes on a busy machine
    parts = args.parts
    try:
        with service(couch_url, args.profile, Path(args.service_tree).resolve()) as (api, pid):
            workers = max(args.concurrency)
            f = await prepare(api, couch_url, store, workers)
            row("request (requests/s)", *[f"c={c} svc/bare" for c in args.concurrency], "ratios", "svc CPU ms/req")

            async def measure(label: str, call: Call, bare: Call) -> None:
                cells, ratios, cpu = [], [], []
                for concurrency in args.concurrency:
                    got = await compare(call, bare, concurrency, args.seconds, args.rounds, pid)
                    cells.append(f"{got.ours:.0f}/{got.theirs:.0f}")
                    ratios.append(f"{got.ours / got.theirs:.2f}")
                    cpu.append(f"{got.cpu_ms:.2f}")
                row(label, *cells, " ".join(ratios), " ".join(cpu))

            with profiled(pid, args.py_spy):
                if "floor" in parts:
                    await measure_floor(f, args)
                if "requests" in parts:
                    for label, call, bare in pairs(f):
                        await measure(label, call, bare)
                if "put" in parts:
                    boxes = [await big_box(f, store, size, str(2001 + n)) for n, size in enumerate(sizes(args))]
                    puts = []
                    for size, big in zip(sizes(args), boxes, strict=True):
                        token = await token_for(api, big.api_key)
                        put, bare_put = put_pair(f, big.account_id, token, big.box)
                        puts.append(put)
                        await measure(f"PUT message+audio, box of {size:,}", put, bare_put)
                    # The two boxes against each other, interleaved: how much more a message costs in the big one.
                    cells, ratios = [], []
                    for concurrency in args.concurrency:
                        got = await compare(puts[0], puts[1], concurrency, args.seconds, args.rounds)
                        cells.append(f"{got.ours:.0f}/{got.theirs:.0f}")
                        ratios.append(f"{got.ours / got.theirs:.2f}")
                    row(f"PUT cost {args.large:,} vs {args.small:,} (rate small/large)", *cells, " ".join(ratios))
            if "tokens" in parts:
                before = cpu_seconds(pid)
                async with aiohttp.ClientSession() as session:
                    _, api_key = await accounts.create_account(store, name="bench tokens")
                    for _ in range(args.tokens):
                        async with session.put(f"{api}/v2/api_auth", json={"data": {"api_key": api_key}}) as response:
                            await check(response, 201)
                per_token = (cpu_seconds(pid) - before) / args.tokens
                print(f"  service CPU per api_auth token: {per_token * 1000:.1f} ms ({args.tokens} tokens)", flush=True)
            if "listing" in parts:
                listings = []
                for size in sizes(args):
                    account, api_key = await accounts.create_account(store, name=f"bench listing {size}")
                    token = await token_for(api, api_key)
                    box = await new_box(f, account, token, "1000")
                    await fill_box(store, account, box, size)
                    listings.append(await listing_time(f, account, token, args.repeat))
                print(
                    f"  GET /vmboxes with counts: {args.small:,} messages {listings[0] * 1000:.1f} ms, "
                    f"{args.large:,} messages {listings[1] * 1000:.1f} ms, ratio {listings[1] / listings[0]:.2f}",
                    flush=True,
                )
    finally:
        await store.close()


async def measure_floor(f: Fixture, args: argparse.Namespace) -> None:
    """``passthrough.py`` (one aiohttp hop that does nothing but forward a GET of the box document) against the bare
    GET, measured like the requests: the ratio no Python service built on aiohttp can beat on this machine."""
    port = free_port()
    box_doc = f.couch + doc_path(f.account.db, f.box)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "passthrough.py"), str(port), box_doc, *f.couch_headers.values()]
    )
    try:
        wait_for_port(port, process, "the passthrough hop", timeout_s=30)

        async def forwarded(session: aiohttp.ClientSession, worker: int) -> None:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                await check(response, 200)

        async def bare(session: aiohttp.ClientSession, worker: int) -> None:
            async with session.get(box_doc, headers=f.couch_headers) as response:
                await check(response, 200)

        cells, ratios, cpu = [], [], []
        for concurrency in args.concurrency:
            got = await compare(forwarded, bare, concurrency, args.seconds, args.rounds, process.pid)
            cells.append(f"{got.ours:.0f}/{got.theirs:.0f}")
            ratios.append(f"{got.ours / got.theirs:.2f}")
            cpu.append(f"{got.cpu_ms:.2f}")
        row("floor: bare aiohttp hop, GET box", *cells, " ".join(ratios), " ".join(cpu))
    finally:
        process.terminate()
        process.wait(timeout=15)


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout_s: float) -> None:
    """Until ``process`` accepts connections on ``port`` (a start-up of a second or two: a blocking wait)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def sizes(args: argparse.Namespace) -> tuple[int, int]:
    return args.small, args.large


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="dev,real", help="dev, real or both (default dev,real)")
    parser.add_argument("--couch-url", help="a running CouchDB to use as the real engine (default: start one)")
    parser.add_argument("--concurrency", default="1,10", help="concurrencies (default 1,10)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per side of each measurement (default 4)")
    parser.add_argument("--rounds", type=int, default=4, help="slices each measurement is interleaved in (default 4)")
    parser.add_argument(
        "--parts",
        default="floor,requests,put,tokens,listing",
        help="what to measure: floor, requests, put, tokens, listing (default all)",
    )
    parser.add_argument(
        "--service-tree",
        default=str(ROOT),
        help="serve the kazoo_vm of this source tree (e.g. an export of an older commit; default: this one)",
    )
    parser.add_argument("--profile", help="run the service under yappi (CPU clock); its profile goes to this file")
    parser.add_argument("--py-spy", help="record the service with py-spy into this file (collapsed stacks)")
    parser.add_argument("--small", type=int, default=1000, help="messages in the small box (default 1000)")
    parser.add_argument("--large", type=int, default=10000, help="messages in the large box (default 10000)")
    parser.add_argument("--tokens", type=int, default=100, help="api_auth tokens to time (default 100)")
    parser.add_argument("--repeat", type=int, default=7, help="box listings per size (default 7)")
    args = parser.parse_args()
    args.concurrency = [int(value) for value in args.concurrency.split(",")]
    engines = args.engines.split(",")
    if "dev" in engines:
        with devserver_url() as url:
            await run_engine("development server", url, args)
    if "real" in engines:
        with real_engine(args.couch_url) as url:
            await run_engine("Apache CouchDB 3.5", url, args)


if __name__ == "__main__":
    asyncio.run(main())
