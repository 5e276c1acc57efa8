#!/usr/bin/env python3
"""Benchmark: memory of a ``kazoo-vm serve`` process while it streams a ZIP of 100 recordings of 1 MB each.

On each engine of ``bench/engines.py`` (the bundled development server, and a real CouchDB 3 given by
``--couch-url``/``KAZOO_VM_TEST_COUCH_URL`` or started from ``--couchdb-kit``/``KAZOO_VM_COUCHDB_KIT``): starts the
service as its own process, writes one box's messages with their audio straight into CouchDB (so the service
never holds an upload), then downloads ``POST /vmboxes/{box}/messages/raw`` (``Accept: application/zip``) and reads
the service's resident memory from ``/proc``: before the download, its peak during it (``VmHWM``, reset just before
through ``clear_refs``), and sampled every 20 ms. Linux only.

    KAZOO_VM_COUCHDB_KIT=../shared/couchdb/couchdb .venv/bin/python bench/bench_zip_memory.py
    .venv/bin/python bench/bench_zip_memory.py --messages 100 --audio-bytes 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import engines

from kazoo_vm.domain import accounts
from kazoo_vm.domain.messages.documents import new_message_doc
from kazoo_vm.model import BoxDoc, MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database

MB = 1024 * 1024


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_service(url: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAZOO_VM_COUCH_URL": url, "KAZOO_VM_PORT": str(port), "KAZOO_VM_DATA_DIR": str(data_dir)}
    env["KAZOO_VM_LOG_LEVEL"] = "WARNING"
    return subprocess.Popen(
        [sys.executable, "-m", "kazoo_vm.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def wait_until_serving(session: aiohttp.ClientSession, base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kazoo-vm serve exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            async with session.put(f"{base}/v2/api_auth", json={"data": {"api_key": "x"}}) as response:
                if response.status in (400, 401):
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("kazoo-vm serve did not answer within 60 s")


async def seed(store: CouchStore, account_id: str, box: BoxDoc, args: argparse.Namespace) -> list[str]:
    """``args.messages`` messages of ``box``, each with its own ``args.audio_bytes`` of audio, written in bulk."""
    now = naming.now_gregorian()
    ids: list[str] = []
    batch: list[MessageDoc] = []
    db = naming.message_db(account_id, naming.message_id(now))
    await ensure_database(store, db, "modb")
    for index in range(args.messages):
        message_id = naming.message_id(now - index)
        doc = new_message_doc(
            account_id=account_id,
            box=box,
            message_id=message_id,
            utc_seconds=now - index,
            metadata={"caller_id_number": f"{5550000 + index}", "timestamp": now - index, "folder": "new"},
            attachment_name=f"{message_id[7:]}.mp3",
            default_timezone="UTC",
        )
        audio = base64.b64encode(os.urandom(args.audio_bytes)).decode()
        doc["_attachments"] = {f"{message_id[7:]}.mp3": {"content_type": "audio/mpeg", "data": audio}}
        batch.append(doc)
        ids.append(message_id)
        if len(batch) == 10 or index == args.messages - 1:
            db = naming.message_db(account_id, message_id)
            await ensure_database(store, db, "modb")
            results = await store.bulk_docs(db, batch)
            assert all("error" not in result for result in results), results
            batch = []
    return ids


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    port = engines.free_port_pair()
    base = f"http://127.0.0.1:{port}"
    store = CouchStore(url, timeout_s=300)
    process = start_service(url, port, Path(tempfile.mkdtemp(prefix="kazoo-vm-bench-zip-")))
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            await wait_until_serving(session, base, process)
            account, api_key = await accounts.create_account(store, name="bench zip")
            async with session.put(f"{base}/v2/api_auth", json={"data": {"api_key": api_key}}) as response:
                token = (await response.json())["auth_token"]
            headers = {"X-Auth-Token": token}
            async with session.put(
                f"{base}/v2/accounts/{account.id}/vmboxes",
                json={"data": {"name": "zip box", "mailbox": "1000"}},
                headers=headers,
            ) as response:
                box = (await response.json())["data"]
            ids = await seed(store, account.id, {"_id": box["id"], "mailbox": "1000"}, args)

            Path(f"/proc/{process.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            before_kb = proc_status_kb(process.pid, "VmRSS")
            samples = [before_kb]
            received = 0
            head = b""
            started = time.perf_counter()
            async with session.post(
                f"{base}/v2/accounts/{account.id}/vmboxes/{box['id']}/messages/raw",
                json={"data": {"messages": ids}},
                headers={**headers, "Accept": "application/zip"},
            ) as response:
                assert response.status == 200, await response.text()
                last_sample = time.perf_counter()
                async for chunk in response.content.iter_chunked(256 * 1024):
                    if len(head) < 4:
                        head += chunk[:4]
                    received += len(chunk)
                    if time.perf_counter() - last_sample >= 0.02:
                        samples.append(proc_status_kb(process.pid, "VmRSS"))
                        last_sample = time.perf_counter()
            seconds = time.perf_counter() - started
            peak_kb = proc_status_kb(process.pid, "VmHWM")
            assert head[:4] == b"PK\x03\x04", head
            assert received >= args.messages * args.audio_bytes, received
            # The archive's own directory is checked on a second, small download (the big one was not kept).
            async with session.post(
                f"{base}/v2/accounts/{account.id}/vmboxes/{box['id']}/messages/raw",
                json={"data": {"messages": ids[:2]}},
                headers={**headers, "Accept": "application/zip"},
            ) as response:
                small = await response.read()
            with zipfile.ZipFile(io.BytesIO(small)) as archive:
                assert archive.testzip() is None and len(archive.namelist()) == 2
    finally:
        process.terminate()
        process.wait(timeout=30)
        await store.close()
    return {
        "zip_mb": received / MB,
        "seconds": seconds,
        "before_mb": before_kb / 1024,
        "peak_mb": peak_kb / 1024,
        "sampled_max_mb": max(samples) / 1024,
        "growth_mb": (peak_kb - before_kb) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100, help="recordings in the ZIP (default 100)")
    parser.add_argument("--audio-bytes", type=int, default=MB, help="bytes per recording (default 1 MiB)")
    engines.add_arguments(parser)
    args = parser.parse_args()
    results: list[tuple[str, dict[str, Any]]] = []
    with engines.engines(args) as found:
        for engine in found:
            print(f"-- {engine.name}", flush=True)
            results.append((engine.name, asyncio.run(measure(engine.url, args))))
    print(f"\nZIP of {args.messages} recordings x {args.audio_bytes:,} bytes, one kazoo-vm serve process")
    print(f"{'':40}" + "".join(f"{name:>16}" for name, _ in results))
    for key, label, unit in (
        ("zip_mb", "ZIP streamed", "MiB"),
        ("seconds", "download time", "s"),
        ("before_mb", "service RSS before the download", "MiB"),
        ("peak_mb", "service peak RSS during it (VmHWM)", "MiB"),
        ("sampled_max_mb", "highest RSS sampled every 20 ms", "MiB"),
        ("growth_mb", "peak minus before", "MiB"),
    ):
        print(f"{label + ' (' + unit + ')':40}" + "".join(f"{figures[key]:16.1f}" for _, figures in results))


if __name__ == "__main__":
    main()
