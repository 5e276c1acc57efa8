"""Helpers for the notification tests (no tests here): a real HTTP receiver, a real SMTP server, waiting for the
outbox, and Kazoo's notification schemas."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web
from aiosmtpd.controller import Controller

from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.outbox import Item

SCHEMAS = Path(__file__).parent / "fixtures" / "kazoo_notifications"


def assert_kazoo_payload(payload: dict[str, Any]) -> None:
    """``payload`` is valid against Kazoo's schema of its Event-Name."""
    schema = json.loads((SCHEMAS / f"kapi.notifications.{payload['Event-Name']}.json").read_text())
    jsonschema.Draft4Validator(schema).validate(payload)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """An HTTP server that records every request; ``answers`` (status codes, or ``"hang"`` for no answer in
    time) are used in turn, then 200."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[int | str] = field(default_factory=list)
    hang_s: float = 2.0

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(
            Received(request.method, request.path, dict(request.query), dict(request.headers), await request.read())
        )
        answer = self.answers.pop(0) if self.answers else 200
        if answer == "hang":
            await asyncio.sleep(self.hang_s)
            answer = 200
        return web.Response(status=int(answer), text="ok")

    def hook_url(self, name: str = "hook") -> str:
        return f"{self.url}/{name}"

    def at(self, name: str) -> list[Received]:
        return [one for one in self.received if one.path == f"/{name}"]


@dataclass
class Mailbox:
    """What an SMTP server accepted (or, with ``refuse``, refused)."""

    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse: bool = False
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            self.refused += 1
            return "451 Requested action aborted: local error in processing"
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def start_smtp(mailbox: Mailbox) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


async def wait_for(check: Callable[[], Any], *, timeout_s: float = 15.0, what: str = "condition") -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def items(store: CouchStore, db: str, **criteria: Any) -> list[Item]:
    return await outbox.listing(store, db, **criteria)


async def settled(store: CouchStore, db: str, *, timeout_s: float = 15.0) -> list[Item]:
    """Every item once none is pending or claimed."""

    async def check() -> list[Item] | None:
        # One request, so one snapshot: an item cannot be missed while it moves from one state to the next.
        rows = await store.all_docs(db, include_docs=True)
        found = [Item.from_doc(row.doc) for row in rows if row.doc is not None and outbox.is_item(row.doc)]
        return found if found and all(item.state in ("delivered", "failed") for item in found) else None

    result: list[Item] = await wait_for(check, timeout_s=timeout_s, what="the outbox to settle")
    return result
