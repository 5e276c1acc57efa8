"""The time zone of a voicemail box, found the way kzd_voicemail_box:timezone/1 finds it.

Box ``timezone`` → its owner's user document → the account document → ``settings.default_timezone``. Only names
that are real IANA zones count, so a typo falls through to the next source instead of to UTC.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kazoo_vm.domain.context import Scope
from kazoo_vm.model import BoxDoc
from kazoo_vm.storage.errors import NotFound


def _valid(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


async def box_timezone(scope: Scope, box: BoxDoc) -> str:
    store, settings, account = scope.store, scope.settings, scope.account
    found = _valid(box.get("timezone"))
    if found:
        return found
    owner_id = box.get("owner_id")
    if isinstance(owner_id, str) and owner_id and not owner_id.startswith("_"):
        try:
            owner = await store.get_doc(account.db, owner_id)
        except NotFound:
            owner = {}
        found = _valid(owner.get("timezone"))
        if found:
            return found
    return _valid(account.doc.get("timezone")) or settings.default_timezone
