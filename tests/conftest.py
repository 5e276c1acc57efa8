"""Shared fixtures: one fresh in-memory CouchDB dev server per test run, a fresh account per test.

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


@pytest.fixture(scope="session")
def couch_url() -> Iterator[str]:
    """A fresh in-memory CouchDB-3-compatible server for the whole run."""
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def settings(couch_url: str, tmp_path: Path) -> Settings:
    # No delivery workers: tests that look at CouchDB traffic would see theirs. The notification tests start them.
    return load_settings({}, couch_url=couch_url, data_dir=tmp_path, notify_workers=0)


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
