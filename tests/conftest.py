"""Shared fixtures: one CouchDB per test run, a fresh account per test.

The CouchDB is the one ``KAZOO_VM_TEST_COUCH_URL`` names (a URL with server-admin credentials, e.g. a real
Apache CouchDB 3), or else a fresh in-memory bundled development server started for the run, with a server admin.

Chain: ``couch_url`` (session) → ``settings`` → ``app`` / ``client`` → ``account`` (a new account with its api
key and a token) → ``api`` (a client that sends that token).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import Api, TestAccount, make_account

from kazoo_vm import appkeys, devserver
from kazoo_vm.app import create_app
from kazoo_vm.config import Settings, load_settings
from kazoo_vm.storage.couch import CouchStore

TEST_COUCH_URL_VAR = "KAZOO_VM_TEST_COUCH_URL"
SUITE_ADMIN = ("admin", "kazoo-vm-tests")


@pytest.fixture(scope="session")
def couch_url(request: pytest.FixtureRequest) -> str:
    """The CouchDB for the whole run: ``KAZOO_VM_TEST_COUCH_URL``, or else a bundled development server.

    The bundled one runs with a server admin whose credentials are in the URL, as every CouchDB 3 does (it has no
    "admin party"), so the suite talks to both engines the same way.
    """
    given = os.environ.get(TEST_COUCH_URL_VAR, "").strip()
    if given:
        return given.rstrip("/")
    url: str = request.getfixturevalue("secured_bundled_couch_url")
    return url


def _bundled_server(admin: tuple[str, str] | None) -> Iterator[str]:
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache, admin=":".join(admin) if admin else None)
    try:
        yield server.url.replace("://", f"://{admin[0]}:{admin[1]}@", 1) if admin else server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secured_bundled_couch_url() -> Iterator[str]:
    """A fresh in-memory bundled development server with a server admin (credentials in the URL)."""
    yield from _bundled_server(SUITE_ADMIN)


@pytest.fixture(scope="session")
def bundled_couch_url() -> Iterator[str]:
    """A fresh in-memory bundled development server as ``kazoo-vm serve`` runs it, whatever engine the run uses."""
    yield from _bundled_server(None)


@pytest.fixture
def settings(couch_url: str, tmp_path: Path) -> Settings:
    # A patient CouchDB timeout: on a loaded machine a view build may keep the dev server busy for seconds (the
    # fault tests set a short one themselves). No delivery workers: tests that look at CouchDB traffic would see
    # theirs; the notification tests start them. No making of next month's MODBs ahead (tests/test_rollover.py
    # drives it with its own clock).
    return load_settings(
        {}, couch_url=couch_url, data_dir=tmp_path, couch_timeout_s=30.0, notify_workers=0, modb_precreate_rate=0
    )


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, sync_design_docs=False)


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient[Any, Any]:
    test_client: TestClient[Any, Any] = await aiohttp_client(app)
    return test_client


@pytest.fixture
def store(client: TestClient[Any, Any]) -> CouchStore:
    store: CouchStore = client.app[appkeys.STORE]
    return store


@pytest.fixture
async def account(client: TestClient[Any, Any]) -> TestAccount:
    return await make_account(client)


@pytest.fixture
def api(client: TestClient[Any, Any], account: TestAccount) -> Api:
    return Api(client, account)
