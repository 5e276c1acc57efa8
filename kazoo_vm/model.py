"""The shapes of the documents kazoo_vm reads and writes, shared by every layer.

CouchDB hands back JSON objects; :data:`JsonDict` is what a document is at the storage edge, before the domain
knows what kind it is. The ``TypedDict`` s below name the fields each kind of document carries (Kazoo's own
names: ``kzd_vmboxes``, ``kzd_box_message``), so that code reading them says what it expects.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

JsonDict = dict[str, Any]
"""A JSON object as CouchDB or a client sent it: a document before its kind is known, or free-form request data."""


Folder = Literal["new", "saved", "deleted"]
FOLDERS: tuple[Folder, ...] = ("new", "saved", "deleted")
"""A message's folders (``kzd_box_message``: ``VM_FOLDER_NEW``, ``_SAVED``, ``_DELETED``)."""


class MovePlan(TypedDict):
    """The plan recorded on a message (``pvt_move``) before it is copied to another box: the target's id, the
    destination box, the box it leaves and when (Gregorian seconds, the target's timestamp)."""

    id: str
    vmbox_id: str
    from_vmbox_id: str
    at: int


# A listing item for a not yet migrated legacy entry, shaped like a ``listing_by_mailbox`` value (functional form:
# "from" is a Python keyword). ``media_id`` is the legacy id, ``timestamp`` the one it will be migrated with.
LegacySummary = TypedDict(
    "LegacySummary",
    {
        "timestamp": int,
        "media_id": str,
        "folder": str,
        "from": str,
        "to": str,
        "caller_id_number": str,
        "caller_id_name": str,
        "call_id": str,
        "length": int,
    },
    total=False,
)
