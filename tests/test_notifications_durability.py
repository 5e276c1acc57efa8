"""A process dying between the outbox write and the message write never loses an event for a change that happened,
and never delivers one for a change that did not: the event is written first, the message carries its token, and
a worker (of another process here) delivers it once the message shows the token, or removes it when the message
never does."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from helpers import Api, create_box, make_account
from message_support import fake_mp3, message_doc, new_message, put_message
from notify_fixtures import mailbox, receiver, settings
from notify_support import Receiver, items, settled

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import StorageUnreachable

__all__ = ["mailbox", "receiver", "settings"]

Client = Callable[..., Awaitable[TestClient[Any, Any]]]


@contextmanager
def dying(store: CouchStore, *, after_write: bool) -> Iterator[list[str]]:
    """The process dies at its next message write: before it reaches CouchDB, or right after CouchDB took it (the
    request is then never answered). Yields the ids of the messages whose write happened."""
    written: list[str] = []
    put_doc, bulk_docs = store.put_doc, store.bulk_docs

    async def put(db: str, doc: Any) -> str:
        if naming.database_class(db) != "modb":
            return await put_doc(db, doc)
        if not after_write:
            raise StorageUnreachable("the process died before the message write")
        await put_doc(db, doc)
        written.append(doc["_id"])
        raise StorageUnreachable("the process died after the message write")

    async def bulk(db: str, docs: Any) -> list[Any]:
        if naming.database_class(db) != "modb":
            return await bulk_docs(db, docs)
        if not after_write:
            raise StorageUnreachable("the process died before the message write")
        answers = await bulk_docs(db, docs)
        written.extend(str(answer["id"]) for answer in answers if "error" not in answer)
        raise StorageUnreachable("the process died after the message write")

    store.put_doc, store.bulk_docs = put, bulk  # type: ignore[method-assign]
    try:
        yield written
    finally:
        store.put_doc, store.bulk_docs = put_doc, bulk_docs  # type: ignore[method-assign]


async def create(api: Api, box_id: str, _: list[str]) -> int:
    status, _body = await put_message(api, box_id, {"caller_id_number": "+15550001"}, fake_mp3())
    return status


async def save_one(api: Api, box_id: str, messages: list[str]) -> int:
    status, _body = await api.post(f"/vmboxes/{box_id}/messages/{messages[0]}", {"folder": "saved"})
    return status


async def delete_one(api: Api, box_id: str, messages: list[str]) -> int:
    status, _body = await api.delete(f"/vmboxes/{box_id}/messages/{messages[0]}")
    return status


async def save_many(api: Api, box_id: str, messages: list[str]) -> int:
    status, _body = await api.post(f"/vmboxes/{box_id}/messages", {"messages": messages, "folder": "saved"})
    return status


OPERATIONS = {
    "create": (create, "voicemail_new"),
    "save": (save_one, "voicemail_saved"),
    "delete": (delete_one, "voicemail_deleted"),
    "bulk save": (save_many, "voicemail_saved"),
}


@pytest.mark.parametrize("after_write", [False, True], ids=["dies before the message write", "dies right after it"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_a_crash_between_the_two_writes_delivers_the_event_once_or_never(
    operation: str, after_write: bool, receiver: Receiver, settings: Settings, aiohttp_client: Client
) -> None:
    act, event = OPERATIONS[operation]
    writer = await aiohttp_client(create_app(dataclasses.replace(settings, notify_workers=0), sync_design_docs=False))
    api = Api(writer, await make_account(writer))
    status, body = await api.put(
        "/webhooks", {"name": "h", "uri": receiver.hook_url(), "hook": "notifications", "format": "json"}
    )
    assert status == 201, body
    box = await create_box(api, mailbox="6101")
    messages = [(await new_message(api, box["id"]))["media_id"] for _ in range(2)]
    with dying(writer.app[appkeys.STORE], after_write=after_write) as written:
        assert await act(api, box["id"], messages) >= 500
    await writer.close()

    # Another process, whose workers give an event one second to show on its message.
    deliverer = await aiohttp_client(
        create_app(dataclasses.replace(settings, notify_confirm_s=1.0), sync_design_docs=False)
    )
    store = deliverer.app[appkeys.STORE]
    done = await settled(store, settings.notifications_db)
    calls = [call for call in receiver.received if call.json()["Event-Name"] == event]
    announced = sorted(call.json()["Voicemail-ID"] for call in calls)
    if event == "voicemail_new":
        announced = [one for one in announced if one not in messages]
    if after_write:
        assert written and announced == sorted(written)  # once each
        for message_id in written:
            assert (await message_doc(store, api.account.id, message_id))["_id"] == message_id
    else:
        assert written == [] and announced == []
        # The event that waited for the write that never came is gone; nothing else is left undelivered.
        assert {item.state for item in done} == {"delivered"}
        events = [item.payload["message_id"] for item in done if item.kind == "event" and item.event == event]
        assert set(events) <= set(messages) and len(events) == (2 if event == "voicemail_new" else 0)
        for message_id in messages:
            folder = (await message_doc(store, api.account.id, message_id))["metadata"]["folder"]
            assert folder == "new"


async def test_a_create_refused_by_its_box_announces_no_new_message_and_leaves_no_event_behind(
    receiver: Receiver, settings: Settings, aiohttp_client: Client
) -> None:
    # The new message's event is recorded once the box is found, while the full-box count runs: a full box refuses
    # the create after the event was written, and the event, never confirmed by a message, is dropped. A missing
    # box records nothing.
    writer = await aiohttp_client(
        create_app(dataclasses.replace(settings, notify_workers=0, max_message_count=1), sync_design_docs=False)
    )
    api = Api(writer, await make_account(writer))
    status, body = await api.put(
        "/webhooks", {"name": "h", "uri": receiver.hook_url(), "hook": "notifications", "format": "json"}
    )
    assert status == 201, body
    box = await create_box(api, mailbox="6102")
    kept = (await new_message(api, box["id"]))["media_id"]
    status, body = await put_message(api, box["id"], {"caller_id_number": "+15550002"}, fake_mp3())
    assert status == 400, body
    status, body = await put_message(api, "0123456789abcdef0123456789abcdef", {}, fake_mp3())
    assert status == 404, body
    store = writer.app[appkeys.STORE]
    recorded = [item for item in await items(store, settings.notifications_db) if item.event == "voicemail_new"]
    refused = [item.payload["message_id"] for item in recorded if item.payload["message_id"] != kept]
    assert len(refused) == 1  # the full box's; the missing box recorded nothing

    deliverer = await aiohttp_client(
        create_app(dataclasses.replace(settings, notify_confirm_s=1.0), sync_design_docs=False)
    )
    done = await settled(deliverer.app[appkeys.STORE], settings.notifications_db)
    events = [call.json() for call in receiver.received]
    assert [event["Voicemail-ID"] for event in events if event["Event-Name"] == "voicemail_new"] == [kept]
    assert [event["Voicemail-Box"] for event in events if event["Event-Name"] == "voicemail_full"] == [box["id"]]
    new_events = [item for item in done if item.kind == "event" and item.event == "voicemail_new"]
    assert [item.payload["message_id"] for item in new_events] == [kept]  # the refused one's item is gone
    assert {item.state for item in done} == {"delivered"}
