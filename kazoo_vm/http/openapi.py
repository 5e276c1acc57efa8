"""The OpenAPI 3.1 description of what the service answers, built from the application's router and route table.

The router says which paths exist (each resource's canonical path; the trailing-slash twin every route has is left
out). For Kazoo's routes the route table (:data:`kazoo_vm.routes.ROUTES`, left on the app as ``appkeys.ROUTES``)
says which methods each path has, whether a token is needed, whether a file body is refused (415) and which schema
checks the request's data; :mod:`kazoo_vm.http.operations` adds the prose and the shapes of answers, and describes
the service's own routes (docs, health, metrics) whole. The JSON Schema files in ``schemas/`` give request bodies
and the ``data`` of successes. Every answer is described in Kazoo's envelope (api_util:create_resp_envelope).

A path or method the app serves but the operations table does not describe is left out of the document and
reported by :func:`undocumented_paths`, so a test can insist that every route is described.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.http.operations import (
    ERROR_DESCRIPTIONS,
    OPERATIONS,
    PATH_PARAMETERS,
    SCHEMA_FILES,
    Operation,
    Parameter,
)
from kazoo_vm.http.route import Route
from kazoo_vm.model import JsonDict
from kazoo_vm.resources import schemas_dir

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/"

# Draft-04 keywords of Kazoo's schema files that have no meaning (or another one) in JSON Schema 2020-12.
_DROPPED_KEYWORDS = frozenset({"$schema", "id"})

_ENVELOPE_BASE: JsonDict = {
    "auth_token": {"type": "string", "description": "The token the request carried (absent without one)"},
    "node": {"type": "string", "description": "base64url(md5) of the answering node's name"},
    "request_id": {"type": "string", "description": "The request's id, also sent as X-Request-Id"},
    "timestamp": {"type": "string", "format": "date-time"},
    "version": {"type": "string", "description": "The Kazoo version the service speaks"},
}


def _converted(node: Any) -> Any:
    """A draft-04 schema from ``schemas/`` as a 2020-12 one: ``id``/``$schema`` dropped, references by file name
    pointed at the components they become."""
    if isinstance(node, list):
        return [_converted(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS:
            continue
        if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
            result[key] = REF + value
        elif key == "properties" and isinstance(value, dict):
            result[key] = {name: _converted(prop) for name, prop in value.items()}
        else:
            result[key] = _converted(value)
    return result


@cache
def _file_schemas() -> dict[str, JsonDict]:
    folder = schemas_dir()
    return {
        name: _converted(json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))) for name in SCHEMA_FILES
    }


def _components() -> dict[str, JsonDict]:
    schemas: dict[str, JsonDict] = copy.deepcopy(_file_schemas())
    partial_box = copy.deepcopy(schemas["vmboxes"])
    partial_box.pop("required", None)
    partial_box["description"] = "Some fields of a voicemail box (a JSON merge patch)"
    partial_message = copy.deepcopy(schemas["mailbox_message"])
    partial_message.pop("required", None)
    partial_message["description"] = "A new message's metadata (media_id is assigned by the service)"
    partial_hook = copy.deepcopy(schemas["webhooks"])
    partial_hook.pop("required", None)
    partial_hook["description"] = "Some fields of a webhook (a JSON merge patch)"
    schemas.update(
        {
            "WebhookPatch": partial_hook,
            "Webhook": {
                "description": "A stored webhook (Kazoo's webhook document, with its delivery state)",
                "allOf": [{"$ref": REF + "webhooks"}],
                "properties": {
                    "id": {"type": "string"},
                    "secret": {"type": "string", "description": "The signing secret: in the create answer only"},
                    "disabled_reason": {"type": "string"},
                },
                "required": ["id"],
            },
            "WebhookSummary": {
                "description": "A webhook in a listing",
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "uri": {"type": "string"},
                    "hook": {"type": "string"},
                    "enabled": {"type": "boolean"},
                },
                "required": ["id"],
            },
            "VmboxPatch": partial_box,
            "NewMessageMetadata": partial_message,
            "Vmbox": {
                "description": "A stored voicemail box",
                "allOf": [{"$ref": REF + "vmboxes"}],
                "properties": {
                    "id": {"type": "string"},
                    "_read_only": {"type": "object", "description": "Present on a deleted box: {deleted: true}"},
                },
                "required": ["id"],
            },
            "VmboxSummary": {
                "description": "A box in a listing (vmboxes/crossbar_listing), with its message counts",
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "mailbox": {"type": ["string", "integer"]},
                    "owner_id": {"type": "string"},
                    "messages": {"type": "integer", "description": "Legacy (pre-4.0) messages left in the box"},
                    "flags": {"type": "array", "items": {"type": "string"}},
                    "folders": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
                "required": ["id"],
            },
            "MessageMetadata": {
                "description": "A message's metadata (kzd_box_message:metadata/2), with its transcription",
                "allOf": [{"$ref": REF + "mailbox_message"}],
            },
            "MessageSummary": {
                "description": "A message in a listing (mailbox_messages/listing_by_*)",
                "type": "object",
                "properties": {
                    "media_id": {"type": "string"},
                    "timestamp": {"type": "integer"},
                    "folder": {"type": "string", "enum": ["new", "saved", "deleted"]},
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "caller_id_number": {"type": "string"},
                    "caller_id_name": {"type": "string"},
                    "call_id": {"type": "string"},
                    "length": {"type": "integer"},
                    "source_id": {"type": "string", "description": "The box holding the message"},
                    "transcribed": {"type": "boolean"},
                },
                "required": ["media_id"],
            },
            "MessageOfBox": {
                "description": "A message in the account-wide listing: {box id: the message as in a box's listing}",
                "type": "object",
                "additionalProperties": {"$ref": REF + "MessageSummary"},
                "minProperties": 1,
                "maxProperties": 1,
            },
            "BulkResult": {
                "description": "What a change of many messages did; empty parts are left out",
                "type": "object",
                "properties": {
                    "succeeded": {"type": "array", "items": {"type": "string"}},
                    "failed": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "MessageChange": {
                "description": "A folder change (folder), a move (source_id: a box id) or a copy (source_id: box ids)",
                "type": "object",
                "properties": {
                    "folder": {"type": "string", "enum": ["new", "saved", "deleted"]},
                    "source_id": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                },
            },
            "MessageSelection": {
                "description": "Messages by id, with a folder change, move or copy as for one message",
                "type": "object",
                "allOf": [{"$ref": REF + "MessageChange"}],
                "properties": {"messages": {"type": "array", "items": {"type": "string"}}},
            },
            "MessageChangeResult": {
                "description": "The message after a folder change or a move; the bulk result of a copy",
                "oneOf": [{"$ref": REF + "MessageMetadata"}, {"$ref": REF + "BulkResult"}],
            },
            "AuthResult": {
                "type": "object",
                "properties": {
                    "account_id": {"type": "string"},
                    "account_name": {"type": "string"},
                    "owner_id": {"type": "string"},
                    "reseller_id": {"type": "string"},
                    "is_reseller": {"type": "boolean"},
                    "is_master_account": {"type": "boolean"},
                    "language": {"type": "string"},
                    "apps": {"type": "array"},
                },
                "required": ["account_id"],
            },
            "SuccessEnvelope": {
                "description": "Kazoo's envelope of a success",
                "type": "object",
                "properties": {
                    **_ENVELOPE_BASE,
                    "status": {"const": "success"},
                    "revision": {"type": "string"},
                    "data": {},
                },
                "required": ["data", "status", "request_id"],
            },
            "PagedEnvelope": {
                "description": "Kazoo's envelope of a listing page",
                "allOf": [{"$ref": REF + "SuccessEnvelope"}],
                "properties": {
                    "page_size": {"type": "integer", "description": "Items in this page"},
                    "start_key": {"description": "The start_key the request sent"},
                    "next_start_key": {"description": "Send as start_key for the next page; absent on the last"},
                },
            },
            "ErrorEnvelope": {
                "description": "Kazoo's envelope of an error",
                "type": "object",
                "properties": {
                    **_ENVELOPE_BASE,
                    "status": {"const": "error"},
                    "error": {"type": "string", "description": "The HTTP status, as a string"},
                    "message": {"type": "string", "description": "Kazoo's error code, e.g. bad_identifier"},
                    "data": {"description": "What went wrong, e.g. validation errors by field"},
                },
                "required": ["status", "error", "message", "data"],
            },
            "RequestEnvelope": {
                "description": "Kazoo's request envelope",
                "type": "object",
                "properties": {"data": {}, "auth_token": {"type": "string"}, "verb": {"type": "string"}},
                "required": ["data"],
            },
        }
    )
    return schemas


def _ref(name: str) -> JsonDict:
    return {"$ref": REF + name}


def _request_envelope(data: JsonDict) -> JsonDict:
    return {"allOf": [_ref("RequestEnvelope")], "properties": {"data": data}}


def _success_envelope(op: Operation) -> JsonDict:
    envelope = "PagedEnvelope" if op.paged else "SuccessEnvelope"
    if op.data is None:
        return _ref(envelope)
    data = {"type": "array", "items": _ref(op.data)} if op.many else _ref(op.data)
    return {"allOf": [_ref(envelope)], "properties": {"data": data}}


def _parameter(param: Parameter) -> JsonDict:
    described: JsonDict = {
        "name": param.name,
        "in": param.where,
        "description": param.description,
        "schema": dict(param.schema),
    }
    if param.required or param.where == "path":
        described["required"] = True
    return described


# What an envelope becomes when the request names a ``jsonp`` callback: ``callback({...});``.
_JSONP_CONTENT: JsonDict = {
    "application/javascript": {
        "schema": {"type": "string", "description": "The JSON envelope wrapped in the jsonp callback"}
    }
}


def _media_schema(media: str) -> JsonDict:
    """The schema of a body that is not Kazoo's envelope: a JSON document (the service's own routes) is an object,
    anything else (audio, ZIP, HTML, text) a string of that media type."""
    if media == "application/json":
        return {"type": "object"}
    return {"type": "string", "contentMediaType": media}


def _responses(op: Operation, method: str) -> JsonDict:
    responses: JsonDict = {}
    for status in op.successes():
        if op.media:
            content = {media: {"schema": _media_schema(media)} for media in op.media}
        else:
            content = {"application/json": {"schema": _success_envelope(op)}, **_JSONP_CONTENT}
        if status == 304:
            responses["304"] = {"description": "Not modified: the ETag sent in If-None-Match is current"}
            continue
        responses[str(status)] = {"description": op.success_description, "content": content}
    errors = op.errors()
    if op.pipeline and method == "POST":
        # Verb tunnelling (api_util:get_http_verb) turns a POST into any method, including one the path lacks.
        errors = sorted({*errors, 405})
    for status in errors:
        # The service's own routes answer errors in their own media type, not in Kazoo's envelope.
        error_content = (
            {"application/json": {"schema": _ref("ErrorEnvelope")}, **_JSONP_CONTENT}
            if op.pipeline
            else {media: {"schema": {}} for media in op.media}
        )
        responses[str(status)] = {"description": ERROR_DESCRIPTIONS[status], "content": error_content}
    return responses


def _request_body(op: Operation) -> JsonDict | None:
    if op.body is None and not op.body_media:
        return None
    content: JsonDict = {}
    if op.body is not None:
        schema = _request_envelope(_ref(op.body))
        content["application/json"] = {"schema": schema}
        if op.multipart:
            content["multipart/form-data"] = {
                "schema": {
                    "type": "object",
                    "description": "A JSON part (the envelope) and an audio part",
                    "properties": {"data": schema, "file": {"type": "string", "contentMediaType": "audio/*"}},
                }
            }
    for media in op.body_media:
        content[media] = {"schema": {"type": "string", "contentMediaType": media}}
    return {"required": op.body_required, "content": content}


def _operation(path: str, method: str, op: Operation, names: list[str]) -> JsonDict:
    params = [_parameter(PATH_PARAMETERS[name]) for name in names]
    params += [_parameter(param) for param in op.parameters()]
    described: JsonDict = {
        "operationId": op.operation_id or _operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": _responses(op, method),
    }
    if op.description:
        described["description"] = op.description
    body = _request_body(op)
    if body is not None:
        described["requestBody"] = body
    described["security"] = [{"authToken": []}, {"authTokenQuery": []}] if op.token else []
    return described


def _operation_id(method: str, path: str) -> str:
    words = [part.strip("{}") for part in path.split("/") if part and part != "v2"]
    return method.lower() + "".join(word.title().replace("_", "") for word in words)


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def served_paths(app: web.Application) -> list[str]:
    """The paths the router serves: canonical paths of its resources, without trailing-slash twins and without
    static file folders (the documentation page's assets)."""
    paths: list[str] = []
    for resource in app.router.resources():
        if isinstance(resource, web.StaticResource):
            continue
        path = resource.canonical
        if len(path) > 1 and path.endswith("/") and path.rstrip("/") in paths:
            continue
        if path not in paths:
            paths.append(path)
    return paths


def _v2_twin(path: str) -> str:
    """The ``/v2/`` path that a ``/v1/`` path serves again (Kazoo 4.3 answers both versions)."""
    return "/v2/" + path.removeprefix("/v1/") if path.startswith("/v1/") else path


def _as_v1(operation: JsonDict) -> JsonDict:
    """The ``/v1/`` twin of an operation: its own id, and the one difference said (no paging in v1)."""
    first, rest = operation["operationId"][0], operation["operationId"][1:]
    note = "API version 1: the same operation as under /v2/, except that listings are never paginated."
    return {
        **operation,
        "operationId": "v1" + first.upper() + rest,
        "description": f"{operation['description']}\n\n{note}" if "description" in operation else note,
    }


def _route_table(app: web.Application) -> dict[str, list[Route]]:
    grouped: dict[str, list[Route]] = {}
    for route in app.get(appkeys.ROUTES, ()):
        grouped.setdefault(route.path, []).append(route)
    return grouped


def _from_route(op: Operation, route: Route) -> Operation:
    """``op`` with what the route table says: token or not, file bodies refused or not, the data's schema."""
    return dataclasses.replace(
        op,
        token=route.auth == "account",
        json_only=route.body == "json",
        body=op.body if op.body is not None else route.schema,
    )


def _operations_of(
    app: web.Application, path: str, operations: Mapping[str, Mapping[str, Operation]]
) -> dict[str, Operation | None]:
    """The methods of ``path`` and their operations (None: served but not described): the route table's methods
    for Kazoo's routes, the operations table's for the service's own."""
    twin = _v2_twin(path)
    described = operations.get(twin, {})
    routes = _route_table(app).get(twin)
    if routes is None:
        return dict(described)
    found: dict[str, Operation | None] = {}
    for route in routes:
        op = described.get(route.method)
        found[route.method] = None if op is None else _from_route(op, route)
    return found


def undocumented_paths(
    app: web.Application, operations: Mapping[str, Mapping[str, Operation]] = OPERATIONS
) -> list[str]:
    """Served paths (and, for Kazoo's routes, ``METHOD path``) that the operations table does not describe."""
    missing: list[str] = []
    for path in served_paths(app):
        ops = _operations_of(app, path, operations)
        if not ops:
            missing.append(path)
        missing.extend(f"{method} {path}" for method, op in ops.items() if op is None)
    return missing


def describe(
    app: web.Application,
    *,
    server_url: str = "/",
    operations: Mapping[str, Mapping[str, Operation]] = OPERATIONS,
    version: str = "4.3",
) -> JsonDict:
    """The OpenAPI 3.1 document of ``app``."""
    paths: JsonDict = {}
    for path in served_paths(app):
        ops = {method: op for method, op in _operations_of(app, path, operations).items() if op is not None}
        if not ops:
            continue
        names = _path_names(path)
        described = {method.lower(): _operation(path, method, op, names) for method, op in ops.items()}
        if path != _v2_twin(path):
            described = {method: _as_v1(operation) for method, operation in described.items()}
        paths[path] = described
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "kazoo_vm: Kazoo 4.3 voicemail boxes API",
            "version": version,
            "description": (
                "Voicemail boxes and messages in the words of Kazoo 4.3's Crossbar API. Get a token with "
                "PUT /v2/api_auth (an account's api key) or PUT /v2/user_auth, then send it as X-Auth-Token. "
                "Every JSON answer is in Kazoo's envelope."
            ),
        },
        "servers": [{"url": server_url}],
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": [
            {"name": "auth", "description": "Tokens"},
            {"name": "vmboxes", "description": "Voicemail boxes"},
            {"name": "messages", "description": "Voicemail messages and their audio"},
            {"name": "webhooks", "description": "Webhooks (notifications of voicemail events)"},
            {"name": "service", "description": "The service itself"},
        ],
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "authToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "authTokenQuery": {"type": "apiKey", "in": "query", "name": "auth_token"},
            },
        },
    }
