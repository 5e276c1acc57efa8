#!/usr/bin/env python3
"""Benchmark: creating messages with and without notifications, and how long delivery takes.

Starts its own in-memory CouchDB development server, a local SMTP server (aiosmtpd) and a local webhook receiver
that answers each call after ``--receiver-delay`` seconds, then the service in-process with one delivery worker.
Creates ``--messages`` messages (``--concurrency`` at a time) in a box without any notification configured, then
as many in a box whose owner gets voicemail-to-email and whose account has a ``notifications`` webhook, and prints
in one run:

* messages created per second in each case (a create writes the message and one outbox item; it never waits on
  SMTP or the receiver, so the two rates should be close even with a slow receiver);
* the time from the first create until the last email and the last webhook call arrived;
* delivery throughput on its own: ``--backlog`` messages are created while no worker runs (a second service
  over the same CouchDB, with its own outbox and its workers off), then a service with one worker is started and
  the time until every email and webhook call of that backlog arrived is printed, as deliveries per second.

    .venv/bin/python bench/bench_notifications.py                  # 1,000 messages each
    .venv/bin/python bench/bench_notifications.py --messages 200   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller

from kazoo_vm import appkeys, devserver
from kazoo_vm.app import create_app
from kazoo_vm.config import load_settings
from kazoo_vm.domain import accounts
from kazoo_vm.observability import metrics
from kazoo_vm.storage import naming


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.last = 0.0

    def hit(self) -> None:
        self.count += 1
        self.last = time.perf_counter()


class SmtpSink:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.counter.hit()
        return "250 OK"


async def start_receiver(counter: Counter, delay_s: float) -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(delay_s)
        counter.hit()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook"


def multipart(audio: bytes) -> aiohttp.MultipartWriter:
    writer = aiohttp.MultipartWriter("mixed")
    writer.append('{"data": {"caller_id_number": "+15550000"}}', {"Content-Type": "application/json"})
    writer.append(audio, {"Content-Type": "audio/mpeg"})
    return writer


async def create_many(
    client: TestClient[Any, Any], account_id: str, headers: dict[str, str], box_id: str, count: int, concurrency: int
) -> float:
    """Create ``count`` messages; returns the seconds it took."""
    audio = b"ID3\x03\x00\x00\x00\x00\x00\x00" + os.urandom(1024)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)

    async def worker() -> None:
        while not queue.empty():
            queue.get_nowait()
            async with client.put(
                f"/v2/accounts/{account_id}/vmboxes/{box_id}/messages", data=multipart(audio), headers=headers
            ) as response:
                assert response.status == 201, await response.text()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def make_box(client: TestClient[Any, Any], account_id: str, headers: dict[str, str], **fields: Any) -> str:
    async with client.put(f"/v2/accounts/{account_id}/vmboxes", json={"data": fields}, headers=headers) as response:
        body = await response.json()
        assert response.status == 201, body
        return str(body["data"]["id"])


def couch_requests() -> dict[str, float]:
    """CouchDB requests this process made so far, by kind (the service's own request metrics)."""
    counts: dict[str, float] = {}
    for family in metrics.COUCH_REQUESTS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                kind = sample.labels["kind"]
                counts[kind] = counts.get(kind, 0) + sample.value
    return counts


async def drain_backlog(
    args: argparse.Namespace,
    settings: Any,
    client: TestClient[Any, Any],
    account_id: str,
    headers: dict[str, str],
    box_id: str,
    emails: Counter,
    calls: Counter,
) -> None:
    """Queue ``args.backlog`` messages with no worker running, then time one worker delivering them."""
    outbox = dataclasses.replace(settings, notifications_db=f"{settings.notifications_db}_backlog")
    queuing = TestClient(TestServer(create_app(dataclasses.replace(outbox, notify_workers=0))))
    await queuing.start_server()
    n = args.backlog
    try:
        await create_many(queuing, account_id, headers, box_id, n, args.concurrency)
    finally:
        await queuing.close()
    before_emails, before_calls = emails.count, calls.count
    requests_before = couch_requests()
    started = time.perf_counter()
    delivering = TestClient(TestServer(create_app(outbox)))
    await delivering.start_server()
    try:
        deadline = time.perf_counter() + args.timeout
        while (emails.count - before_emails < n or calls.count - before_calls < n) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        took = max(emails.last, calls.last) - started
        done = emails.count - before_emails + calls.count - before_calls
        print(f"backlog of {n} messages: {emails.count - before_emails} emails, {calls.count - before_calls} calls")
        print(f"backlog delivered in {took:7.1f} s: {done / took:6.1f} deliveries/s ({n / took:.1f} messages/s)")
        spent = {kind: count - requests_before.get(kind, 0) for kind, count in couch_requests().items()}
        shown = ", ".join(f"{kind} {count / n:.1f}" for kind, count in sorted(spent.items()) if count)
        print(f"CouchDB requests per message delivered: {sum(spent.values()) / n:.1f} ({shown})")
    finally:
        await delivering.close()


async def main(args: argparse.Namespace) -> None:
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache)
    emails, calls = Counter(), Counter()
    smtp_port = free_port()
    smtp = Controller(SmtpSink(emails), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    runner, hook_url = await start_receiver(calls, args.receiver_delay)
    try:
        settings = load_settings(
            {},
            couch_url=server.url,
            data_dir=Path(tempfile.mkdtemp()),
            sync_design_docs=False,
            max_message_count=0,
            smtp_url=f"smtp://127.0.0.1:{smtp_port}",
            smtp_from="voicemail@bench.test",
        )
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            store = client.app[appkeys.STORE]
            tokens = client.app[appkeys.TOKENS]
            quiet, _ = await accounts.create_account(store, name="Quiet")
            loud, _ = await accounts.create_account(store, name="Loud")
            quiet_headers = {"X-Auth-Token": tokens.issue(quiet.id, None, "cb_api_auth")}
            loud_headers = {"X-Auth-Token": tokens.issue(loud.id, None, "cb_api_auth")}
            quiet_box = await make_box(client, quiet.id, quiet_headers, name="Quiet", mailbox="100")
            owner = uuid.uuid4().hex
            await store.put_doc(
                naming.account_db(loud.id),
                {"_id": owner, "pvt_type": "user", "username": "o", "email": "owner@bench.test"},
            )
            loud_box = await make_box(client, loud.id, loud_headers, name="Loud", mailbox="200", owner_id=owner)
            async with client.put(
                f"/v2/accounts/{loud.id}/webhooks",
                json={"data": {"name": "bench", "uri": hook_url, "hook": "notifications", "format": "json"}},
                headers=loud_headers,
            ) as response:
                assert response.status == 201, await response.text()

            n = args.messages
            quiet_s = await create_many(client, quiet.id, quiet_headers, quiet_box, n, args.concurrency)
            started = time.perf_counter()
            loud_s = await create_many(client, loud.id, loud_headers, loud_box, n, args.concurrency)
            created_at = time.perf_counter()
            print(f"messages created without notifications: {n / quiet_s:8.1f}/s ({quiet_s:.1f} s for {n})")
            print(f"messages created with email + webhook:   {n / loud_s:8.1f}/s ({loud_s:.1f} s for {n})")
            print(f"deliveries done when the last create returned: {emails.count} emails, {calls.count} webhook calls")
            deadline = time.perf_counter() + args.timeout
            while (emails.count < n or calls.count < n) and time.perf_counter() < deadline:
                await asyncio.sleep(0.1)
            print(f"emails delivered: {emails.count}/{n}, webhook calls: {calls.count}/{n}")
            if emails.count and calls.count:
                print(f"last email      {emails.last - started:7.1f} s after the first create")
                print(f"last webhook    {calls.last - started:7.1f} s after the first create")
                print(f"delivery tail   {max(emails.last, calls.last) - created_at:7.1f} s after the last create")
            if args.backlog:
                await drain_backlog(args, settings, client, loud.id, loud_headers, loud_box, emails, calls)
        finally:
            await client.close()
    finally:
        await runner.cleanup()
        smtp.stop()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--receiver-delay", type=float, default=0.05, help="seconds the receiver takes per call")
    parser.add_argument("--timeout", type=float, default=600.0, help="longest wait for the deliveries")
    parser.add_argument("--backlog", type=int, default=500, help="messages queued with no worker, then delivered")
    asyncio.run(main(parser.parse_args()))
