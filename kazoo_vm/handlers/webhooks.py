"""``/v2/accounts/{A}/webhooks`` and ``/webhooks/{W}``: parse, call the domain, render."""

from __future__ import annotations

from aiohttp import web

from kazoo_vm.domain import webhooks
from kazoo_vm.handlers.common import context, location, parsed
from kazoo_vm.http import envelope


async def list_hooks(request: web.Request) -> web.StreamResponse:
    return envelope.success(request, await webhooks.list_hooks(context(request)))


async def create_hook(request: web.Request) -> web.StreamResponse:
    saved = await webhooks.create_hook(context(request), parsed(request).data_object)
    return envelope.success(
        request,
        webhooks.response(saved.doc, saved.secret),
        status=201,
        revision=saved.doc["_rev"],
        headers={"Location": location(request, saved.doc["_id"])},
    )


async def get_hook(request: web.Request) -> web.StreamResponse:
    doc = await webhooks.load_hook(context(request), request.match_info["webhook_id"])
    return envelope.success(request, webhooks.response(doc), revision=doc["_rev"])


async def replace_hook(request: web.Request) -> web.StreamResponse:
    doc = await webhooks.replace_hook(context(request), request.match_info["webhook_id"], parsed(request).data_object)
    return envelope.success(request, webhooks.response(doc), revision=doc["_rev"])


async def patch_hook(request: web.Request) -> web.StreamResponse:
    doc = await webhooks.patch_hook(context(request), request.match_info["webhook_id"], parsed(request).data_object)
    return envelope.success(request, webhooks.response(doc), revision=doc["_rev"])


async def delete_hook(request: web.Request) -> web.StreamResponse:
    doc = await webhooks.delete_hook(context(request), request.match_info["webhook_id"])
    data = webhooks.response(doc)
    data["_read_only"] = {"deleted": True}
    return envelope.success(request, data, revision=doc["_rev"])
