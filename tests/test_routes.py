"""The route table is data the app serves as it says: every row is served, with its auth rule and body kind."""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp.test_utils import TestClient
from helpers import Api

from kazoo_vm.resources import schemas_dir
from kazoo_vm.routes import ROUTES, by_path


def test_every_route_names_a_coroutine_handler_and_an_existing_schema() -> None:
    assert ROUTES
    for route in ROUTES:
        assert inspect.iscoroutinefunction(route.handler), route
        assert route.schema is None or (schemas_dir() / f"{route.schema}.json").is_file(), route


def test_each_method_appears_once_per_path_and_literal_paths_come_first() -> None:
    paths = list(by_path())
    for path, routes in by_path().items():
        methods = [route.method for route in routes]
        assert len(methods) == len(set(methods)), path
    box, account_messages = "/v2/accounts/{account_id}/vmboxes/{box_id}", "/v2/accounts/{account_id}/vmboxes/messages"
    message, zip_path = f"{box}/messages/{{message_id}}", f"{box}/messages/raw"
    assert paths.index(account_messages) < paths.index(box)
    assert paths.index(zip_path) < paths.index(message)


def _concrete(path: str, account_id: str) -> str:
    return (
        path.replace("{account_id}", account_id)
        .replace("{box_id}", "b" * 32)
        .replace("{message_id}", "m" * 32)
        .replace("{webhook_id}", "w" * 32)
    )


async def test_every_row_is_served_and_other_methods_are_405_listing_the_rows_methods(api: Api) -> None:
    client: TestClient[Any, Any] = api.client
    for path, routes in by_path().items():
        headers = {**api.account.headers, "Origin": "http://example.test"}
        response = await client.request("COPY", _concrete(path, api.account.id), headers=headers)
        body = await response.json(content_type=None)
        assert response.status == 405 and body["message"] == "invalid_method", (path, body)
        allowed = {method.strip() for method in response.headers["Access-Control-Allow-Methods"].split(",")}
        assert allowed == {"OPTIONS"} | {route.method for route in routes}, path


async def test_account_routes_need_credentials_and_public_ones_do_not(api: Api) -> None:
    client: TestClient[Any, Any] = api.client
    for route in ROUTES:
        response = await client.request(route.method, _concrete(route.path, api.account.id), json={"data": {}})
        if route.auth == "account":
            assert response.status == 401, route
        else:
            assert response.status == 400, route  # no credentials asked for: the empty data fails the schema
