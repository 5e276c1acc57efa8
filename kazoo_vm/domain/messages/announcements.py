"""Events recorded before the write that makes them true, and the tokens that prove the write happened.

A recorder (:meth:`kazoo_vm.events.Events.record`) keeps an event durably *before* the message write; the written
document carries the event's token in ``pvt_notify_tokens`` (``{token: unix seconds}``). Whoever later reads the
event checks the message for its token: there, the change happened; absent long after the event was recorded, the
process died between the two writes and the change never happened. So no write is ever left without its event, and
no event is delivered for a write that never happened. Tokens are kept a week (at most :data:`KEEP_AT_MOST` per
message), far longer than any event waits for a worker in normal operation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from kazoo_vm.domain.context import Scope
from kazoo_vm.events import MessageEvent
from kazoo_vm.model import MessageDoc

TOKENS: Final = "pvt_notify_tokens"
KEEP_S = 7 * 86400
KEEP_AT_MOST = 20


def new_token() -> str:
    return uuid.uuid4().hex


def carry(doc: MessageDoc, tokens: Iterable[str], *, now: float | None = None) -> MessageDoc:
    """``doc`` carrying ``tokens`` too; tokens older than :data:`KEEP_S` are dropped, and the oldest beyond
    :data:`KEEP_AT_MOST`. No tokens: ``doc`` as it is."""
    tokens = list(tokens)
    if not tokens:
        return doc
    now = time.time() if now is None else now
    held = doc.get(TOKENS)
    kept = {
        token: at
        for token, at in (held.items() if isinstance(held, dict) else ())
        if isinstance(at, (int, float)) and at > now - KEEP_S
    }
    kept.update(dict.fromkeys(tokens, now))
    doc[TOKENS] = dict(sorted(kept.items(), key=lambda item: item[1])[-KEEP_AT_MOST:])
    return doc


def carries(doc: Mapping[str, Any] | None, token: str | None) -> bool:
    """Whether ``doc`` holds the change that carries ``token`` (no token: no change to find)."""
    held = doc.get(TOKENS) if doc is not None and token is not None else None
    return isinstance(held, dict) and token in held


async def record(scope: Scope, events: Sequence[MessageEvent]) -> dict[str, str]:
    """Record ``events`` before their write; ``{message id: token}`` for the documents that must carry one."""
    tokens = await scope.events.record(events)
    return {event.message_id: event.token for event in events if event.token is not None and event.token in tokens}
