"""The route table: every method on every path kazoo_vm serves, as data (:class:`~kazoo_vm.http.route.Route`).

The app serves it (:func:`setup_routes`, which also leaves the table on the app as ``appkeys.ROUTES``); the OpenAPI
description (:mod:`kazoo_vm.http.openapi`) reads it there.

Paths are matched in order, so the literal ``/vmboxes/messages`` comes before ``/vmboxes/{box_id}``: Kazoo matches
the token ``messages`` before a box id, so a box whose id is ``messages`` cannot be addressed; likewise
``/messages/raw`` before ``/messages/{message_id}`` (cb_vmboxes matches the token ``raw`` first).
"""

from __future__ import annotations

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.handlers import auth, messages, vmboxes, webhooks
from kazoo_vm.http.dispatch import endpoint
from kazoo_vm.http.route import Route

ACCOUNT = "/v2/accounts/{account_id}"
BOXES = f"{ACCOUNT}/vmboxes"
BOX = f"{BOXES}/{{box_id}}"
MESSAGES = f"{BOX}/messages"
MESSAGE = f"{MESSAGES}/{{message_id}}"
HOOKS = f"{ACCOUNT}/webhooks"
HOOK = f"{HOOKS}/{{webhook_id}}"

ROUTES: tuple[Route, ...] = (
    Route("PUT", "/v2/api_auth", auth.api_auth, "api_auth", auth="public", schema="api_auth"),
    Route("PUT", "/v2/user_auth", auth.user_auth, "user_auth", auth="public", schema="user_auth"),
    Route("GET", BOXES, vmboxes.list_boxes, "vmboxes"),
    Route("PUT", BOXES, vmboxes.create_box, "vmboxes", schema="vmboxes"),
    Route("GET", f"{BOXES}/messages", messages.list_account_messages, "vmbox_account_messages"),
    Route("GET", MESSAGES, messages.list_box_messages, "vmbox_messages", body="json_or_audio"),
    Route("PUT", MESSAGES, messages.put_message, "vmbox_messages", body="json_or_audio", schema="vm_message_metadata"),
    Route("POST", MESSAGES, messages.post_messages, "vmbox_messages", body="json_or_audio"),
    Route("DELETE", MESSAGES, messages.delete_messages, "vmbox_messages", body="json_or_audio"),
    Route("POST", f"{MESSAGES}/raw", messages.zip_audio, "vmbox_messages_raw"),
    Route("GET", MESSAGE, messages.get_message, "vmbox_message"),
    Route("POST", MESSAGE, messages.post_message, "vmbox_message"),
    Route("DELETE", MESSAGE, messages.delete_message, "vmbox_message"),
    Route("GET", f"{MESSAGE}/raw", messages.get_audio, "vmbox_message_raw", body="json_or_audio"),
    Route("PUT", f"{MESSAGE}/raw", messages.put_audio, "vmbox_message_raw", body="json_or_audio"),
    Route("GET", BOX, vmboxes.get_box, "vmbox"),
    Route("POST", BOX, vmboxes.replace_box, "vmbox", schema="vmboxes"),
    Route("PATCH", BOX, vmboxes.patch_box, "vmbox", schema="vmboxes"),
    Route("DELETE", BOX, vmboxes.delete_box, "vmbox"),
    Route("GET", HOOKS, webhooks.list_hooks, "webhooks"),
    Route("PUT", HOOKS, webhooks.create_hook, "webhooks", schema="webhooks"),
    Route("GET", HOOK, webhooks.get_hook, "webhook"),
    Route("POST", HOOK, webhooks.replace_hook, "webhook", schema="webhooks"),
    Route("PATCH", HOOK, webhooks.patch_hook, "webhook", schema="webhooks"),
    Route("DELETE", HOOK, webhooks.delete_hook, "webhook"),
)


def by_path(routes: tuple[Route, ...] = ROUTES) -> dict[str, list[Route]]:
    """The routes grouped by path, paths in the order they are matched."""
    grouped: dict[str, list[Route]] = {}
    for route in routes:
        grouped.setdefault(route.path, []).append(route)
    return grouped


def v1_path(path: str) -> str:
    """The same route under API version 1, which Kazoo 4.3 still serves (api_version_constraint accepts v1 and
    v2); the only difference is that v1 listings are not paginated."""
    return "/v1/" + path.removeprefix("/v2/")


def setup_routes(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    """Serve every path with and without a trailing slash (Kazoo splits the path on ``/`` and drops empty tokens),
    under ``/v2/`` and ``/v1/``."""
    app[appkeys.ROUTES] = routes
    for path, served in by_path(routes).items():
        handler = endpoint(served)
        app.router.add_route("*", path, handler, name=served[0].name)
        app.router.add_route("*", path + "/", handler)
        app.router.add_route("*", v1_path(path), handler)
        app.router.add_route("*", v1_path(path) + "/", handler)
