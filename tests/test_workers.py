"""``kazoo-vm serve --workers N``: N processes share the port, and all stop on one SIGTERM."""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def records(log_path: Path) -> list[dict[str, Any]]:
    # Whole lines only: the workers may be writing one while it is read.
    return [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{") and line.endswith("}")
    ]


def test_workers_share_the_port_and_stop_together(couch_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("KAZOO_VM_")},
        "KAZOO_VM_COUCH_URL": couch_url,
        "KAZOO_VM_PORT": str(port),
        "KAZOO_VM_SYNC_DESIGN_DOCS": "false",
        "KAZOO_VM_MODB_PRECREATE_RATE": "0",
        "KAZOO_VM_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        serve = subprocess.Popen(
            [sys.executable, "-m", "kazoo_vm.cli", "serve", "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    try:
        answering: set[int] = set()
        deadline = time.monotonic() + 90
        # Until both workers have answered (the second may bind the port a little after the first).
        while len(answering) < 2 and time.monotonic() < deadline:
            try:
                # A new connection each time: the kernel spreads them over the workers.
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    assert response.status == 200
            except OSError:
                time.sleep(0.1)
            answering = {record["pid"] for record in records(log_path) if record.get("route") == "/healthz"}
        assert len(answering) == 2, "both workers answer on the one port"
        assert serve.pid not in answering
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    stopped = {record["pid"] for record in records(log_path) if record["message"] == "stopped"}
    assert stopped == answering, "each worker stopped gracefully"
