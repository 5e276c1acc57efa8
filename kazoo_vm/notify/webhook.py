"""One webhook delivery: the hook is read again (it may have been disabled, changed or deleted since the event),
the payload sent with its signature, and the hook's run of consecutive failures kept on the hook: after
``webhook_disable_after`` of them it is disabled with the reason on it, as Kazoo's webhooks_disabler does."""

from __future__ import annotations

import json
import time
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from kazoo_vm.model import JsonDict
from kazoo_vm.notify import signing
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import NotFound
from kazoo_vm.storage.outbox import Item
from kazoo_vm.storage.updates import update_doc


class Undeliverable(Exception):
    """Nothing a retry can change: the hook is gone or disabled."""


class DeliveryFailed(Exception):
    """The receiver did not take it (non-2xx, timeout, connection refused): worth a retry."""


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes
    headers: dict[str, str]


def _flat(payload: JsonDict) -> dict[str, str]:
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in payload.items()}


def build_request(hook: JsonDict, payload: JsonDict, item_id: str, event: str, now: int) -> Request:
    """The request for ``hook``: JSON or form data for ``post``/``put`` (the hook's ``format``), a query string for
    ``get``; signed over what is sent."""
    custom = hook.get("custom_data") if isinstance(hook.get("custom_data"), dict) else {}
    # custom_data is added to the event and wins over its values (Kazoo's webhooks schema).
    data = {**payload, **(custom or {})}
    method = str(hook.get("http_verb") or "post").upper()
    url = str(hook["uri"])
    headers = {signing.EVENT_HEADER: event, signing.DELIVERY_HEADER: item_id}
    if method == "GET":
        query = urlencode(_flat(data))
        body = query.encode()
        url = f"{url}{'&' if '?' in url else '?'}{query}"
        payload_bytes = b""
    elif hook.get("format") == "json":
        body = payload_bytes = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        headers["Content-Type"] = "application/json"
    else:
        body = payload_bytes = urlencode(_flat(data)).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers[signing.TIMESTAMP_HEADER] = str(now)
    headers[signing.SIGNATURE_HEADER] = signing.signature(str(hook.get("pvt_secret") or ""), now, body)
    return Request(method, url, payload_bytes, headers)


async def _record(store: CouchStore, db: str, hook: JsonDict, error: str | None, disable_after: int) -> None:
    """Count the outcome on the hook (``hook`` as read before sending: no second read unless it changed)."""

    def change(doc: JsonDict) -> JsonDict | None:
        if error is None:
            if not doc.get("pvt_failures"):
                return None
            doc["pvt_failures"] = 0
            return doc
        failures = int(doc.get("pvt_failures") or 0) + 1
        doc["pvt_failures"] = failures
        if failures >= disable_after and doc.get("enabled", True):
            doc["enabled"] = False
            doc["pvt_disabled_message"] = f"disabled after {failures} consecutive failed deliveries; last: {error}"
        return doc

    with suppress(NotFound):  # deleted meanwhile: nothing to count on
        await update_doc(store, db, hook["_id"], change, current=hook)


async def deliver(
    store: CouchStore,
    session: aiohttp.ClientSession,
    item: Item,
    *,
    timeout_s: float,
    disable_after: int,
    hook: JsonDict | None = None,
) -> None:
    """Send ``item`` to its hook (``hook``: the document as just read, else it is read now); raises
    :class:`Undeliverable` or :class:`DeliveryFailed`."""
    assert item.hook_id is not None and item.hook_account_id is not None
    db = naming.account_db(item.hook_account_id)
    if hook is None:
        try:
            hook = await store.get_doc(db, item.hook_id)
        except NotFound:
            raise Undeliverable("the webhook no longer exists") from None
    if hook.get("pvt_deleted"):
        raise Undeliverable("the webhook was deleted")
    if hook.get("enabled") is False:
        raise Undeliverable(f"the webhook is disabled: {hook.get('pvt_disabled_message') or 'by its owner'}")
    request = build_request(hook, item.payload, item.id, item.event, int(time.time()))
    error: str | None = None
    try:
        async with session.request(
            request.method,
            request.url,
            data=request.body or None,
            headers=request.headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            await response.read()
            if not 200 <= response.status < 300:
                error = f"the receiver answered {response.status}"
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    except aiohttp.ClientError as exc:
        error = f"request failed: {exc!r}"
    await _record(store, db, hook, error, disable_after)
    if error is not None:
        raise DeliveryFailed(error)
