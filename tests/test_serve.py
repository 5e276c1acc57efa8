"""`kazoo-vm serve` end to end: bundled CouchDB on disk, the API, the CLI beside it, clean shutdown."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from service_support import call_json, clean_env, create_account, free_port

from kazoo_vm import devserver
from kazoo_vm.storage import naming


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_serve_starts_the_bundled_couchdb_and_the_cli_shares_it(tmp_path: Path) -> None:
    api_port, couch_port = free_port(), free_port()
    env = {
        **clean_env(),
        "KAZOO_VM_DATA_DIR": str(tmp_path),
        "KAZOO_VM_PORT": str(api_port),
        "KAZOO_VM_COUCH_PORT": str(couch_port),
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "kazoo_vm.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert serve.stdout is not None
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            seen.append(line)
            if "Get a token" in line or not line:
                break
        assert any(f"127.0.0.1:{couch_port}" in line for line in seen), seen
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/v2/nothing", timeout=1):
                    pass
            except urllib.error.HTTPError:
                break  # the API answers (404)
            except OSError:
                time.sleep(0.1)
        account = create_account([sys.executable, "-m", "kazoo_vm.cli"], "Served", env=env)
        status, body = call_json("PUT", f"http://127.0.0.1:{api_port}/v2/api_auth", {"api_key": account["api_key"]})
        assert status == 201
        token = body["auth_token"]
        base = f"http://127.0.0.1:{api_port}/v2/accounts/{account['account_id']}"
        assert call_json("PUT", f"{base}/vmboxes", {"name": "b", "mailbox": "100"}, token=token)[0] == 201
        status, listing = call_json("GET", f"{base}/vmboxes", token=token)
        assert status == 200 and [item["mailbox"] for item in listing["data"]] == ["100"]
        # Operators can query the same CouchDB, views included.
        db = naming.account_db(account["account_id"], encoded=True)
        view = f"http://127.0.0.1:{couch_port}/{db}/_design/vmboxes/_view/crossbar_listing"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(view, timeout=5)
        refused.value.close()
        assert refused.value.code == 401  # the bundled CouchDB is not open to anyone on the machine
        password = (tmp_path / devserver.PASSWORD_FILE).read_text().strip()
        assert not any(password in line for line in seen)  # never on the terminal
        as_admin = urllib.request.Request(view, headers={"Authorization": basic("admin", password)})
        with urllib.request.urlopen(as_admin, timeout=5) as response:
            assert json.loads(response.read())["rows"][0]["value"]["mailbox"] == "100"
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=30)
        if serve.stdout is not None:
            serve.stdout.close()
    assert (tmp_path / "couchdb").is_dir()
    assert not (tmp_path / "bundled-couch.json").exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", couch_port)) != 0, "the bundled CouchDB should stop with serve"


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def api_answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/nothing", timeout=1)
    except urllib.error.HTTPError as error:
        error.close()
        return True
    except OSError:
        return False
    return True


def start_serve(tmp_path: Path) -> tuple[subprocess.Popen[str], int, int]:
    """``kazoo-vm serve`` with its bundled CouchDB; returns the process, the CouchDB's pid and the API port once
    the banner is out."""
    api_port = free_port()
    env = {
        **clean_env(),
        "KAZOO_VM_DATA_DIR": str(tmp_path),
        "KAZOO_VM_PORT": str(api_port),
        "KAZOO_VM_COUCH_PORT": str(free_port()),
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "kazoo_vm.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert serve.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = serve.stdout.readline()
        if "Get a token" in line or not line:
            break
    couch = children_of(serve.pid)
    assert len(couch) == 1, couch
    return serve, couch[0], api_port


def wait_until(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_the_bundled_couchdb_never_outlives_serve_even_killed_with_sigkill(tmp_path: Path) -> None:
    serve, couch, _ = start_serve(tmp_path)
    try:
        os.kill(serve.pid, signal.SIGKILL)
        serve.wait(timeout=10)
        assert wait_until(lambda: not alive(couch)), "the bundled CouchDB outlived kazoo-vm serve"
    finally:
        if alive(couch):
            os.kill(couch, signal.SIGKILL)
        if serve.stdout is not None:
            serve.stdout.close()


@pytest.mark.parametrize("serving", [False, True], ids=["starting", "serving"])
def test_serve_exits_non_zero_when_its_bundled_couchdb_dies(tmp_path: Path, serving: bool) -> None:
    serve, couch, api_port = start_serve(tmp_path)
    try:
        if serving:
            assert wait_until(lambda: api_answers(api_port))
        os.kill(couch, signal.SIGKILL)
        assert serve.wait(timeout=30) == 3
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if serve.stdout is not None:
            serve.stdout.close()
