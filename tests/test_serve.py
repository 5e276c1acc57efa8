"""`kazoo-vm serve` end to end: bundled CouchDB on disk, the API, the CLI beside it, clean shutdown."""

from __future__ import annotations

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

from kazoo_vm.storage import naming


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, data: Any = None, token: str | None = None) -> tuple[int, Any]:
    body = json.dumps({"data": data}).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method, headers={"X-Auth-Token": token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_starts_the_bundled_couchdb_and_the_cli_shares_it(tmp_path: Path) -> None:
    api_port, couch_port = free_port(), free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KAZOO_VM_")},
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
        created = subprocess.run(
            [sys.executable, "-m", "kazoo_vm.cli", "accounts", "create", "--name", "Served"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        account = json.loads(created.stdout)
        status, body = http("PUT", f"http://127.0.0.1:{api_port}/v2/api_auth", {"api_key": account["api_key"]})
        assert status == 201
        token = body["auth_token"]
        base = f"http://127.0.0.1:{api_port}/v2/accounts/{account['account_id']}"
        assert http("PUT", f"{base}/vmboxes", {"name": "b", "mailbox": "100"}, token)[0] == 201
        status, listing = http("GET", f"{base}/vmboxes", token=token)
        assert status == 200 and [item["mailbox"] for item in listing["data"]] == ["100"]
        # Operators can query the same CouchDB, views included.
        db = naming.account_db(account["account_id"], encoded=True)
        view = f"http://127.0.0.1:{couch_port}/{db}/_design/vmboxes/_view/crossbar_listing"
        with urllib.request.urlopen(view, timeout=5) as response:
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
