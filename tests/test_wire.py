"""Kazoo's wire conventions: envelopes, body parsing, verb tunnelling, CORS, and every generic error class."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import Api, TestAccount, create_box, make_account
from message_support import new_message

from kazoo_vm import appkeys
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings
from kazoo_vm.errors import DatastoreConflict
from kazoo_vm.http.dispatch import endpoint
from kazoo_vm.http.error_handlers import to_kazoo_error
from kazoo_vm.http.route import Route
from kazoo_vm.storage import errors as storage_errors

ENVELOPE_KEYS = {"auth_token", "data", "node", "request_id", "revision", "status", "timestamp", "version"}


async def test_success_envelope_has_kazoos_keys_and_echoes_the_request_id(api: Api) -> None:
    box = await create_box(api)
    response = await api.client.get(
        api.url(f"/vmboxes/{box['id']}"), headers={**api.account.headers, "X-Request-Id": "my-req-1"}
    )
    body = await response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["request_id"] == "my-req-1" and response.headers["X-Request-Id"] == "my-req-1"
    assert body["status"] == "success" and body["version"].startswith("4.3")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timestamp"])
    assert response.headers["Content-Type"].startswith("application/json")


async def test_a_request_id_is_generated_when_none_is_sent(api: Api) -> None:
    response = await api.client.get(api.url("/vmboxes"), headers=api.account.headers)
    body = await response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert response.headers["X-Request-Id"] == body["request_id"]


@pytest.mark.parametrize(
    ("raw", "field", "validator"),
    [
        (b'{"data": {"name": ', "json", "invalid"),
        (b'{"name": "x", "mailbox": "1"}', "data", "required"),
        (b"[1, 2]", "json", "invalid"),
        (b'{"data": "text"}', "data", "type"),
    ],
)
async def test_bad_request_bodies_are_400_in_kazoos_shape(api: Api, raw: bytes, field: str, validator: str) -> None:
    response = await api.client.put(
        api.url("/vmboxes"), data=raw, headers={**api.account.headers, "Content-Type": "application/json"}
    )
    body = await response.json()
    assert response.status == 400
    assert body["error"] == "400" and body["message"] == "validation error" and body["status"] == "error"
    assert validator in body["data"][field]
    assert "auth_token" in body  # the request carried a token


async def test_malformed_json_error_names_the_position_and_the_body(api: Api) -> None:
    response = await api.client.put(
        api.url("/vmboxes"), data=b'{"data": }', headers={**api.account.headers, "Content-Type": "application/json"}
    )
    body = await response.json()
    assert body["data"]["json"]["invalid"]["target"] == "body"
    assert "around" in body["data"]["json"]["invalid"]["message"]


async def test_a_body_without_content_type_is_json(api: Api) -> None:
    response = await api.client.put(
        api.url("/vmboxes"),
        data=json.dumps({"data": {"name": "n", "mailbox": "10"}}).encode(),
        headers=api.account.headers,
        skip_auto_headers=["Content-Type"],
    )
    assert response.status == 201


async def test_curl_style_form_encoded_json_text_is_parsed_as_json(api: Api) -> None:
    response = await api.client.put(
        api.url("/vmboxes"),
        data='{"data":{"name":"curl box","mailbox":"11"}}',
        headers={**api.account.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    body = await response.json()
    assert response.status == 201 and body["data"]["name"] == "curl box"


async def test_verb_tunnelling_turns_a_post_into_delete_or_patch(api: Api) -> None:
    first = await create_box(api, mailbox="20")
    status, body = await api.post(f"/vmboxes/{first['id']}", {"some_key": "v"}, params={"verb": "PATCH"})
    assert status == 200 and body["data"]["some_key"] == "v" and body["data"]["mailbox"] == "20"
    response = await api.client.post(
        api.url(f"/vmboxes/{first['id']}"), json={"verb": "delete", "data": {}}, headers=api.account.headers
    )
    body = await response.json()
    assert response.status == 200 and body["data"]["_read_only"] == {"deleted": True}


async def test_pretty_print_and_jsonp(api: Api) -> None:
    response = await api.client.get(api.url("/vmboxes"), params={"pretty_print": "true"}, headers=api.account.headers)
    assert "\n  " in await response.text()
    response = await api.client.get(api.url("/vmboxes"), params={"jsonp": "cb"}, headers=api.account.headers)
    text = await response.text()
    assert response.headers["Content-Type"].startswith("application/javascript")
    assert text.startswith("cb(") and text.endswith(");")
    assert json.loads(text[3:-2])["status"] == "success"


async def test_cors_preflight_needs_no_auth_and_lists_the_methods(
    client: TestClient[Any, Any], account: TestAccount
) -> None:
    response = await client.options(
        f"/v2/accounts/{account.id}/vmboxes/abc",
        headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "PATCH"},
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    methods = response.headers["Access-Control-Allow-Methods"].split(", ")
    assert methods[0] == "OPTIONS" and {"GET", "POST", "PATCH", "DELETE"} <= set(methods)
    assert "x-auth-token" in response.headers["Access-Control-Allow-Headers"]


async def test_every_error_carries_cors_headers(client: TestClient[Any, Any], account: TestAccount) -> None:
    response = await client.get(f"/v2/accounts/{account.id}/vmboxes")
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "x-request-id" in response.headers["Access-Control-Expose-Headers"]


async def test_unknown_paths_are_404_not_found(api: Api) -> None:
    box = await create_box(api)
    for path in (api.url(f"/vmboxes/{box['id']}/nonsense/deeper"), "/v2/nothing-here"):
        response = await api.client.get(path, headers=api.account.headers)
        body = await response.json()
        assert response.status == 404, path
        assert body["message"] == "not_found" and body["data"] == {"message": "not found"}


async def test_unsupported_methods_are_405_invalid_method(api: Api) -> None:
    box = await create_box(api)
    status, body = await api.put(f"/vmboxes/{box['id']}", {"name": "x", "mailbox": "1"})
    assert status == 405
    assert (
        body["error"] == "405"
        and body["message"] == "invalid_method"
        and body["data"] == {"message": "method not allowed"}
    )
    status, _ = await api.delete("/vmboxes")
    assert status == 405


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("multipart/mixed", b"no boundary in the header"),
        ("multipart/form-data; boundary=xyz", b"no boundary in the body"),
        ("multipart/mixed; boundary=xyz", b'--xyz\r\nContent-Type: application/json\r\n\r\n{"data":{}}'),
    ],
)
async def test_a_malformed_multipart_body_is_a_400_not_a_fault(api: Api, content_type: str, raw: bytes) -> None:
    box = await create_box(api)
    for path in ("/vmboxes", f"/vmboxes/{box['id']}/messages"):
        status, body = await api.put(path, body=raw, headers={"Content-Type": content_type})
        assert status == 400, (path, body)
        assert body["message"] == "validation error"
        assert body["data"]["multipart"]["invalid"]["target"] == "body"


async def test_bodies_over_the_upload_limit_are_413(aiohttp_client: Any, settings: Settings) -> None:
    small = create_app(dataclasses.replace(settings, max_upload_bytes=1000), sync_design_docs=False)
    client: TestClient[Any, Any] = await aiohttp_client(small)
    account = await make_account(client)
    payload = {"data": {"name": "x" * 2000, "mailbox": "1"}}
    response = await client.put(f"/v2/accounts/{account.id}/vmboxes", json=payload, headers=account.headers)
    body = await response.json()
    assert response.status == 413
    assert body["error"] == "413"
    assert body["data"]["file"]["maxSize"]["target"] == 1000


async def test_an_unexpected_exception_is_logged_and_answered_500_unspecified_fault(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, sync_design_docs=False)

    async def broken(request: web.Request) -> web.StreamResponse:
        raise RuntimeError("boom")

    route = Route("GET", "/v2/broken", broken, "broken", auth="public", body="json_or_audio")
    app.router.add_route("*", "/v2/broken", endpoint([route]))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        response = await client.get("/v2/broken", headers={"X-Request-Id": "trace-me"})
    body = await response.json()
    assert response.status == 500
    assert (
        body["error"] == "500"
        and body["message"] == "unspecified_fault"
        and body["data"] == {"message": "unspecified fault"}
    )
    assert any("trace-me" in record.getMessage() for record in caplog.records)


async def test_couchdb_unreachable_is_503_datastore_unreachable(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    store = api.client.app[appkeys.STORE]
    monkeypatch.setattr(store, "base_url", "http://127.0.0.1:9")
    status, body = await api.get("/vmboxes")
    assert status == 503
    assert (
        body["error"] == "503"
        and body["message"] == "datastore_unreachable"
        and body["data"] == {"message": "datastore timeout"}
    )


def test_storage_conflicts_map_to_409_datastore_conflict() -> None:
    error = to_kazoo_error(storage_errors.Conflict("conflict", status=409))
    assert isinstance(error, DatastoreConflict)
    assert (error.status, error.message, error.data) == (
        409,
        "datastore_conflict",
        {"message": "conflicting documents"},
    )


async def test_a_file_body_on_a_json_only_endpoint_is_415(api: Api) -> None:
    response = await api.client.put(
        api.url("/vmboxes"), data=b"ID3...", headers={**api.account.headers, "Content-Type": "audio/mpeg"}
    )
    body = await response.json()
    assert response.status == 415
    assert body["error"] == "415" and "audio/mpeg" in body["data"]["message"]


async def test_a_write_without_content_type_gets_kazoos_rfc2616_hint(api: Api) -> None:
    response = await api.client.put(
        api.url("/vmboxes"),
        data=b'{"data":{"name":"n","mailbox":"77"}}',
        headers=api.account.headers,
        skip_auto_headers=["Content-Type"],
    )
    assert response.status == 201
    assert response.headers["X-RFC2616"] == "Section 14.17 (Try it, you'll like it)"


async def test_a_trailing_slash_names_the_same_resource(api: Api) -> None:
    box = await create_box(api, mailbox="4242")
    status, listing = await api.get("/vmboxes/")
    assert status == 200 and [item["id"] for item in listing["data"]] == [box["id"]]
    status, fetched = await api.get(f"/vmboxes/{box['id']}/")
    assert status == 200 and fetched["data"]["mailbox"] == "4242"


async def test_answers_are_gzipped_when_the_client_accepts_it_except_audio(api: Api) -> None:
    """crossbar.compress_response_body (default true): Cowboy compresses what the client accepts."""
    box = await create_box(api)
    path = api.url(f"/vmboxes/{box['id']}")
    gzipped = await api.client.get(path, headers={**api.account.headers, "Accept-Encoding": "gzip"})
    assert gzipped.status == 200 and gzipped.headers.get("Content-Encoding") == "gzip"
    assert (await gzipped.json())["data"]["id"] == box["id"]
    plain = await api.client.get(path, headers={**api.account.headers, "Accept-Encoding": "identity"})
    assert plain.status == 200 and "Content-Encoding" not in plain.headers
    assert (await plain.json())["data"]["id"] == box["id"]

    message = await new_message(api, box["id"])
    audio = await api.client.get(
        api.url(f"/vmboxes/{box['id']}/messages/{message['media_id']}/raw"),
        headers={**api.account.headers, "Accept-Encoding": "gzip"},
    )
    assert audio.status == 200 and "Content-Encoding" not in audio.headers
    assert audio.headers["Content-Type"].startswith("audio/")


async def test_v1_paths_serve_the_same_api_without_paging(api: Api) -> None:
    """kazoo-sdk's default base URL ends in /v1; Kazoo 4.3 serves it and never paginates v1 listings."""
    first = await create_box(api, mailbox="11")
    await create_box(api, mailbox="12")
    v1 = f"/v1/accounts/{api.account.id}"
    response = await api.client.get(f"{v1}/vmboxes?page_size=1", headers=api.account.headers)
    body = await response.json()
    assert response.status == 200 and len(body["data"]) == 2
    assert "next_start_key" not in body
    status, paged = await api.get("/vmboxes?page_size=1")
    assert status == 200 and len(paged["data"]) == 1 and "next_start_key" in paged
    response = await api.client.get(f"{v1}/vmboxes/{first['id']}/", headers=api.account.headers)
    assert response.status == 200 and (await response.json())["data"]["mailbox"] == "11"
    for _ in range(2):
        await new_message(api, first["id"])
    response = await api.client.get(f"{v1}/vmboxes/{first['id']}/messages?page_size=1", headers=api.account.headers)
    body = await response.json()
    assert response.status == 200 and len(body["data"]) == 2 and "next_start_key" not in body
    response = await api.client.get(f"{v1}/vmboxes", headers={})
    assert response.status == 401
