"""Test helpers: a token-bearing API client and account/box factories (imported by tests and conftest)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from kazoo_vm import appkeys
from kazoo_vm.domain import accounts
from kazoo_vm.model import BoxDoc
from kazoo_vm.storage.boxes import as_box
from kazoo_vm.storage.naming import GREGORIAN_OFFSET, account_db


@dataclasses.dataclass
class TestAccount:
    __test__ = False  # not a test class

    id: str
    api_key: str
    token: str
    account: accounts.Account

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


async def make_account(client: TestClient[Any, Any], name: str | None = None, parent: str | None = None) -> TestAccount:
    """A new account; its default name is unique, so lookups by name hold on a CouchDB that earlier runs used."""
    if name is None:
        name = f"Test Account {uuid.uuid4().hex[:12]}"
    store = client.app[appkeys.STORE]
    account, api_key = await accounts.create_account(store, name=name, parent_id=parent)
    token = client.app[appkeys.TOKENS].issue(account.id, None, "cb_api_auth")
    return TestAccount(id=account.id, api_key=api_key, token=token, account=account)


class Api:
    """A test client bound to one account's token; paths are relative to ``/v2/accounts/{id}``."""

    def __init__(self, client: TestClient[Any, Any], account: TestAccount) -> None:
        self.client = client
        self.account = account

    def url(self, path: str) -> str:
        return f"/v2/accounts/{self.account.id}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: Any = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        all_headers = {**self.account.headers, **(headers or {})}
        if data is not None:
            kwargs["json"] = {"data": data}
        elif body is not None:
            kwargs["data"] = body
        response = await self.client.request(method, self.url(path), headers=all_headers, **kwargs)
        payload = await response.json(content_type=None) if response.status != 304 else None
        return response.status, payload

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kwargs)

    async def put(self, path: str, data: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, data=data, **kwargs)

    async def post(self, path: str, data: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("POST", path, data=data, **kwargs)

    async def patch(self, path: str, data: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("PATCH", path, data=data, **kwargs)

    async def delete(self, path: str, data: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, data=data, **kwargs)


async def create_box(api: Api, name: str = "VMBox 0", mailbox: str = "3000", **fields: Any) -> dict[str, Any]:
    status, body = await api.put("/vmboxes", {"name": name, "mailbox": mailbox, **fields})
    assert status == 201, body
    box: dict[str, Any] = body["data"]
    return box


def raw_box_doc(account_id: str, **fields: Any) -> BoxDoc:
    """A box document as Kazoo itself (or an old Kazoo) stores it, for writing straight into CouchDB."""
    now = int(time.time()) + GREGORIAN_OFFSET
    return as_box(
        {
            "_id": uuid.uuid4().hex,
            "name": "Legacy Box",
            "mailbox": "4000",
            "pvt_type": "vmbox",
            "pvt_vsn": "1",
            "pvt_account_id": account_id,
            "pvt_account_db": account_db(account_id, encoded=True),
            "pvt_created": now,
            "pvt_modified": now,
            **fields,
        }
    )
