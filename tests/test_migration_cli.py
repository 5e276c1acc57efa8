"""``kazoo-vm migrate`` and ``scripts/migrate`` as an operator runs them: a real process against the dev server."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import struct
import sys
import tempfile
import termios
from pathlib import Path

from helpers import TestAccount
from migration_support import (
    FIXTURE_BOX,
    box_entries,
    clean_box,
    load_fixture_box,
    migrated_messages,
    modbs_of,
)

from kazoo_vm import devserver
from kazoo_vm.domain import accounts
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore

ROOT = Path(__file__).resolve().parents[1]


async def run_cli(couch_url: str, tmp_path: Path, *args: str, program: list[str] | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "KAZOO_VM_COUCH_URL": couch_url, "KAZOO_VM_DATA_DIR": str(tmp_path / "var")}
    command = program or [sys.executable, "-m", "kazoo_vm.cli", "migrate"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_report_lists_every_id_and_failure_and_the_exit_status_says_so(
    couch_url: str, store: CouchStore, account: TestAccount, tmp_path: Path
) -> None:
    await load_fixture_box(store, account.id)
    report_path = tmp_path / "report.json"

    status, stdout, stderr = await run_cli(couch_url, tmp_path, "--account", account.id, "--report", str(report_path))

    assert status == 1
    report = json.loads(report_path.read_text())
    box = report["accounts"][account.id]["boxes"][FIXTURE_BOX]
    assert box["totals"]["migrated"] == 7 and box["totals"]["failed"] == 3
    assert box["migrated"]["vmbox01-msg06-now_s"] == "201709-vmbox01-msg06-now_s"
    assert {"media_id": "vmbox01-msg08-no_private_media-box_timestamp", "reason": "no_media"} in [
        {k: v for k, v in f.items() if k != "new_id"} for f in box["failed"]
    ]
    assert report["totals"]["migrated"] == 7 and report["ok"] is False
    assert "failed vmbox01-msg08-no_private_media-box_timestamp" in stdout
    assert "migrating" not in stderr and "msg/s" not in stderr  # no progress bar without a terminal


async def test_exit_status_is_zero_when_everything_migrated(
    couch_url: str, store: CouchStore, account: TestAccount, tmp_path: Path
) -> None:
    expected = await clean_box(store, account.id, "cleanbox", 3)

    status, stdout, _ = await run_cli(
        couch_url, tmp_path, "--account", account.id, "--batch-size", "2", "--workers", "2"
    )

    assert status == 0, stdout
    found = await migrated_messages(store, account.id)
    assert {k: v[0].doc["_id"] for k, v in found.items()} == expected
    assert "migrated 3" in stdout


async def test_dry_run_prints_the_plan_and_writes_nothing(
    couch_url: str, store: CouchStore, account: TestAccount, tmp_path: Path
) -> None:
    expected = await clean_box(store, account.id, "drybox", 2)
    before = await store.get_doc(naming.account_db(account.id), "drybox")

    status, stdout, _ = await run_cli(couch_url, tmp_path, "--account", account.id, "--dry-run")

    assert status == 0
    for legacy_id, new_id in expected.items():
        assert f"would migrate {legacy_id} -> {new_id} (create_modb)" in stdout
    assert "dry run, nothing written" in stdout
    assert await modbs_of(store, account.id) == []
    assert await store.get_doc(naming.account_db(account.id), "drybox") == before


async def test_box_option_limits_the_run_to_those_boxes(
    couch_url: str, store: CouchStore, account: TestAccount, tmp_path: Path
) -> None:
    chosen = await clean_box(store, account.id, "chosen", 2)
    await clean_box(store, account.id, "other", 2)

    status, _, _ = await run_cli(couch_url, tmp_path, "--account", account.id, "--box", "chosen")

    assert status == 0
    assert set(await migrated_messages(store, account.id)) == set(chosen)
    assert len(await box_entries(store, account.id, "other")) == 2


async def test_without_account_every_account_is_migrated(tmp_path: Path) -> None:
    """On a server of its own, so that "every account" is exactly the two made here (and the session's other
    accounts, with their deliberately failing legacy entries, neither slow it down nor fail it)."""
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache)
    store = CouchStore(server.url)
    try:
        first, _ = await accounts.create_account(store, name="first legacy")
        second, _ = await accounts.create_account(store, name="second legacy")
        await clean_box(store, first.id, "boxone", 1)
        await clean_box(store, second.id, "boxtwo", 2)
        report_path = tmp_path / "all.json"

        status, stdout, _ = await run_cli(server.url, tmp_path, "--report", str(report_path))

        assert status == 0, stdout
        report = json.loads(report_path.read_text())
        assert {account_id: account["totals"]["migrated"] for account_id, account in report["accounts"].items()} == {
            first.id: 1,
            second.id: 2,
        }
        assert await box_entries(store, first.id, "boxone") == await box_entries(store, second.id, "boxtwo") == []
    finally:
        await store.close()
        server.stop()


async def test_scripts_migrate_runs_the_migrate_command(
    couch_url: str, store: CouchStore, account: TestAccount, tmp_path: Path
) -> None:
    expected = await clean_box(store, account.id, "scripted", 1)

    status, stdout, stderr = await run_cli(
        couch_url, tmp_path, "--account", account.id, program=[str(ROOT / "scripts" / "migrate")]
    )

    assert status == 0, stderr
    assert set(await migrated_messages(store, account.id)) == set(expected)
    assert "migrated 1" in stdout


async def test_progress_bar_shows_on_a_terminal(
    couch_url: str, store: CouchStore, account: TestAccount, tmp_path: Path
) -> None:
    """With stderr on a terminal the run shows tqdm's bar (without one it is quiet: see the report test)."""
    await clean_box(store, account.id, "ttybox", 2)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 columns wide
    env = {**os.environ, "KAZOO_VM_COUCH_URL": couch_url, "KAZOO_VM_DATA_DIR": str(tmp_path / "var")}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kazoo_vm.cli",
            "migrate",
            "--account",
            account.id,
            env=env,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=terminal,
        )
    finally:
        os.close(terminal)  # the child holds its own end; a bar this short fits the terminal's buffer
    try:
        stdout, _ = await process.communicate()
        shown = b""
        while chunk := _read_terminal(controller):
            shown += chunk
    finally:
        os.close(controller)

    assert process.returncode == 0, stdout
    assert b"migrating" in shown and b"2/2" in shown, shown
    assert b"migrating" not in stdout


def _read_terminal(controller: int) -> bytes:
    try:
        return os.read(controller, 4096)
    except OSError:  # EIO: the other end is closed and everything was read
        return b""
