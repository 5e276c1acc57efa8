"""``kazoo-vm notifications``: what is waiting, what was delivered and what failed, and sending a failed one again.

``list`` prints one JSON object per item (id, kind, event, state, attempts, last error, times); ``retry ID`` makes
an item pending again with its attempts counted afresh, for a running ``serve`` to deliver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from kazoo_vm.config import Settings
from kazoo_vm.model import JsonDict
from kazoo_vm.notify import queue
from kazoo_vm.runtime import couch_for, wait_for_couch
from kazoo_vm.storage import outbox
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import NotFound
from kazoo_vm.storage.outbox import Item


def _when(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds") if seconds else None


def summary(item: Item) -> JsonDict:
    shown: JsonDict = {
        "id": item.id,
        "kind": item.kind,
        "event": item.event,
        "account_id": item.account_id,
        "state": item.state,
        "attempts": item.attempts,
        "max_attempts": item.max_attempts,
        "created": _when(item.created),
        "next_attempt_at": _when(item.next_attempt_at) if item.state == "pending" else None,
        "finished_at": _when(item.finished_at),
        "last_error": item.last_error,
        "message_id": item.payload.get("Voicemail-ID") or item.payload.get("message_id"),
    }
    if item.hook_id:
        shown["webhook_id"] = item.hook_id
    return shown


def _with_store(settings: Settings, work: Any) -> Any:
    with couch_for(settings) as ready:
        assert ready.couch_url is not None
        url = ready.couch_url

        async def main() -> Any:
            store = CouchStore(url)
            try:
                await wait_for_couch(store)
                await outbox.prepare(store, settings.notifications_db)
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(main())


def _list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(store: CouchStore) -> list[Item]:
        return await outbox.listing(store, settings.notifications_db, state=args.state, account_id=args.account)

    for item in _with_store(settings, work):
        print(json.dumps(summary(item)))
    return 0


def _retry(settings: Settings, args: argparse.Namespace) -> int:
    async def work(store: CouchStore) -> Item | None:
        try:
            return await queue.retry(store, settings.notifications_db, args.id)
        except NotFound:
            return None

    item = _with_store(settings, work)
    if item is None:
        print(json.dumps({"error": "not_found", "id": args.id}))
        return 1
    print(json.dumps(summary(item)))
    return 0


def add_command(commands: Any) -> None:
    parser = commands.add_parser("notifications", help="list notification deliveries, retry a failed one")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="one JSON line per outbox item")
    listing.add_argument("--account", help="only this account's items")
    listing.add_argument("--state", choices=outbox.STATES, help="only items in this state")
    listing.set_defaults(run=_list)
    retry = actions.add_parser("retry", help="deliver an item again (pending, attempts counted afresh)")
    retry.add_argument("id")
    retry.set_defaults(run=_retry)
