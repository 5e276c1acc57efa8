"""Voicemail-to-email over a real SMTP server started here: recipients, headers, bodies, the attached audio, and
the after-notify actions, which happen only once the server accepted the email."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import Api, create_box
from message_support import fake_mp3, message_doc, put_message, raw
from notify_fixtures import mailbox, receiver, settings
from notify_support import Mailbox, settled, wait_for

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.storage import naming

__all__ = ["mailbox", "receiver", "settings"]


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    return tmp_path / "templates"


@pytest.fixture
def app(settings: Settings, templates: Path) -> web.Application:
    return create_app(dataclasses.replace(settings, templates_dir=templates), sync_design_docs=False)


def db(api: Api) -> str:
    return str(api.client.app[appkeys.SETTINGS].notifications_db)


async def make_user(api: Api, email: str, **fields: Any) -> str:
    user_id = uuid.uuid4().hex
    doc = {"_id": user_id, "pvt_type": "user", "username": email, "email": email, "first_name": "Owner", **fields}
    await api.client.app[appkeys.STORE].put_doc(naming.account_db(api.account.id), doc)
    return user_id


async def leave_message(api: Api, box_id: str, audio: bytes, **data: Any) -> str:
    status, body = await put_message(api, box_id, data, audio)
    assert status == 201, body
    return str(body["data"]["media_id"])


async def folder_of(api: Api, box_id: str, message_id: str) -> str:
    doc = await message_doc(api.client.app[appkeys.STORE], api.account.id, message_id)
    assert doc["source_id"] == box_id
    return str(doc["metadata"]["folder"])


async def test_the_owner_and_the_notify_addresses_get_the_email_with_the_audio(
    api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    received, _ = mailbox
    owner = await make_user(api, "owner@example.test")
    box = await create_box(
        api, mailbox="4101", owner_id=owner, notify_email_addresses=["desk@example.test"], timezone="Europe/Paris"
    )
    audio = fake_mp3()
    message = await leave_message(api, box["id"], audio, caller_id_number="+15551234", caller_id_name="Alice")

    await wait_for(lambda: received.messages, what="the email")
    sender, recipients, mail = received.messages[0]
    assert sender == "voicemail@example.test"
    assert sorted(recipients) == ["desk@example.test", "owner@example.test"]
    assert mail["From"] == "voicemail@example.test" and mail["Message-ID"]
    assert mail["Subject"] == "New voicemail from Alice (+15551234)"
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Caller ID: Alice (+15551234)" in text.get_content()
    assert "Mailbox: VMBox 0 (4101)" in text.get_content()
    assert "<td>Alice (+15551234)</td>" in html.get_content()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_content_type() == "audio/mpeg"
    assert attachment.get_payload(decode=True) == audio
    response, _ = await raw(api, "GET", f"/vmboxes/{box['id']}/messages/{message}/raw")
    assert f"filename={attachment.get_filename()}" in response.headers["Content-Disposition"]
    done = await settled(api.client.app[appkeys.STORE], db(api))
    assert [item.state for item in done if item.kind == "email"] == ["delivered"]
    assert await folder_of(api, box["id"], message) == "new"  # no after-notify action configured


async def test_an_owner_without_vm_to_email_and_no_audio_wanted(api: Api, mailbox: tuple[Mailbox, int]) -> None:
    received, _ = mailbox
    owner = await make_user(api, "owner@example.test", vm_to_email_enabled=False)
    box = await create_box(
        api,
        mailbox="4102",
        owner_id=owner,
        notify_email_addresses=["desk@example.test"],
        include_message_on_notify=False,
    )
    await leave_message(api, box["id"], fake_mp3())
    await wait_for(lambda: received.messages, what="the email")
    _, recipients, mail = received.messages[0]
    assert recipients == ["desk@example.test"]
    assert list(mail.iter_attachments()) == []


async def test_no_recipient_means_no_email(api: Api, mailbox: tuple[Mailbox, int]) -> None:
    received, _ = mailbox
    box = await create_box(api, mailbox="4103")
    await leave_message(api, box["id"], fake_mp3())
    done = await settled(api.client.app[appkeys.STORE], db(api))
    assert [item.kind for item in done] == ["event"] and received.messages == []


async def test_save_after_notify_wins_over_delete_after_notify(api: Api, mailbox: tuple[Mailbox, int]) -> None:
    box = await create_box(
        api,
        mailbox="4104",
        notify_email_addresses=["desk@example.test"],
        save_after_notify=True,
        delete_after_notify=True,
    )
    message = await leave_message(api, box["id"], fake_mp3())
    await settled(api.client.app[appkeys.STORE], db(api))
    assert mailbox[0].messages
    assert await folder_of(api, box["id"], message) == "saved"


async def test_delete_after_notify_soft_deletes_once_the_email_was_accepted(
    api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box = await create_box(api, mailbox="4105", notify_email_addresses=["desk@example.test"], delete_after_notify=True)
    message = await leave_message(api, box["id"], fake_mp3())
    done = await settled(api.client.app[appkeys.STORE], db(api))
    assert mailbox[0].messages
    assert await folder_of(api, box["id"], message) == "deleted"
    # The deletion is itself announced, with Kazoo's reason.
    deleted = [item for item in done if item.kind == "event" and item.event == "voicemail_deleted"]
    assert [item.payload["reason"] for item in deleted] == ["delete_after_notify"]


async def test_a_refusing_server_is_retried_then_failed_and_the_message_stays_new(
    api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    received, _ = mailbox
    received.refuse = True
    box = await create_box(api, mailbox="4106", notify_email_addresses=["desk@example.test"], delete_after_notify=True)
    message = await leave_message(api, box["id"], fake_mp3())
    done = await settled(api.client.app[appkeys.STORE], db(api))
    (email,) = [item for item in done if item.kind == "email"]
    assert email.state == "failed" and email.attempts == 3 and "451" in (email.last_error or "")
    assert received.refused == 3 and received.messages == []
    assert await folder_of(api, box["id"], message) == "new"


async def test_an_unreachable_server_fails_the_same_way(
    api: Api, mailbox: tuple[Mailbox, int], settings: Settings, aiohttp_client: Any
) -> None:
    from notify_support import free_port

    nowhere = dataclasses.replace(
        settings, smtp_url=f"smtp://127.0.0.1:{free_port()}", notifications_db=f"{settings.notifications_db}_nowhere"
    )
    other = Api(await aiohttp_client(create_app(nowhere, sync_design_docs=False)), api.account)
    box = await create_box(other, mailbox="4107", notify_email_addresses=["desk@example.test"], save_after_notify=True)
    message = await leave_message(other, box["id"], fake_mp3())
    done = await settled(other.client.app[appkeys.STORE], db(other))
    assert [item.state for item in done if item.kind == "email"] == ["failed"]
    assert await folder_of(other, box["id"], message) == "new"


async def test_an_operator_template_overrides_the_bundled_one(
    api: Api, mailbox: tuple[Mailbox, int], templates: Path
) -> None:
    templates.mkdir()
    (templates / "voicemail_to_email.subject").write_text("Voicemail for box $vmbox_number from $caller_id_name_number")
    box = await create_box(api, mailbox="4108", notify_email_addresses=["desk@example.test"])
    await leave_message(api, box["id"], fake_mp3(), caller_id_number="+1999")
    await wait_for(lambda: mailbox[0].messages, what="the email")
    mail = mailbox[0].messages[0][2]
    assert mail["Subject"] == "Voicemail for box 4108 from anonymous (+1999)"
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None and "New Voicemail Message" in text.get_content()  # the bundled text body


async def test_a_full_box_emails_its_owner_and_addresses_with_teletypes_voicemail_full(
    api: Api, mailbox: tuple[Mailbox, int], settings: Settings, aiohttp_client: Any
) -> None:
    received, _ = mailbox
    # teletype_voicemail_full does not ask the owner whether they want voicemail emails.
    owner = await make_user(api, "owner@example.test", vm_to_email_enabled=False)
    box = await create_box(api, name="Front Desk", mailbox="4109", owner_id=owner, notify_email_addresses=["d@x.test"])
    small = create_app(dataclasses.replace(settings, max_message_count=1), sync_design_docs=False)
    other = Api(await aiohttp_client(small), api.account)
    await leave_message(other, box["id"], fake_mp3())
    status, body = await put_message(other, box["id"], {}, fake_mp3())
    assert status == 400, body
    await wait_for(lambda: len(received.messages) == 2, what="the new message's and the full box's emails")
    (full,) = [mail for _, to, mail in received.messages if "full" in str(mail["Subject"])]
    assert full["Subject"] == "Voicemail box 'Front Desk' is full"
    assert sorted(full["To"].split(", ")) == ["d@x.test", "owner@example.test"]
    text = full.get_body(preferencelist=("plain",))
    assert text is not None and "Front Desk (4109) holds 1 messages, its limit of 1" in text.get_content()
    assert list(full.iter_attachments()) == []


async def test_deleted_messages_are_emailed_only_when_switched_on(
    api: Api, mailbox: tuple[Mailbox, int], settings: Settings, aiohttp_client: Any
) -> None:
    received, _ = mailbox
    box = await create_box(api, mailbox="4110", notify_email_addresses=["desk@example.test"])
    quiet = await leave_message(api, box["id"], fake_mp3())
    status, _ = await api.delete(f"/vmboxes/{box['id']}/messages/{quiet}")
    assert status == 200
    await settled(api.client.app[appkeys.STORE], db(api))
    assert [str(mail["Subject"]) for _, _, mail in received.messages] == ["New voicemail from anonymous"]

    loud = dataclasses.replace(settings, email_voicemail_deleted=True, notifications_db=f"{db(api)}_deleted")
    other = Api(await aiohttp_client(create_app(loud, sync_design_docs=False)), api.account)
    audio = fake_mp3()
    message = await leave_message(other, box["id"], audio, caller_id_number="+1555")
    await wait_for(lambda: len(received.messages) == 2, what="the second new message's email")
    status, _ = await other.delete(f"/vmboxes/{box['id']}/messages/{message}")
    assert status == 200
    await wait_for(lambda: len(received.messages) == 3, what="the deleted message's email")
    _, to, mail = received.messages[2]
    assert to == ["desk@example.test"] and mail["Subject"] == "Voicemail from anonymous (+1555) was deleted"
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None and "was deleted due to crossbar action (webhook)." in " ".join(text.get_content().split())
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_payload(decode=True) == audio


@pytest.mark.parametrize("wanted", [True, False])
async def test_the_transcription_is_in_the_email_when_the_box_wants_it(
    wanted: bool, api: Api, mailbox: tuple[Mailbox, int], settings: Settings, aiohttp_client: Any
) -> None:
    received, _ = mailbox
    box = await create_box(
        api, mailbox="4111", notify_email_addresses=["desk@example.test"], include_transcription_on_notify=wanted
    )
    # The message is written by a process without workers, transcribed (Kazoo's ASR keeps its answer at the top
    # of the document), then a process with workers sends the email.
    apart = dataclasses.replace(settings, notifications_db=f"{db(api)}_asr")
    quiet = dataclasses.replace(apart, notify_workers=0)
    writer = Api(await aiohttp_client(create_app(quiet, sync_design_docs=False)), api.account)
    message = await leave_message(writer, box["id"], fake_mp3())
    store = api.client.app[appkeys.STORE]
    doc = await message_doc(store, api.account.id, message)
    doc["transcription"] = {"result": "success", "text": "Call me back <soon>, please."}
    await store.put_doc(naming.message_db(api.account.id, message), doc)
    await aiohttp_client(create_app(apart, sync_design_docs=False))

    await wait_for(lambda: received.messages, what="the email")
    mail = received.messages[0][2]
    text, html = mail.get_body(preferencelist=("plain",)), mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    if wanted:
        assert "=== Transcription ===\n\nCall me back <soon>, please.\n" in text.get_content().replace("\r\n", "\n")
        assert "<p>Call me back &lt;soon&gt;, please.</p>" in html.get_content()
    else:
        assert "Transcription" not in text.get_content() and "Call me back" not in html.get_content()
