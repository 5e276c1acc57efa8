"""Webhooks: Kazoo's API for them, and notifications delivered to them durably, signed, retried and never to
another account's hook."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers import Api, create_box, make_account
from message_support import new_message
from notify_fixtures import mailbox, receiver, settings
from notify_support import Receiver, assert_kazoo_payload, items, settled, wait_for
from prometheus_client import REGISTRY

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.notify import signing
from kazoo_vm.storage import naming

__all__ = ["mailbox", "receiver", "settings"]


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, sync_design_docs=False)


def db(api: Api) -> str:
    return str(api.client.app[appkeys.SETTINGS].notifications_db)


def documented_verifier() -> Callable[..., bool]:
    """The verification snippet of docs/webhooks.md, run as a receiver would."""
    text = (Path(__file__).parents[1] / "docs" / "webhooks.md").read_text()
    code = text.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


async def create_hook(api: Api, uri: str, **fields: Any) -> dict[str, Any]:
    data = {"name": "vm", "uri": uri, "hook": "notifications", "http_verb": "post", "format": "json", **fields}
    status, body = await api.put("/webhooks", data)
    assert status == 201, body
    hook: dict[str, Any] = body["data"]
    return hook


async def test_a_hook_is_stored_as_kazoo_stores_it_and_its_secret_is_shown_once(api: Api) -> None:
    hook = await create_hook(api, "http://127.0.0.1:9/x", custom_data={"type": "voicemail_new"})
    assert len(hook["secret"]) == 64
    assert hook["retries"] == 2 and hook["enabled"] is True and hook["http_verb"] == "post"
    doc = await api.client.app[appkeys.STORE].get_doc(naming.account_db(api.account.id), hook["id"])
    assert doc["pvt_type"] == "webhook" and doc["pvt_account_id"] == api.account.id
    assert doc["pvt_secret"] == hook["secret"] and doc["custom_data"] == {"type": "voicemail_new"}

    status, body = await api.get(f"/webhooks/{hook['id']}")
    assert status == 200 and "secret" not in body["data"] and body["data"]["uri"] == "http://127.0.0.1:9/x"
    status, body = await api.get("/webhooks")
    assert status == 200 and [one["id"] for one in body["data"]] == [hook["id"]]
    assert "secret" not in body["data"][0]

    status, body = await api.patch(f"/webhooks/{hook['id']}", {"name": "renamed", "secret": "mine"})
    assert status == 200 and body["data"]["name"] == "renamed" and body["data"]["retries"] == 2
    doc = await api.client.app[appkeys.STORE].get_doc(naming.account_db(api.account.id), hook["id"])
    assert doc["pvt_secret"] == hook["secret"]  # a request never sets the secret

    status, body = await api.post(
        f"/webhooks/{hook['id']}", {"name": "n", "uri": "http://h.test/", "hook": "notifications"}
    )
    assert status == 200 and "custom_data" not in body["data"] and body["data"]["uri"] == "http://h.test/"

    status, body = await api.delete(f"/webhooks/{hook['id']}")
    assert status == 200 and body["data"]["_read_only"] == {"deleted": True}
    assert (await api.get(f"/webhooks/{hook['id']}"))[0] == 404
    assert (await api.get("/webhooks"))[1]["data"] == []


async def test_an_invalid_hook_is_refused_with_kazoos_error_shape(api: Api) -> None:
    status, body = await api.put("/webhooks", {"name": "x", "hook": "notifications"})
    assert status == 400 and body["data"]["uri"]["required"]["message"]
    status, body = await api.put("/webhooks", {"name": "x", "uri": "http://h.test/", "hook": "channel_create"})
    assert status == 400 and "enum" in body["data"]["hook"]
    status, body = await api.put(
        "/webhooks", {"name": "x", "uri": "ftp://h.test/", "hook": "notifications", "retries": 9}
    )
    assert status == 400 and "format" in body["data"]["uri"] and "maximum" in body["data"]["retries"]
    status, body = await api.put(
        "/webhooks", {"name": "x", "uri": "http://h.test/", "hook": "notifications", "custom_data": {"type": "x"}}
    )
    assert status == 400 and "enum" in body["data"]["custom_data.type"]


async def test_a_new_message_reaches_the_hook_signed_with_kazoos_fields(api: Api, receiver: Receiver) -> None:
    hook = await create_hook(api, receiver.hook_url(), custom_data={"type": "voicemail_new"})
    box = await create_box(api, mailbox="3101")
    message = await new_message(api, box["id"], caller_id_number="+15551234", caller_id_name="Alice", length=4000)

    await wait_for(lambda: receiver.at("hook"), what="the webhook call")
    call = receiver.at("hook")[0]
    payload = call.json()
    assert_kazoo_payload(payload)
    assert payload["Event-Name"] == "voicemail_new" and payload["Account-ID"] == api.account.id
    assert payload["Voicemail-Box"] == box["id"] and payload["Voicemail-ID"] == message["media_id"]
    assert payload["Caller-ID-Number"] == "+15551234" and payload["Voicemail-Length"] == "4000"
    assert payload["type"] == "voicemail_new"  # custom_data is added to the event, as Kazoo does

    timestamp = int(call.headers[signing.TIMESTAMP_HEADER])
    assert signing.verify(hook["secret"], timestamp, call.body, call.headers[signing.SIGNATURE_HEADER])
    assert not signing.verify("another secret", timestamp, call.body, call.headers[signing.SIGNATURE_HEADER])
    assert call.headers[signing.EVENT_HEADER] == "voicemail_new"
    verify = documented_verifier()
    assert verify(
        hook["secret"], call.body, call.headers[signing.TIMESTAMP_HEADER], call.headers[signing.SIGNATURE_HEADER]
    )
    assert not verify(
        hook["secret"], call.body + b" ", call.headers[signing.TIMESTAMP_HEADER], call.headers[signing.SIGNATURE_HEADER]
    )
    stale = str(timestamp - 3600)
    assert not verify(hook["secret"], call.body, stale, signing.signature(hook["secret"], int(stale), call.body))

    done = await settled(api.client.app[appkeys.STORE], db(api))
    assert sorted((item.kind, item.state) for item in done) == [("event", "delivered"), ("webhook", "delivered")]
    assert len(receiver.received) == 1


async def test_saved_and_deleted_are_announced_once_per_message_also_in_bulk(api: Api, receiver: Receiver) -> None:
    await create_hook(api, receiver.hook_url())  # no custom_data.type: every notification
    box = await create_box(api, mailbox="3102")
    first = (await new_message(api, box["id"]))["media_id"]
    second = (await new_message(api, box["id"]))["media_id"]
    status, _ = await api.post(f"/vmboxes/{box['id']}/messages/{first}", {"folder": "saved"})
    assert status == 200
    status, _ = await api.delete(f"/vmboxes/{box['id']}/messages", {"messages": [first, second]})
    assert status == 200

    await wait_for(lambda: len(receiver.received) >= 5, what="five webhook calls")
    await settled(api.client.app[appkeys.STORE], db(api))
    seen = sorted((call.json()["Event-Name"], call.json()["Voicemail-ID"]) for call in receiver.received)
    assert seen == sorted(
        [
            ("voicemail_new", first),
            ("voicemail_new", second),
            ("voicemail_saved", first),
            ("voicemail_deleted", first),
            ("voicemail_deleted", second),
        ]
    )
    for call in receiver.received:
        payload = call.json()
        assert_kazoo_payload(payload)
        if payload["Event-Name"] == "voicemail_deleted":
            assert payload["Reason"] == "crossbar_action"


async def test_a_full_box_announces_voicemail_full(
    api: Api, receiver: Receiver, settings: Settings, aiohttp_client: Any
) -> None:
    await create_hook(api, receiver.hook_url(), custom_data={"type": "voicemail_full"})
    box = await create_box(api, mailbox="3103")
    for _ in range(2):
        await new_message(api, box["id"])
    # The limit is the process's setting: a second app over the same CouchDB with a limit of two.
    import dataclasses

    small = create_app(dataclasses.replace(settings, max_message_count=2), sync_design_docs=False)
    other = Api(await aiohttp_client(small), api.account)
    status, body = await other.put(f"/vmboxes/{box['id']}/messages", {})
    assert status == 400, body

    await wait_for(lambda: receiver.at("hook"), what="the voicemail_full call")
    payload = receiver.at("hook")[0].json()
    assert_kazoo_payload(payload)
    assert payload["Event-Name"] == "voicemail_full" and payload["Voicemail-Box"] == box["id"]
    assert (payload["Message-Count"], payload["Max-Message-Count"]) == ("2", "2")


async def test_copies_are_new_to_their_box_and_moves_announce_nothing(api: Api, receiver: Receiver) -> None:
    await create_hook(api, receiver.hook_url(), custom_data={"type": "voicemail_new"})
    box = await create_box(api, mailbox="3104")
    other = await create_box(api, name="Other", mailbox="3105")
    third = await create_box(api, name="Third", mailbox="3106")
    message = (await new_message(api, box["id"]))["media_id"]
    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{message}", {"source_id": [other["id"], third["id"]]})
    assert status == 200, body
    await wait_for(lambda: len(receiver.received) >= 3, what="three voicemail_new calls")
    status, body = await api.post(f"/vmboxes/{other['id']}/messages", {"source_id": third["id"], "messages": []})
    await settled(api.client.app[appkeys.STORE], db(api))
    boxes = sorted(call.json()["Voicemail-Box"] for call in receiver.received)
    assert boxes == sorted([box["id"], other["id"], third["id"]])


def deliveries_counted(kind: str, outcome: str) -> float:
    """The ``/metrics`` counter of notification delivery attempts."""
    value = REGISTRY.get_sample_value("kazoo_vm_notification_deliveries_total", {"kind": kind, "outcome": outcome})
    return value or 0.0


async def test_a_500_and_a_timeout_are_retried_until_delivered(api: Api, receiver: Receiver) -> None:
    retried, delivered = deliveries_counted("webhook", "retry"), deliveries_counted("webhook", "delivered")
    receiver.answers = [500, "hang"]
    await create_hook(api, receiver.hook_url(), retries=2)
    box = await create_box(api, mailbox="3107")
    await new_message(api, box["id"])
    done = await settled(api.client.app[appkeys.STORE], db(api))
    delivery = next(item for item in done if item.kind == "webhook")
    assert delivery.state == "delivered" and delivery.attempts == 3
    assert len(receiver.at("hook")) == 3
    assert deliveries_counted("webhook", "retry") - retried == 2
    assert deliveries_counted("webhook", "delivered") - delivered == 1
    signatures = {call.headers[signing.SIGNATURE_HEADER] for call in receiver.at("hook")}
    assert len({call.body for call in receiver.at("hook")}) == 1 and len(signatures) >= 1


async def test_a_delivery_that_keeps_failing_is_marked_failed_and_the_hook_disabled(
    api: Api, receiver: Receiver
) -> None:
    given_up = deliveries_counted("webhook", "failed")
    receiver.answers = [500] * 10
    hook = await create_hook(api, receiver.hook_url(), retries=1)
    box = await create_box(api, mailbox="3108")
    await new_message(api, box["id"])
    done = await settled(api.client.app[appkeys.STORE], db(api))
    failed = next(item for item in done if item.kind == "webhook")
    assert failed.state == "failed" and failed.attempts == 2 and failed.last_error == "the receiver answered 500"
    assert deliveries_counted("webhook", "failed") - given_up == 1
    status, body = await api.get(f"/webhooks/{hook['id']}")
    assert body["data"]["enabled"] is True  # two consecutive failures; the limit is three

    await new_message(api, box["id"])
    await wait_for(lambda: len(receiver.received) >= 3, what="a third failure")
    status, body = await wait_for(lambda: _disabled(api, hook["id"]), what="the hook to be disabled")
    assert "3 consecutive failed deliveries" in body["data"]["disabled_reason"]
    done = await settled(api.client.app[appkeys.STORE], db(api))
    assert sum(1 for item in done if item.kind == "webhook" and item.state == "failed") == 2
    assert len(receiver.received) == 3  # the disabled hook is not called again

    status, body = await api.patch(f"/webhooks/{hook['id']}", {"enabled": True})
    assert status == 200 and "disabled_reason" not in body["data"]


async def _disabled(api: Api, hook_id: str) -> tuple[int, Any] | None:
    status, body = await api.get(f"/webhooks/{hook_id}")
    return (status, body) if body["data"]["enabled"] is False else None


async def test_events_reach_only_the_accounts_hooks_and_ancestors_that_include_subaccounts(
    api: Api, receiver: Receiver
) -> None:
    client = api.client
    child = Api(client, await make_account(client, "Child", parent=api.account.id))
    stranger = Api(client, await make_account(client, "Stranger"))
    await create_hook(api, receiver.hook_url("parent_all"), include_subaccounts=True)
    await create_hook(api, receiver.hook_url("parent_own"))
    await create_hook(child, receiver.hook_url("child"))
    await create_hook(stranger, receiver.hook_url("stranger"))

    box = await create_box(child, mailbox="3109")
    message = (await new_message(child, box["id"]))["media_id"]
    await settled(client.app[appkeys.STORE], db(api))
    assert [call.json()["Voicemail-ID"] for call in receiver.at("child")] == [message]
    assert [call.json()["Account-ID"] for call in receiver.at("parent_all")] == [child.account.id]
    assert receiver.at("parent_own") == [] and receiver.at("stranger") == []


async def test_get_and_form_data_hooks_are_signed_over_what_is_sent(api: Api, receiver: Receiver) -> None:
    get_hook = await create_hook(api, receiver.hook_url("get"), http_verb="get")
    form_hook = await create_hook(api, receiver.hook_url("form"), format="form-data")
    box = await create_box(api, mailbox="3110")
    await new_message(api, box["id"])
    await settled(api.client.app[appkeys.STORE], db(api))
    (get_call,) = receiver.at("get")
    (form_call,) = receiver.at("form")
    assert get_call.method == "GET" and get_call.query["Event-Name"] == "voicemail_new"
    query = get_call.headers  # the signature covers the query string of a GET
    from urllib.parse import urlencode

    signed = urlencode(get_call.query).encode()
    assert signing.verify(
        get_hook["secret"], int(query[signing.TIMESTAMP_HEADER]), signed, query[signing.SIGNATURE_HEADER]
    )
    assert form_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    headers = form_call.headers
    assert signing.verify(
        form_hook["secret"], int(headers[signing.TIMESTAMP_HEADER]), form_call.body, headers[signing.SIGNATURE_HEADER]
    )
    assert_kazoo_payload(dict(get_call.query))
    assert json.dumps(dict(get_call.query))
    assert await items(api.client.app[appkeys.STORE], db(api), state="failed") == []
