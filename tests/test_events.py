"""The events seam: every message write announces what happened, through the listeners wired in create_app."""

from __future__ import annotations

import pytest
from aiohttp import web
from helpers import Api, create_box
from message_support import new_message
from migration_support import TIMEZONE, clean_box

from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.domain.legacy.outcomes import Options
from kazoo_vm.events import Events, MessageChange, MessageEvent
from kazoo_vm.migrate.driver import Selection, migrate
from kazoo_vm.storage.couch import CouchStore


class Heard:
    def __init__(self) -> None:
        self.events: list[MessageEvent] = []
        self.fail = False

    async def __call__(self, event: MessageEvent) -> None:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("a broken listener")

    def take(self) -> list[tuple[MessageChange, str, str, str | None, str | None]]:
        taken = [(e.change, e.box_id, e.message_id, e.previous_id, e.folder) for e in self.events]
        self.events.clear()
        return taken


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def app(settings: Settings, heard: Heard) -> web.Application:
    return create_app(settings, sync_design_docs=False, listeners=[heard])


async def test_create_folder_change_move_copy_and_delete_are_announced(api: Api, heard: Heard) -> None:
    box = await create_box(api, mailbox="3001")
    other = await create_box(api, name="Other", mailbox="3002")
    third = await create_box(api, name="Third", mailbox="3003")
    message = await new_message(api, box["id"])
    message_id = message["media_id"]
    assert heard.take() == [(MessageChange.CREATED, box["id"], message_id, None, "new")]

    status, _ = await api.post(f"/vmboxes/{box['id']}/messages/{message_id}", {"folder": "saved"})
    assert status == 200
    assert heard.take() == [(MessageChange.FOLDER_CHANGED, box["id"], message_id, None, "saved")]

    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{message_id}", {"source_id": other["id"]})
    assert status == 200, body
    moved_id = body["data"]["metadata"]["media_id"]
    assert heard.take() == [(MessageChange.MOVED, other["id"], moved_id, message_id, "new")]

    status, body = await api.post(
        f"/vmboxes/{other['id']}/messages/{moved_id}", {"source_id": [box["id"], third["id"]]}
    )
    assert status == 200, body
    copies = heard.take()
    assert [(change, box_id, previous) for change, box_id, _, previous, _ in copies] == [
        (MessageChange.COPIED, box["id"], moved_id),
        (MessageChange.COPIED, third["id"], moved_id),
    ]
    assert sorted(copy[2] for copy in copies) == sorted(body["data"]["succeeded"])

    status, _ = await api.delete(f"/vmboxes/{other['id']}/messages/{moved_id}")
    assert status == 200
    assert heard.take() == [(MessageChange.DELETED, other["id"], moved_id, None, "deleted")]

    status, body = await api.delete(f"/vmboxes/{box['id']}/messages")
    assert status == 200, body
    assert heard.take() == [(MessageChange.DELETED, box["id"], copies[0][2], None, "deleted")]


async def test_a_failing_listener_never_fails_the_request(api: Api, heard: Heard) -> None:
    box = await create_box(api, mailbox="3011")
    heard.fail = True
    message = await new_message(api, box["id"])
    assert [event.message_id for event in heard.events] == [message["media_id"]]


async def test_the_migrators_writes_are_announced(store: CouchStore, api: Api, heard: Heard) -> None:
    box_id = "e" * 32
    expected = await clean_box(store, api.account.id, box_id, 3)
    report = await migrate(
        store,
        Selection(account_ids=(api.account.id,)),
        Settings(default_timezone=TIMEZONE),
        options=Options(),
        events=Events([heard]),
    )
    assert report.ok
    announced = {(e.previous_id, e.message_id) for e in heard.events if e.change is MessageChange.MIGRATED}
    assert announced == set(expected.items())
    assert all(e.box_id == box_id and e.account_id == api.account.id for e in heard.events)
