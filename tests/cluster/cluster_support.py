"""Helpers of the cluster tests (no tests here): the cluster and service handles, an API client that checks
every answer is a success or a Kazoo error envelope, and reads of what each CouchDB node holds."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

# The service processes' KAZOO_VM_COUCH_TIMEOUT_S: how long they wait on a silent CouchDB before answering 503.
COUCH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Cluster:
    kit: str
    data: Path
    urls: list[str]  # node 1..3, with credentials

    def kill_node(self, node: int) -> None:
        subprocess.run([self.kit, "kill-node", "--data", str(self.data), "--node", str(node)], check=True, timeout=60)

    def pause_node(self, node: int) -> None:
        """Stop node ``node`` without closing its connections (SIGSTOP to the pid in the kit's ``node-K.pid``): to
        the others it is a node that no longer answers, not one that is gone."""
        os.kill(self._pid(node), signal.SIGSTOP)

    def resume_node(self, node: int) -> None:
        os.kill(self._pid(node), signal.SIGCONT)

    def _pid(self, node: int) -> int:
        return int((self.data / f"node-{node}.pid").read_text().split()[0])

    def start_node(self, node: int) -> None:
        subprocess.run(
            [self.kit, "start-node", "--data", str(self.data), "--node", str(node)],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=180,
        )


@dataclass(frozen=True)
class Service:
    name: str
    base: str
    couch_url: str


@dataclass(frozen=True)
class TestAccount:
    __test__ = False

    id: str
    token: str
    db: str


class NotAnEnvelope(AssertionError):
    pass


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def data(self) -> Any:
        return self.json()["data"]


@dataclass
class Api:
    """One service process, one account; every answer is checked: a 2xx, or an error in Kazoo's envelope."""

    http: aiohttp.ClientSession
    service: Service
    account: TestAccount
    statuses: list[int] = field(default_factory=list)

    async def call(self, method: str, path: str, payload: Any = None, **kwargs: Any) -> Answer:
        """``payload`` goes as ``{"data": payload}``; other keyword arguments are aiohttp's."""
        headers = {"X-Auth-Token": self.account.token, **kwargs.pop("headers", {})}
        if payload is not None:
            kwargs["json"] = {"data": payload}
        url = f"{self.service.base}/v2/accounts/{self.account.id}{path}"
        async with self.http.request(method, url, headers=headers, **kwargs) as response:
            answer = Answer(response.status, await response.read())
        self.statuses.append(answer.status)
        if not answer.ok:
            try:
                body = answer.json()
            except ValueError as exc:
                raise NotAnEnvelope(f"{method} {path}: {answer.status} without a JSON body: {answer.body!r}") from exc
            if not (body.get("status") == "error" and body.get("error") == str(answer.status) and "message" in body):
                raise NotAnEnvelope(f"{method} {path}: {answer.status} not in Kazoo's error envelope: {body}")
        return answer

    async def new_box(self, name: str, mailbox: str) -> str:
        answer = await self.call("PUT", "/vmboxes", {"name": name, "mailbox": mailbox})
        assert answer.status == 201, answer.body
        return str(answer.data["id"])

    async def new_message(self, box_id: str, audio: bytes, **metadata: Any) -> str:
        writer = aiohttp.MultipartWriter("mixed")
        writer.append(json.dumps({"data": metadata}), {"Content-Type": "application/json"})
        writer.append(audio, {"Content-Type": "audio/mpeg"})
        answer = await self.call("PUT", f"/vmboxes/{box_id}/messages", data=writer)
        assert answer.status == 201, answer.body
        return str(answer.data["media_id"])

    async def audio(self, box_id: str, message_id: str) -> bytes:
        answer = await self.call("GET", f"/vmboxes/{box_id}/messages/{message_id}/raw")
        assert answer.status == 200, answer.body
        return answer.body


def fake_audio(size: int = 20_000) -> bytes:
    return b"ID3\x03\x00\x00\x00\x00\x00\x00" + os.urandom(size)


def digest(audio: bytes) -> str:
    return hashlib.sha256(audio).hexdigest()


async def account_modbs(store: CouchStore, account_id: str) -> list[str]:
    prefix = naming.account_db(account_id) + "-"
    return await store.all_dbs_between(prefix + "000000", prefix + "999999")


async def message_docs(store: CouchStore, account_id: str) -> list[dict[str, Any]]:
    """Every message document of the account (soft-deleted ones too), with its conflicts listed."""
    docs: list[dict[str, Any]] = []
    for db in await account_modbs(store, account_id):
        rows = await store.all_docs(db, include_docs=True, conflicts=True)
        docs.extend(row.doc for row in rows if row.doc is not None and row.doc.get("pvt_type") == "mailbox_message")
    return docs


async def node_revisions(http: aiohttp.ClientSession, node_url: str, dbs: list[str]) -> dict[str, list[str]]:
    """``{"db/doc id": sorted leaf revisions}`` from the shard copies node ``node_url`` holds itself (the node-local
    API, no quorum): what that node alone knows, deleted documents included."""
    base = node_url.rstrip("/")
    async with http.get(f"{base}/_node/_local/_all_dbs") as response:
        shards = await response.json()
    found: dict[str, list[str]] = {}
    for shard in shards:
        name = str(shard)
        if not name.startswith("shards/"):
            continue
        db = name.split("/", 2)[2].rsplit(".", 1)[0]
        if db not in dbs:
            continue
        async with http.get(f"{base}/_node/_local/{quote(name, safe='')}/_changes", params={"style": "all_docs"}) as r:
            assert r.status == 200, await r.text()
            for change in (await r.json())["results"]:
                found[f"{db}/{change['id']}"] = sorted(rev["rev"] for rev in change["changes"])
    return found


async def wait_for_agreement(
    http: aiohttp.ClientSession, node_urls: list[str], dbs: list[str], timeout_s: float
) -> None:
    """Until every node holds the same documents at the same revisions (internal replication caught up).

    Internal replication normally brings the copies together within seconds of a node's return; when they still
    differ after a while, the shards are synchronised as an operator would (``_sync_shards``, docs/deployment.md),
    after printing what differs."""
    started = time.monotonic()
    nudged = False
    while True:
        views = [await node_revisions(http, url, dbs) for url in node_urls]
        if all(view == views[0] for view in views[1:]):
            assert views[0], "no documents found on the nodes"
            return
        differing = sorted({key for view in views for key in view if any(v.get(key) != view.get(key) for v in views)})
        if not nudged and time.monotonic() > started + min(30.0, timeout_s / 2):
            differences = {key: [view.get(key) for view in views] for key in differing}
            # Past pytest's capture, so that a run that needed it says so in its output (CI's log) even when it passes.
            print(f"internal replication left copies apart for 30 s; synchronising shards: {differences}",
                  file=sys.__stderr__, flush=True)  # fmt: skip
            for db in dbs:
                async with http.post(f"{node_urls[0].rstrip('/')}/{quote(db, safe='')}/_sync_shards") as response:
                    assert response.status in (200, 202), await response.text()
            nudged = True
        if time.monotonic() > started + timeout_s:
            raise AssertionError(f"nodes still disagree after {timeout_s} s on {differing[:10]}")
        await asyncio.sleep(0.5)
