"""What a worker does with a claimed item, by kind.

* ``event``: checked against its message (the message must carry the event's token, see
  :mod:`kazoo_vm.domain.messages.announcements`), then fanned out into deliveries (one email, one per matching
  webhook) written with ids derived from the event's, so fanning out again after a crash writes nothing twice. The
  deliveries are written already claimed by the worker that fans out, which carries them out at once with what it
  has just read (no second claim, no wait for the ``_changes`` feed).
* ``email``: composed from the message as it is now, sent, then (``voicemail_new``) the after-notify action.
* ``webhook``: sent to the hook (:mod:`kazoo_vm.notify.webhook`).

Webhooks that hear an event: the account's own ``notifications`` hooks whose ``custom_data.type`` is the event
(or absent), and those of its ancestors (``pvt_tree``) that set ``include_subaccounts``; never another account's.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import aiohttp

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account, load_account
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import changes
from kazoo_vm.domain.messages.announcements import carries
from kazoo_vm.domain.messages.records import read_message
from kazoo_vm.errors import KazooError
from kazoo_vm.events import Events
from kazoo_vm.model import BoxDoc, JsonDict, MessageDoc
from kazoo_vm.notify import email, payloads
from kazoo_vm.notify.listener import outbox_recorder
from kazoo_vm.notify.queue import new_item
from kazoo_vm.notify.webhook import DeliveryFailed, Undeliverable
from kazoo_vm.notify.webhook import deliver as deliver_webhook
from kazoo_vm.storage import naming
from kazoo_vm.storage import webhooks as stored_hooks
from kazoo_vm.storage.boxes import read_box
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import NotFound
from kazoo_vm.storage.outbox import Item

__all__ = ["Context", "DeliveryFailed", "NotYet", "Read", "Undeliverable", "Void", "deliver", "fan_out"]

log = logging.getLogger(__name__)


class NotYet(Exception):
    """The event's message does not carry its token yet: the write that follows the event has not happened (yet)."""


class Void(Exception):
    """The event's message never got its token: the change it announces never happened."""


@dataclass
class Context:
    store: CouchStore
    settings: Settings
    session: aiohttp.ClientSession

    @property
    def db(self) -> str:
        return self.settings.notifications_db

    def scope(self, account: Account) -> Scope:
        """The domain context of after-notify actions: what they change is recorded too (reason
        ``delete_after_notify``)."""
        recorder = outbox_recorder(lambda: self.store, self.db, reason=payloads.REASON_AFTER_NOTIFY)
        return Scope(self.store, self.settings, account, events=Events(recorders=[recorder]))


@dataclass
class Read:
    """What fanning out an event read, for the deliveries it carries out right away (one operation, not a cache:
    a later attempt reads everything again)."""

    account: Account
    message: MessageDoc | None
    box: BoxDoc | None = None
    recipients: list[str] = field(default_factory=list)
    hooks: dict[str, JsonDict] = field(default_factory=dict)
    deliveries: list[Item] = field(default_factory=list)


async def _account(ctx: Context, account_id: str) -> Account:
    try:
        return await load_account(ctx.store, account_id)
    except KazooError:
        raise Undeliverable(f"account {account_id} does not exist") from None


async def _box(ctx: Context, account: Account, box_id: str) -> BoxDoc | None:
    try:
        doc = await read_box(ctx.store, account.db, box_id)
    except NotFound:
        return None
    return doc if doc.get("pvt_type") == "vmbox" and not doc.get("pvt_deleted") else None


def _hears(hook: JsonDict, event: str) -> bool:
    if hook.get("hook") != "notifications" or hook.get("enabled") is False:
        return False
    custom = hook.get("custom_data")
    wanted = custom.get("type") if isinstance(custom, dict) else None
    return wanted in (None, event)


async def hooks_for(store: CouchStore, account: Account, event: str) -> list[tuple[str, JsonDict]]:
    """``(account id, hook)`` for every webhook that hears ``event`` of ``account``."""
    found = [(account.id, hook) for hook in await stored_hooks.account_hooks(store, account.db) if _hears(hook, event)]
    for ancestor in account.tree:
        hooks = await stored_hooks.account_hooks(store, naming.account_db(ancestor))
        found.extend(
            (ancestor, hook) for hook in hooks if hook.get("include_subaccounts") is True and _hears(hook, event)
        )
    return found


def confirm(ctx: Context, item: Item, message: MessageDoc | None, now: float) -> None:
    """Raise :class:`NotYet` or :class:`Void` unless ``message`` carries the event's token (items without one were
    written after their message, or announce a full box)."""
    token = item.payload.get("token")
    if not isinstance(token, str) or carries(message, token):
        return
    if now < item.created + ctx.settings.notify_confirm_s:
        raise NotYet(f"message {item.payload.get('message_id')} does not carry the event yet")
    raise Void(
        f"message {item.payload.get('message_id')} never carried the event: its write was refused or never happened"
    )


async def fan_out(ctx: Context, item: Item) -> Read:
    """The deliveries of an event item (not yet written), with what was read to find them."""
    fields = item.payload
    account = await _account(ctx, str(fields["account_id"]))
    scope = Scope(ctx.store, ctx.settings, account)
    message = None
    if item.event != payloads.VOICEMAIL_FULL:
        message = await read_message(scope, str(fields["message_id"]))
        confirm(ctx, item, message, time.time())
    read = Read(account, message)
    payload = payloads.build(item.event, fields, account.realm, message)
    wants_email = email.emailed(ctx.settings, item.event) and (
        message is not None or item.event == payloads.VOICEMAIL_FULL
    )
    if wants_email:
        read.box = await _box(ctx, account, str(fields["box_id"]))
        read.recipients = await email.recipients(scope, read.box, item.event) if read.box is not None else []
        if read.recipients:
            read.deliveries.append(
                new_item(
                    "email",
                    account.id,
                    item.event,
                    payload,
                    item_id=f"{item.id}-email",
                    max_attempts=ctx.settings.notify_max_attempts,
                )
            )
    for owner, hook in await hooks_for(ctx.store, account, item.event):
        read.hooks[hook["_id"]] = hook
        retries = hook.get("retries", 2)
        read.deliveries.append(
            new_item(
                "webhook",
                account.id,
                item.event,
                payload,
                item_id=f"{item.id}-hook-{hook['_id']}",
                max_attempts=(retries if isinstance(retries, int) else 2) + 1,
                hook_id=hook["_id"],
                hook_account_id=owner,
            )
        )
    return read


async def send_email(ctx: Context, item: Item, known: Read | None = None) -> str | None:
    """Send the email of an item, then (``voicemail_new``) apply the box's after-notify action; returns a note for
    the item when there was nothing to do. ``known``: what fanning out just read (first attempt only)."""
    if not ctx.settings.smtp_url:
        raise Undeliverable("no SMTP server is configured (KAZOO_VM_SMTP_URL)")
    fields = item.payload
    account = known.account if known is not None else await _account(ctx, item.account_id)
    scope = ctx.scope(account)
    box = known.box if known is not None else await _box(ctx, account, str(fields["Voicemail-Box"]))
    message = None
    if item.event != payloads.VOICEMAIL_FULL:
        message = known.message if known is not None else await read_message(scope, str(fields["Voicemail-ID"]))
        if message is None:
            raise Undeliverable("the message no longer exists")
    if box is None or (item.event == payloads.VOICEMAIL_NEW and (message or {}).get("source_id") != box["_id"]):
        raise Undeliverable("the message or its box no longer exists")
    to = known.recipients if known is not None else await email.recipients(scope, box, item.event)
    if not to:
        return "no recipients"
    mail = await email.compose(scope, item.event, box, message, to, fields)
    try:
        await email.send(ctx.settings, mail, to)
    except email.EmailFailed as exc:
        raise DeliveryFailed(str(exc)) from exc
    if item.event != payloads.VOICEMAIL_NEW or message is None:
        return None
    try:
        await after_notify(scope, box, message)
    except Exception as exc:
        # The email went out: retrying the item would send it again. The message keeps its folder.
        log.exception("after-notify action on %s failed", message["_id"])
        return f"sent; after-notify action failed: {exc!r}"
    return None


async def after_notify(scope: Scope, box: BoxDoc, message: MessageDoc) -> None:
    """``save_after_notify`` files the message as saved (it wins), else ``delete_after_notify`` soft-deletes it;
    only while the message is still new (someone who already listened to it decided for themselves)."""
    folder = (message.get("metadata") or {}).get("folder", "new")
    if folder != "new":
        return
    if box.get("save_after_notify") is True:
        await changes.change_folder(scope, box["_id"], message["_id"], "saved")
    elif box.get("delete_after_notify") is True:
        await changes.delete_message(scope, box["_id"], message["_id"])


async def deliver(ctx: Context, item: Item, known: Read | None = None) -> str | None:
    """Carry out a claimed email or webhook item; raises :class:`Undeliverable` or :class:`DeliveryFailed`."""
    if item.kind == "email":
        return await send_email(ctx, item, known)
    await deliver_webhook(
        ctx.store,
        ctx.session,
        item,
        timeout_s=ctx.settings.webhook_timeout_s,
        disable_after=ctx.settings.webhook_disable_after,
        hook=known.hooks.get(item.hook_id or "") if known is not None else None,
    )
    return None
