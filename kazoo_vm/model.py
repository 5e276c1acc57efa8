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


class MessageMetadata(TypedDict, total=False):
    """A message's ``metadata`` object (``kzd_box_message:metadata``): what listings and fetches show."""

    media_id: str
    timestamp: int
    folder: str
    length: int
    caller_id_number: str
    caller_id_name: str
    call_id: str
    to: str
    # "from" is a Python keyword: read it with metadata.get("from")


class MovePlan(TypedDict):
    """The plan recorded on a message (``pvt_move``) before it is copied to another box."""

    id: str
    vmbox_id: str


class LegacySummary(TypedDict, total=False):
    """A listing item for a not yet migrated legacy entry, shaped like a ``listing_by_mailbox`` value."""

    timestamp: int
    folder: str
    media_id: str
    length: int
    caller_id_number: str
    caller_id_name: str
    call_id: str
    to: str
