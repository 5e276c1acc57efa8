"""SIGTERM to a real ``kazoo-vm serve``: new connections are refused, but a ZIP download and an upload already
in flight complete; then the CouchDB sessions close and the bundled CouchDB stops last."""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from message_support import fake_mp3
from service_support import clean_env, create_account, free_port

AUDIO_SIZE = 4_000_000
MESSAGES = 4


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else json.dumps({"data": body}).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until_serving(serve: subprocess.Popen[str], port: int) -> None:
    assert serve.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = serve.stdout.readline()
        if "Get a token" in line or not line:
            break
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("kazoo-vm serve did not become ready")


def test_sigterm_lets_a_zip_download_and_an_upload_in_flight_complete(tmp_path: Path) -> None:
    api_port, couch_port = free_port(), free_port()
    env = {
        **clean_env(),
        "KAZOO_VM_DATA_DIR": str(tmp_path),
        "KAZOO_VM_PORT": str(api_port),
        "KAZOO_VM_COUCH_PORT": str(couch_port),
        "KAZOO_VM_MAX_UPLOAD_BYTES": str(2 * AUDIO_SIZE),
        "KAZOO_VM_SHUTDOWN_GRACE_S": "30",
        "KAZOO_VM_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        serve = subprocess.Popen(
            [sys.executable, "-m", "kazoo_vm.cli", "serve"], env=env, stdout=subprocess.PIPE, stderr=log_file, text=True
        )
    try:
        wait_until_serving(serve, api_port)
        account = create_account([sys.executable, "-m", "kazoo_vm.cli"], "Graceful", env=env)
        token = call(api_port, "PUT", "/v2/api_auth", {"api_key": account["api_key"]})["auth_token"]
        auth = {"X-Auth-Token": token}
        base = f"/v2/accounts/{account['account_id']}/vmboxes"
        box_id = call(api_port, "PUT", base, {"name": "b", "mailbox": "100"}, auth)["data"]["id"]
        recordings = [fake_mp3(AUDIO_SIZE) for _ in range(MESSAGES)]
        message_ids = [
            call(api_port, "PUT", f"{base}/{box_id}/messages", audio, {**auth, "Content-Type": "audio/mpeg"})["data"][
                "media_id"
            ]
            for audio in recordings
        ]

        # A ZIP download under way: headers and the first bytes read, the rest still to come.
        download = http.client.HTTPConnection("127.0.0.1", api_port, timeout=60)
        download.request(
            "POST",
            f"{base}/{box_id}/messages/raw",
            body=json.dumps({"data": {"messages": message_ids}}),
            headers={**auth, "Accept": "application/zip", "Content-Type": "application/json"},
        )
        zip_response = download.getresponse()
        assert zip_response.status == 200
        first = zip_response.read(64 * 1024)

        # An upload under way: headers and half of the body sent.
        upload_audio = fake_mp3(AUDIO_SIZE)
        upload = http.client.HTTPConnection("127.0.0.1", api_port, timeout=60)
        upload.putrequest("PUT", f"{base}/{box_id}/messages")
        for name, value in {**auth, "Content-Type": "audio/mpeg", "Content-Length": str(len(upload_audio))}.items():
            upload.putheader(name, value)
        upload.endheaders()
        half = len(upload_audio) // 2
        upload.send(upload_audio[:half])
        time.sleep(0.3)

        serve.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", api_port)) != 0, "no new connection once SIGTERM arrived"
        assert serve.poll() is None, "requests in flight keep the process alive"

        upload.send(upload_audio[half:])
        upload_response = upload.getresponse()
        uploaded = json.loads(upload_response.read())
        assert upload_response.status == 201, uploaded
        assert uploaded["data"]["media_id"]

        archive = first + zip_response.read()
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            assert opened.testzip() is None
            assert sorted(len(opened.read(info)) for info in opened.infolist()) == sorted(len(r) for r in recordings)
        download.close()
        upload.close()

        assert serve.wait(timeout=60) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if serve.stdout is not None:
            serve.stdout.close()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", couch_port)) != 0, "the bundled CouchDB stops with serve"
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    messages = [record["message"] for record in records]
    assert any("stopped accepting connections" in message for message in messages)
    assert messages.index("stopped") > max(
        index for index, record in enumerate(records) if record.get("logger") == "kazoo_vm.request"
    )


def test_a_request_outlasting_the_grace_period_is_cut_off_and_the_process_exits(couch_url: str) -> None:
    port = free_port()
    env = {
        **clean_env(),
        "KAZOO_VM_COUCH_URL": couch_url,
        "KAZOO_VM_PORT": str(port),
        "KAZOO_VM_SYNC_DESIGN_DOCS": "false",
        "KAZOO_VM_MODB_PRECREATE_RATE": "0",
        "KAZOO_VM_SHUTDOWN_GRACE_S": "1",
    }
    serve = subprocess.Popen(
        [sys.executable, "-m", "kazoo_vm.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_until_serving(serve, port)
        stalled = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        stalled.putrequest("PUT", "/v2/api_auth")
        stalled.putheader("Content-Type", "application/json")
        stalled.putheader("Content-Length", "1000")
        stalled.endheaders()
        stalled.send(b'{"data": ')  # and never the rest
        time.sleep(0.3)
        sent = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=30) == 0
        assert 1.0 <= time.monotonic() - sent < 10, "the request in flight got its grace period, and no more"
        stalled.close()
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if serve.stdout is not None:
            serve.stdout.close()
