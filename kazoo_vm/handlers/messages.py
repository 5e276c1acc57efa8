"""``/vmboxes/messages``, ``/vmboxes/{B}/messages[/raw]`` and ``/vmboxes/{B}/messages/{M}[/raw]``: parse, call the
domain, render. Audio is streamed; everything else is Kazoo's JSON envelope."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from kazoo_vm import appkeys
from kazoo_vm.domain.messages import actions as message_actions
from kazoo_vm.domain.messages import changes as message_changes
from kazoo_vm.domain.messages import downloads
from kazoo_vm.domain.messages.create import create_message
from kazoo_vm.domain.messages.documents import public_metadata
from kazoo_vm.domain.messages.listing import Page, account_messages, box_messages
from kazoo_vm.domain.messages.listing_query import ListingQuery, listing_query
from kazoo_vm.domain.messages.zip_download import zip_chunks
from kazoo_vm.handlers.common import context, location, parsed
from kazoo_vm.http import downloads as http_downloads
from kazoo_vm.http import envelope
from kazoo_vm.http.middleware import finish_headers

log = logging.getLogger(__name__)


# -- listings -------------------------------------------------------------------------------------------


def _page(request: web.Request, query: ListingQuery, page: Page) -> web.StreamResponse:
    return envelope.page(
        request,
        page.items,
        paginate=query.paging.paginate,
        start_key=page.start_key,
        next_start_key=page.next_start_key,
    )


async def list_box_messages(request: web.Request) -> web.StreamResponse:
    scope = context(request)
    query = listing_query(parsed(request), scope.settings)
    return _page(request, query, await box_messages(scope, request.match_info["box_id"], query))


async def list_account_messages(request: web.Request) -> web.StreamResponse:
    scope = context(request)
    query = listing_query(parsed(request), scope.settings)
    return _page(request, query, await account_messages(scope, query))


# -- one box's messages -----------------------------------------------------------------------------------


async def put_message(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    doc = await create_message(context(request), request.match_info["box_id"], req.data_object, req.files)
    return envelope.success(
        request, public_metadata(doc), status=201, headers={"Location": location(request, doc["_id"])}
    )


async def post_messages(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    result = await message_actions.change_messages(
        context(request), request.match_info["box_id"], req.data_object, req.value("folder")
    )
    return envelope.success(request, result)


async def delete_messages(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    result = await message_changes.delete_requested(
        context(request), request.match_info["box_id"], req.data_object, req.value("folder")
    )
    return envelope.success(request, result.as_json())


async def get_message(request: web.Request) -> web.StreamResponse:
    doc = await message_changes.fetch_message(
        context(request), request.match_info["box_id"], request.match_info["message_id"]
    )
    return envelope.success(request, public_metadata(doc))


async def post_message(request: web.Request) -> web.StreamResponse:
    req = parsed(request)
    data = await message_actions.change_message(
        context(request),
        request.match_info["box_id"],
        request.match_info["message_id"],
        req.data_object,
        req.value("folder"),
    )
    return envelope.success(request, data)


async def delete_message(request: web.Request) -> web.StreamResponse:
    data = await message_changes.delete_message(
        context(request), request.match_info["box_id"], request.match_info["message_id"]
    )
    return envelope.success(request, data)


# -- audio ------------------------------------------------------------------------------------------------------


def _accepting(request: web.Request, provided: list[str]) -> None:
    http_downloads.require_acceptable(parsed(request).value("accept"), request.headers.get("Accept"), provided)


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
    _accepting(request, http_downloads.AUDIO_DOWNLOAD_TYPES)
    scope = context(request)
    asked = request.headers.get("Range")
    async with downloads.single_download(
        scope, request.match_info["box_id"], request.match_info["message_id"], whole=asked is None
    ) as download:
        ref = download.audio
        wanted = http_downloads.byte_range(asked, ref.length) if ref.length is not None else None
        part = (wanted.start, wanted.end) if wanted is not None and wanted.partial else None
        async with download.open(scope, part) as body:
            response = http_downloads.audio_response(download.file_name, ref.content_type, wanted, body)
            return await _send(request, response, body.chunks)


async def put_audio(request: web.Request) -> web.StreamResponse:
    doc = await message_changes.replace_audio(
        context(request), request.match_info["box_id"], request.match_info["message_id"], parsed(request).files
    )
    return envelope.success(request, public_metadata(doc), status=201)


async def zip_audio(request: web.Request) -> web.StreamResponse:
    _accepting(request, http_downloads.ZIP_DOWNLOAD_TYPES)
    scope = context(request)
    entries = await downloads.zip_entries(scope, request.match_info["box_id"], parsed(request).data_object)
    response = web.StreamResponse(status=200)
    response.content_type = "application/zip"
    request_id = request.get(appkeys.REQUEST_ID, "voicemail")
    response.headers["Content-Disposition"] = http_downloads.content_disposition(f"{request_id}.zip")
    return await _send(request, response, zip_chunks(entries))
