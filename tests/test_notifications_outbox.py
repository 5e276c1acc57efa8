"""The outbox: events are written before delivery, claimed by one worker at a time, taken over when a worker dies,
retried with growing pauses, survive a restart, and an operator can list and retry them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

import pytest
from aiohttp import web
from helpers import Api, create_box, make_account
from message_support import new_message
from notify_fixtures import mailbox, receiver, settings
from notify_support import Receiver, settled, wait_for

from kazoo_vm import appkeys, cli
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.events import MessageChange, MessageEvent
from kazoo_vm.notify import listener, payloads, queue, worker
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore

__all__ = ["mailbox", "receiver", "settings"]


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, sync_design_docs=False)


def db(api: Api) -> str:
    return str(api.client.app[appkeys.SETTINGS].notifications_db)


async def hook(api: Api, uri: str) -> None:
    status, body = await api.put("/webhooks", {"name": "h", "uri": uri, "hook": "notifications", "format": "json"})
    assert status == 201, body


def event(change: MessageChange, folder: str | None = None) -> MessageEvent:
    return MessageEvent(change, "a" * 32, "b" * 32, "202601-" + "c" * 32, folder=folder)


def test_which_events_are_notifications() -> None:
    assert payloads.notification_of(event(MessageChange.CREATED, "new")) == "voicemail_new"
    assert payloads.notification_of(event(MessageChange.COPIED, "new")) == "voicemail_new"
    assert payloads.notification_of(event(MessageChange.BOX_FULL)) == "voicemail_full"
    assert payloads.notification_of(event(MessageChange.FOLDER_CHANGED, "saved")) == "voicemail_saved"
    assert payloads.notification_of(event(MessageChange.FOLDER_CHANGED, "deleted")) == "voicemail_deleted"
    assert payloads.notification_of(event(MessageChange.DELETED, "deleted")) == "voicemail_deleted"
    assert payloads.notification_of(event(MessageChange.FOLDER_CHANGED, "new")) is None
    assert payloads.notification_of(event(MessageChange.MOVED, "new")) is None
    assert payloads.notification_of(event(MessageChange.MIGRATED, "new")) is None


def test_pauses_double_up_to_the_maximum_with_jitter() -> None:
    backoff = queue.Backoff(first_s=1.0, max_s=10.0)
    for attempts, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)):
        pauses = {backoff.pause(attempts) for _ in range(50)}
        assert all(base * 0.5 <= pause <= base * 1.5 for pause in pauses)
        assert len(pauses) > 1


async def test_of_two_claimers_of_one_revision_only_one_wins(store: CouchStore, settings: Settings) -> None:
    db_name = settings.notifications_db + "_claims"
    await outbox.prepare(store, db_name)
    item = queue.new_item("webhook", "a" * 32, "voicemail_new", {}, max_attempts=3, next_attempt_at=None)
    await outbox.add_all(store, db_name, [item])
    first, second = await outbox.read(store, db_name, item.id), await outbox.read(store, db_name, item.id)
    assert await queue.claim(store, db_name, first, "one", lease_s=60) is True
    assert await queue.claim(store, db_name, second, "two", lease_s=60) is False
    stored = await outbox.read(store, db_name, item.id)
    assert (stored.state, stored.claimed_by, stored.attempts) == ("claimed", "one", 1)
    # Claimed and leased: not due again until the lease runs out.
    assert await queue.claim(store, db_name, stored, "three", lease_s=60) is False
    stored.lease_until = time.time() - 1
    assert await outbox.save(store, db_name, stored)
    assert await queue.claim(store, db_name, stored, "three", lease_s=60) is True
    assert (await outbox.read(store, db_name, item.id)).attempts == 2


async def test_an_item_whose_worker_died_is_taken_over_when_its_lease_runs_out(
    api: Api, receiver: Receiver, settings: Settings, aiohttp_client: Any
) -> None:
    await hook(api, receiver.hook_url())
    store = api.client.app[appkeys.STORE]
    stuck = dataclasses.replace(settings, notifications_db=settings.notifications_db + "_stuck")
    await outbox.prepare(store, stuck.notifications_db)
    dead = queue.new_item("webhook", api.account.id, "voicemail_new", {"Event-Name": "voicemail_new"})
    dead.hook_id, dead.hook_account_id = (await api.get("/webhooks"))[1]["data"][0]["id"], api.account.id
    dead.max_attempts, dead.state, dead.claimed_by, dead.attempts = 3, "claimed", "a dead worker", 1
    dead.lease_until = time.time() + 1.0
    await outbox.add_all(store, stuck.notifications_db, [dead])

    await aiohttp_client(create_app(stuck, sync_design_docs=False))
    await wait_for(lambda: receiver.received, what="the taken-over delivery")
    (done,) = await settled(store, stuck.notifications_db)
    assert done.state == "delivered" and done.attempts == 2 and done.claimed_by != "a dead worker"


async def test_events_queued_while_no_worker_runs_are_delivered_after_a_restart(
    receiver: Receiver, settings: Settings, aiohttp_client: Any
) -> None:
    queuing = await aiohttp_client(create_app(dataclasses.replace(settings, notify_workers=0), sync_design_docs=False))
    api = Api(queuing, await make_account(queuing))
    await hook(api, receiver.hook_url())
    box = await create_box(api, mailbox="5101")
    message = await new_message(api, box["id"])
    store = queuing.app[appkeys.STORE]
    pending = await outbox.listing(store, settings.notifications_db, state="pending")
    assert [(item.kind, item.event) for item in pending] == [("event", "voicemail_new")]
    await queuing.close()
    assert receiver.received == []

    restarted = await aiohttp_client(create_app(settings, sync_design_docs=False))
    await wait_for(lambda: receiver.received, what="the delivery after the restart")
    assert receiver.received[0].json()["Voicemail-ID"] == message["media_id"]
    done = await settled(restarted.app[appkeys.STORE], settings.notifications_db)
    assert {item.state for item in done} == {"delivered"}


async def test_the_cli_lists_failed_items_and_retries_one(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.answers = [500] * 3
    await hook(api, receiver.hook_url())
    box = await create_box(api, mailbox="5102")
    await new_message(api, box["id"])
    store = api.client.app[appkeys.STORE]
    await settled(store, db(api))

    settings = api.client.app[appkeys.SETTINGS]
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", str(settings.couch_url))
    monkeypatch.setenv("KAZOO_VM_NOTIFICATIONS_DB", db(api))
    assert (
        await asyncio.to_thread(cli.main, ["notifications", "list", "--state", "failed", "--account", api.account.id])
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["kind"], line["state"], line["attempts"]) for line in lines] == [("webhook", "failed", 3)]
    assert lines[0]["last_error"] == "the receiver answered 500"
    assert await asyncio.to_thread(cli.main, ["notifications", "list", "--state", "failed", "--account", "f" * 32]) == 0
    assert capsys.readouterr().out == ""

    # Three failures in a row disabled the hook: the operator enables it again, then retries.
    status, body = await api.patch(f"/webhooks/{lines[0]['webhook_id']}", {"enabled": True})
    assert status == 200, body
    assert await asyncio.to_thread(cli.main, ["notifications", "retry", lines[0]["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "pending"
    await wait_for(lambda: len(receiver.received) == 4, what="the retried delivery")
    done = await settled(store, db(api))
    assert {item.state for item in done} == {"delivered"}
    assert await asyncio.to_thread(cli.main, ["notifications", "retry", "no-such-item"]) == 1


async def test_two_processes_over_one_couchdb_deliver_each_item_once(
    receiver: Receiver, settings: Settings, aiohttp_client: Any
) -> None:
    first = await aiohttp_client(create_app(settings, sync_design_docs=False))
    second = await aiohttp_client(create_app(settings, sync_design_docs=False))
    api = Api(first, await make_account(first))
    await hook(api, receiver.hook_url())
    box = await create_box(api, mailbox="5103")
    created = [(await new_message(api, box["id"]))["media_id"] for _ in range(8)]
    done = await settled(second.app[appkeys.STORE], settings.notifications_db)
    assert {item.state for item in done} == {"delivered"} and len(done) == 16
    assert sorted(call.json()["Voicemail-ID"] for call in receiver.received) == sorted(created)
    deliveries = [call.headers["X-Kazoo-VM-Delivery"] for call in receiver.received]
    assert len(set(deliveries)) == len(deliveries) == 8


async def test_a_backlog_larger_than_one_read_of_the_due_view_is_delivered_without_waiting_for_the_next_sweep(
    receiver: Receiver, settings: Settings, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queuing = await aiohttp_client(create_app(dataclasses.replace(settings, notify_workers=0), sync_design_docs=False))
    api = Api(queuing, await make_account(queuing))
    await hook(api, receiver.hook_url())
    box = await create_box(api, mailbox="5104")
    created = [(await new_message(api, box["id"]))["media_id"] for _ in range(5)]
    await queuing.close()
    await asyncio.sleep(listener.SETTLE_S + 0.2)  # every event is due when the worker starts

    # Two items per read of the due view: the worker must read it again at once, not five minutes later.
    monkeypatch.setattr(worker, "SWEEP_LIMIT", 2)
    delivering = await aiohttp_client(create_app(settings, sync_design_docs=False))
    await wait_for(lambda: len(receiver.received) == 5, timeout_s=15, what="the whole backlog")
    assert sorted(call.json()["Voicemail-ID"] for call in receiver.received) == sorted(created)
    done = await settled(delivering.app[appkeys.STORE], settings.notifications_db)
    assert {item.state for item in done} == {"delivered"}
