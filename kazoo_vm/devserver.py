"""Installing, starting and stopping the bundled CouchDB-3-compatible development server.

The server itself is Node code (``scripts/couchdb-dev-server``, express-pouchdb + PouchDB). Its npm packages
are installed on first use with ``npm ci --ignore-scripts`` from the committed lockfile: in place in a source
checkout, or in a cache folder when the package is installed read-only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from kazoo_vm.config import Settings
from kazoo_vm.resources import devserver_dir

log = logging.getLogger(__name__)

STATE_FILE = "bundled-couch.json"
# The bundled server's admin: a password generated on first start, kept in the data directory (mode 0600).
ADMIN_USER = "admin"
PASSWORD_FILE = "couchdb-admin-password"
_SERVER_FILES = ("package.json", "package-lock.json")


class DevServerError(RuntimeError):
    pass


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise DevServerError(
            "Node.js 18 or newer is needed for the bundled CouchDB development server: install it "
            "(sudo apt-get install --no-install-recommends nodejs npm) "
            "or point KAZOO_VM_COUCH_URL at a CouchDB 3 server (http://admin:secret@host:5984)"
        )
    return node


def _npm_ci(folder: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DevServerError(
            "npm is needed to install the bundled CouchDB development server's packages: "
            "sudo apt-get install --no-install-recommends npm (or point KAZOO_VM_COUCH_URL at a CouchDB 3 server)"
        )
    log.info(
        "installing the CouchDB development server's npm packages in %s (first start only, about 20 s; "
        "KAZOO_VM_DEVSERVER_CACHE chooses where an installed package keeps them)",
        folder,
    )
    result = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevServerError(f"npm ci failed in {folder}:\n{result.stdout}\n{result.stderr}")


def _fingerprint(source: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(source.glob("*.js")) + [source / name for name in _SERVER_FILES]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prepare(cache_dir: Path) -> Path:
    """A folder holding ``server.js`` with its ``node_modules`` installed; installs them if needed."""
    source = devserver_dir()
    if not (source / "server.js").is_file():
        raise DevServerError(f"the CouchDB development server is missing from {source}")
    if (source / "node_modules").is_dir():
        return source
    if os.access(source, os.W_OK):
        _npm_ci(source)
        return source
    staged = cache_dir / f"couchdb-dev-server-{_fingerprint(source)}"
    if (staged / "node_modules").is_dir():
        return staged
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="devserver-", dir=cache_dir))
    for path in list(source.glob("*.js")) + [source / name for name in _SERVER_FILES]:
        shutil.copy2(path, work / path.name)
    _npm_ci(work)
    try:
        work.rename(staged)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)  # another process staged it first
    return staged


@dataclass
class BundledCouch:
    """One running development server process. It exits when this process does: it watches the pipe on its
    stdin, which only this process holds (``--exit-with-stdin``)."""

    url: str
    process: subprocess.Popen[str]
    stopping: bool = field(default=False, repr=False)

    def watch(self, on_exit: Callable[[int], None]) -> None:
        """Call ``on_exit(returncode)`` (from a thread) if the server exits without :meth:`stop` being called."""

        def wait() -> None:
            code = self.process.wait()
            if not self.stopping:
                on_exit(code)

        threading.Thread(target=wait, name="bundled-couch-watch", daemon=True).start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping = True
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
    cache_dir: Path,
    admin: str | None = None,
    timeout_s: float = 60.0,
) -> BundledCouch:
    """Start the server (in memory when ``data_dir`` is None) and wait until it says it is ready."""
    folder = prepare(cache_dir)
    command = [_node(), str(folder / "server.js"), "--host", host, "--port", str(port)]
    if data_dir is None:
        command.append("--in-memory")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--data-dir", str(data_dir.resolve())]
    if admin:
        command += ["--admin", admin]
    command.append("--exit-with-stdin")
    # umask 077: the database files are the service's alone.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=None, stdin=subprocess.PIPE, text=True, umask=0o077
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        try:
            ready = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(ready, dict) and ready.get("ready"):
            return BundledCouch(url=str(ready["url"]), process=process)
    process.kill()
    raise DevServerError(f"the CouchDB development server did not start (exit code {process.poll()})")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_up", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def with_credentials(url: str, admin: str | None) -> str:
    """``url`` carrying ``admin`` (``USER:PASS``) as its user info."""
    if not admin:
        return url
    user, _, password = admin.partition(":")
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def private_dir(path: Path) -> Path:
    """``path`` created if needed, readable by its owner only (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def admin_credentials(settings: Settings) -> str:
    """``USER:PASS`` of the bundled server's admin: the password generated on first use and kept in
    ``data_dir/couchdb-admin-password`` (0600, in a 0700 directory); the service and the CLI read it there."""
    private_dir(settings.data_dir)
    path = settings.data_dir / PASSWORD_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        password = path.read_text(encoding="utf-8").strip()
        if not password:
            raise DevServerError(f"{path} is empty: delete it to have a new password generated") from None
    else:
        password = secrets.token_urlsafe(24)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(password + "\n")
    return f"{ADMIN_USER}:{password}"


def state_path(settings: Settings) -> Path:
    return settings.data_dir / STATE_FILE


def write_state(settings: Settings, url: str) -> None:
    private_dir(settings.data_dir)
    parts = urlsplit(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    state_path(settings).write_text(json.dumps({"url": bare, "pid": os.getpid()}), encoding="utf-8")


def clear_state(settings: Settings) -> None:
    state_path(settings).unlink(missing_ok=True)


def running_url(settings: Settings) -> str | None:
    """The URL of the bundled server of a running ``kazoo-vm serve`` over the same data directory."""
    try:
        url = str(json.loads(state_path(settings).read_text(encoding="utf-8"))["url"])
    except (OSError, ValueError, KeyError):
        return None
    # The state file names the address only; the credentials stay in their own file.
    bare = urlunsplit(urlsplit(url)._replace(netloc=urlsplit(url).netloc.rpartition("@")[2]))
    return with_credentials(bare, admin_credentials(settings)) if _answers(bare) else None


def start_for(settings: Settings) -> BundledCouch:
    """Start the bundled server on the configured address with data under ``data_dir/couchdb`` (0700), its admin
    the one of :func:`admin_credentials`."""
    admin = admin_credentials(settings)
    bundled = start(
        host=settings.couch_host,
        port=settings.couch_port,
        data_dir=private_dir(settings.data_dir / "couchdb"),
        cache_dir=settings.devserver_cache,
        admin=admin,
    )
    bundled.url = with_credentials(bundled.url, admin)
    return bundled
