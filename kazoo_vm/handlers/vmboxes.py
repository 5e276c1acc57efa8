"""``/v2/accounts/{A}/vmboxes`` and ``/vmboxes/{B}``: parse, call the domain, render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.domain import vmboxes
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.documents import to_response
from kazoo_vm.domain.filters import build_filter
from kazoo_vm.domain.paging import paging_from
from kazoo_vm.handlers.common import context, location, parsed
from kazoo_vm.http import envelope


def _box_response(saved: vmboxes.SavedBox) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    data = to_response(saved.doc)
    data.pop("messages", None)
    extra = {"message": vmboxes.MIGRATE_MESSAGE} if saved.has_legacy_messages else {}
    headers = {"Warning": saved.warnings[0]} if saved.warnings else {}
    return data, extra, headers


async def list_boxes(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    paging = paging_from(req, request.app[appkeys.SETTINGS].page_size)
    scope = context(request)
    doc_filter = build_filter(req.query)
    page = await vmboxes.list_boxes(scope, paging, doc_filter, request.app[appkeys.COUNTS](scope))
    # crossbar_doc paging: start_key is echoed only when the client sent one.
    start_key = req.value("start_key") if paging.start_key_given else None
    return envelope.page(
        request, page.items, paginate=paging.paginate, start_key=start_key, next_start_key=page.next_start_key
    )


async def create_box(request: web.Request) -> web.StreamResponse:
    saved = await vmboxes.create_box(context(request), parsed(request).data_object)
    data, extra, headers = _box_response(saved)
    headers["Location"] = location(request, saved.doc["_id"])
    return envelope.success(request, data, status=201, revision=saved.doc["_rev"], extra=extra, headers=headers)


async def get_box(request: web.Request) -> web.StreamResponse:
    doc = await vmboxes.load_box(context(request), request.match_info["box_id"])
    data = to_response(doc)
    data.pop("messages", None)
    extra = {"message": vmboxes.MIGRATE_MESSAGE} if doc.get("messages") else {}
    return envelope.success(request, data, revision=doc["_rev"], extra=extra)


BoxUpdate = Callable[[Scope, str, dict[str, Any]], Awaitable[vmboxes.SavedBox]]


async def _update_box(request: web.Request, update: BoxUpdate) -> web.StreamResponse:
    saved = await update(context(request), request.match_info["box_id"], parsed(request).data_object)
    data, extra, headers = _box_response(saved)
    return envelope.success(request, data, revision=saved.doc["_rev"], extra=extra, headers=headers)


async def replace_box(request: web.Request) -> web.StreamResponse:
    return await _update_box(request, vmboxes.replace_box)


async def patch_box(request: web.Request) -> web.StreamResponse:
    return await _update_box(request, vmboxes.patch_box)


async def delete_box(request: web.Request) -> web.StreamResponse:
    doc = await vmboxes.delete_box(
        context(request),
        request.match_info["box_id"],
        before_delete=request.app[appkeys.BOX_DELETED_HOOK],
        hard=str(parsed(request).value("should_soft_delete")).lower() == "false",
    )
    data = to_response(doc)
    data.pop("messages", None)
    data["_read_only"] = {"deleted": True}
    return envelope.success(request, data, revision=doc["_rev"])
