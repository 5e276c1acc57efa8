"""The events recorder that makes notifications durable: every message event that is a notification becomes an
outbox item in CouchDB *before* the message write that makes it true (:meth:`kazoo_vm.events.Events.record`), and
the written message carries the item's token. A worker delivers the item once the message carries the token, and
removes it if the message still does not after ``notify_confirm_s`` (the process died between the two writes, so
the change never happened). A full box writes nothing to confirm: its item is due at once. Delivery happens later,
in whichever process's worker claims it, so a request never waits on SMTP or a receiver."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from kazoo_vm.events import MessageEvent, Recorder
from kazoo_vm.notify import payloads
from kazoo_vm.notify.queue import event_item
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore

# Turning an event into deliveries only reads CouchDB: a few attempts cover a node restarting.
FAN_OUT_ATTEMPTS = 10
# An item waiting for its message is first looked at this long after it was written: by then the message write
# that follows it has normally happened, so the worker's first look finds the token.
SETTLE_S = 0.3


def outbox_recorder(store: Callable[[], CouchStore], db: str, *, reason: str = payloads.REASON_API) -> Recorder:
    """A recorder writing one outbox item per notification in one request; ``store`` gives the process's store
    when called. Answers the tokens the messages must carry."""

    async def record(events: Sequence[MessageEvent]) -> set[str]:
        now = time.time()
        items = []
        tokens: set[str] = set()
        for event in events:
            name = payloads.notification_of(event)
            if name is None:
                continue
            fields = payloads.event_fields(event, reason)
            due = now
            if event.token is not None and name != payloads.VOICEMAIL_FULL:
                fields["token"] = event.token
                tokens.add(event.token)
                due = now + SETTLE_S
            items.append(event_item(name, event, fields, FAN_OUT_ATTEMPTS, due))
        await outbox.add_all(store(), db, items)
        return tokens

    return record
