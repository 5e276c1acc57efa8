"""The CouchDB engines a benchmark runs on, side by side: the bundled development server (always) and a real
Apache CouchDB 3, given the same way as to the test suite.

* ``--couch-url`` / ``KAZOO_VM_TEST_COUCH_URL``: a running CouchDB, URL with credentials
  (``http://admin:secret@127.0.0.1:5984``); the benchmark's databases are left there.
* otherwise ``--couchdb-kit`` / ``KAZOO_VM_COUCHDB_KIT``: the ``couchdb`` script of the CouchDB kit; a throw-away
  single node is started on a free port in a temporary directory and stopped afterwards.
* neither: only the development server is measured, and a line says so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kazoo_vm import devserver

DEVSERVER = "dev server"
COUCHDB = "CouchDB 3.5"


@dataclass(frozen=True)
class Engine:
    name: str
    url: str  # with credentials


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--couch-url",
        default=os.environ.get("KAZOO_VM_TEST_COUCH_URL") or None,
        help="a real CouchDB to measure, URL with credentials (default: $KAZOO_VM_TEST_COUCH_URL)",
    )
    parser.add_argument(
        "--couchdb-kit",
        default=os.environ.get("KAZOO_VM_COUCHDB_KIT") or None,
        help="the CouchDB kit's couchdb script: start a single node to measure (default: $KAZOO_VM_COUCHDB_KIT)",
    )
    parser.add_argument(
        "--engine",
        choices=("both", "devserver", "couchdb"),
        default="both",
        help="which engines to measure (default both)",
    )


def free_port_pair() -> int:
    """A free TCP port P whose neighbour P+1 (the node's Erlang distribution port) is free too."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as neighbour:
            try:
                neighbour.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free TCP ports found")


@contextmanager
def single_node(kit: str) -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="kazoo-vm-bench-couchdb-"))
    try:
        started = subprocess.run(
            [kit, "start", "--port", str(free_port_pair()), "--data", str(data)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            yield started.stdout.strip().splitlines()[-1]
        finally:
            subprocess.run([kit, "stop", "--data", str(data)], check=False, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def devserver_url() -> Iterator[str]:
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache)
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def real_couchdb(args: argparse.Namespace) -> Iterator[str | None]:
    if args.couch_url:
        yield args.couch_url
    elif args.couchdb_kit:
        with single_node(args.couchdb_kit) as url:
            yield url
    else:
        print(
            "no real CouchDB given (--couch-url / KAZOO_VM_TEST_COUCH_URL, or --couchdb-kit / KAZOO_VM_COUCHDB_KIT):"
            " measuring the development server only",
            flush=True,
        )
        yield None


@contextmanager
def engines(args: argparse.Namespace) -> Iterator[list[Engine]]:
    """The engines to measure, in column order: the development server, then the real CouchDB."""
    found: list[Engine] = []
    with ExitStack() as stack:
        if args.engine in ("both", "devserver"):
            found.append(Engine(DEVSERVER, stack.enter_context(devserver_url())))
        if args.engine in ("both", "couchdb"):
            couch_url = stack.enter_context(real_couchdb(args))
            if couch_url is not None:
                found.append(Engine(COUCHDB, couch_url))
        yield found
