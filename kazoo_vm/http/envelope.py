"""Kazoo's response envelope (api_util:create_resp_envelope), for successes and errors.

Success: ``{"auth_token", "data", "node", "request_id", "revision", "status": "success", "timestamp", "version"}``
plus paging keys when paging. Error: ``{"data", "error": "<code as string>", "message", "status": "error", ...}``.
Keys without a value are left out, as Kazoo does; ``auth_token`` only when the request carried one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.errors import KazooError

EXPIRES = "Fri, 01 Jan 1999 00:00:00 GMT"  # Kazoo's default resp_expires


@cache
def node_id(node_name: str) -> str:
    """base64url(md5(node name)) without padding, as Kazoo's kz_nodes:node_encoded."""
    digest = hashlib.md5(node_name.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _timestamp() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_of(request: web.Request) -> str | None:
    auth = request.get(appkeys.AUTH)
    if auth is not None and auth.token:
        token: str = auth.token
        return token
    parsed = request.get(appkeys.PARSED)
    if parsed is None:
        header = request.headers.get("X-Auth-Token")
        return header or None
    token = request.headers.get("X-Auth-Token") or parsed.value("auth_token")
    return token if isinstance(token, str) and token else None


def _base(request: web.Request) -> dict[str, Any]:
    settings = request.app[appkeys.SETTINGS]
    body: dict[str, Any] = {
        "node": node_id(settings.node_name),
        "request_id": request.get(appkeys.REQUEST_ID, ""),
        "timestamp": _timestamp(),
        "version": settings.kazoo_version,
    }
    token = _token_of(request)
    if token:
        body["auth_token"] = token
    return body


def _wants_pretty(request: web.Request) -> bool:
    parsed = request.get(appkeys.PARSED)
    if request.headers.get("X-Pretty-Print", "").lower() == "true":
        return True
    return parsed.flag("pretty_print") if parsed is not None else request.query.get("pretty_print") == "true"


# Stands for ``data`` while the rest of a list envelope is serialised; its encoded form never occurs elsewhere as
# ``"data":<it>`` (quotes inside a JSON string are escaped), so one replace puts the data's own text in its place.
_DATA_SLOT = "\u0000data\u0000"
_DATA_SLOT_TEXT = '"data":' + json.dumps(_DATA_SLOT)


def _dumps(body: dict[str, Any], pretty: bool) -> str:
    return json.dumps(body, indent=2 if pretty else None, separators=None if pretty else (",", ":"), sort_keys=True)


def render(
    request: web.Request,
    body: dict[str, Any],
    status: int,
    headers: dict[str, str] | None = None,
    *,
    data_text: str | None = None,
) -> web.Response:
    """Serialise an envelope, honouring ``pretty_print`` and ``jsonp`` as Kazoo does. ``data_text``: ``data``
    already serialised (compact, sorted keys), put in as it is rather than serialised again."""
    pretty = _wants_pretty(request)
    if data_text is not None and not pretty:
        text = _dumps({**body, "data": _DATA_SLOT}, pretty).replace(_DATA_SLOT_TEXT, '"data":' + data_text, 1)
    else:
        text = _dumps(body, pretty)
    parsed = request.get(appkeys.PARSED)
    callback = parsed.value("jsonp") if parsed is not None else request.query.get("jsonp")
    content_type = "application/json"
    if isinstance(callback, str) and callback.replace("_", "").replace(".", "").isalnum():
        text = f"{callback}({text});"
        content_type = "application/javascript"
    return web.Response(text=text, status=status, content_type=content_type, headers=headers)


def list_revision(data_text: str, paging: dict[str, Any] | None) -> str:
    """A list answer's revision: the md5 of its data (and paging keys), so the same content gives the same value
    on every request and ``If-None-Match`` can match (Kazoo hashes the whole encoded response, request id and
    timestamp included, so its list revisions never repeat)."""
    digest = hashlib.md5(data_text.encode())
    if paging:
        digest.update(json.dumps(paging, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def success(
    request: web.Request,
    data: Any,
    *,
    status: int = 200,
    revision: str | None = None,
    paging: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    body = _base(request)
    body.update(extra or {})
    body["data"] = data
    body["status"] = "success"
    shown_paging = {key: value for key, value in (paging or {}).items() if value is not None}
    body.update(shown_paging)
    data_text = None
    if revision is None and isinstance(data, list):
        # Lists have no revision of their own: the data is serialised once, for the hash and for the answer.
        data_text = json.dumps(data, separators=(",", ":"), sort_keys=True)
        revision = list_revision(data_text, shown_paging)
    if revision is not None:
        body["revision"] = revision
    all_headers = dict(headers or {})
    if request.method in ("GET", "HEAD") and revision is not None:
        etag = f'"{revision}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        all_headers["ETag"] = etag
        all_headers["Expires"] = EXPIRES
    return render(request, body, status, all_headers, data_text=data_text)


def error_body(request: web.Request, error: KazooError) -> dict[str, Any]:
    body = _base(request)
    body.update({"data": error.data, "error": str(error.status), "message": error.message, "status": "error"})
    return body


def page(
    request: web.Request, items: list[Any], *, paginate: bool, start_key: str | None, next_start_key: str | None
) -> web.StreamResponse:
    """A listing; when paging, Kazoo's ``page_size`` (items in this page), ``start_key`` and ``next_start_key``."""
    paging = {"page_size": len(items), "start_key": start_key, "next_start_key": next_start_key} if paginate else None
    return success(request, items, paging=paging)
