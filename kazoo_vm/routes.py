"""The route table: every path kazoo_vm serves and which handler answers each method.

Paths are matched in order, so the literal ``/vmboxes/messages`` comes before ``/vmboxes/{box_id}``: Kazoo matches
the token ``messages`` before a box id, so a box whose id is ``messages`` cannot be addressed.
"""

from __future__ import annotations

from aiohttp import web

from kazoo_vm.handlers import auth, messages, vmboxes
from kazoo_vm.http.dispatch import AioHandler, endpoint

ACCOUNT = "/v2/accounts/{account_id}"


def _add(router: web.UrlDispatcher, path: str, handler: AioHandler, *, name: str) -> None:
    """Serve ``path`` with and without a trailing slash: Kazoo splits the path on ``/`` and drops empty tokens."""
    router.add_route("*", path, handler, name=name)
    router.add_route("*", path + "/", handler)


def setup_routes(app: web.Application) -> None:
    router = app.router
    _add(
        router, "/v2/api_auth", endpoint({"PUT": auth.api_auth}, account_scoped=False, json_only=True), name="api_auth"
    )
    _add(
        router,
        "/v2/user_auth",
        endpoint({"PUT": auth.user_auth}, account_scoped=False, json_only=True),
        name="user_auth",
    )
    _add(
        router,
        f"{ACCOUNT}/vmboxes",
        endpoint({"GET": vmboxes.list_boxes, "PUT": vmboxes.create_box}, json_only=True),
        name="vmboxes",
    )
    setup_message_routes(app)
    _add(
        router,
        f"{ACCOUNT}/vmboxes/{{box_id}}",
        endpoint(
            {
                "GET": vmboxes.get_box,
                "POST": vmboxes.replace_box,
                "PATCH": vmboxes.patch_box,
                "DELETE": vmboxes.delete_box,
            },
            json_only=True,
        ),
        name="vmbox",
    )


def setup_message_routes(app: web.Application) -> None:
    """Message routes (issue #3) go here, before the box route; ``/messages/raw`` before ``/messages/{message_id}``
    for the same reason (cb_vmboxes matches the token ``raw`` first)."""
    router = app.router
    box = f"{ACCOUNT}/vmboxes/{{box_id}}/messages"
    _add(
        router,
        f"{ACCOUNT}/vmboxes/messages",
        endpoint({"GET": messages.list_account_messages}, json_only=True),
        name="vmbox_account_messages",
    )
    _add(
        router,
        box,
        endpoint(
            {
                "GET": messages.list_box_messages,
                "PUT": messages.put_message,
                "POST": messages.post_messages,
                "DELETE": messages.delete_messages,
            }
        ),
        name="vmbox_messages",
    )
    _add(router, f"{box}/raw", endpoint({"POST": messages.zip_audio}, json_only=True), name="vmbox_messages_raw")
    _add(
        router,
        f"{box}/{{message_id}}",
        endpoint(
            {"GET": messages.get_message, "POST": messages.post_message, "DELETE": messages.delete_message},
            json_only=True,
        ),
        name="vmbox_message",
    )
    _add(
        router,
        f"{box}/{{message_id}}/raw",
        endpoint({"GET": messages.get_audio, "PUT": messages.put_audio}),
        name="vmbox_message_raw",
    )
