"""Running ``kazoo-vm serve`` as a process and talking to it over plain HTTP (install and README tests)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def create_account(command: Sequence[str], name: str, *, env: Mapping[str, str]) -> dict[str, str]:
    """``<command> accounts create --name <name>`` (a ``kazoo-vm`` command line): the new account's ids and key."""
    created = subprocess.run(
        [*command, "accounts", "create", "--name", name], env=env, capture_output=True, text=True, check=True
    )
    account: dict[str, str] = json.loads(created.stdout)
    return account


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without any kazoo_vm setting or Python path of the test run, plus ``settings``. The scripts'
    own ``KAZOO_VM_VENV`` is kept: it says where the checkout's virtualenv is."""
    env = {
        key: value
        for key, value in os.environ.items()
        if (key == "KAZOO_VM_VENV" or not key.startswith("KAZOO_VM_"))
        and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    return {**env, **settings}


@contextmanager
def serving(command: Sequence[str], *, env: Mapping[str, str], cwd: Path, port: int) -> Iterator[list[str]]:
    """Run ``command`` (a ``serve``) until its API answers on ``port``; yields the lines it printed so far.
    Stopped with SIGINT, as Ctrl-C would."""
    process = subprocess.Popen(
        list(command), env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"serve stopped (exit code {process.wait()}):\n{''.join(printed)}")
            printed.append(line)
            if "send it as X-Auth-Token" in line:
                break
        else:
            raise AssertionError(f"serve did not start:\n{''.join(printed)}")
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/nothing", timeout=1):
                    pass
            except urllib.error.HTTPError:
                break  # the API answers (404)
            except OSError:
                time.sleep(0.1)
        yield printed
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()


def call(
    method: str,
    url: str,
    body: bytes | None = None,
    *,
    token: str | None = None,
    content_type: str | None = None,
) -> tuple[int, bytes]:
    headers = {}
    if token is not None:
        headers["X-Auth-Token"] = token
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def call_json(method: str, url: str, data: Any = None, *, token: str | None = None) -> tuple[int, Any]:
    body = json.dumps({"data": data}).encode() if data is not None else None
    status, answer = call(method, url, body, token=token, content_type="application/json" if body else None)
    return status, json.loads(answer)


def multipart(parts: Sequence[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of ``content`` parts, each ``(content type, bytes)``, as ``curl -F`` sends."""
    boundary = "kazoo-vm-test-boundary"
    body = b""
    for number, (content_type, payload) in enumerate(parts):
        body += (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="content"; filename="part{number}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + payload
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def wav(seconds: float = 0.5) -> bytes:
    """A short silent WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * int(8000 * seconds))
    return buffer.getvalue()
