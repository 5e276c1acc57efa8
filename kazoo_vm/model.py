"""The shapes of the documents kazoo_vm reads and writes, shared by every layer.

CouchDB hands back JSON objects; :data:`JsonDict` is what a document is at the storage edge, before its kind is
known, and what free-form JSON (request data before validation, CouchDB's own answers) stays. The storage module
of each kind of document (``storage/boxes.py``, ``storage/messages.py``) turns the JSON it reads into the typed
shape below, in one place per kind; from there on every layer speaks of a :class:`BoxDoc` or a
:class:`MessageDoc`.

The shapes are open ``TypedDict`` s that list the keys kazoo_vm reads or writes (Kazoo's own names:
``kzd_vmboxes``, ``kzd_box_message``), every one optional (``total=False``): a stored document is whatever a
client, Kazoo or a script saved. At run time a document stays the very dict CouchDB sent, so the keys a shape does
not name (custom fields clients store on boxes and messages) go back to CouchDB and to clients unchanged; code
that handles every key alike (stamping, rendering, filters) takes a ``Mapping[str, Any]``. PEP 728's
``extra_items`` would type those other keys, but the mypy this project pins does not check it and Python 3.11's
``typing`` does not have it. The types say what Kazoo writes; code that must survive odd stored values still
checks them.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

JsonDict = dict[str, Any]
"""A JSON object as CouchDB or a client sent it: a document before its kind is known, or free-form request data."""


Folder = Literal["new", "saved", "deleted"]
FOLDERS: tuple[Folder, ...] = ("new", "saved", "deleted")
"""A message's folders (``kzd_box_message``: ``VM_FOLDER_NEW``, ``_SAVED``, ``_DELETED``)."""


class KazooDoc(TypedDict, total=False):
    """The fields every Kazoo document may carry: CouchDB's, and the private ones crossbar stamps on each write
    (crossbar_doc ?PVT_FUNS, kz_doc:update_pvt_parameters)."""

    _id: str
    _rev: str
    _attachments: dict[str, JsonDict]
    _read_only: JsonDict
    pvt_type: str
    pvt_vsn: str
    pvt_account_id: str
    pvt_account_db: str
    pvt_created: int
    pvt_modified: int
    pvt_deleted: bool
    pvt_request_id: str
    pvt_is_authenticated: bool
    pvt_auth_account_id: str
    pvt_auth_user_id: str
    pvt_document_hash: str
    pvt_node: str


Document = KazooDoc | JsonDict
"""Any document storage reads or writes: a typed one, or JSON whose kind storage does not care about."""


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


class LegacyEntry(LegacySummary, total=False):
    """An entry of a box's legacy (pre-4.0) ``messages`` array (kzd_box_message, before kvm_migrate_crawler moved
    them to MODBs): the fields of a listing value, plus the migrator's mark of a failed attempt."""

    migration_error: str


class BoxDoc(KazooDoc, total=False):
    """A voicemail box (kzd_vmboxes, ``pvt_type: "vmbox"``), with the fields of ``schemas/vmboxes.json`` that
    kazoo_vm reads itself; the others travel in the same dict."""

    name: str
    mailbox: str
    timezone: str
    owner_id: str
    max_message_count: int
    delete_after_notify: bool
    notify_email_addresses: list[str]
    media: JsonDict
    messages: list[LegacyEntry]
    pvt_alphanum_name: str


# A message's ``metadata`` (kzd_box_message:build_metadata_object); functional form for "from".
MessageMetadata = TypedDict(
    "MessageMetadata",
    {
        "media_id": str,
        "call_id": str,
        "caller_id_name": str,
        "caller_id_number": str,
        "from": str,
        "from_user": str,
        "from_realm": str,
        "length": int,
        "timestamp": int,
        "to": str,
        "to_user": str,
        "to_realm": str,
        "folder": str,
        "transcription": JsonDict,
        "retention": str,
        "retention_message": str,
    },
    total=False,
)


class MovePlan(TypedDict):
    """The plan recorded on a message (``pvt_move``) before it is copied to another box: the target's id, the
    destination box, the box it leaves and when (Gregorian seconds, the target's timestamp)."""

    id: str
    vmbox_id: str
    from_vmbox_id: str
    at: int


class MessageDoc(KazooDoc, total=False):
    """A voicemail message in its MODB (kzd_box_message, ``pvt_type: "mailbox_message"``)."""

    name: str
    description: str
    source_type: str
    source_id: str
    media_source: str
    media_filename: str
    streamable: bool
    utc_seconds: int
    timestamp: int
    metadata: MessageMetadata
    transcription: JsonDict
    folder: str
    history: list[str]
    pvt_move: MovePlan
    # On the marker that replaces a moved source (storage.messages.MOVED_TYPE): where the message went.
    pvt_moved_to: MovePlan
    pvt_attachments: dict[str, JsonDict]
    pvt_moved_to_modb: str
    pvt_previous_id: str
    # Tokens of the notification events recorded before the writes that made them true ({token: unix time}).
    pvt_notify_tokens: dict[str, float]
