"""KAZOO_VM_COUCH_URL with credentials: a CouchDB that refuses anonymous access works end to end."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from helpers import make_account

from kazoo_vm import devserver
from kazoo_vm.app import create_app
from kazoo_vm.config import load_settings
from kazoo_vm.storage.errors import Unauthorized


@pytest.fixture(scope="module")
def secured_couch() -> Iterator[str]:
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache, admin="admin:s3cret")
    try:
        yield server.url
    finally:
        server.stop()


async def test_the_service_authenticates_to_couchdb_with_the_urls_credentials(
    secured_couch: str, aiohttp_client: Any, tmp_path: Path
) -> None:
    with_credentials = secured_couch.replace("http://", "http://admin:s3cret@")
    settings = load_settings({"KAZOO_VM_COUCH_URL": with_credentials}, data_dir=tmp_path)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    account = await make_account(client)
    response = await client.put(
        f"/v2/accounts/{account.id}/vmboxes", json={"data": {"name": "b", "mailbox": "1"}}, headers=account.headers
    )
    assert response.status == 201


async def test_wrong_couchdb_credentials_fail_at_start_up(secured_couch: str, tmp_path: Path) -> None:
    settings = load_settings(
        {"KAZOO_VM_COUCH_URL": secured_couch.replace("http://", "http://admin:wrong@")}, data_dir=tmp_path
    )
    runner = web.AppRunner(create_app(settings))
    try:
        with pytest.raises(Unauthorized) as caught:
            await runner.setup()
    finally:
        await runner.cleanup()
    assert "401" in str(caught.value)
