"""The aiocouch behaviour that kazoo_vm.storage.couch works around, pinned: when an aiocouch release changes it, one
of these fails, and the workaround in storage/couch.py can be dropped or adapted in that one place."""

from __future__ import annotations

import inspect
from typing import Any

import aiocouch
import pytest
from aiocouch.attachment import Attachment
from aiocouch.remote import RemoteServer
from aiocouch.view import AllDocsView, ViewResponse

from kazoo_vm.storage.couch import CouchStore, doc_path

ACCOUNT_DB = "account/ab/cd/ef0123456789abcdef0123456789"


async def test_aiocouch_all_docs_leaves_a_database_name_with_slashes_unquoted() -> None:
    couchdb = aiocouch.CouchDB("http://127.0.0.1:1")
    try:
        database = aiocouch.Database(couchdb, ACCOUNT_DB)
        assert AllDocsView(database).endpoint == f"/{ACCOUNT_DB}/_all_docs"  # CouchDB reads four path segments
    finally:
        await couchdb.close()
    assert doc_path(ACCOUNT_DB, "_all_docs").startswith("/account%2Fab%2Fcd%2F")  # what our store sends


async def test_aiocouch_view_responses_need_offset_and_total_rows_which_reduce_answers_lack() -> None:
    couchdb = aiocouch.CouchDB("http://127.0.0.1:1")
    try:
        database = aiocouch.Database(couchdb, ACCOUNT_DB)
        reduce_answer: dict[str, Any] = {"rows": [{"key": ["box", "new"], "value": 3}]}
        with pytest.raises(TypeError):
            ViewResponse(_database=database, **reduce_answer)  # what View.get does with it
    finally:
        await couchdb.close()


def test_aiocouch_attachments_are_read_whole_into_memory() -> None:
    # fetch() answers the whole payload as bytes and nothing streams it: audio and ZIPs are streamed by our store.
    assert inspect.signature(Attachment.fetch).return_annotation in (bytes, "bytes")
    assert not [name for name in dir(Attachment) if "stream" in name or "chunk" in name]


async def test_the_session_internals_our_store_relies_on_are_still_there() -> None:
    # CouchStore sends requests through aiocouch's session (auth, cookies, error statuses) rather than open its own.
    store = CouchStore("http://admin:secret@127.0.0.1:1")
    try:
        assert isinstance(store._couch._server, RemoteServer)
        assert callable(RemoteServer._request)
        assert "_http_session" in vars(store._couch._server)
    finally:
        await store.close()


def test_aiocouch_request_primitive_decodes_every_body_twice() -> None:
    # It parses the body to look for "reason" even on success, then parses it again for the result: our store
    # sends JSON requests through the session itself and decodes each body once.
    source = inspect.getsource(RemoteServer._request)
    assert source.count("await resp.json()") == 2
