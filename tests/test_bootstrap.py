"""``scripts/bootstrap`` on a bare machine: what is missing is found and named before anything is installed, root
installs it lean, and an incomplete virtualenv is rebuilt.

The machine is simulated: a copy of the script in a scratch checkout, a PATH holding the system's commands except
Node.js, npm, apt-get and id (stand-ins log their calls), and a stand-in interpreter that delegates to the real one
but fakes ``venv`` and ``pip``, and lacks ``ensurepip`` until "python3-venv" is installed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kazoo_vm import devserver

CHECKOUT = Path(__file__).resolve().parents[1]
HIDDEN = {"node", "nodejs", "npm", "npx", "apt-get", "apt", "id", "sudo"}

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >> "$FAKE_LOG"
if [ "${1:-}" = -m ] && [ "${2:-}" = venv ]; then
  mkdir -p "$3/bin" && ln -s "$FAKE_PYTHON" "$3/bin/python" && echo "home = /fake" > "$3/pyvenv.cfg"; exit 0
fi
if [ "${1:-}" = -m ] && [ "${2:-}" = pip ]; then exit 0; fi
if [ "${1:-}" = -c ] && [[ "$2" == *ensurepip* ]] && [ ! -e "$FAKE_ROOT/python3-venv" ]; then exit 1; fi
exec "$REAL_PYTHON" "$@"
"""
FAKE_ID = """#!/bin/sh
if [ "$1" = -u ]; then echo "$FAKE_UID"; else exec /usr/bin/id "$@"; fi
"""
FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
[ "$1" = install ] || exit 0
for package in "$@"; do
  case "$package" in
    nodejs) ln -s "$FAKE_ROOT/tool" "$FAKE_ROOT/bin/node" ;;
    npm) ln -s "$FAKE_ROOT/tool" "$FAKE_ROOT/bin/npm" ;;
    python3-venv) touch "$FAKE_ROOT/python3-venv" ;;
  esac
done
"""
FAKE_TOOL = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
if [ "$(basename "$0")" = npm ] && [ "$1" = ci ]; then mkdir -p node_modules; fi
"""


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@dataclass
class Machine:
    root: Path  # the simulated machine's files
    checkout: Path

    @property
    def venv(self) -> Path:
        return self.checkout / ".venv"

    def bootstrap(self, *, uid: int, **settings: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": str(self.root / "bin"),
            "HOME": str(self.root),
            "PYTHON": str(self.root / "python3.11"),
            "REAL_PYTHON": sys.executable,
            "FAKE_PYTHON": str(self.root / "python3.11"),
            "FAKE_ROOT": str(self.root),
            "FAKE_LOG": str(self.root / "log"),
            "FAKE_UID": str(uid),
            **settings,
        }
        return subprocess.run(
            [str(self.checkout / "scripts" / "bootstrap")], env=env, capture_output=True, text=True, check=False
        )

    def log(self) -> list[str]:
        path = self.root / "log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    root = tmp_path / "machine"
    (root / "bin").mkdir(parents=True)
    for folder in (Path("/usr/bin"), Path("/bin")):
        for tool in folder.iterdir():
            target = root / "bin" / tool.name
            if tool.name in HIDDEN or tool.name.startswith("python") or target.exists():
                continue
            if os.access(tool, os.X_OK):
                target.symlink_to(tool)
    executable(root / "bin" / "id", FAKE_ID)
    executable(root / "bin" / "apt-get", FAKE_APT_GET)
    executable(root / "tool", FAKE_TOOL)
    executable(root / "python3.11", FAKE_PYTHON)
    checkout = tmp_path / "checkout"
    (checkout / "scripts" / "couchdb-dev-server").mkdir(parents=True)
    shutil.copy2(CHECKOUT / "scripts" / "bootstrap", checkout / "scripts" / "bootstrap")
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "scripts/couchdb-dev-server/package-lock.json"):
        shutil.copy2(CHECKOUT / name, checkout / name)
    return Machine(root=root, checkout=checkout)


def test_without_root_every_missing_package_is_named_in_one_command_before_anything_is_installed(
    machine: Machine,
) -> None:
    done = machine.bootstrap(uid=1000)
    assert done.returncode == 1
    assert "sudo apt-get install -y --no-install-recommends python3.11-venv nodejs npm" in done.stderr
    assert "KAZOO_VM_COUCH_URL" in done.stderr  # the way to do without Node.js
    assert not machine.venv.exists()
    assert not any(" -m " in call or call.startswith("apt-get") for call in machine.log())


def test_with_a_couchdb_url_node_is_not_asked_for(machine: Machine) -> None:
    done = machine.bootstrap(uid=1000, KAZOO_VM_COUCH_URL="http://admin:secret@db:5984")
    assert done.returncode == 1
    assert "sudo apt-get install -y --no-install-recommends python3.11-venv\n" in done.stderr
    assert "nodejs" not in done.stderr
    assert not machine.venv.exists()


def test_as_root_the_missing_packages_are_installed_first_without_recommends_and_each_step_is_announced(
    machine: Machine,
) -> None:
    done = machine.bootstrap(uid=0)
    assert done.returncode == 0, done.stderr
    calls = machine.log()
    install = "apt-get install -y --no-install-recommends python3.11-venv nodejs npm"
    assert install in calls
    venv = next(number for number, call in enumerate(calls) if " -m venv " in call)
    assert calls.index(install) < venv
    assert any(" -m pip install " in call and call.endswith(f"-e {machine.checkout}[test]") for call in calls)
    assert "npm ci --ignore-scripts --no-audit --no-fund --loglevel=error" in calls
    for step in ("with apt-get", "creating the virtualenv", "installing kazoo_vm", "npm packages"):
        assert step in done.stderr

    (machine.root / "log").unlink()
    again = machine.bootstrap(uid=0)
    assert again.returncode == 0, again.stderr
    assert not any(" -m venv " in call or " -m pip " in call or "apt-get" in call for call in machine.log())
    assert again.stderr == ""


def test_an_incomplete_virtualenv_is_rebuilt(machine: Machine) -> None:
    # What a failed `python3 -m venv` leaves behind: an interpreter without pip.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(machine.venv)], check=True)
    (machine.root / "python3-venv").touch()
    done = machine.bootstrap(uid=1000, KAZOO_VM_COUCH_URL="http://db:5984")
    assert done.returncode == 0, done.stderr
    assert "incomplete" in done.stderr
    assert any(call.endswith(f"-m venv {machine.venv}") for call in machine.log())
    assert any(" -m pip install " in call for call in machine.log())
    assert (machine.venv / ".kazoo_vm-installed").is_file()


def test_a_folder_that_is_not_a_virtualenv_is_left_alone(machine: Machine) -> None:
    machine.venv.mkdir()
    (machine.venv / "notes.txt").write_text("mine")
    done = machine.bootstrap(uid=0, KAZOO_VM_COUCH_URL="http://db:5984")
    assert done.returncode == 1
    assert "not a virtualenv" in done.stderr
    assert (machine.venv / "notes.txt").read_text() == "mine"


def test_the_service_without_node_names_the_install_command_and_the_way_around_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("kazoo_vm.devserver.shutil.which", lambda name: None)
    with pytest.raises(devserver.DevServerError) as raised:
        devserver.start(cache_dir=tmp_path)
    assert "sudo apt-get install --no-install-recommends" in str(raised.value)
    assert "KAZOO_VM_COUCH_URL" in str(raised.value)
