"""CouchDB 3 behaviours the service relies on, pinned over plain HTTP.

Every assertion here is CouchDB 3's documented or source-verified behaviour, so the module passes against a real
CouchDB 3 as well as against the bundled development server (``scripts/couchdb-dev-server``). It deliberately
asserts nothing PouchDB-specific: sequences are compared only as opaque values, view ``offset`` is not checked,
and error ``reason`` strings are checked only where CouchDB's exact wording is relied upon.

Each test creates its own uniquely named databases (several use Kazoo's ``account/xx/yy/<28 hex>`` form, sent
URL-encoded as ``account%2Fxx%2Fyy%2F...``) and deletes them afterwards. The server comes from the session fixture
``couch_url`` (``http://[user:pass@]host:port``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from yarl import URL

from kazoo_vm import devserver

pytestmark = pytest.mark.asyncio

DB_MISSING_REASON = "Database does not exist."
CONFLICT = {"error": "conflict", "reason": "Document update conflict."}
ILLEGAL_NAME_REASON = (
    "Name: '{name}'. Only lowercase characters (a-z), digits (0-9), and any of the characters _, $, (, ), +, -, "
    "and / are allowed. Must begin with a letter."
)
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=60)


def account_db_name() -> str:
    """A fresh Kazoo-style account database name: ``account/xx/yy/<28 hex>``."""
    digest = uuid.uuid4().hex
    return f"account/{digest[:2]}/{digest[2:4]}/{digest[4:]}"


def plain_db_name() -> str:
    return f"conformance-{uuid.uuid4().hex}"


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def split_couch_url(couch_url: str) -> tuple[str, dict[str, str]]:
    """Base URL without credentials, and the headers that carry them."""
    url = URL(couch_url)
    headers = basic_auth(url.user, url.password or "") if url.user else {}
    return str(url.with_user(None).with_password(None)).rstrip("/"), headers


def is_json(resp: aiohttp.ClientResponse) -> bool:
    return resp.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"


class Couch:
    """Thin helper around one aiohttp session; remembers the databases it created."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.created: list[str] = []

    def url(self, db: str, *parts: str) -> URL:
        """URL of ``db`` (encoded as one path segment) plus already-encoded ``parts``."""
        path = "/".join([quote(db, safe=""), *list(parts)])
        return URL(f"{self.base}/{path}", encoded=True)

    def doc_url(self, db: str, doc_id: str, *parts: str) -> URL:
        if doc_id.startswith("_design/"):
            encoded = "_design/" + quote(doc_id[len("_design/") :], safe="")
        else:
            encoded = quote(doc_id, safe="")
        return self.url(db, encoded, *[quote(p, safe="") for p in parts])

    def root(self, path: str) -> URL:
        return URL(f"{self.base}{path}", encoded=True)

    async def create_db(self, name: str) -> str:
        async with self.session.put(self.url(name)) as resp:
            body = await resp.json()
            assert resp.status == 201, body
        self.created.append(name)
        return name

    async def put_doc(self, db: str, doc_id: str, body: dict[str, Any]) -> str:
        async with self.session.put(self.doc_url(db, doc_id), json=body) as resp:
            result = await resp.json()
            assert resp.status in (201, 202), result
            return str(result["rev"])

    async def get_json(self, url: URL, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.get(url, **kwargs) as resp:
            return resp.status, await resp.json()

    async def cleanup(self) -> None:
        for name in self.created:
            async with self.session.delete(self.url(name)) as resp:
                await resp.read()


@pytest_asyncio.fixture
async def couch(couch_url: str) -> AsyncIterator[Couch]:
    base, auth_headers = split_couch_url(couch_url)
    async with aiohttp.ClientSession(headers=auth_headers, timeout=CLIENT_TIMEOUT) as session:
        helper = Couch(session, base)
        try:
            yield helper
        finally:
            await helper.cleanup()


def qs(**params: Any) -> dict[str, str]:
    """CouchDB view/_all_docs query parameters, every value JSON-encoded (strings too: keys are JSON)."""
    return {key: json.dumps(value) for key, value in params.items()}


# --------------------------------------------------------------------------------------------- server


async def test_root_welcome_says_couchdb_3(couch: Couch) -> None:
    async with couch.session.get(couch.root("/")) as resp:
        assert resp.status == 200
        assert is_json(resp)
        body = await resp.json()
    assert body["couchdb"] == "Welcome"
    assert str(body["version"]).startswith("3.")
    assert "vendor" in body and "name" in body["vendor"]


async def test_up_endpoint_reports_ok(couch: Couch) -> None:
    async with couch.session.get(couch.root("/_up")) as resp:
        assert resp.status == 200
        assert is_json(resp)
        body = await resp.json()
    assert body["status"] == "ok"


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("0123456789abcdef0123456789abcdef", True), ("a-b_C9", True), ("a" * 37, False), ("a b,c", False)],
)
async def test_a_well_formed_request_id_is_echoed_and_any_other_replaced(couch: Couch, sent: str, echoed: bool) -> None:
    # kazoo_vm.storage.request_ids matches every answer to its request by this header.
    for url in (couch.root("/_up"), couch.url(plain_db_name())):  # an answer and an error
        async with couch.session.get(url, headers={"X-Couch-Request-ID": sent}) as resp:
            await resp.read()
            answered = resp.headers.get("X-Couch-Request-ID", "")
        assert (answered == sent) is echoed, answered
        assert answered, "every answer carries a request id"


@pytest.mark.parametrize("accept", [None, "text/plain", "text/html", "*/*"])
async def test_json_replies_are_application_json_whatever_the_accept_header(couch: Couch, accept: str | None) -> None:
    db = await couch.create_db(plain_db_name())
    await couch.put_doc(db, "doc1", {"a": 1})
    headers = {"Accept": accept} if accept else {}
    urls = [
        couch.root("/"),
        couch.url(db),
        couch.doc_url(db, "doc1"),
        couch.doc_url(db, "nope"),
        couch.url(db, "_all_docs"),
        couch.url(db, "_changes"),
        couch.url(plain_db_name()),
    ]
    for url in urls:
        async with couch.session.get(url, headers=headers) as resp:
            assert is_json(resp), (url, resp.headers.get("Content-Type"))
            json.loads(await resp.text())
    async with couch.session.put(couch.doc_url(db, "doc1"), json={"b": 2}, headers=headers) as resp:
        assert resp.status == 409
        assert is_json(resp)


# ------------------------------------------------------------------------------------------ databases


async def test_database_name_with_slashes_is_kept_verbatim(couch: Couch) -> None:
    name = await couch.create_db(account_db_name())
    status, info = await couch.get_json(couch.url(name))
    assert status == 200
    assert info["db_name"] == name
    status, all_dbs = await couch.get_json(couch.root("/_all_dbs"))
    assert status == 200
    assert name in all_dbs
    assert name.replace("/", "") not in all_dbs
    # the name without its slashes is a different (missing) database
    status, body = await couch.get_json(couch.url(name.replace("/", "")))
    assert status == 404
    assert body == {"error": "not_found", "reason": DB_MISSING_REASON}


async def test_slash_named_databases_do_not_collide_with_each_other(couch: Couch) -> None:
    first = await couch.create_db(account_db_name())
    modb = await couch.create_db(first + "-202611")
    await couch.put_doc(first, "only-in-account", {"x": 1})
    status, _ = await couch.get_json(couch.doc_url(modb, "only-in-account"))
    assert status == 404
    status, info = await couch.get_json(couch.url(modb))
    assert status == 200 and info["db_name"] == modb and info["doc_count"] == 0


@pytest.mark.parametrize("name", ["Bad_Name", "_bad", "1account", "has space", "ümlaut"])
async def test_illegal_database_names_are_refused(couch: Couch, name: str) -> None:
    async with couch.session.put(couch.url(name)) as resp:
        assert resp.status == 400
        assert is_json(resp)
        body = await resp.json()
    assert body["error"] == "illegal_database_name"
    assert body["reason"] == ILLEGAL_NAME_REASON.format(name=name)


async def test_legal_database_name_with_special_characters_is_accepted(couch: Couch) -> None:
    name = f"a$b(c)+d-e_{uuid.uuid4().hex}/f"
    await couch.create_db(name)
    status, info = await couch.get_json(couch.url(name))
    assert status == 200 and info["db_name"] == name


async def test_creating_an_existing_database_gives_412_file_exists(couch: Couch) -> None:
    name = await couch.create_db(account_db_name())
    async with couch.session.put(couch.url(name)) as resp:
        assert resp.status == 412
        body = await resp.json()
    assert body["error"] == "file_exists"


async def test_missing_database_gives_404_database_does_not_exist(couch: Couch) -> None:
    name = account_db_name()
    expected = {"error": "not_found", "reason": DB_MISSING_REASON}
    for method in ("GET", "DELETE"):
        async with couch.session.request(method, couch.url(name)) as resp:
            assert resp.status == 404, method
            assert is_json(resp)
            assert await resp.json() == expected
    async with couch.session.head(couch.url(name)) as resp:
        assert resp.status == 404
        assert await resp.read() == b""


async def test_requests_inside_a_missing_database_say_database_does_not_exist(couch: Couch) -> None:
    name = account_db_name()
    expected = {"error": "not_found", "reason": DB_MISSING_REASON}
    requests: list[tuple[str, URL, dict[str, Any]]] = [
        ("GET", couch.doc_url(name, "doc1"), {}),
        ("PUT", couch.doc_url(name, "doc1"), {"json": {"a": 1}}),
        ("DELETE", couch.doc_url(name, "doc1").with_query(rev="1-abc"), {}),
        ("GET", couch.doc_url(name, "doc1", "att.wav"), {}),
        ("GET", couch.doc_url(name, "_design/ddoc"), {}),
        ("GET", couch.url(name, "_design", "ddoc", "_view", "v"), {}),
        ("GET", couch.url(name, "_all_docs"), {}),
        ("POST", couch.url(name, "_all_docs"), {"json": {"keys": ["a"]}}),
        ("POST", couch.url(name, "_bulk_docs"), {"json": {"docs": [{"_id": "a"}]}}),
        ("GET", couch.url(name, "_changes"), {}),
    ]
    for method, url, kwargs in requests:
        async with couch.session.request(method, url, **kwargs) as resp:
            assert resp.status == 404, (method, url)
            assert is_json(resp)
            assert await resp.json() == expected, (method, url)


async def test_deleted_database_is_gone(couch: Couch) -> None:
    name = account_db_name()
    async with couch.session.put(couch.url(name)) as resp:
        assert resp.status == 201
    async with couch.session.delete(couch.url(name)) as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True
    # CouchDB 3 closes a deleted database's files asynchronously: a GET in that instant can answer 500 once.
    for _ in range(20):
        status, body = await couch.get_json(couch.url(name))
        if status != 500:
            break
        await asyncio.sleep(0.1)
    assert status == 404 and body["reason"] == DB_MISSING_REASON
    status, all_dbs = await couch.get_json(couch.root("/_all_dbs"))
    assert name not in all_dbs


async def test_all_dbs_key_range_lists_one_accounts_monthly_databases(couch: Couch) -> None:
    """The service finds an account's MODBs with one ``_all_dbs`` range; keys are JSON, names sorted."""
    account = await couch.create_db(account_db_name())
    modbs = [await couch.create_db(f"{account}-{month}") for month in ("202612", "202601", "202607")]
    await couch.create_db(account + "0")  # a neighbour sharing the prefix without the dash
    status, names = await couch.get_json(
        couch.root("/_all_dbs"), params=qs(start_key=f"{account}-000000", end_key=f"{account}-999999")
    )
    assert status == 200
    assert names == sorted(modbs)
    async with couch.session.get(couch.root("/_all_dbs"), params={"start_key": account}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"


async def test_a_new_database_is_admin_only(couch: Couch) -> None:
    """CouchDB 3's default security object: only server admins are members, so the service needs an admin."""
    db = await couch.create_db(account_db_name())
    status, security = await couch.get_json(couch.url(db, "_security"))
    assert status == 200
    assert security == {"members": {"roles": ["_admin"]}, "admins": {"roles": ["_admin"]}}


async def test_without_credentials_databases_are_closed(couch: Couch, couch_url: str) -> None:
    """CouchDB 3 has no "admin party": creating or listing databases and using a new one take credentials."""
    _, auth_headers = split_couch_url(couch_url)
    assert auth_headers, "the suite's CouchDB URL carries server-admin credentials"
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "doc1", {"a": 1})
    attempts: list[tuple[str, URL, dict[str, Any]]] = [
        ("PUT", couch.url(account_db_name()), {}),
        ("GET", couch.root("/_all_dbs"), {}),
        ("GET", couch.doc_url(db, "doc1"), {}),
        ("GET", couch.url(db, "_all_docs"), {}),
        ("PUT", couch.doc_url(db, "doc2"), {"json": {"a": 2}}),
        ("POST", couch.url(db, "_bulk_docs"), {"json": {"docs": [{"_id": "doc3"}]}}),
        ("DELETE", couch.url(db), {}),
    ]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as anonymous:
        for method, url, kwargs in attempts:
            async with anonymous.request(method, url, **kwargs) as resp:
                assert resp.status == 401, (method, url, resp.status)
                assert is_json(resp)
                assert (await resp.json())["error"] == "unauthorized", (method, url)
    status, info = await couch.get_json(couch.url(db))
    assert status == 200 and info["doc_count"] == 1


# ------------------------------------------------------------------------------------------ documents


async def test_missing_and_deleted_documents_give_404_with_their_reason(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    status, body = await couch.get_json(couch.doc_url(db, "never-was"))
    assert (status, body) == (404, {"error": "not_found", "reason": "missing"})
    rev = await couch.put_doc(db, "gone", {"a": 1})
    async with couch.session.delete(couch.doc_url(db, "gone").with_query(rev=rev)) as resp:
        assert resp.status == 200
    status, body = await couch.get_json(couch.doc_url(db, "gone"))
    assert (status, body) == (404, {"error": "not_found", "reason": "deleted"})


async def test_delete_document_without_rev_is_a_conflict(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    rev1 = await couch.put_doc(db, "doc1", {"a": 1})
    async with couch.session.delete(couch.doc_url(db, "doc1")) as resp:
        assert resp.status == 409
        assert is_json(resp)
        assert await resp.json() == CONFLICT
    # still there
    status, doc = await couch.get_json(couch.doc_url(db, "doc1"))
    assert status == 200 and doc["_rev"] == rev1
    rev2 = await couch.put_doc(db, "doc1", {"_rev": rev1, "a": 2})
    async with couch.session.delete(couch.doc_url(db, "doc1").with_query(rev=rev1)) as resp:
        assert resp.status == 409
        assert (await resp.json())["error"] == "conflict"
    async with couch.session.delete(couch.doc_url(db, "doc1"), headers={"If-Match": f'"{rev2}"'}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["ok"] is True and body["id"] == "doc1"


async def test_delete_document_with_rev_query(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    rev = await couch.put_doc(db, "doc1", {"a": 1})
    async with couch.session.delete(couch.doc_url(db, "doc1").with_query(rev=rev)) as resp:
        assert resp.status == 200
        assert (await resp.json())["ok"] is True


async def test_put_without_current_rev_is_a_conflict(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    rev = await couch.put_doc(db, "doc1", {"a": 1})
    for body in ({"a": 2}, {"_rev": "1-0123456789abcdef0123456789abcdef", "a": 2}):
        async with couch.session.put(couch.doc_url(db, "doc1"), json=body) as resp:
            assert resp.status == 409
            assert await resp.json() == CONFLICT
    async with couch.session.put(couch.doc_url(db, "doc1").with_query(rev=rev), json={"a": 3}) as resp:
        assert resp.status == 201


async def test_put_document_url_id_wins_over_body_id(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    async with couch.session.put(couch.doc_url(db, "urlid"), json={"_id": "bodyid", "a": 1}) as resp:
        assert resp.status == 201
        body = await resp.json()
    assert body["id"] == "urlid"
    status, doc = await couch.get_json(couch.doc_url(db, "urlid"))
    assert status == 200 and doc["_id"] == "urlid" and doc["a"] == 1
    status, _ = await couch.get_json(couch.doc_url(db, "bodyid"))
    assert status == 404


async def test_a_put_body_is_json_whatever_its_content_type(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    body = json.dumps({"a": 1, "nested": {"b": [1, 2]}})
    for doc_id, content_type in (("plain", "text/plain"), ("form", "application/x-www-form-urlencoded")):
        async with couch.session.put(couch.doc_url(db, doc_id), data=body, headers={"Content-Type": content_type}) as r:
            assert r.status == 201, (content_type, await r.text())
        status, doc = await couch.get_json(couch.doc_url(db, doc_id))
        assert status == 200 and doc["a"] == 1 and doc["nested"] == {"b": [1, 2]}, content_type
    ddoc = json.dumps({"views": {"v": {"map": "function (doc) { emit(doc._id, 1); }"}}})
    async with couch.session.put(
        couch.doc_url(db, "_design/d"), data=ddoc, headers={"Content-Type": "text/plain"}
    ) as r:
        assert r.status == 201
    status, body_rows = await couch.get_json(couch.url(db, "_design", "d", "_view", "v"))
    assert status == 200 and [row["id"] for row in body_rows["rows"]] == ["form", "plain"]


async def test_a_post_to_a_database_endpoint_needs_a_json_content_type(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    await couch.put_doc(db, "_design/d", {"views": {"v": {"map": "function (doc) { emit(doc._id, 1); }"}}})
    posts = [
        (couch.url(db), {"a": 1}),
        (couch.url(db, "_bulk_docs"), {"docs": [{"_id": "x"}]}),
        (couch.url(db, "_all_docs"), {"keys": ["x"]}),
        (couch.url(db, "_design", "d", "_view", "v"), {"keys": ["x"]}),
        (couch.url(db, "_bulk_get"), {"docs": [{"id": "x"}]}),
    ]
    for url, body in posts:
        async with couch.session.post(url, data=json.dumps(body), headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 415, (url, await resp.text())
            assert is_json(resp)
            assert (await resp.json())["error"] == "bad_content_type"
    status, info = await couch.get_json(couch.url(db))
    assert status == 200 and info["doc_count"] == 1  # nothing was written


async def test_document_ids_with_slashes_round_trip(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "vmbox/1234/msg", {"a": 1})
    status, doc = await couch.get_json(couch.doc_url(db, "vmbox/1234/msg"))
    assert status == 200 and doc["_id"] == "vmbox/1234/msg"


async def test_document_etag_is_quoted_rev_and_if_none_match_gives_304(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    async with couch.session.put(couch.doc_url(db, "doc1"), json={"a": 1}) as resp:
        assert resp.status == 201
        rev = (await resp.json())["rev"]
        assert resp.headers["ETag"] == f'"{rev}"'
    async with couch.session.get(couch.doc_url(db, "doc1")) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == f'"{rev}"'
    async with couch.session.get(couch.doc_url(db, "doc1"), headers={"If-None-Match": f'"{rev}"'}) as resp:
        assert resp.status == 304
        assert await resp.read() == b""
    rev2 = await couch.put_doc(db, "doc1", {"_rev": rev, "a": 2})
    async with couch.session.get(couch.doc_url(db, "doc1"), headers={"If-None-Match": f'"{rev}"'}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == f'"{rev2}"'
        assert (await resp.json())["a"] == 2


async def test_twenty_concurrent_creates_of_one_id_have_exactly_one_winner(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())

    async def create(i: int) -> int:
        async with couch.session.put(couch.doc_url(db, "contended"), json={"writer": i}) as resp:
            await resp.read()
            return resp.status

    statuses = await asyncio.gather(*(create(i) for i in range(20)))
    assert sorted(statuses) == [201] + [409] * 19


async def test_twenty_concurrent_updates_from_one_rev_have_exactly_one_winner(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    rev = await couch.put_doc(db, "contended", {"n": 0})

    async def update(i: int) -> int:
        async with couch.session.put(couch.doc_url(db, "contended"), json={"_rev": rev, "n": i}) as resp:
            await resp.read()
            return resp.status

    statuses = await asyncio.gather(*(update(i) for i in range(20)))
    assert sorted(statuses) == [201] + [409] * 19


async def test_bulk_docs_reports_conflicts_per_document(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "existing", {"a": 1})
    docs = [{"_id": "c1", "n": 1}, {"_id": "c2", "n": 2}, {"_id": "existing", "n": 3}]
    async with couch.session.post(couch.url(db, "_bulk_docs"), json={"docs": docs}) as resp:
        assert resp.status == 201
        results = await resp.json()
    assert [r["id"] for r in results] == ["c1", "c2", "existing"]
    assert results[0]["ok"] is True and results[1]["ok"] is True
    assert results[2]["error"] == "conflict"


async def test_bulk_docs_with_inline_base64_attachment(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    payload = bytes(range(256)) * 3 + b"RIFF\x00\xff"
    doc = {
        "_id": "vm1",
        "_attachments": {
            "msg.wav": {"content_type": "audio/x-wav", "data": base64.b64encode(payload).decode()},
        },
    }
    async with couch.session.post(couch.url(db, "_bulk_docs"), json={"docs": [doc]}) as resp:
        assert resp.status == 201
        results = await resp.json()
    assert results[0]["ok"] is True
    status, stored = await couch.get_json(couch.doc_url(db, "vm1"))
    assert status == 200
    stub = stored["_attachments"]["msg.wav"]
    assert stub["stub"] is True
    assert stub["content_type"] == "audio/x-wav"
    assert stub["length"] == len(payload)
    assert stub["digest"] == "md5-" + base64.b64encode(hashlib.md5(payload).digest()).decode()
    async with couch.session.get(couch.doc_url(db, "vm1", "msg.wav")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("audio/x-wav")
        assert await resp.read() == payload


async def test_all_docs_keys_include_docs_ranges_and_limit(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    for i in range(1, 6):
        await couch.put_doc(db, f"a{i}", {"i": i})
    rev = await couch.put_doc(db, "gone", {"x": 1})
    async with couch.session.delete(couch.doc_url(db, "gone").with_query(rev=rev)) as resp:
        assert resp.status == 200

    all_docs = couch.url(db, "_all_docs")
    status, body = await couch.get_json(all_docs, params=qs(keys=["a2", "nope", "a4"], include_docs=True))
    assert status == 200
    rows = body["rows"]
    assert [r["key"] for r in rows] == ["a2", "nope", "a4"]
    assert rows[0]["doc"]["i"] == 2 and rows[2]["doc"]["i"] == 4
    assert rows[1]["error"] == "not_found"

    async with couch.session.post(all_docs, params=qs(include_docs=True), json={"keys": ["a5", "gone"]}) as resp:
        assert resp.status == 200
        rows = (await resp.json())["rows"]
    assert rows[0]["id"] == "a5" and rows[0]["doc"]["i"] == 5
    assert rows[1]["id"] == "gone" and rows[1]["value"]["deleted"] is True and rows[1]["doc"] is None

    status, body = await couch.get_json(all_docs, params=qs(startkey="a2", endkey="a4"))
    assert [r["id"] for r in body["rows"]] == ["a2", "a3", "a4"]
    assert body["total_rows"] == 5
    status, body = await couch.get_json(all_docs, params=qs(start_key="a2", limit=2, include_docs=True))
    assert [r["id"] for r in body["rows"]] == ["a2", "a3"]
    assert body["rows"][1]["doc"]["i"] == 3
    status, body = await couch.get_json(all_docs, params=qs(descending=True, limit=2))
    assert [r["id"] for r in body["rows"]] == ["a5", "a4"]
    status, body = await couch.get_json(all_docs, params=qs(key="a3"))
    assert [r["id"] for r in body["rows"]] == ["a3"]


async def test_view_and_all_docs_keys_must_be_json(couch: Couch) -> None:
    """Key parameters are JSON: a bare ``startkey=a2`` is refused, never read as the string "a2"."""
    db = await make_view_db(couch)
    for url in (couch.url(db, "_all_docs"), couch.url(db, "_design", "mailbox", "_view", "nored")):
        for name in ("key", "startkey", "start_key", "endkey", "end_key", "keys"):
            async with couch.session.get(url, params={name: "a2"}) as resp:
                assert resp.status == 400, (url, name)
                assert is_json(resp)
                assert (await resp.json())["error"] == "bad_request", (url, name)
        status, body = await couch.get_json(url, params={"keys": '"a2"'})
        assert status == 400, url
    status, body = await couch.get_json(couch.url(db, "_all_docs"), params=qs(startkey="msg-B", endkey="msg-C"))
    assert status == 200 and [row["id"] for row in body["rows"]] == ["msg-B-1", "msg-B-2"]


@pytest.mark.parametrize(
    "params",
    [
        {"descending": "yes"},
        {"include_docs": "1"},
        {"reduce": '"false"'},
        {"limit": "-1"},
        {"limit": "ten"},
        {"skip": "1.5"},
        {"group_level": "x"},
        {"stale": "later"},
        {"update": "sometimes"},
        {"stable": "maybe"},
    ],
)
async def test_malformed_view_query_parameters_are_query_parse_errors(couch: Couch, params: dict[str, str]) -> None:
    db = await make_view_db(couch)
    for url in (couch.url(db, "_all_docs"), couch.url(db, "_design", "mailbox", "_view", "by_box_ts")):
        status, body = await couch.get_json(url, params=params)
        assert (status, body["error"]) == (400, "query_parse_error"), (url, body)


async def test_view_staleness_options_are_accepted(couch: Couch) -> None:
    db = await make_view_db(couch)
    view = couch.url(db, "_design", "mailbox", "_view", "by_box_ts")
    status, body = await couch.get_json(view)  # builds the index
    assert status == 200 and body["rows"] == [{"key": None, "value": 6}]
    for params in ({"update": "lazy"}, {"update": "false"}, {"stable": "true", "update": "true"}, {"stale": "ok"}):
        status, body = await couch.get_json(view, params=params)
        assert status == 200, params
        assert body["rows"] == [{"key": None, "value": 6}], params


async def test_grouping_and_reducing_need_a_reduce_function(couch: Couch) -> None:
    db = await make_view_db(couch)
    design = couch.url(db, "_design", "mailbox", "_view")
    refused = [
        (design / "by_box_ts", qs(group=True, reduce=False)),
        (design / "by_box_ts", qs(group_level=1, reduce=False)),
        (design / "by_box_ts", qs(include_docs=True)),
        (design / "nored", qs(group=True)),
        (design / "nored", qs(reduce=True)),
        (couch.url(db, "_all_docs"), qs(group=True)),
    ]
    for url, params in refused:
        status, body = await couch.get_json(url, params=params)
        assert (status, body["error"]) == (400, "query_parse_error"), (url, params, body)
    status, body = await couch.get_json(design / "nored", params=qs(reduce=False, limit=1))
    assert status == 200 and body["rows"][0]["id"] == "msg-A-1"


async def test_missing_design_document_and_missing_view_are_404_in_an_existing_database(couch: Couch) -> None:
    """The service tells these from a missing database by the reason, and then writes its design documents."""
    db = await make_view_db(couch)
    status, body = await couch.get_json(couch.url(db, "_design", "nope", "_view", "v"))
    assert (status, body) == (404, {"error": "not_found", "reason": "missing"})
    status, body = await couch.get_json(couch.url(db, "_design", "mailbox", "_view", "nope"))
    assert (status, body) == (404, {"error": "not_found", "reason": "missing_named_view"})
    async with couch.session.post(couch.url(db, "_design", "mailbox", "_view", "nope"), json={"keys": []}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": "not_found", "reason": "missing_named_view"}


# ---------------------------------------------------------------------------------------- attachments


async def test_binary_attachment_of_10_mb_round_trips_with_its_content_type(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    payload = os.urandom(10 * 1024 * 1024)
    async with couch.session.put(
        couch.doc_url(db, "vm1", "msg.wav"), data=io.BytesIO(payload), headers={"Content-Type": "audio/x-wav"}
    ) as resp:
        assert resp.status == 201, await resp.text()
        rev = (await resp.json())["rev"]
    async with couch.session.get(couch.doc_url(db, "vm1", "msg.wav")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("audio/x-wav")
        body = await resp.read()
    assert hashlib.md5(body).digest() == hashlib.md5(payload).digest()
    async with couch.session.head(couch.doc_url(db, "vm1", "msg.wav")) as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) == len(payload)
    # a second attachment needs the current rev; a stale one conflicts
    small = b"\x00\x01binary\xff"
    url = couch.doc_url(db, "vm1", "other.mp3")
    async with couch.session.put(url.with_query(rev=rev), data=small, headers={"Content-Type": "audio/mpeg"}) as resp:
        assert resp.status == 201
    async with couch.session.put(url.with_query(rev=rev), data=small, headers={"Content-Type": "audio/mpeg"}) as resp:
        assert resp.status == 409
    async with couch.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("audio/mpeg")
        assert await resp.read() == small


async def test_attachment_range_requests(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    payload = bytes(range(256)) * 4
    async with couch.session.put(
        couch.doc_url(db, "vm1", "msg.wav"), data=payload, headers={"Content-Type": "audio/x-wav"}
    ) as resp:
        assert resp.status == 201
    url = couch.doc_url(db, "vm1", "msg.wav")
    async with couch.session.get(url, headers={"Range": "bytes=0-9"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 0-9/{len(payload)}"
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert await resp.read() == payload[:10]
    async with couch.session.get(url, headers={"Range": "bytes=1000-"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 1000-1023/{len(payload)}"
        assert await resp.read() == payload[1000:]
    async with couch.session.get(url, headers={"Range": "bytes=-24"}) as resp:
        assert resp.status == 206
        assert await resp.read() == payload[-24:]
    async with couch.session.get(url, headers={"Range": "bytes=5000-6000"}) as resp:
        assert resp.status == 416
    async with couch.session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert await resp.read() == payload


async def test_all_docs_with_attachments_true_inlines_them_as_base64(couch: Couch) -> None:
    """The migrator reads legacy media this way: one request, the audio inline, with its digest."""
    db = await couch.create_db(account_db_name())
    payload = b"RIFF\x00\x01voice\xff"
    async with couch.session.put(
        couch.doc_url(db, "media1", "a.wav"), data=payload, headers={"Content-Type": "audio/x-wav"}
    ) as resp:
        assert resp.status == 201
    async with couch.session.post(
        couch.url(db, "_all_docs"), params=qs(include_docs=True, attachments=True), json={"keys": ["media1", "nope"]}
    ) as resp:
        assert resp.status == 200
        rows = (await resp.json())["rows"]
    attachment = rows[0]["doc"]["_attachments"]["a.wav"]
    assert base64.b64decode(attachment["data"]) == payload
    assert attachment["content_type"] == "audio/x-wav"
    assert attachment["digest"] == "md5-" + base64.b64encode(hashlib.md5(payload).digest()).decode()
    assert "stub" not in attachment
    assert rows[1] == {"key": "nope", "error": "not_found"}


async def test_an_update_keeps_attachments_sent_back_as_stubs_and_drops_the_others(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    for name in ("keep.wav", "drop.wav"):
        status, current = await couch.get_json(couch.doc_url(db, "vm1"))
        url = couch.doc_url(db, "vm1", name)
        if status == 200:
            url = url.with_query(rev=current["_rev"])
        async with couch.session.put(url, data=name.encode(), headers={"Content-Type": "audio/x-wav"}) as resp:
            assert resp.status == 201
    status, doc = await couch.get_json(couch.doc_url(db, "vm1"))
    del doc["_attachments"]["drop.wav"]
    doc["folder"] = "saved"
    await couch.put_doc(db, "vm1", doc)
    status, doc = await couch.get_json(couch.doc_url(db, "vm1"))
    assert doc["folder"] == "saved" and set(doc["_attachments"]) == {"keep.wav"}
    assert doc["_attachments"]["keep.wav"]["revpos"] == 1
    async with couch.session.get(couch.doc_url(db, "vm1", "keep.wav")) as resp:
        assert resp.status == 200 and await resp.read() == b"keep.wav"
    async with couch.session.get(couch.doc_url(db, "vm1", "drop.wav")) as resp:
        assert resp.status == 404


async def test_deleted_attachment_is_404(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    url = couch.doc_url(db, "vm1", "msg.wav")
    async with couch.session.put(url, data=b"abc", headers={"Content-Type": "audio/x-wav"}) as resp:
        rev = (await resp.json())["rev"]
    async with couch.session.delete(url.with_query(rev=rev)) as resp:
        assert resp.status == 200
    async with couch.session.get(url) as resp:
        assert resp.status == 404
        assert is_json(resp)
        assert (await resp.json())["error"] == "not_found"


# ---------------------------------------------------------------------------------------------- views

MAP_BOX_TS = "function (doc) { if (doc.type === 'msg') { emit([doc.box, doc.ts], doc.length); } }"
MESSAGES = [
    ("A", 1, 10),
    ("A", 2, 20),
    ("A", 3, 30),
    ("B", 1, 5),
    ("B", 2, 7),
    ("C", 9, 100),
]


async def make_view_db(couch: Couch) -> str:
    db = await couch.create_db(account_db_name())
    docs: list[dict[str, Any]] = [
        {"_id": f"msg-{box}-{ts}", "type": "msg", "box": box, "ts": ts, "length": length}
        for box, ts, length in MESSAGES
    ]
    docs.append({"_id": "other", "type": "box"})
    async with couch.session.post(couch.url(db, "_bulk_docs"), json={"docs": docs}) as resp:
        assert resp.status == 201
    ddoc = {
        "language": "javascript",
        "views": {
            "by_box_ts": {"map": MAP_BOX_TS, "reduce": "_count"},
            "length_sum": {"map": MAP_BOX_TS, "reduce": "_sum"},
            "length_stats": {"map": MAP_BOX_TS, "reduce": "_stats"},
            "nored": {"map": MAP_BOX_TS},
        },
    }
    await couch.put_doc(db, "_design/mailbox", ddoc)
    return db


async def test_reduce_views_group_group_level_and_reduce_false(couch: Couch) -> None:
    db = await make_view_db(couch)
    view = couch.url(db, "_design", "mailbox", "_view", "by_box_ts")

    status, body = await couch.get_json(view)
    assert status == 200 and body["rows"] == [{"key": None, "value": 6}]
    status, body = await couch.get_json(view, params=qs(group_level=1))
    assert body["rows"] == [{"key": ["A"], "value": 3}, {"key": ["B"], "value": 2}, {"key": ["C"], "value": 1}]
    status, body = await couch.get_json(view, params=qs(group=True))
    assert [r["key"] for r in body["rows"]] == [[b, t] for b, t, _ in MESSAGES]
    assert all(r["value"] == 1 for r in body["rows"])
    status, body = await couch.get_json(view, params=qs(reduce=False, limit=2))
    assert [r["key"] for r in body["rows"]] == [["A", 1], ["A", 2]]
    assert body["total_rows"] == 6
    assert body["rows"][0]["id"] == "msg-A-1" and body["rows"][0]["value"] == 10


async def test_view_key_ranges_descending_and_keys_post(couch: Couch) -> None:
    db = await make_view_db(couch)
    view = couch.url(db, "_design", "mailbox", "_view", "by_box_ts")

    status, body = await couch.get_json(view, params=qs(startkey=["B"], endkey=["B", {}], reduce=False))
    assert [r["key"] for r in body["rows"]] == [["B", 1], ["B", 2]]
    status, body = await couch.get_json(view, params=qs(startkey=["B"], endkey=["B", {}]))
    assert body["rows"] == [{"key": None, "value": 2}]
    status, body = await couch.get_json(
        view, params=qs(startkey=["B", {}], endkey=["B"], descending=True, reduce=False, include_docs=True)
    )
    assert [r["key"] for r in body["rows"]] == [["B", 2], ["B", 1]]
    assert body["rows"][0]["doc"]["_id"] == "msg-B-2"
    status, body = await couch.get_json(view, params=qs(key=["C", 9], reduce=False))
    assert status == 200
    assert [r["id"] for r in body["rows"]] == ["msg-C-9"]

    async with couch.session.post(
        view, params=qs(reduce=False), json={"keys": [["A", 2], ["C", 9], ["nope", 1]]}
    ) as resp:
        assert resp.status == 200
        rows = (await resp.json())["rows"]
    assert [r["key"] for r in rows] == [["A", 2], ["C", 9]]
    async with couch.session.post(view, params=qs(group=True), json={"keys": [["B", 1], ["A", 3]]}) as resp:
        assert resp.status == 200
        rows = (await resp.json())["rows"]
    assert rows == [{"key": ["B", 1], "value": 1}, {"key": ["A", 3], "value": 1}]


async def test_builtin_sum_and_stats_reduces(couch: Couch) -> None:
    db = await make_view_db(couch)
    design = couch.url(db, "_design", "mailbox", "_view")
    status, body = await couch.get_json(design / "length_sum", params=qs(group_level=1))
    assert body["rows"] == [{"key": ["A"], "value": 60}, {"key": ["B"], "value": 12}, {"key": ["C"], "value": 100}]
    status, body = await couch.get_json(
        design / "length_stats", params=qs(group_level=1, startkey=["A"], endkey=["A", {}])
    )
    assert status == 200
    assert body["rows"] == [{"key": ["A"], "value": {"sum": 60, "min": 10, "max": 30, "count": 3, "sumsqr": 1400}}]


async def test_views_follow_updates_and_deletes(couch: Couch) -> None:
    db = await make_view_db(couch)
    view = couch.url(db, "_design", "mailbox", "_view", "by_box_ts")
    status, body = await couch.get_json(view, params=qs(group_level=1))
    assert [r["value"] for r in body["rows"]] == [3, 2, 1]
    status, doc = await couch.get_json(couch.doc_url(db, "msg-A-1"))
    doc["box"] = "B"
    await couch.put_doc(db, "msg-A-1", doc)
    status, doc = await couch.get_json(couch.doc_url(db, "msg-C-9"))
    async with couch.session.delete(couch.doc_url(db, "msg-C-9").with_query(rev=doc["_rev"])) as resp:
        assert resp.status == 200
    status, body = await couch.get_json(view, params=qs(group_level=1))
    assert status == 200
    assert body["rows"] == [{"key": ["A"], "value": 2}, {"key": ["B"], "value": 3}]


async def test_view_collation_orders_types_then_arrays_element_by_element(couch: Couch) -> None:
    """The orderings the service's views rely on (type order, arrays, ``{}`` as the high end of a prefix).

    Mixed-case and non-ASCII strings are left out: CouchDB collates them with ICU, the development server by
    code point; the service's keys are lower-case hex ids, folder names and numbers, which both order alike.
    """
    db = await couch.create_db(account_db_name())
    keys: list[Any] = [
        None,
        False,
        True,
        -5,
        0,
        1.5,
        2,
        10,
        "",
        "0a",
        "9f",
        "a0",
        "ab",
        "b",
        "in_transit",
        "new",
        "saved",
        [],
        ["a"],
        ["a", None],
        ["a", 1],
        ["a", 2],
        ["a", "x"],
        ["a", []],
        ["a", {}],
        ["b"],
        {},
    ]
    shuffled = sorted(range(len(keys)), key=lambda i: hashlib.md5(str(i).encode()).hexdigest())
    docs = [{"_id": f"k{i:02d}", "k": keys[i]} for i in shuffled]
    async with couch.session.post(couch.url(db, "_bulk_docs"), json={"docs": docs}) as resp:
        assert resp.status == 201
    await couch.put_doc(db, "_design/c", {"views": {"by_k": {"map": "function (doc) { emit(doc.k, null); }"}}})
    view = couch.url(db, "_design", "c", "_view", "by_k")
    status, body = await couch.get_json(view)
    assert status == 200
    assert [row["key"] for row in body["rows"]] == keys
    status, body = await couch.get_json(view, params=qs(startkey=["a"], endkey=["a", {}]))
    assert [row["key"] for row in body["rows"]] == keys[18:25]
    status, body = await couch.get_json(view, params=qs(startkey=["a", {}], endkey=["a"], descending=True))
    assert [row["key"] for row in body["rows"]] == list(reversed(keys[18:25]))


async def test_reductions_over_no_rows_give_no_rows(couch: Couch) -> None:
    """An empty range reduces to no row at all (not a zero), grouped or not."""
    db = await make_view_db(couch)
    design = couch.url(db, "_design", "mailbox", "_view")
    for view in ("by_box_ts", "length_sum", "length_stats"):
        for params in (qs(startkey=["Z"], endkey=["Z", {}]), qs(startkey=["Z"], endkey=["Z", {}], group_level=1)):
            status, body = await couch.get_json(design / view, params=params)
            assert (status, body) == (200, {"rows": []}), (view, params)
    async with couch.session.post(design / "by_box_ts", params=qs(group=True), json={"keys": [["Z", 1]]}) as resp:
        assert resp.status == 200
        assert (await resp.json())["rows"] == []


async def test_design_doc_whose_map_does_not_compile_is_refused(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    ddoc = {"views": {"broken": {"map": "function (doc) { emit(doc._id, "}}}
    async with couch.session.put(couch.doc_url(db, "_design/bad"), json=ddoc) as resp:
        assert resp.status == 400
        assert is_json(resp)
        body = await resp.json()
    assert body["error"] == "compilation_error"
    assert body["reason"].startswith("Compilation of the map function in the 'broken' view failed")
    status, _ = await couch.get_json(couch.doc_url(db, "_design/bad"))
    assert status == 404


async def test_design_doc_whose_reduce_does_not_compile_is_refused(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    ddoc = {"views": {"v": {"map": "function (doc) { emit(doc._id, 1); }", "reduce": "function (k, v) {"}}}
    async with couch.session.put(couch.doc_url(db, "_design/bad"), json=ddoc) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"] == "compilation_error"
    assert "reduce function" in body["reason"]


async def test_design_doc_with_builtin_reduces_is_accepted(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    views = {
        name: {"map": "function (doc) { emit(doc._id, 1); }", "reduce": name} for name in ("_count", "_sum", "_stats")
    }
    views["custom"] = {"map": "function (doc) { emit(null, 1); }", "reduce": "function (k, v, re) { return sum(v); }"}
    async with couch.session.put(couch.doc_url(db, "_design/ok"), json={"views": views}) as resp:
        assert resp.status == 201, await resp.text()


async def test_design_doc_that_does_not_compile_is_refused_in_bulk_docs(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    docs = [
        {"_id": "plain", "a": 1},
        {"_id": "_design/bad", "views": {"broken": {"map": "function (doc) { emit(doc._id, "}}},
    ]
    async with couch.session.post(couch.url(db, "_bulk_docs"), json={"docs": docs}) as resp:
        body = await resp.json()
        if resp.status == 400:
            assert body["error"] == "compilation_error"
        else:
            assert resp.status == 201
            by_id = {row["id"]: row for row in body}
            assert by_id["_design/bad"]["error"] == "compilation_error"
            assert by_id["plain"]["ok"] is True
    status, _ = await couch.get_json(couch.doc_url(db, "_design/bad"))
    assert status == 404


# -------------------------------------------------------------------------------------------- changes


async def test_changes_longpoll_returns_empty_results_after_timeout(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "doc1", {"a": 1})
    started = time.monotonic()
    async with couch.session.get(
        couch.url(db, "_changes"),
        params={"feed": "longpoll", "since": "now", "timeout": "500"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as resp:
        assert resp.status == 200
        assert is_json(resp)
        body = json.loads(await resp.text())
    assert time.monotonic() - started < 8
    assert body["results"] == []
    assert "last_seq" in body


async def test_changes_longpoll_wakes_up_on_a_change(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "before", {"a": 1})

    async def poll() -> Any:
        async with couch.session.get(
            couch.url(db, "_changes"),
            params={"feed": "longpoll", "since": "now", "timeout": "10000"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as resp:
            assert resp.status == 200
            return json.loads(await resp.text())

    task = asyncio.create_task(poll())
    await asyncio.sleep(0.5)
    await couch.put_doc(db, "after", {"a": 2})
    body = await asyncio.wait_for(task, 12)
    assert [r["id"] for r in body["results"]] == ["after"]
    assert body["last_seq"] is not None


async def test_changes_normal_feed_since_and_include_docs(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "d1", {"n": 1})
    status, first = await couch.get_json(couch.url(db, "_changes"))
    assert status == 200 and [r["id"] for r in first["results"]] == ["d1"]
    await couch.put_doc(db, "d2", {"n": 2})
    since = first["last_seq"]  # opaque: a string on CouchDB 3, a number here
    since_param = since if isinstance(since, str) else json.dumps(since)
    status, body = await couch.get_json(
        couch.url(db, "_changes"), params={"since": since_param, "include_docs": "true"}
    )
    assert [r["id"] for r in body["results"]] == ["d2"]
    assert body["results"][0]["doc"]["n"] == 2


async def test_continuous_changes_stream_even_when_gzip_is_accepted(couch: Couch) -> None:
    db = await couch.create_db(account_db_name())
    await couch.put_doc(db, "d1", {"n": 1})
    async with couch.session.get(
        couch.url(db, "_changes"),
        params={"feed": "continuous", "since": "0", "timeout": "20000"},
        headers={"Accept-Encoding": "gzip, deflate"},
        timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        assert resp.status == 200
        line = b""
        while not line.strip():
            line = await asyncio.wait_for(resp.content.readline(), 5)
        change = json.loads(line)
        assert change["id"] == "d1"
        resp.close()


async def test_changes_selector_filter(couch: Couch) -> None:
    db = await couch.create_db(plain_db_name())
    await couch.put_doc(db, "keep1", {"type": "keep"})
    await couch.put_doc(db, "drop1", {"type": "drop"})
    async with couch.session.post(
        couch.url(db, "_changes"), params={"filter": "_selector"}, json={"selector": {"type": "keep"}}
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert [r["id"] for r in body["results"]] == ["keep1"]
    async with couch.session.get(couch.url(db, "_changes"), params={"filter": "_selector"}) as resp:
        assert resp.status == 400
        assert is_json(resp)
    # the server is still alive
    async with couch.session.get(couch.root("/_up")) as resp:
        assert resp.status == 200


# --------------------------------------------------------------------------------- server admin / auth


def _server_js() -> Path:
    """The installed dev server (installing its npm packages first if needed, as the suite's fixture does)."""
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    return devserver.prepare(cache) / "server.js"


async def test_dev_server_with_admin_refuses_anonymous_writes_quickly(couch_url: str) -> None:
    """The bundled server with ``--admin``: anonymous writes get 401 (never hang), admin credentials work."""
    server_js = _server_js()
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(server_js),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--in-memory",
        "--admin",
        "admin:s3cret pass",
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        ready = json.loads(line)
        assert ready["ready"] is True
        base = ready["url"]
        name = account_db_name()
        db_url = URL(f"{base}/{quote(name, safe='')}", encoded=True)
        quick = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=quick) as anon, anon.put(db_url) as resp:
            assert resp.status == 401
            assert is_json(resp)
            assert (await resp.json())["error"] == "unauthorized"
        admin_auth = basic_auth("admin", "s3cret pass")
        async with aiohttp.ClientSession(timeout=quick, headers=admin_auth) as admin:
            async with admin.put(db_url) as resp:
                assert resp.status == 201
            async with admin.put(db_url / "doc1", json={"a": 1}) as resp:
                assert resp.status == 201
            async with admin.get(db_url / "doc1") as resp:
                assert resp.status == 200
        async with aiohttp.ClientSession(timeout=quick) as anon:
            attempts: list[tuple[str, URL, dict[str, Any]]] = [
                ("PUT", db_url / "_security", {"json": {"members": {"names": ["x"]}}}),
                ("PUT", URL(f"{db_url}/_design/x", encoded=True), {"json": {"views": {}}}),
                ("PUT", db_url / "doc2", {"json": {"a": 1}}),
                ("POST", db_url / "_bulk_docs", {"json": {"docs": [{"_id": "doc3"}]}}),
                ("GET", db_url / "doc1", {}),
                ("DELETE", db_url, {}),
            ]
            for method, url, kwargs in attempts:
                async with anon.request(method, url, **kwargs) as resp:
                    assert resp.status == 401, (method, url, resp.status)
                    assert is_json(resp)
        wrong_auth = basic_auth("admin", "wrong")
        async with (
            aiohttp.ClientSession(timeout=quick, headers=wrong_auth) as wrong,
            wrong.get(db_url / "doc1") as resp,
        ):
            assert resp.status == 401
        async with aiohttp.ClientSession(timeout=quick, headers=admin_auth) as admin, admin.delete(db_url) as resp:
            assert resp.status == 200
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
    assert code == 0
