"""Small helpers every handler uses to read the request context."""

from __future__ import annotations

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.documents import Actor
from kazoo_vm.http.request import ParsedRequest


def parsed(request: web.Request) -> ParsedRequest:
    return request[appkeys.PARSED]


def account(request: web.Request) -> Account:
    return request[appkeys.ACCOUNT]


def actor(request: web.Request) -> Actor:
    auth = request.get(appkeys.AUTH)
    return Actor(
        account_id=auth.account_id if auth else None,
        user_id=auth.owner_id if auth else None,
        request_id=request.get(appkeys.REQUEST_ID),
    )


def context(request: web.Request) -> Scope:
    """The domain's request context: the store, the settings, the account in the path, who acts, the listeners."""
    app = request.app
    return Scope(app[appkeys.STORE], app[appkeys.SETTINGS], account(request), actor(request), app[appkeys.EVENTS])


def location(request: web.Request, new_id: str) -> str:
    """The request path with the new id appended (crossbar_doc add_location_header)."""
    return f"{request.path.rstrip('/')}/{new_id}"
