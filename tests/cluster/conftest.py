"""A real 3-node Apache CouchDB cluster (q=8, n=3) and two ``kazoo-vm serve`` processes over it.

Selected with ``-m cluster`` (deselected by default); ``KAZOO_VM_COUCHDB_KIT`` names the CouchDB kit's ``couchdb``
script. The cluster runs on free ports in a temporary directory for the whole session and is stopped at the end,
also when a test fails. Service process ``a`` talks to node 1, ``b`` to node 2; node 3 is the one the tests kill.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from couchdb_kit import KIT_VARIABLE, free_base_port

from cluster.cluster_support import COUCH_TIMEOUT_S, Cluster, Service, TestAccount
from kazoo_vm.domain import accounts
from kazoo_vm.storage.couch import CouchStore

NODES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    kit = os.environ.get(KIT_VARIABLE)
    if not kit:
        pytest.fail(
            f"the cluster tests need a real CouchDB: set {KIT_VARIABLE} to the CouchDB kit's couchdb script "
            "(e.g. ../shared/couchdb/couchdb); run the suite without -m cluster to leave them out",
            pytrace=False,
        )
    if not os.access(kit, os.X_OK):
        pytest.fail(f"{KIT_VARIABLE}={kit} is not an executable couchdb script", pytrace=False)
    data = Path(tempfile.mkdtemp(prefix="kazoo-vm-cluster-"))
    try:
        base_port = str(free_base_port(2 * NODES))
        command = [kit, "cluster", "--nodes", str(NODES), "--base-port", base_port, "--data", str(data / "couchdb")]
        started = subprocess.run(
            [*command, "--q", "8", "--n", str(NODES)],
            stdout=subprocess.PIPE,
            text=True,
            timeout=300,
        )
        if started.returncode != 0:
            pytest.fail(f"the CouchDB cluster did not start (exit {started.returncode}); see the log above")
        try:
            yield Cluster(kit=kit, data=data / "couchdb", urls=started.stdout.split())
        finally:
            subprocess.run([kit, "stop", "--data", str(data / "couchdb")], stdout=subprocess.DEVNULL, timeout=120)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _start_service(name: str, couch_url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = data_dir / f"serve-{name}.log"
    env = {
        **os.environ,
        "KAZOO_VM_COUCH_URL": couch_url,
        "KAZOO_VM_HOST": "127.0.0.1",
        "KAZOO_VM_PORT": str(port),
        "KAZOO_VM_DATA_DIR": str(data_dir / name),
        "KAZOO_VM_NODE_NAME": f"kazoo_vm_{name}@cluster-test",
        "KAZOO_VM_COUCH_TIMEOUT_S": str(COUCH_TIMEOUT_S),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "kazoo_vm.cli", "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    return process, f"http://127.0.0.1:{port}", log


def _wait_until_serving(process: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"kazoo-vm serve exited with {process.returncode}:\n{log.read_text()}")
        request = urllib.request.Request(f"{base}/v2/api_auth", data=b'{"data":{"api_key":"x"}}', method="PUT")
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError:
            return  # any HTTP answer (401 here) means it serves
        except OSError:
            time.sleep(0.2)
            continue
        return
    pytest.fail(f"kazoo-vm serve at {base} did not answer within 90 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def services(cluster: Cluster) -> Iterator[list[Service]]:
    """Two service processes started at the same moment (they race to create the token signing key), ``a`` over
    node 1 and ``b`` over node 2."""
    data = Path(tempfile.mkdtemp(prefix="kazoo-vm-cluster-serve-"))
    started = [_start_service(name, url, data) for name, url in (("a", cluster.urls[0]), ("b", cluster.urls[1]))]
    try:
        for process, base, log in started:
            _wait_until_serving(process, base, log)
        yield [Service(name, base, url) for name, (_, base, _), url in zip("ab", started, cluster.urls, strict=False)]
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, log in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            keep = os.environ.get("KAZOO_VM_CLUSTER_LOGS")  # a directory to keep the service logs in
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(log, Path(keep) / log.name)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
async def http() -> Any:
    # Generous but finite: a request that hangs fails the test instead of blocking it.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as session:
        yield session


@pytest.fixture
async def account(cluster: Cluster, services: list[Service], http: aiohttp.ClientSession) -> TestAccount:
    """A fresh account (written through node 3), its token obtained from process ``a``."""
    store = CouchStore(cluster.urls[2])
    try:
        created, api_key = await accounts.create_account(store, name=f"cluster {time.monotonic_ns()}")
    finally:
        await store.close()
    # api_auth finds the account through a view, and views on a cluster are only eventually consistent.
    deadline = time.monotonic() + 30
    while True:
        async with http.put(f"{services[0].base}/v2/api_auth", json={"data": {"api_key": api_key}}) as response:
            body = await response.json()
        if response.status == 201:
            return TestAccount(created.id, str(body["auth_token"]), created.db)
        assert response.status in (401, 404) and time.monotonic() < deadline, body
        await asyncio.sleep(0.2)
