#!/usr/bin/env python3
"""Benchmark: the service's resident memory over a long run of mixed requests (a soak).

Starts ``kazoo-vm serve`` as its own process (as ``bench_fast_path.py`` does) over the bundled development server
or a real Apache CouchDB 3.5 (``--couch-url``, or a node started from ``../shared/couchdb/couchdb``), makes an
account, a box and one message per worker, then runs ``--concurrency`` workers for ``--seconds`` (default 600: ten
minutes), each looping over a mix of what clients do:

    GET box, GET message, folder change, GET raw audio (100 KB), GET /vmboxes (counts), a page of the box's
    messages, PUT a message with audio, DELETE it

Every ``--every`` seconds it prints the service process's resident memory (``VmRSS`` from ``/proc``), the
requests answered so far and their rate; at the end, RSS after the first interval (warm: caches, connection pools
and allocator arenas filled), at the end and at its highest, and the growth from warm to end.

    .venv/bin/python bench/bench_soak.py --engine real --couch-url http://admin:admin@127.0.0.1:5984
    .venv/bin/python bench/bench_soak.py --engine dev --seconds 60      # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fast_path import Fixture, check, multipart_message, prepare, real_engine, service
from engines import devserver_url

from kazoo_vm.storage.couch import CouchStore


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def one_round(session: aiohttp.ClientSession, f: Fixture, worker: int, folder: str) -> int:
    """One pass over the mix; returns the number of requests made."""
    box = f"{f.api}/v2/accounts/{f.account.id}/vmboxes/{f.box}"
    message = f"{box}/messages/{f.messages[worker]}"
    token = {"X-Auth-Token": f.token}
    async with session.get(box, headers=token) as response:
        await check(response, 200)
    async with session.get(message, headers=token) as response:
        await check(response, 200)
    async with session.post(message, json={"data": {"folder": folder}}, headers=token) as response:
        await check(response, 200)
    async with session.get(f"{message}/raw", headers=token) as response:
        await check(response, 200)
    async with session.get(f"{f.api}/v2/accounts/{f.account.id}/vmboxes", headers=token) as response:
        await check(response, 200)
    async with session.get(f"{box}/messages?page_size=20", headers=token) as response:
        await check(response, 200)
    created = await multipart_message(session, f"{box}/messages", f.token, {"folder": "new"})
    new_id = created["data"]["media_id"]
    async with session.delete(f"{box}/messages/{new_id}", headers=token) as response:
        await check(response, 200)
    return 8


async def soak(name: str, couch_url: str, args: argparse.Namespace) -> None:
    print(f"\n## {name}", flush=True)
    store = CouchStore(couch_url, timeout_s=120)
    try:
        with service(couch_url) as (api, pid):
            f = await prepare(api, couch_url, store, args.concurrency)
            started = time.perf_counter()
            stop = started + args.seconds
            done = 0
            samples: list[tuple[float, float]] = []

            async def worker(number: int) -> None:
                nonlocal done
                folders = ("saved", "new")
                connector = aiohttp.TCPConnector(limit=2)
                async with aiohttp.ClientSession(connector=connector) as session:
                    turn = 0
                    while time.perf_counter() < stop:
                        # Awaited first, then added: `done += await ...` would read `done` before the round and
                        # overwrite what the other workers added meanwhile.
                        made = await one_round(session, f, number, folders[turn % 2])
                        done += made
                        turn += 1

            async def sampler() -> None:
                print(f"  {'s':>6} {'requests':>9} {'req/s':>7} {'RSS MiB':>8}", flush=True)
                last_done, last_time = 0, started
                while True:
                    await asyncio.sleep(args.every)
                    now = time.perf_counter()
                    rss = rss_mib(pid)
                    samples.append((now - started, rss))
                    rate = (done - last_done) / (now - last_time)
                    last_done, last_time = done, now
                    print(f"  {now - started:6.0f} {done:9d} {rate:7.1f} {rss:8.1f}", flush=True)

            before = rss_mib(pid)
            watching = asyncio.create_task(sampler())
            await asyncio.gather(*(worker(number) for number in range(args.concurrency)))
            watching.cancel()
            end = rss_mib(pid)
            warm = samples[0][1] if samples else before
            highest = max([rss for _, rss in samples] + [end])
            print(
                json.dumps(
                    {
                        "requests": done,
                        "seconds": round(time.perf_counter() - started),
                        "rss_before_mib": round(before, 1),
                        "rss_warm_mib": round(warm, 1),
                        "rss_end_mib": round(end, 1),
                        "rss_max_mib": round(highest, 1),
                        "growth_warm_to_end_mib": round(end - warm, 1),
                    }
                ),
                flush=True,
            )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("dev", "real"), default="real", help="which CouchDB (default real)")
    parser.add_argument("--couch-url", help="a running CouchDB to use as the real engine (default: start one)")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long to run (default 600)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between RSS samples (default 30)")
    parser.add_argument("--concurrency", type=int, default=10, help="workers (default 10)")
    args = parser.parse_args()
    if args.engine == "dev":
        with devserver_url() as url:
            await soak("development server", url, args)
    else:
        with real_engine(args.couch_url) as url:
            await soak("Apache CouchDB 3.5", url, args)


if __name__ == "__main__":
    asyncio.run(main())
