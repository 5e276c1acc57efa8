"""What happened to a message, announced to whoever listens: the seam for notifications (MWI, e-mail, webhooks).

The domain announces every message it creates, moves, copies, deletes or files in another folder, and every legacy
message the migrator writes, through one :class:`Events`; with no listener that costs nothing. A listener is an
``async`` callable taking a :class:`MessageEvent`; one that fails is logged and never fails the operation (the
change is already in CouchDB). Listeners are wired in :mod:`kazoo_vm.app` (the one composition root).

A *recorder* hears of a new message, a copy, a folder change or a full box *before* the write that makes it true
(:meth:`Events.record`), so that it can keep the event durably first: a process dying between the two writes then
leaves an event whose change never happened, which the recorder's reader can tell (the written document carries
the event's ``token``), never a change without its event. A recorder that fails fails the operation, before
anything changed. It answers the tokens the written documents must carry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


class MessageChange(str, Enum):  # noqa: UP042 - the value is the event's name in logs and payloads
    CREATED = "created"  # PUT /vmboxes/{B}/messages
    FOLDER_CHANGED = "folder_changed"  # POST .../messages[/{M}] without source_id
    DELETED = "deleted"  # DELETE .../messages[/{M}] (soft delete: folder "deleted"), and a box's deletion
    MOVED = "moved"  # POST with source_id naming one box: message_id is the new id, previous_id the old
    COPIED = "copied"  # POST with source_id naming several boxes: one event per copy
    MIGRATED = "migrated"  # a legacy message written (and verified) in its MODB: previous_id is the legacy id
    BOX_FULL = "box_full"  # PUT /vmboxes/{B}/messages refused: the box is full (message_id is empty)


@dataclass(frozen=True)
class MessageEvent:
    change: MessageChange
    account_id: str
    box_id: str
    message_id: str
    previous_id: str | None = None
    folder: str | None = None
    # BOX_FULL only: how many messages the box holds, and its limit.
    message_count: int | None = None
    max_message_count: int | None = None
    # What the written document carries to prove the change happened (see Events.record).
    token: str | None = None


Listener = Callable[[MessageEvent], Awaitable[None]]
# Keeps events before their write; answers the tokens the written documents must carry.
Recorder = Callable[[Sequence[MessageEvent]], Awaitable[set[str]]]


class Events:
    """The listeners of one process; :data:`NO_EVENTS` has none."""

    def __init__(self, listeners: Iterable[Listener] = (), recorders: Iterable[Recorder] = ()) -> None:
        self._listeners = list(listeners)
        self._recorders = list(recorders)

    async def record(self, events: Sequence[MessageEvent]) -> set[str]:
        """Before the write that makes ``events`` true: every recorder keeps them (its failure is the caller's, and
        nothing is written then); returns the tokens the written documents must carry."""
        tokens: set[str] = set()
        if events:
            for recorder in self._recorders:
                tokens |= await recorder(events)
        return tokens

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def announce(self, event: MessageEvent) -> None:
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, event)

    async def announce_all(self, events: Iterable[MessageEvent]) -> None:
        if self._listeners:
            for event in events:
                await self.announce(event)


NO_EVENTS = Events()
