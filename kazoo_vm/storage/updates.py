"""The one read-modify-write loop: apply a change to the freshest document, again on every conflict.

CouchDB refuses a write on a stale ``_rev`` (409). Many service processes may write the same document (a box,
a message, a legacy ``messages`` array) at once, so no in-process lock can help: the change is applied to a fresh
read and saved, and on 409 read and applied again, after a short random pause so that writers racing on one
document stop colliding. After :data:`UPDATE_ATTEMPTS` lost races the caller gets :class:`KeptChanging`, which
the HTTP layer answers as Kazoo's 409 ``datastore_conflict``.

Crossbar itself never checks ``_rev`` on writes, so the API stays last-writer-wins without losing the other
writer's change.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kazoo_vm.model import Document, JsonDict
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import Conflict, KeptChanging

T = TypeVar("T")
D = TypeVar("D", bound=Document)

UPDATE_ATTEMPTS = 20
"""Attempts before giving up: enough for any realistic pile-up of writers on one document (each re-reads it)."""

# The pause before attempt n + 1 is uniform in [0, n × this) seconds.
_JITTER_STEP_S = 0.01

Change = Callable[[JsonDict], JsonDict | None]
"""Given the freshly read document (which it may edit in place), the document to write, or None when there is
nothing to write. It may raise to abandon the update (the exception reaches the caller unchanged)."""


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Run ``attempt`` (which reads, decides and writes) until it does not raise :class:`Conflict`."""
    for number in range(1, UPDATE_ATTEMPTS + 1):
        try:
            return await attempt()
        except KeptChanging:
            raise
        except Conflict:
            if number < UPDATE_ATTEMPTS:
                await asyncio.sleep(random.uniform(0, _JITTER_STEP_S * number))
    raise KeptChanging(f"{what} changed {UPDATE_ATTEMPTS} times while being updated", status=409, reason="conflict")


async def update_doc(
    store: CouchStore, db: str, doc_id: str, change: Change, *, current: JsonDict | None = None, delete: bool = False
) -> JsonDict:
    """Apply ``change`` to document ``doc_id`` and save it (or delete it, with ``delete``); returns the document as
    written, or as read when ``change`` found nothing to write. ``current`` is the document when the caller has
    just read it (used for the first attempt only). A missing document raises
    :class:`~kazoo_vm.storage.errors.NotFound` from the read."""
    return await update_shaped(store, db, doc_id, change, _as_json, current=current, delete=delete)


def _as_json(raw: JsonDict) -> JsonDict:
    return raw


async def update_shaped(
    store: CouchStore,
    db: str,
    doc_id: str,
    change: Callable[[D], D | None],
    shape: Callable[[JsonDict], D],
    *,
    current: D | None = None,
    delete: bool = False,
) -> D:
    """:func:`update_doc` for a typed document: ``shape`` turns what is read into it (the storage module of that
    kind of document passes its own, e.g. ``storage.boxes.as_box``)."""
    given = current

    async def attempt() -> D:
        nonlocal given
        doc = given if given is not None else shape(await store.get_doc(db, doc_id))
        given = None
        wanted = change(doc)
        if wanted is None:
            return doc
        if delete:
            wanted["_rev"] = await store.delete_doc(db, doc_id, wanted["_rev"])
        else:
            await store.put_doc(db, wanted)
        return wanted

    return await retry_on_conflict(attempt, what=f"{db}/{doc_id}")
