"""Public and private parts of Kazoo documents, and the private fields Kazoo stamps on save.

Keys starting with ``_`` or ``pvt_`` are private (kz_doc:is_private_key): clients never see or set them. A
response shows the public fields with ``_id`` as ``id`` and any stored ``_read_only`` object (crossbar_doc
public_and_read_only).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kazoo_vm.model import Document, JsonDict
from kazoo_vm.storage import naming

DOC_VSN = "1"  # crossbar_doc ?CROSSBAR_DOC_VSN

D = TypeVar("D", bound=Document)


def is_private_key(key: str) -> bool:
    return key.startswith("_") or key.startswith("pvt_")


def alphanum(text: str) -> str:
    """Lower case with only ``[a-z0-9]`` kept: Kazoo's normalised names (cb_modules_util normalize_alphanum_name,
    the accounts ``listing_by_name`` key)."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def public_fields(doc: Mapping[str, Any]) -> JsonDict:
    return {key: value for key, value in doc.items() if not is_private_key(key)}


def to_response(doc: Mapping[str, Any]) -> JsonDict:
    """What a client sees of a stored document."""
    shown = public_fields(doc)
    if "_id" in doc:
        shown["id"] = doc["_id"]
    if isinstance(doc.get("_read_only"), dict):
        shown["_read_only"] = doc["_read_only"]
    return shown


@dataclass(frozen=True)
class Actor:
    """Who is making a change, for the pvt_auth_* fields Kazoo records on every crossbar write."""

    account_id: str | None = None
    user_id: str | None = None
    request_id: str | None = None


def document_hash(doc: Mapping[str, Any]) -> str:
    """``pvt_document_hash``: an md5 of the public content. Kazoo hashes the Erlang term (kz_doc
    calculate_document_hash), which cannot be reproduced; nothing reads the value back."""
    content = json.dumps(public_fields(doc), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.md5(content.encode()).hexdigest()


def stamp(doc: D, *, doc_type: str, account_id: str, db: str, actor: Actor | None = None, now: int | None = None) -> D:
    """Set Kazoo's private fields on ``doc`` in place (crossbar_doc ?PVT_FUNS) and return it."""
    moment = naming.now_gregorian() if now is None else now
    doc["pvt_type"] = doc_type
    doc["pvt_vsn"] = DOC_VSN
    doc["pvt_account_id"] = account_id
    doc["pvt_account_db"] = naming.encode_db(db)
    if "_rev" not in doc and "pvt_created" not in doc:
        doc["pvt_created"] = moment
    doc["pvt_modified"] = moment
    if actor is not None:
        # The fields say who wrote last: what this actor lacks is dropped rather than left from an earlier writer.
        if "pvt_request_id" in doc:
            del doc["pvt_request_id"]
        if "pvt_is_authenticated" in doc:
            del doc["pvt_is_authenticated"]
        if "pvt_auth_account_id" in doc:
            del doc["pvt_auth_account_id"]
        if "pvt_auth_user_id" in doc:
            del doc["pvt_auth_user_id"]
        if actor.request_id:
            doc["pvt_request_id"] = actor.request_id
        if actor.account_id:
            doc["pvt_is_authenticated"] = True
            doc["pvt_auth_account_id"] = actor.account_id
        if actor.user_id:
            doc["pvt_auth_user_id"] = actor.user_id
    doc["pvt_document_hash"] = document_hash(doc)
    return doc


def merge_patch(stored: JsonDict, patch: JsonDict) -> JsonDict:
    """Kazoo's PATCH merge (kz_json:merge_left): request wins, objects merge recursively, ``null`` deletes a
    key, arrays are replaced, and an empty object in the request replaces the stored object."""
    merged = copy.deepcopy(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        elif isinstance(value, dict):
            merged[key] = _drop_nulls(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _drop_nulls(value: JsonDict) -> JsonDict:
    return {
        key: _drop_nulls(item) if isinstance(item, dict) else item for key, item in value.items() if item is not None
    }
