"""The kazoo-vm command: accounts and users against the configured CouchDB or a running serve's bundled one."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from pathlib import Path

import pytest

from kazoo_vm import cli, devserver
from kazoo_vm.config import load_settings
from kazoo_vm.storage.naming import account_db


def unique_realm(label: str) -> str:
    """A realm no earlier run has taken on the same CouchDB."""
    return f"{label}-{uuid.uuid4().hex[:12]}.example.com"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str]]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else {}


def test_accounts_and_users_create_against_the_configured_couchdb(
    couch_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", couch_url)
    realm = unique_realm("cli")
    code, account = run(capsys, "accounts", "create", "--name", "CLI Co", "--realm", realm)
    assert code == 0
    assert re.fullmatch(r"[0-9a-f]{32}", account["account_id"])
    assert re.fullmatch(r"[0-9a-f]{64}", account["api_key"])
    assert account["realm"] == realm
    code, user = run(
        capsys, "users", "create", "--account", account["account_id"], "--username", "u1", "--password", "p"
    )
    assert code == 0 and re.fullmatch(r"[0-9a-f]{32}", user["user_id"])
    code, child = run(capsys, "accounts", "create", "--name", "Child Co", "--parent", account["account_id"])
    assert code == 0 and child["account_id"] != account["account_id"]


def test_a_duplicate_realm_or_unknown_parent_fails_with_a_clear_error(
    couch_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", couch_url)
    realm = unique_realm("dup")
    assert cli.main(["accounts", "create", "--name", "A", "--realm", realm]) == 0
    capsys.readouterr()
    assert cli.main(["accounts", "create", "--name", "B", "--realm", realm]) == 1
    assert "unique" in capsys.readouterr().err
    assert cli.main(["accounts", "create", "--name", "C", "--parent", "0" * 32]) == 1
    assert "bad_identifier" in capsys.readouterr().err


def test_without_a_couch_url_the_cli_uses_the_bundled_server_of_a_running_serve(
    bundled_couch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAZOO_VM_COUCH_URL", raising=False)
    monkeypatch.setenv("KAZOO_VM_DATA_DIR", str(tmp_path))
    # What `kazoo-vm serve` leaves behind while its bundled server runs.
    devserver.write_state(load_settings(), bundled_couch_url)
    assert devserver.running_url(load_settings()) == bundled_couch_url
    code, account = run(capsys, "accounts", "create", "--name", "Bundled Co")
    assert code == 0 and account["account_id"]
    # the account database was made in that bundled server
    db_url = f"{bundled_couch_url}/{account_db(account['account_id'], encoded=True)}"
    with urllib.request.urlopen(db_url, timeout=10) as response:
        assert response.status == 200


def test_invalid_configuration_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_PORT", "not-a-port")
    assert cli.main(["accounts", "create", "--name", "x"]) == 2
    assert "KAZOO_VM_PORT" in capsys.readouterr().err
