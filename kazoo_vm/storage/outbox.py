"""The notification outbox as CouchDB keeps it: ``pvt_type: "notification"`` documents in one database
(:data:`~kazoo_vm.storage.naming.NOTIFICATIONS_DB` by default), found through ``_design/kazoo_vm_outbox``
(``couch_design_docs/notifications/``).

An item is either an *event* (what happened to a message, to be turned into deliveries) or a *delivery* (one
email, or one call of one webhook). Every change of state is a write with the item's ``_rev``, so of two processes
claiming one item exactly one wins (CouchDB answers the other 409).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import ensure_database, query_view
from kazoo_vm.storage.errors import Conflict, NotFound, StorageFault

DB_CLASS = "notifications"
DESIGN = "kazoo_vm_outbox"
DOC_TYPE = "notification"

Kind = Literal["event", "email", "webhook"]
State = Literal["pending", "claimed", "delivered", "failed"]
STATES: tuple[State, ...] = ("pending", "claimed", "delivered", "failed")


@dataclass
class Item:
    """One outbox document. Times are Unix seconds."""

    id: str
    kind: Kind
    account_id: str
    event: str
    payload: JsonDict
    created: float
    state: State = "pending"
    # webhook: the hook's id and the account whose database holds it.
    hook_id: str | None = None
    hook_account_id: str | None = None
    attempts: int = 0
    max_attempts: int = 1
    next_attempt_at: float = 0.0
    lease_until: float | None = None
    claimed_by: str | None = None
    last_error: str | None = None
    finished_at: float | None = None
    rev: str | None = field(default=None, compare=False)

    def to_doc(self) -> JsonDict:
        doc: JsonDict = {
            "_id": self.id,
            "pvt_type": DOC_TYPE,
            "kind": self.kind,
            "account_id": self.account_id,
            "event": self.event,
            "payload": self.payload,
            "created": self.created,
            "state": self.state,
            "hook_id": self.hook_id,
            "hook_account_id": self.hook_account_id,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "next_attempt_at": self.next_attempt_at,
            "lease_until": self.lease_until,
            "claimed_by": self.claimed_by,
            "last_error": self.last_error,
            "finished_at": self.finished_at,
        }
        if self.rev is not None:
            doc["_rev"] = self.rev
        return doc

    @classmethod
    def from_doc(cls, doc: JsonDict) -> Item:
        return cls(
            id=doc["_id"],
            kind=doc["kind"],
            account_id=doc["account_id"],
            event=doc["event"],
            payload=doc.get("payload") or {},
            created=float(doc.get("created") or 0),
            state=doc.get("state", "pending"),
            hook_id=doc.get("hook_id"),
            hook_account_id=doc.get("hook_account_id"),
            attempts=int(doc.get("attempts") or 0),
            max_attempts=int(doc.get("max_attempts") or 1),
            next_attempt_at=float(doc.get("next_attempt_at") or 0),
            lease_until=doc.get("lease_until"),
            claimed_by=doc.get("claimed_by"),
            last_error=doc.get("last_error"),
            finished_at=doc.get("finished_at"),
            rev=doc.get("_rev"),
        )

    def due_at(self) -> float | None:
        """When a worker may take this item: now-or-later for pending ones, at lease expiry for claimed ones."""
        if self.state == "pending":
            return self.next_attempt_at
        if self.state == "claimed":
            return self.lease_until or 0.0
        return None


def is_item(doc: JsonDict) -> bool:
    return doc.get("pvt_type") == DOC_TYPE


async def prepare(store: CouchStore, db: str) -> None:
    await ensure_database(store, db, DB_CLASS)


async def add_new(store: CouchStore, db: str, items: list[Item]) -> list[Item]:
    """Write new items in one request; returns those written (with their revision), leaving out ids already
    there; raises :class:`StorageFault` when CouchDB refused one for another reason."""
    if not items:
        return []
    answers = await store.bulk_docs(db, [item.to_doc() for item in items])
    by_id = {item.id: item for item in items}
    written = []
    for answer in answers:
        item = by_id.get(str(answer.get("id")))
        if item is None or answer.get("error") == "conflict":
            continue
        if "error" in answer:
            raise StorageFault(f"the outbox refused {item.id}: {answer.get('error')} ({answer.get('reason')})")
        item.rev = str(answer["rev"])
        written.append(item)
    return written


async def add_all(store: CouchStore, db: str, items: list[Item]) -> None:
    """Write new items in one request; raises :class:`StorageFault` unless every one of them was written."""
    if items:
        answers = await store.bulk_docs(db, [item.to_doc() for item in items])
        refused = [answer for answer in answers if "error" in answer]
        if refused or len(answers) != len(items):
            raise StorageFault(f"the outbox refused {len(refused) or len(items)} items: {refused[:3]}")


async def remove(store: CouchStore, db: str, item: Item) -> bool:
    """Delete ``item`` at the revision it was read at; False when another writer got there first."""
    assert item.rev is not None
    try:
        await store.delete_doc(db, item.id, item.rev)
    except (Conflict, NotFound):
        return False
    return True


async def read(store: CouchStore, db: str, item_id: str) -> Item:
    return Item.from_doc(await store.get_doc(db, item_id))


async def save(store: CouchStore, db: str, item: Item) -> bool:
    """Write ``item`` over the revision it was read at; False when another writer got there first."""
    doc = item.to_doc()
    try:
        item.rev = await store.put_doc(db, doc)
    except Conflict:
        return False
    return True


async def save_all(store: CouchStore, db: str, items: list[Item]) -> list[bool]:
    """Write each item over the revision it was read at, in one request; per item, False when another writer got
    there first (each document succeeds or conflicts on its own, as a single write)."""
    answers = {str(answer.get("id")): answer for answer in await store.bulk_docs(db, [i.to_doc() for i in items])}
    saved = []
    for item in items:
        answer = answers.get(item.id) or {"error": "missing"}
        if answer.get("error") == "conflict":
            saved.append(False)
        elif "error" in answer:
            raise StorageFault(f"the outbox refused {item.id}: {answer.get('error')} ({answer.get('reason')})")
        else:
            item.rev = str(answer["rev"])
            saved.append(True)
    return saved


async def due(store: CouchStore, db: str, now: float, *, limit: int = 200) -> list[Item]:
    """Pending items whose time has come and claimed items whose lease expired, oldest first."""
    rows = await query_view(store, db, DB_CLASS, DESIGN, "due", endkey=now, include_docs=True, limit=limit)
    return [Item.from_doc(row.doc) for row in rows if row.doc is not None]


async def next_due(store: CouchStore, db: str, after: float) -> float | None:
    """The earliest time after ``after`` any item becomes due (None when nothing waits that long)."""
    rows = await query_view(store, db, DB_CLASS, DESIGN, "due", startkey=after, limit=1)
    return float(rows[0].key) if rows and rows[0].key is not None else None


async def listing(
    store: CouchStore, db: str, *, state: State | None = None, account_id: str | None = None, limit: int = 1000
) -> list[Item]:
    """Items by state (all states when None), of one account or all, oldest first within a state. One query per
    state: an item that changed state between two of them is listed once, as last seen."""
    found: dict[str, Item] = {}
    for one in (state,) if state else STATES:
        low: list[object] = [one] if account_id is None else [one, account_id]
        rows = await query_view(
            store, db, DB_CLASS, DESIGN, "by_state", startkey=low, endkey=[*low, {}], include_docs=True, limit=limit
        )
        for row in rows:
            if row.doc is not None:
                found.pop(row.doc["_id"], None)
                found[row.doc["_id"]] = Item.from_doc(row.doc)
    return list(found.values())
