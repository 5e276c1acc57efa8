"""Finding the message a request names: its MODB id, and the document, for one box.

A message id ``YYYYMM-<32 hex>`` names its database, so a message costs one GET. A 32-hex legacy id is handed to
the migrator's seam (:mod:`kazoo_vm.domain.legacy.ids`) first. Anything else is not a message id and is answered
404 without asking CouchDB. A message met on its way to another box is no longer this box's: its move is
finished (:mod:`.transit`) and it is answered 404, as after the move.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.legacy import ids as legacy_ids
from kazoo_vm.domain.messages import transit
from kazoo_vm.domain.messages.records import belongs, is_live, move_plan, read_message
from kazoo_vm.domain.vmboxes import load_box
from kazoo_vm.errors import BadIdentifier
from kazoo_vm.model import BoxDoc, MessageDoc
from kazoo_vm.storage import naming


def may_exist(raw_id: str) -> bool:
    """Whether ``raw_id`` can name a message at all: a MODB id of a real month, or a legacy id."""
    if naming.is_message_id(raw_id):
        # "000000-..." has the shape but names no month, hence no database.
        return 1 <= naming.message_month(raw_id)[1] <= 12
    return naming.is_legacy_message_id(raw_id)


async def resolve_id(scope: Scope, box_id: str, raw_id: str, box: BoxDoc | None = None) -> str | None:
    """The MODB message id for ``raw_id``, or None when it cannot name a message of this box.

    Only a legacy id costs anything: the box is needed to look it up in the migrator's seam.
    """
    if not may_exist(raw_id):
        return None
    if naming.is_message_id(raw_id):
        return raw_id
    if box is None:
        box = await load_box(scope, box_id)
    return await legacy_ids.resolve_legacy_id(scope, box, raw_id)


@dataclass
class Resolved:
    """Requested ids sorted out: ``{MODB id: requested id}`` for those that can name a message (first request
    of each MODB id wins), and the requested ids that cannot."""

    ids: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


async def resolve_ids(scope: Scope, box_id: str, raw_ids: list[str], box: BoxDoc | None = None) -> Resolved:
    resolved = Resolved()
    for raw_id in dict.fromkeys(raw_ids):
        if naming.is_legacy_message_id(raw_id) and box is None:
            box = await load_box(scope, box_id)
        message_id = await resolve_id(scope, box_id, raw_id, box)
        if message_id is None:
            resolved.unknown.append(raw_id)
        else:
            resolved.ids.setdefault(message_id, raw_id)
    return resolved


async def find_message(scope: Scope, box_id: str, raw_id: str, box: BoxDoc | None = None) -> MessageDoc:
    """This box's live message ``raw_id``, even when it is on its way elsewhere (for the move that may be
    finishing it), or 404 ``bad_identifier`` with the requested id as cause."""
    message_id = await resolve_id(scope, box_id, raw_id, box)
    doc = await read_message(scope, message_id) if message_id else None
    if doc is None or not is_live(doc) or not belongs(doc, box_id):
        raise BadIdentifier(raw_id)
    return doc


async def load_message(scope: Scope, box_id: str, raw_id: str, box: BoxDoc | None = None) -> MessageDoc:
    """This box's message ``raw_id``; a message in transit has its move finished and is 404."""
    doc = await find_message(scope, box_id, raw_id, box)
    if move_plan(doc) is not None:
        await transit.settle(scope, doc)
        raise BadIdentifier(raw_id)
    return doc
