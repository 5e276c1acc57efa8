"""``pip install .`` gives a working package: a wheel built from the checkout, installed into a fresh virtualenv and
run from outside the checkout.

The fresh virtualenv sees the dependencies already installed for the test run (a ``.pth`` file naming their
folders) and nothing of the checkout; the wheel is installed without its dependencies and without an index, so the
test needs no network.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from service_support import call, call_json, clean_env, free_port, multipart, serving, wav

from kazoo_vm import devserver

CHECKOUT = Path(__file__).resolve().parents[1]
# Never part of a build: local state, caches and what earlier builds left.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)


@dataclass
class Installed:
    venv: Path
    site_packages: Path
    workdir: Path  # outside the checkout

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "kazoo-vm"

    @property
    def package(self) -> Path:
        return self.site_packages / "kazoo_vm"


def dependency_folders() -> set[str]:
    """The folders the test run's interpreter loads kazoo_vm's dependencies from."""
    folders = set()
    for requirement in metadata.requires("kazoo-vm") or []:
        parsed = Requirement(requirement)
        if parsed.marker is not None and not parsed.marker.evaluate({"extra": ""}):
            continue  # the test extra
        folders.add(str(Path(str(metadata.distribution(parsed.name).locate_file(""))).resolve()))
    return folders


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    shutil.copytree(CHECKOUT, source, ignore=NOT_SOURCES)
    wheels = base / "wheels"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"),
            *("--wheel-dir", str(wheels), str(source)),
        ],
        check=True,
        cwd=base,
        env=clean_env(),
    )
    [wheel] = wheels.glob("kazoo_vm-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, cwd=base)
    site_packages = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
            cwd=base,
        ).stdout.strip()
    )
    (site_packages / "test-run-dependencies.pth").write_text("\n".join(sorted(dependency_folders())) + "\n")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")),
            *("install", "--quiet", "--no-deps", "--no-index", str(wheel)),
        ],
        check=True,
        cwd=base,
        env=clean_env(),
    )
    workdir = base / "elsewhere"
    workdir.mkdir()
    return Installed(venv=venv, site_packages=site_packages, workdir=workdir)


def files_under(folder: Path, pattern: str) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob(pattern)
        if path.is_file() and "__pycache__" not in path.parts and "node_modules" not in path.parts
    }


def test_the_wheel_holds_every_module_and_data_file_of_the_checkout(installed: Installed) -> None:
    assert files_under(installed.package, "*.py") == files_under(CHECKOUT / "kazoo_vm", "*.py")
    assert (installed.package / "py.typed").is_file()
    resources = installed.package / "resources"
    assert files_under(resources / "schemas", "*") == files_under(CHECKOUT / "schemas", "*.json")
    assert files_under(resources / "couch_design_docs", "*") == files_under(CHECKOUT / "couch_design_docs", "*.json")
    server = CHECKOUT / "scripts" / "couchdb-dev-server"
    assert files_under(resources / "devserver", "*") == files_under(server, "*.js") | {
        "package.json",
        "package-lock.json",
    }


def test_every_module_of_the_installed_package_imports_from_the_fresh_virtualenv(installed: Installed) -> None:
    script = textwrap.dedent(
        """
        import importlib, json, pathlib, sys
        import kazoo_vm
        package = pathlib.Path(kazoo_vm.__file__).parent
        names = sorted(
            ".".join(("kazoo_vm",) + path.relative_to(package).with_suffix("").parts).removesuffix(".__init__")
            for path in package.rglob("*.py")
        )
        for name in names:
            importlib.import_module(name)
        from kazoo_vm.resources import design_docs_dir, devserver_dir, schemas_dir
        print(json.dumps({
            "files": {name: sys.modules[name].__file__ for name in names},
            "data": [str(design_docs_dir()), str(devserver_dir()), str(schemas_dir())],
            "path": sys.path,
        }))
        """
    )
    result = subprocess.run(
        [str(installed.python), "-c", script],
        cwd=installed.workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["files"]) == len(files_under(CHECKOUT / "kazoo_vm", "*.py"))
    for where in [*report["files"].values(), *report["data"]]:
        assert Path(where).is_relative_to(installed.package), where
    assert str(CHECKOUT) not in report["path"]


def test_the_installed_command_answers_help_and_version(installed: Installed) -> None:
    env = clean_env()
    helped = subprocess.run(
        [str(installed.command), "--help"], cwd=installed.workdir, env=env, capture_output=True, text=True, check=False
    )
    assert helped.returncode == 0, helped.stderr
    for command in ("serve", "accounts", "users", "migrate"):
        assert command in helped.stdout
    versioned = subprocess.run(
        [str(installed.command), "--version"], cwd=installed.workdir, env=env, capture_output=True, text=True
    )
    assert versioned.returncode == 0, versioned.stderr
    assert versioned.stdout.strip() == f"kazoo-vm {metadata.version('kazoo-vm')}"


def test_the_installed_service_stores_a_message_and_gives_its_audio_back(installed: Installed, couch_url: str) -> None:
    port = free_port()
    env = clean_env(
        KAZOO_VM_COUCH_URL=couch_url,
        KAZOO_VM_PORT=str(port),
        KAZOO_VM_DATA_DIR=str(installed.workdir / "var"),
        KAZOO_VM_SYNC_DESIGN_DOCS="false",
        KAZOO_VM_MODB_PRECREATE_RATE="0",
    )
    with serving([str(installed.command), "serve"], env=env, cwd=installed.workdir, port=port) as printed:
        assert any(line.strip().startswith("kazoo-vm accounts create") for line in printed), printed
        created = subprocess.run(
            [str(installed.command), "accounts", "create", "--name", "Installed Co"],
            cwd=installed.workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        account = json.loads(created.stdout)
        status, auth = call_json("PUT", f"http://127.0.0.1:{port}/v2/api_auth", {"api_key": account["api_key"]})
        assert status == 201, auth
        token = auth["auth_token"]
        api = f"http://127.0.0.1:{port}/v2/accounts/{account['account_id']}"
        status, box = call_json("PUT", f"{api}/vmboxes", {"name": "Installed", "mailbox": "4100"}, token=token)
        assert status == 201, box
        audio = wav()
        body, content_type = multipart(
            [("application/json", json.dumps({"data": {"caller_id_number": "6001"}}).encode()), ("audio/wav", audio)]
        )
        status, answer = call(
            "PUT", f"{api}/vmboxes/{box['data']['id']}/messages", body, token=token, content_type=content_type
        )
        assert status == 201, answer
        message_id = json.loads(answer)["data"]["media_id"]
        status, downloaded = call("GET", f"{api}/vmboxes/{box['data']['id']}/messages/{message_id}/raw", token=token)
        assert status == 200
        assert downloaded == audio


def test_the_installed_package_starts_its_own_bundled_couchdb(installed: Installed, tmp_path: Path) -> None:
    # The npm packages come from the checkout's install (the packaged files are what is tested), so no network.
    packaged = installed.package / "resources" / "devserver"
    if not (packaged / "node_modules").exists():
        (packaged / "node_modules").symlink_to(devserver.prepare(tmp_path / "cache") / "node_modules")
    port = free_port()
    env = clean_env(KAZOO_VM_COUCH_PORT=str(port), KAZOO_VM_DATA_DIR=str(tmp_path / "var"))
    created = subprocess.run(
        [str(installed.command), "accounts", "create", "--name", "Bundled Co"],
        cwd=installed.workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    account_id = json.loads(created.stdout)["account_id"]
    assert (tmp_path / "var" / "couchdb").is_dir()
    # The server stopped with the command and kept its data on disk: a second start finds the account.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    user = subprocess.run(
        [str(installed.command), "users", "create", "--account", account_id, "--username", "u", "--password", "p"],
        cwd=installed.workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert user.returncode == 0, user.stderr
    assert json.loads(user.stdout)["account_id"] == account_id
