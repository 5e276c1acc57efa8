"""``GET /v2/openapi.json``: a valid OpenAPI 3.1 document that describes every route and method the app serves,
whose response schemas the service's real answers satisfy."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import Api, create_box
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from kazoo_vm.http.openapi import served_paths, undocumented_paths

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
IDS = {
    "{account_id}": "0" * 32,
    "{box_id}": "somebox",
    "{message_id}": "202601-" + "0" * 32,
    "{webhook_id}": "somehook",
}


async def fetch_description(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/v2/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    description: dict[str, Any] = await response.json()
    return description


async def test_the_description_is_served_without_a_token_and_is_valid_openapi_3_1(
    client: TestClient[Any, Any],
) -> None:
    description = await fetch_description(client)
    assert description["openapi"].startswith("3.1")
    validate(description)  # raises on an invalid document


async def test_every_route_of_the_app_is_described(client: TestClient[Any, Any], app: web.Application) -> None:
    description = await fetch_description(client)
    assert undocumented_paths(app) == []
    assert set(served_paths(app)) == set(description["paths"])
    assert "/v2/accounts/{account_id}/vmboxes/{box_id}/messages/{message_id}/raw" in description["paths"]


async def test_the_described_methods_are_exactly_those_the_app_answers(client: TestClient[Any, Any]) -> None:
    """Kazoo's pipeline answers 405 for a method before it looks at the account, so placeholder ids suffice."""
    description = await fetch_description(client)
    for path, operations in description["paths"].items():
        url = path
        for placeholder, value in IDS.items():
            url = url.replace(placeholder, value)
        for method in METHODS:
            response = await client.request(method, url)
            described = method.lower() in operations
            assert (response.status != 405) == described, (method, path, response.status)


async def test_every_operation_lists_its_statuses_parameters_and_envelopes(client: TestClient[Any, Any]) -> None:
    description = await fetch_description(client)
    box = description["paths"]["/v2/accounts/{account_id}/vmboxes/{box_id}"]
    assert {"200", "304", "400", "401", "403", "404", "500", "503"} <= set(box["get"]["responses"])
    assert "409" in box["post"]["responses"]
    names = {param["name"] for param in box["get"]["parameters"]}
    assert {"account_id", "box_id", "auth_token"} <= names
    listing = description["paths"]["/v2/accounts/{account_id}/vmboxes"]["get"]
    assert {"paginate", "page_size", "start_key"} <= {param["name"] for param in listing["parameters"]}
    create = description["paths"]["/v2/accounts/{account_id}/vmboxes"]["put"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"] == {
        "$ref": "#/components/schemas/vmboxes"
    }
    raw = description["paths"]["/v2/accounts/{account_id}/vmboxes/{box_id}/messages/{message_id}/raw"]["get"]
    assert {"200", "206", "406"} <= set(raw["responses"])
    assert "audio/mpeg" in raw["responses"]["200"]["content"]
    assert description["paths"]["/v2/api_auth"]["put"]["security"] == []
    for operations in description["paths"].values():
        for operation in operations.values():
            if operation["tags"] == ["service"]:
                continue  # the service's own routes, outside Kazoo's envelope
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorEnvelope"
                    }


def response_validator(description: dict[str, Any], path: str, method: str, status: int) -> Draft202012Validator:
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in ("paths", path, method))
    schema = {"$ref": f"urn:kazoo-vm:openapi#/{pointer}/responses/{status}/content/application~1json/schema"}
    resource = DRAFT202012.create_resource(description)
    registry: Registry[Any] = Registry().with_resource("urn:kazoo-vm:openapi", resource)
    return Draft202012Validator(schema, registry=registry)


async def test_real_answers_match_their_documented_schemas(client: TestClient[Any, Any], api: Api) -> None:
    description = await fetch_description(client)
    boxes = "/v2/accounts/{account_id}/vmboxes"
    box = f"{boxes}/{{box_id}}"
    created = await api.put("/vmboxes", {"name": "Documented", "mailbox": "4100"})
    assert created[0] == 201
    response_validator(description, boxes, "put", 201).validate(created[1])
    box_id = created[1]["data"]["id"]
    status, body = await api.get(f"/vmboxes/{box_id}")
    assert status == 200
    response_validator(description, box, "get", 200).validate(body)
    status, body = await api.get("/vmboxes")
    assert status == 200 and body["data"]
    response_validator(description, boxes, "get", 200).validate(body)
    await create_box(api, name="Second", mailbox="4101")
    status, body = await api.get("/vmboxes/nope")
    assert status == 404
    response_validator(description, box, "get", 404).validate(body)
    # The validator does reject what does not match.
    errors = list(response_validator(description, box, "get", 200).iter_errors({"status": "success"}))
    assert errors
