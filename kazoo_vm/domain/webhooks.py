"""Webhooks, Kazoo's way (cb_webhooks): documents in the account database with Kazoo's fields (``name``, ``uri``,
``http_verb``, ``hook``, ``retries``, ``custom_data``, ``enabled``, ``include_subaccounts``), validated against
``schemas/webhooks.json``.

Two additions Kazoo lacks: every hook has a signing secret (``pvt_secret``), generated at creation and returned in
that response only (docs/webhooks.md); and a hook disabled for failing keeps the reason in
``pvt_disabled_message``, shown as ``disabled_reason``. Only the ``notifications`` hook is served, with
``custom_data.type`` naming the notification (``voicemail_new``, ``voicemail_full``, ``voicemail_saved``,
``voicemail_deleted``; absent: all of them).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from kazoo_vm.domain import validation
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.documents import merge_patch, public_fields, stamp, to_response
from kazoo_vm.errors import BadIdentifier
from kazoo_vm.model import JsonDict
from kazoo_vm.storage import naming
from kazoo_vm.storage import webhooks as stored
from kazoo_vm.storage.errors import NotFound
from kazoo_vm.storage.updates import update_doc

SCHEMA = "webhooks"
HOOKS = ("notifications",)
NOTIFICATION_TYPES = ("voicemail_new", "voicemail_full", "voicemail_saved", "voicemail_deleted")
# Read-only fields the API shows and never takes from a request.
READ_ONLY = ("disabled_reason", "secret")


@dataclass(frozen=True)
class SavedHook:
    doc: JsonDict
    secret: str | None = None  # only when the hook was just created


def response(doc: JsonDict, secret: str | None = None) -> JsonDict:
    data = to_response(doc)
    if doc.get("pvt_disabled_message"):
        data["disabled_reason"] = doc["pvt_disabled_message"]
    if secret is not None:
        data["secret"] = secret
    return data


def _is_live(doc: JsonDict) -> bool:
    return doc.get("pvt_type") == stored.DOC_TYPE and not doc.get("pvt_deleted")


def _validated(data: JsonDict) -> JsonDict:
    fields = {key: value for key, value in data.items() if key not in READ_ONLY and key != "id"}
    errors: validation.Errors = {}
    hook = fields.get("hook")
    if isinstance(hook, str) and hook not in HOOKS:
        errors["hook"] = {"enum": {"message": "Value not found in enumerated list of values", "target": list(HOOKS)}}
    custom = fields.get("custom_data")
    kind = custom.get("type") if isinstance(custom, dict) else None
    if kind is not None and kind not in NOTIFICATION_TYPES:
        errors["custom_data.type"] = {
            "enum": {"message": "Value not found in enumerated list of values", "target": list(NOTIFICATION_TYPES)}
        }
    uri = fields.get("uri")
    if isinstance(uri, str):
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors["uri"] = {"format": {"message": "Value is not a valid http(s) URI", "value": uri}}
    return validation.validate(SCHEMA, fields, extra_errors=errors or None)


async def _load(scope: Scope, hook_id: str) -> JsonDict:
    try:
        doc = await scope.store.get_doc(scope.account.db, hook_id)
    except NotFound:
        raise BadIdentifier(hook_id) from None
    if not _is_live(doc):
        raise BadIdentifier(hook_id)
    return doc


async def list_hooks(scope: Scope) -> list[JsonDict]:
    return [response(doc) for doc in await stored.account_hooks(scope.store, scope.account.db)]


async def load_hook(scope: Scope, hook_id: str) -> JsonDict:
    return await _load(scope, hook_id)


async def create_hook(scope: Scope, data: JsonDict) -> SavedHook:
    doc = _validated(data)
    secret = secrets.token_hex(32)
    doc.update({"_id": naming.new_doc_id(), "pvt_secret": secret, "pvt_failures": 0})
    stamp(doc, doc_type=stored.DOC_TYPE, account_id=scope.account.id, db=scope.account.db, actor=scope.actor)
    await scope.store.put_doc(scope.account.db, doc)
    return SavedHook(doc, secret)


async def _rewrite(scope: Scope, hook_id: str, build: JsonDict | None, patch: JsonDict | None) -> JsonDict:
    current = await _load(scope, hook_id)

    def change(doc: JsonDict) -> JsonDict:
        if not _is_live(doc):
            raise BadIdentifier(hook_id)
        source = build if build is not None else merge_patch(public_fields(doc), patch or {})
        fields = _validated(source)
        private = {key: value for key, value in doc.items() if key not in public_fields(doc)}
        if fields.get("enabled") is True and doc.get("enabled") is False:
            # Re-enabling a hook clears why it was disabled and its failure count (webhooks_disabler).
            private.pop("pvt_disabled_message", None)
            private["pvt_failures"] = 0
        new = {**fields, **private}
        return stamp(new, doc_type=stored.DOC_TYPE, account_id=scope.account.id, db=scope.account.db, actor=scope.actor)

    return await update_doc(scope.store, scope.account.db, hook_id, change, current=current)


async def replace_hook(scope: Scope, hook_id: str, data: JsonDict) -> JsonDict:
    return await _rewrite(scope, hook_id, data, None)


async def patch_hook(scope: Scope, hook_id: str, data: JsonDict) -> JsonDict:
    return await _rewrite(scope, hook_id, None, data)


async def delete_hook(scope: Scope, hook_id: str) -> JsonDict:
    """Soft delete, as crossbar_doc:delete does."""
    current = await _load(scope, hook_id)

    def change(doc: JsonDict) -> JsonDict:
        doc["pvt_deleted"] = True
        return stamp(doc, doc_type=stored.DOC_TYPE, account_id=scope.account.id, db=scope.account.db, actor=scope.actor)

    return await update_doc(scope.store, scope.account.db, hook_id, change, current=current)
