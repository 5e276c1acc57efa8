"""Which notification an event is, and its payload with the fields of Kazoo's notification APIs
(``kapi.notifications.voicemail_new|voicemail_full|voicemail_saved|voicemail_deleted``).

Kazoo's schemas type every value as a string (``Voicemail-Length``, ``Voicemail-Timestamp``, the counts), so the
numbers are sent as decimal strings. ``Voicemail-Timestamp`` is the message's Gregorian seconds and
``Voicemail-Length`` its length in milliseconds, as kvm_message and cf_voicemail publish them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kazoo_vm.events import MessageChange, MessageEvent
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import naming

VOICEMAIL_NEW = "voicemail_new"
VOICEMAIL_FULL = "voicemail_full"
VOICEMAIL_SAVED = "voicemail_saved"
VOICEMAIL_DELETED = "voicemail_deleted"
NAMES = (VOICEMAIL_NEW, VOICEMAIL_FULL, VOICEMAIL_SAVED, VOICEMAIL_DELETED)

# Why a message was deleted (voicemail_deleted requires a Reason).
REASON_API = "crossbar_action"
REASON_AFTER_NOTIFY = "delete_after_notify"


def notification_of(event: MessageEvent) -> str | None:
    """The notification an event is, or None. A copy is new to the box it lands in (Kazoo's callflow notifies the
    destination box of a forwarded message); moves and migrated messages are not new."""
    if event.change in (MessageChange.CREATED, MessageChange.COPIED):
        return VOICEMAIL_NEW
    if event.change is MessageChange.BOX_FULL:
        return VOICEMAIL_FULL
    if event.change is MessageChange.DELETED:
        return VOICEMAIL_DELETED
    if event.change is MessageChange.FOLDER_CHANGED:
        if event.folder == "saved":
            return VOICEMAIL_SAVED
        if event.folder == "deleted":
            return VOICEMAIL_DELETED
    return None


def event_fields(event: MessageEvent, reason: str = REASON_API) -> JsonDict:
    """What the outbox keeps of an event until it is fanned out."""
    fields: JsonDict = {
        "account_id": event.account_id,
        "box_id": event.box_id,
        "message_id": event.message_id,
        "reason": reason,
    }
    if event.message_count is not None:
        fields["message_count"] = event.message_count
    if event.max_message_count is not None:
        fields["max_message_count"] = event.max_message_count
    return fields


def _split(address: object, fallback_realm: str) -> tuple[str, str]:
    text = address if isinstance(address, str) else ""
    user, _, realm = text.partition("@")
    return user, realm or fallback_realm


def build(name: str, fields: JsonDict, realm: str | None, message: Mapping[str, Any] | None) -> JsonDict:
    """The Kazoo notification body for ``name``: from the event's fields and, for message events, the message."""
    account_id = str(fields["account_id"])
    payload: JsonDict = {
        "Event-Category": "notification",
        "Event-Name": name,
        "Account-ID": account_id,
        "Account-DB": naming.encode_db(naming.account_db(account_id)),
        "Voicemail-Box": str(fields["box_id"]),
    }
    if name == VOICEMAIL_FULL:
        payload["Message-Count"] = str(fields.get("message_count", 0))
        payload["Max-Message-Count"] = str(fields.get("max_message_count", 0))
        return payload
    metadata: JsonDict = (message or {}).get("metadata") or {}
    domain = realm or "nodomain"
    from_user, from_realm = _split(metadata.get("from"), domain)
    to_user, to_realm = _split(metadata.get("to"), domain)
    timestamp = metadata.get("timestamp") or (message or {}).get("utc_seconds") or 0
    payload.update(
        {
            "Voicemail-ID": str(fields["message_id"]),
            "Voicemail-Timestamp": str(timestamp),
            "From-User": str(metadata.get("from_user") or from_user),
            "From-Realm": str(metadata.get("from_realm") or from_realm),
            "To-User": str(metadata.get("to_user") or to_user),
            "To-Realm": str(metadata.get("to_realm") or to_realm),
        }
    )
    for key, field in (
        ("Caller-ID-Number", "caller_id_number"),
        ("Caller-ID-Name", "caller_id_name"),
        ("Call-ID", "call_id"),
    ):
        if metadata.get(field):
            payload[key] = str(metadata[field])
    if isinstance(metadata.get("length"), int):
        payload["Voicemail-Length"] = str(metadata["length"])
    transcription = (message or {}).get("transcription")
    if isinstance(transcription, dict) and transcription.get("text"):
        payload["Voicemail-Transcription"] = str(transcription["text"])
    if name == VOICEMAIL_DELETED:
        payload["Reason"] = str(fields.get("reason") or REASON_API)
    return payload
