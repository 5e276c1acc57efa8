"""Logs: one JSON object per line with the request's context, errors with their cause, never a credential."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import make_account

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings, load_settings
from kazoo_vm.domain import accounts
from kazoo_vm.logs import configure_logging, redact_text, uses_json

PASSWORD = "Corr3ct-Horse-Battery"
PIN = "583920"
BAD_PIN = "5839201"  # one digit too many: a validation error that must not echo it into the log


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """JSON logging into a buffer for the test; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(load_settings({}, log_format="json", log_level="INFO"), stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("aiohttp.access").disabled = False


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def request_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in lines(stream) if line.get("logger") == "kazoo_vm.request"]


async def test_a_session_of_requests_logs_json_lines_without_any_credential(
    aiohttp_client: Any, settings: Settings, log_stream: io.StringIO
) -> None:
    app = create_app(settings, sync_design_docs=False)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    account = await make_account(client, name="Logged Account")
    store = client.app[appkeys.STORE]
    await accounts.create_user(store, account_id=account.id, username="carol", password=PASSWORD)
    credentials = hashlib.md5(f"carol:{PASSWORD}".encode()).hexdigest()

    response = await client.put("/v2/api_auth", json={"data": {"api_key": account.api_key}})
    assert response.status == 201
    token = (await response.json())["auth_token"]
    response = await client.put(
        "/v2/user_auth", json={"data": {"credentials": credentials, "account_name": "Logged Account"}}
    )
    assert response.status == 201
    user_token = (await response.json())["auth_token"]
    headers = {"X-Auth-Token": token}
    base = f"/v2/accounts/{account.id}"
    response = await client.put(
        f"{base}/vmboxes", json={"data": {"name": "b", "mailbox": "100", "pin": PIN}}, headers=headers
    )
    assert response.status == 201
    box_id = (await response.json())["data"]["id"]
    response = await client.patch(f"{base}/vmboxes/{box_id}", json={"data": {"pin": BAD_PIN}}, headers=headers)
    assert response.status == 400
    # The token in the query string, as some clients send it.
    response = await client.get(f"{base}/vmboxes/{box_id}?auth_token={user_token}")
    assert response.status == 200
    envelope = await response.json()
    assert (await client.get(f"{base}/vmboxes", headers={"X-Auth-Token": "not-a-token"})).status == 401
    logging.getLogger("kazoo_vm.test").info(
        "connecting to %s", "http://admin:couch-pass-123@127.0.0.1:5984", extra={"password": PASSWORD}
    )

    text = log_stream.getvalue()
    for secret in (account.api_key, token, user_token, PASSWORD, credentials, PIN, BAD_PIN, "couch-pass-123"):
        assert secret not in text, secret
    records = lines(log_stream)
    assert records and all(isinstance(record, dict) for record in records)
    assert all({"timestamp", "level", "message"} <= set(record) for record in records)

    requests = request_lines(log_stream)
    assert len(requests) == 6
    for record in requests:
        assert {"request_id", "route", "method", "status", "duration_ms", "couch_requests"} <= set(record)
    fetched = next(r for r in requests if r["method"] == "GET" and r["status"] == 200)
    assert fetched["route"] == "/v2/accounts/{account_id}/vmboxes/{box_id}"
    assert fetched["account_id"] == account.id
    assert fetched["request_id"] == envelope["request_id"] == response.headers["X-Request-Id"]
    # The box, and the account unless it was read within the account cache's bound.
    assert fetched["couch_requests"] in (1, 2)
    assert fetched["level"] == "info"
    refused = next(r for r in requests if r["status"] == 400)
    assert refused["level"] == "warning" and refused["error"] == "validation error"
    assert refused["cause"] == "pin:maxLength"
    assert "exception" not in refused
    unauthorized = next(r for r in requests if r["status"] == 401)
    assert unauthorized["error"] == "invalid_credentials"


async def test_the_request_id_of_the_log_is_the_one_returned(
    client: TestClient[Any, Any], log_stream: io.StringIO
) -> None:
    response = await client.get("/v2/accounts/" + "a" * 32 + "/vmboxes", headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42"
    assert (await response.json())["request_id"] == "trace-42"
    (line,) = request_lines(log_stream)
    assert line["request_id"] == "trace-42" and line["status"] == response.status


async def test_an_unexpected_failure_logs_its_traceback_and_a_4xx_does_not(
    aiohttp_client: Any, settings: Settings, log_stream: io.StringIO
) -> None:
    app = create_app(settings, sync_design_docs=False)

    async def boom(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("the cause of it all")

    app.router.add_get("/boom", boom)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    assert (await client.get("/boom")).status == 500
    assert (await client.get("/v2/nowhere")).status == 404
    records = lines(log_stream)
    failed = [record for record in records if "exception" in record]
    assert len(failed) == 1
    assert "RuntimeError: the cause of it all" in failed[0]["exception"]
    assert failed[0]["route"] == "/boom" and failed[0]["level"] == "error"
    answered = request_lines(log_stream)
    assert [(line["status"], line["level"]) for line in answered] == [(500, "error"), (404, "warning")]
    assert answered[1]["route"] == "unmatched"
    assert all("exception" not in line for line in answered)


def test_output_is_human_readable_on_a_terminal_and_json_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    auto = load_settings({})
    assert not uses_json(auto, Terminal())
    assert uses_json(auto, io.StringIO())
    assert uses_json(load_settings({"KAZOO_VM_LOG_FORMAT": "json"}), Terminal())
    assert not uses_json(load_settings({"KAZOO_VM_LOG_FORMAT": "console"}), io.StringIO())


def test_credentials_are_masked_in_any_text() -> None:
    assert redact_text("GET /v2/x?auth_token=abc.def&paginate=false") == "GET /v2/x?auth_token=********&paginate=false"
    assert redact_text("http://admin:pw@host:5984/db") == "http://admin:********@host:5984/db"
    assert redact_text('{"password": "pw", "name": "n"}') == '{"password": "********", "name": "n"}'
    assert redact_text("{'pin': '1234'}") == "{'pin': '********'}"
    assert redact_text("Authorization: Bearer eyJ.abc.def") == "Authorization: Bearer ********"
