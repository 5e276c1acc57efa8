"""A cluster-wide job that one process does at a time and another resumes if it stops: a lease in a marker document.

The marker document records what the job last completed (fields of the job's own) and, while a process works on it,
``lease``: ``{"job", "holder", "expires", "after"}``. Taking the lease is a write conditional on the marker's
revision, so of several processes trying at once exactly one wins and the others are refused (409). The holder
renews it at each checkpoint, recording how far it got (``after``), and removes it when done. Once a lease has
expired (its holder crashed or stopped), any process may take it, and resumes after the recorded point when it does
the same job (``job``: a design-set hash, a month). The clock is injected, so tests move time rather than wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import Conflict, DocumentNotFound

LEASE_KEY = "lease"


async def read_marker(store: CouchStore, db: str, doc_id: str) -> JsonDict | None:
    try:
        return await store.get_doc(db, doc_id)
    except DocumentNotFound:
        return None


def live_holder(marker: JsonDict | None, holder: str, now: float) -> str | None:
    """The other process holding an unexpired lease in ``marker``, if any."""
    lease = marker.get(LEASE_KEY) if marker is not None else None
    if isinstance(lease, dict) and lease.get("holder") != holder and float(lease.get("expires", 0)) > now:
        return str(lease.get("holder"))
    return None


@dataclass
class Lease:
    """A lease this process holds; every method returns False once another process has taken the marker over."""

    store: CouchStore
    db: str
    marker: JsonDict
    lease_s: float
    clock: Callable[[], float]

    @property
    def after(self) -> str | None:
        """Where the job resumes: the last checkpoint of this job, None from the start."""
        after = self.marker[LEASE_KEY].get("after")
        return str(after) if after is not None else None

    async def checkpoint(self, after: str | None) -> bool:
        """Record progress and renew the lease."""
        return await self._write(after=after, expires=self.clock() + self.lease_s)

    async def release(self) -> bool:
        """Give the lease up without finishing (progress kept): the next process may take it at once."""
        return await self._write(expires=0)

    async def finish(self, done: JsonDict) -> bool:
        """The job completed: record ``done`` in the marker and remove the lease."""
        marker = {key: value for key, value in self.marker.items() if key != LEASE_KEY} | done
        return await self._put(marker)

    async def _write(self, **lease: object) -> bool:
        return await self._put(self.marker | {LEASE_KEY: self.marker[LEASE_KEY] | lease})

    async def _put(self, marker: JsonDict) -> bool:
        try:
            await self.store.put_doc(self.db, marker)
        except Conflict:
            return False
        self.marker = marker
        return True


async def take_lease(
    store: CouchStore,
    db: str,
    doc_id: str,
    marker: JsonDict | None,
    *,
    job: str,
    holder: str,
    lease_s: float,
    clock: Callable[[], float],
    doc_type: str,
) -> Lease | None:
    """Take the lease in ``marker`` (as read just before; None when there is none yet) for ``job``: None when another
    process holds it or took it first. A lease of the same job left by a stopped process resumes where it stopped."""
    if live_holder(marker, holder, clock()) is not None:
        return None
    previous = marker.get(LEASE_KEY) if marker is not None else None
    after = previous.get("after") if isinstance(previous, dict) and previous.get("job") == job else None
    taken: JsonDict = dict(marker) if marker is not None else {"_id": doc_id, "pvt_type": doc_type}
    taken[LEASE_KEY] = {"job": job, "holder": holder, "expires": clock() + lease_s, "after": after}
    try:
        await store.put_doc(db, taken)
    except Conflict:
        return None
    return Lease(store, db, taken, lease_s, clock)
