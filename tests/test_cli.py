"""The kazoo-vm command: accounts and users against the configured CouchDB or a running serve's bundled one."""

from __future__ import annotations

import base64
import json
import re
import stat
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from kazoo_vm import cli, devserver
from kazoo_vm.config import load_settings
from kazoo_vm.domain.accounts import credentials_hash
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore


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


def test_without_a_couch_url_the_cli_uses_the_bundled_server_of_a_running_serve_with_its_admin_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAZOO_VM_COUCH_URL", raising=False)
    monkeypatch.setenv("KAZOO_VM_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KAZOO_VM_COUCH_PORT", "0")
    monkeypatch.setenv("KAZOO_VM_DEVSERVER_CACHE", str(Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    settings = load_settings()
    # What `kazoo-vm serve` does and leaves behind while its bundled server runs.
    bundled = devserver.start_for(settings)
    try:
        devserver.write_state(settings, bundled.url)
        password_file = settings.data_dir / devserver.PASSWORD_FILE
        password = password_file.read_text().strip()
        assert len(password) >= 24 and password in bundled.url
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((settings.data_dir / "couchdb").stat().st_mode) == 0o700
        assert password not in devserver.state_path(settings).read_text()
        for path in (settings.data_dir / "couchdb").rglob("*"):
            assert not stat.S_IMODE(path.stat().st_mode) & 0o077, path
        # The bundled server is not open: no credentials, no access.
        bare = bundled.url.replace(f"admin:{password}@", "")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{bare}/_all_dbs", timeout=5)
        refused.value.close()
        assert refused.value.code == 401
        assert devserver.running_url(settings) == bundled.url
        code, account = run(capsys, "accounts", "create", "--name", "Bundled Co")
        assert code == 0 and account["account_id"]
        # the account database was made in that bundled server
        request = urllib.request.Request(f"{bare}/{naming.account_db(account['account_id'], encoded=True)}")
        request.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        bundled.stop()


def test_invalid_configuration_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_PORT", "not-a-port")
    assert cli.main(["accounts", "create", "--name", "x"]) == 2
    assert "KAZOO_VM_PORT" in capsys.readouterr().err


def test_users_create_reads_the_password_from_a_file_or_a_prompt(
    couch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", couch_url)
    code, account = run(capsys, "accounts", "create", "--name", "Secret Co")
    assert code == 0
    secret_file = tmp_path / "password"
    secret_file.write_text("from-a-file\n")
    code, user = run(
        capsys,
        "users",
        "create",
        "--account",
        account["account_id"],
        "--username",
        "f",
        "--password-file",
        str(secret_file),
    )
    assert code == 0 and user["username"] == "f"
    answers = iter(["from-a-prompt", "from-a-prompt"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, user = run(capsys, "users", "create", "--account", account["account_id"], "--username", "p")
    assert code == 0 and user["username"] == "p"
    db = naming.account_db(account["account_id"])
    import asyncio

    async def stored_hashes() -> list[str]:
        store = CouchStore(couch_url)
        try:
            rows = await store.all_docs(db, include_docs=True)
            return [str(row.doc.get("pvt_md5_auth")) for row in rows if row.doc and row.doc.get("username")]
        finally:
            await store.close()

    hashes = asyncio.run(stored_hashes())
    assert credentials_hash("f", "from-a-file", "md5") in hashes
    assert credentials_hash("p", "from-a-prompt", "md5") in hashes
    parsed = cli.build_parser().parse_args(["users", "create", "--account", "a", "--username", "u"])
    assert parsed.password is None and parsed.password_file is None
