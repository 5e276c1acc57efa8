"""``/vmboxes/messages``, ``/vmboxes/{B}/messages[/raw]`` and ``/vmboxes/{B}/messages/{M}[/raw]``: parse, call the
domain, render. Audio is streamed; everything else is Kazoo's JSON envelope."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.domain import legacy_ids
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.filters import build_filter
from kazoo_vm.domain.messages import actions as message_actions
from kazoo_vm.domain.messages import changes as message_changes
from kazoo_vm.domain.messages import counts as message_counts
from kazoo_vm.domain.messages import downloads
from kazoo_vm.domain.messages.create import create_message
from kazoo_vm.domain.messages.documents import public_metadata
from kazoo_vm.domain.messages.listing import (
    Entry,
    ListingView,
    account_listing_view,
    box_listing_view,
    is_descending,
    list_messages,
    render_item,
    time_window,
)
from kazoo_vm.domain.messages.records import Scope
from kazoo_vm.domain.messages.zip_download import zip_chunks
from kazoo_vm.domain.paging import paging_from
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import NotAcceptable
from kazoo_vm.handlers.common import account, actor, location, parsed
from kazoo_vm.handlers.vmboxes import BOX_DELETED_HOOK, COUNTS
from kazoo_vm.http import envelope
from kazoo_vm.http.middleware import finish_headers
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore, JsonDict

log = logging.getLogger(__name__)


def _scope(request: web.Request) -> Scope:
    return Scope(request.app[appkeys.STORE], request.app[appkeys.SETTINGS], account(request), actor(request))


# -- listings -------------------------------------------------------------------------------------------


async def _listing(
    request: web.Request, view: ListingView, render: Any, *, box_id: str | None = None, legacy: list[JsonDict] | None = None
) -> web.StreamResponse:
    scope = _scope(request)
    req = parsed(request)
    paging = paging_from(req, scope.settings.page_size)
    window = time_window(req, scope.settings, naming.now_gregorian())
    # Kazoo points the query-string filters at the metadata (cb_vmboxes prefix_qs_filter_keys); the created_*
    # bounds are the key range, not document filters.
    doc_filter = build_filter(req.query, key_prefix="metadata.", time_filters=False)
    page = await list_messages(
        scope, view, window, is_descending(req), paging, doc_filter, render, box_id=box_id, legacy_items=legacy
    )
    paging_keys = None
    if paging.paginate:
        paging_keys = {
            "page_size": len(page.items),
            "start_key": req.value("start_key") if paging.start_key_given else page.start_key,
            "next_start_key": page.next_start_key,
        }
    return envelope.success(request, page.items, paging=paging_keys)


async def list_box_messages(request: web.Request) -> web.StreamResponse:
    scope = _scope(request)
    box = await load_box(scope.store, scope.account, request.match_info["box_id"])
    legacy = await legacy_ids.legacy_summaries(scope.store, scope.settings, scope.account, box)
    oldest = scope.oldest()
    return await _listing(
        request,
        box_listing_view(box["_id"]),
        lambda entry: render_item(entry, oldest),
        box_id=box["_id"],
        legacy=legacy,
    )


async def list_account_messages(request: web.Request) -> web.StreamResponse:
    oldest = _scope(request).oldest()
    view = account_listing_view()

    def render(entry: Entry) -> JsonDict:
        return {str(view.box_of(entry.key)): render_item(entry, oldest)}

    return await _listing(request, view, render)


# -- one box's messages -----------------------------------------------------------------------------------


async def put_message(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    doc = await create_message(_scope(request), request.match_info["box_id"], req.data_object, req.files)
    return envelope.success(
        request, public_metadata(doc), status=201, headers={"Location": location(request, doc["_id"])}
    )


async def post_messages(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    result = await message_actions.change_messages(
        _scope(request), request.match_info["box_id"], req.data_object, req.value("folder")
    )
    return envelope.success(request, result)


async def delete_messages(request: web.Request) -> web.StreamResponse:
    scope = _scope(request)
    req = parsed(request)
    box = await load_box(scope.store, scope.account, request.match_info["box_id"])
    listed = req.data_object.get("messages")
    selected = [str(item) for item in listed] if isinstance(listed, list) else None
    folder = message_changes.delete_selection(req.value("folder")) if selected is None else None
    result = await message_changes.delete_messages(scope, box, selected, folder)
    return envelope.success(request, result.as_json())


async def get_message(request: web.Request) -> web.StreamResponse:
    doc = await message_changes.fetch_message(
        _scope(request), request.match_info["box_id"], request.match_info["message_id"]
    )
    return envelope.success(request, public_metadata(doc))


async def post_message(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    data = await message_actions.change_message(
        _scope(request),
        request.match_info["box_id"],
        request.match_info["message_id"],
        req.data_object,
        req.value("folder"),
    )
    return envelope.success(request, data)


async def delete_message(request: web.Request) -> web.StreamResponse:
    data = await message_changes.delete_message(
        _scope(request), request.match_info["box_id"], request.match_info["message_id"]
    )
    return envelope.success(request, data)


# -- audio ------------------------------------------------------------------------------------------------------


def _accepting(request: web.Request, provided: list[str]) -> None:
    """406 (in the envelope) when the client accepts none of ``provided``; ``accept`` in the request overrides
    the header (api_resource accept_override)."""
    override = parsed(request).value("accept")
    wanted = override if isinstance(override, str) and override else request.headers.get("Accept")
    if downloads.negotiate(wanted, provided) is None:
        raise NotAcceptable(provided)


async def _send(request: web.Request, response: web.StreamResponse, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    """Stream ``chunks``; a failure once the headers are out can only cut the connection."""
    # What the middleware and the dispatcher add to other answers must be set before the headers go out.
    finish_headers(request, response)
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except Exception:
        log.exception("download %s broke off", request.get(appkeys.REQUEST_ID))
        if request.protocol is not None:
            request.protocol.force_close()
    return response


async def get_audio(request: web.Request) -> web.StreamResponse:
    _accepting(request, downloads.AUDIO_DOWNLOAD_TYPES)
    scope = _scope(request)
    download = await downloads.single_download(scope, request.match_info["box_id"], request.match_info["message_id"])
    ref = download.audio
    wanted = downloads.byte_range(request.headers.get("Range"), ref.length) if ref.length is not None else None
    partial = wanted is not None and wanted.partial
    couch_range = f"bytes={wanted.start}-{wanted.end}" if wanted is not None and partial else None
    async with scope.store.open_attachment(ref.db, ref.doc_id, ref.name, byte_range=couch_range) as stream:
        response = web.StreamResponse(status=206 if partial else 200)
        response.content_type = ref.content_type
        # Kazoo's header, name unquoted (cb_vmboxes load_attachment_from_message).
        response.headers["Content-Disposition"] = f"attachment; filename={download.file_name}"
        response.headers["Accept-Ranges"] = "bytes"
        chunks: AsyncIterator[bytes] = stream.chunks()
        if wanted is not None:
            response.headers["Content-Range"] = wanted.content_range
            response.content_length = wanted.length
            if partial and stream.status != 206:
                chunks = downloads.sliced(chunks, wanted.start, wanted.length)
        elif ref.length is not None:
            response.content_length = ref.length
        elif "Content-Length" in stream.response.headers:
            response.content_length = stream.length  # else sent chunked
        return await _send(request, response, chunks)


async def put_audio(request: web.Request) -> web.StreamResponse:
    doc = await message_changes.replace_audio(
        _scope(request), request.match_info["box_id"], request.match_info["message_id"], parsed(request).files
    )
    return envelope.success(request, public_metadata(doc), status=201)


async def zip_audio(request: web.Request) -> web.StreamResponse:
    _accepting(request, downloads.ZIP_DOWNLOAD_TYPES)
    scope = _scope(request)
    raw_ids = message_changes.message_ids(parsed(request).data_object)
    box = await load_box(scope.store, scope.account, request.match_info["box_id"])
    entries = await downloads.zip_entries(scope, box, raw_ids)
    response = web.StreamResponse(status=200)
    response.content_type = "application/zip"
    request_id = request.get(appkeys.REQUEST_ID, "voicemail")
    response.headers["Content-Disposition"] = f"attachment; filename={request_id}.zip"
    return await _send(request, response, zip_chunks(entries))


# -- hooks for the box endpoints -----------------------------------------------------------------------------


def install_hooks(app: web.Application) -> None:
    """Box listing counts and what happens to a box's messages when it is deleted."""
    settings = app[appkeys.SETTINGS]

    async def counts(of: Account) -> dict[str, dict[str, int]]:
        return await message_counts.account_counts(Scope(app[appkeys.STORE], settings, of))

    async def before_box_deleted(store: CouchStore, of: Account, box: JsonDict) -> None:
        await message_changes.delete_box_messages(Scope(store, settings, of), box)

    app[COUNTS] = counts
    app[BOX_DELETED_HOOK] = before_box_deleted
