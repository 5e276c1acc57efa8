"""Apache CouchDB 3.5 nodes from the CouchDB kit beside the project (``KAZOO_VM_COUCHDB_KIT``: its ``couchdb``
script), for the tests that need a real CouchDB of their own: the cluster tests and the fault tests."""

from __future__ import annotations

import os
import random
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KIT_VARIABLE = "KAZOO_VM_COUCHDB_KIT"


def kit_path() -> Path | None:
    """The kit's ``couchdb`` script when the environment names one."""
    kit = os.environ.get(KIT_VARIABLE)
    return Path(kit) if kit else None


def _ephemeral_ports() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def free_base_port(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1, outside the kernel's ephemeral range: a
    killed node's ports must stay free for its restart, and the other nodes' reconnection attempts to a closed
    ephemeral port can end up connected to themselves, holding that port."""
    ephemeral = _ephemeral_ports()
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 32000)
        ports = range(base, base + count)
        if any(port in ephemeral for port in ports):
            continue
        if all(_is_free(port) for port in ports):
            return base
    raise RuntimeError(f"no {count} consecutive free TCP ports found")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Node:
    url: str  # with the admin's credentials
    pid: int  # the node's beam.smp


@contextmanager
def single_node(kit: Path, data: Path) -> Iterator[Node]:
    """A single CouchDB node of its own in ``data``, stopped (and continued first, if stopped) afterwards."""
    started = subprocess.run(
        [str(kit), "start", "--port", str(free_base_port(2)), "--data", str(data)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if started.returncode != 0:
        raise RuntimeError(f"the CouchDB kit did not start a node:\n{started.stderr}")
    pid = int((data / "couchdb.pid").read_text().strip())
    try:
        yield Node(url=started.stdout.strip().splitlines()[-1], pid=pid)
    finally:
        subprocess.run([str(kit), "stop", "--data", str(data)], capture_output=True, check=False, timeout=60)
