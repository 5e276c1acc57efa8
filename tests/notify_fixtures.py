"""Fixtures of the notification tests: settings with quick retries, a fresh outbox database per test, a running
HTTP receiver and SMTP server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from notify_support import Mailbox, Receiver, free_port, start_smtp

from kazoo_vm.config import Settings, load_settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{name}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    found.url = f"http://127.0.0.1:{port}"
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller, port = start_smtp(box)
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def settings(couch_url: str, tmp_path: Path, mailbox: tuple[Mailbox, int]) -> Settings:
    return load_settings(
        {},
        couch_url=couch_url,
        data_dir=tmp_path,
        notifications_db=f"kazoo_vm_notifications_{uuid.uuid4().hex[:12]}",
        notify_backoff_s=0.05,
        notify_backoff_max_s=0.2,
        notify_max_attempts=3,
        webhook_timeout_s=0.5,
        webhook_disable_after=3,
        smtp_url=f"smtp://127.0.0.1:{mailbox[1]}",
        smtp_from="voicemail@example.test",
    )
