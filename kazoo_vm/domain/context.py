"""The one request context of the domain (:class:`Scope`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account
from kazoo_vm.domain.documents import Actor
from kazoo_vm.domain.messages import retention
from kazoo_vm.domain.messages.documents import stamp_message
from kazoo_vm.events import NO_EVENTS, Events, MessageChange, MessageEvent
from kazoo_vm.model import MessageDoc
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore


@dataclass(frozen=True)
class Scope:
    """The request context every domain operation works with: the store, the settings, whose account it is, who
    acts (for the documents' stamps) and who hears about it (:mod:`kazoo_vm.events`). The HTTP handlers build one
    per request; the migrator and the hooks build their own."""

    store: CouchStore
    settings: Settings
    account: Account
    actor: Actor = field(default_factory=Actor)
    events: Events = NO_EVENTS

    def event(
        self,
        change: MessageChange,
        box_id: str,
        message_id: str,
        *,
        previous_id: str | None = None,
        folder: str | None = None,
        message_count: int | None = None,
        max_message_count: int | None = None,
        token: str | None = None,
    ) -> MessageEvent:
        return MessageEvent(
            change, self.account.id, box_id, message_id, previous_id, folder, message_count, max_message_count, token
        )

    def db(self, message_id: str) -> str:
        return naming.message_db(self.account.id, message_id)

    def oldest(self) -> int:
        return retention.cutoff(self.settings, naming.now_gregorian())

    def stamp(self, doc: MessageDoc, *, now: int | None = None) -> MessageDoc:
        return stamp_message(doc, account_id=self.account.id, actor=self.actor, node=self.settings.node_name, now=now)
