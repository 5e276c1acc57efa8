"""The events listener that makes notifications durable: every message event that is a notification becomes an
outbox item in CouchDB right after the message write that caused it, before the request is answered. Delivery
happens later, in whichever process's worker claims it, so a request never waits on SMTP or a receiver."""

from __future__ import annotations

from collections.abc import Callable

from kazoo_vm.events import Listener, MessageEvent
from kazoo_vm.notify import payloads
from kazoo_vm.notify.queue import event_item
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore

# Turning an event into deliveries only reads CouchDB: a few attempts cover a node restarting.
FAN_OUT_ATTEMPTS = 10


def outbox_listener(store: Callable[[], CouchStore], db: str, *, reason: str = payloads.REASON_API) -> Listener:
    """A listener writing one outbox item per notification; ``store`` gives the process's store when called."""

    async def listener(event: MessageEvent) -> None:
        name = payloads.notification_of(event)
        if name is None:
            return
        item = event_item(name, event, payloads.event_fields(event, reason), FAN_OUT_ATTEMPTS)
        await outbox.add(store(), db, [item])

    return listener
