"""What each operation of the service takes and answers, for the OpenAPI description (:mod:`.openapi`).

Keyed by the route's canonical path (as the router knows it) and the HTTP method. For Kazoo's routes, whether a
token is needed, whether file bodies are refused and which schema checks the data come from the route table
(:mod:`kazoo_vm.routes`), not from here. Error statuses follow Kazoo's request pipeline (kazoo_vm.http.dispatch):
every request may have a bad body (400) or one too large (413) and may meet a failing (500) or unreachable (503)
CouchDB; account routes add the account in the path (404) and the token (401, 403); JSON-only routes refuse files
(415).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "/v2/accounts/{account_id}"
BOX = f"{ACCOUNT}/vmboxes/{{box_id}}"
MESSAGES = f"{BOX}/messages"

# The files of schemas/ that become components of the description.
SCHEMA_FILES = (
    "vmboxes",
    "notify.callback",
    "mailbox_message",
    "vm_message_metadata",
    "api_auth",
    "user_auth",
    "webhooks",
)

AUDIO_TYPES = ("audio/mpeg", "audio/x-wav", "audio/wav", "application/octet-stream")

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: invalid JSON or envelope, or validation errors by field (Kazoo's 'validation error')",
    401: "No valid token (invalid_credentials)",
    403: "The token's account may not act on this account (forbidden)",
    404: "Unknown account, box or message (bad_identifier), or nothing found (not_found)",
    405: "A POST whose verb (?verb= or the envelope's verb) names a method this path does not have",
    406: "None of the media types in Accept can be served (not_acceptable)",
    409: "The document changed meanwhile (datastore_conflict)",
    413: "The body is larger than the upload limit (payload_too_large)",
    415: "A file was sent where only JSON is accepted (unsupported_media_type)",
    500: "CouchDB or the service failed (datastore_fault, unspecified_fault)",
    503: "CouchDB does not answer (datastore_unreachable)",
}


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "query", "header" or "path"
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


PATH_PARAMETERS: dict[str, Parameter] = {
    "account_id": Parameter(
        "account_id", "path", "The account's id (32 hex)", {"type": "string", "pattern": "^[0-9a-f]{32}$"}
    ),
    "box_id": Parameter("box_id", "path", "The voicemail box's id"),
    "message_id": Parameter(
        "message_id", "path", "The message's id (YYYYMM-<32 hex>, or a legacy media id before migration)"
    ),
    "webhook_id": Parameter("webhook_id", "path", "The webhook's id"),
}

COMMON_QUERY = (
    Parameter("pretty_print", "query", "Indent the JSON answer", {"type": "boolean"}),
    Parameter("jsonp", "query", "Wrap the JSON answer in this JavaScript callback"),
)
TOKEN_QUERY = Parameter("auth_token", "query", "The token, when it cannot be sent as X-Auth-Token")
PAGING_QUERY = (
    Parameter("paginate", "query", "false: every item in one answer", {"type": "boolean"}),
    Parameter("page_size", "query", "Items per page", {"type": "integer", "minimum": 1}),
    Parameter("start_key", "query", "Where a page starts: a previous answer's next_start_key"),
)
FILTER_QUERY = Parameter(
    "filters",
    "query",
    "Crossbar's filters, e.g. filter_name=Sales, has_key=owner_id, key_missing=flags (crossbar_filter)",
    {"type": "object", "additionalProperties": {"type": "string"}},
)
MESSAGE_LISTING_QUERY = (
    Parameter("created_from", "query", "Oldest timestamp listed (Gregorian seconds)", {"type": "integer"}),
    Parameter("created_to", "query", "Newest timestamp listed (Gregorian seconds)", {"type": "integer"}),
    Parameter("ascending", "query", "Oldest first", {"type": "boolean"}),
    Parameter(
        "folder", "query", "Only messages of this folder", {"type": "string", "enum": ["new", "saved", "deleted"]}
    ),
)
FOLDER_QUERY = Parameter(
    "folder", "query", "The folder to put the messages in", {"type": "string", "enum": ["new", "saved", "deleted"]}
)
ACCEPT_QUERY = Parameter("accept", "query", "Overrides the Accept header (api_resource accept_override)")
RANGE_HEADER = Parameter("Range", "header", "One byte range of the recording, e.g. bytes=0-1023")


@dataclass(frozen=True)
class Operation:
    """One method of one path.

    ``data`` names the component schema of the success's ``data`` (``many``: a list of them); ``media`` lists the
    content types of a success that is not JSON (audio, ZIP). ``body`` names the schema of the request envelope's
    ``data``; ``body_media`` lists other accepted request content types.
    """

    summary: str
    tag: str
    data: str | None = None
    many: bool = False
    paged: bool = False
    success: int = 200
    success_description: str = "Success, in Kazoo's envelope"
    media: tuple[str, ...] = ()
    body: str | None = None
    body_required: bool = True
    body_media: tuple[str, ...] = ()
    multipart: bool = False
    query: tuple[Parameter, ...] = ()
    token: bool = True
    json_only: bool = True
    writes: bool = False
    not_found: bool = True
    uses_couch: bool = True
    cached: bool = False
    partial: bool = False
    negotiated: bool = False
    # False: answered outside Kazoo's request pipeline (the service's own routes), with only ``extra_errors``.
    pipeline: bool = True
    extra_errors: tuple[int, ...] = ()
    description: str = ""
    operation_id: str = ""

    def parameters(self) -> tuple[Parameter, ...]:
        token = (TOKEN_QUERY,) if self.token else ()
        return (*self.query, *token, *COMMON_QUERY)

    def successes(self) -> list[int]:
        codes = [self.success]
        if self.partial:
            codes.append(206)
        if self.cached:
            codes.append(304)
        return codes

    def errors(self) -> list[int]:
        if not self.pipeline:
            return sorted(self.extra_errors)
        codes = {400, 413, *self.extra_errors}
        if self.uses_couch:
            codes |= {500, 503}
        if self.token:
            codes |= {401, 403, 404}
        if self.not_found:
            codes.add(404)
        if self.json_only:
            codes.add(415)
        if self.writes:
            codes.add(409)
        if self.negotiated:
            codes.add(406)
        return sorted(codes)


VMBOX = "vmboxes"
WEBHOOKS = "webhooks"
HOOKS = f"{ACCOUNT}/webhooks"
HOOK = f"{HOOKS}/{{webhook_id}}"
MSG = "messages"


def _message_listing(summary: str, data: str = "MessageSummary") -> Operation:
    return Operation(
        summary,
        MSG,
        data=data,
        many=True,
        paged=True,
        cached=True,
        query=(*PAGING_QUERY, *MESSAGE_LISTING_QUERY),
    )


def _service(summary: str, media: str, *errors: int) -> Operation:
    """One of the service's own routes: no token, outside Kazoo's pipeline, answering ``media``."""
    return Operation(
        summary,
        "service",
        media=(media,),
        success_description=summary,
        token=False,
        pipeline=False,
        extra_errors=errors,
    )


OPERATIONS: dict[str, dict[str, Operation]] = {
    HOOKS: {
        "GET": Operation("List the account's webhooks", WEBHOOKS, data="WebhookSummary", many=True, cached=True),
        "PUT": Operation(
            "Create a webhook",
            WEBHOOKS,
            data="Webhook",
            success=201,
            writes=True,
            description="The answer carries the hook's signing secret, shown this once (docs/webhooks.md).",
        ),
    },
    HOOK: {
        "GET": Operation("Fetch a webhook", WEBHOOKS, data="Webhook", cached=True),
        "POST": Operation("Replace a webhook", WEBHOOKS, data="Webhook", writes=True),
        "PATCH": Operation(
            "Change some fields of a webhook", WEBHOOKS, data="Webhook", body="WebhookPatch", writes=True
        ),
        "DELETE": Operation("Delete a webhook", WEBHOOKS, data="Webhook", writes=True),
    },
    "/v2/api_auth": {
        "PUT": Operation(
            "Get a token with an account's api key",
            "auth",
            data="AuthResult",
            success=201,
            description="The token is the envelope's auth_token; send it as X-Auth-Token.",
        ),
    },
    "/v2/user_auth": {
        "PUT": Operation(
            "Get a token with a user's credentials",
            "auth",
            data="AuthResult",
            success=201,
            extra_errors=(401,),
            description="credentials: md5 (or sha1) of 'username:password'; account_name, account_realm or "
            "phone_number says which account.",
        ),
    },
    f"{ACCOUNT}/vmboxes": {
        "GET": Operation(
            "List the account's voicemail boxes",
            VMBOX,
            data="VmboxSummary",
            many=True,
            paged=True,
            cached=True,
            query=(*PAGING_QUERY, FILTER_QUERY),
        ),
        "PUT": Operation("Create a voicemail box", VMBOX, data="Vmbox", success=201, writes=True),
    },
    f"{ACCOUNT}/vmboxes/messages": {
        "GET": _message_listing("List the messages of every box of the account", "MessageOfBox"),
    },
    BOX: {
        "GET": Operation("Fetch a voicemail box", VMBOX, data="Vmbox", cached=True),
        "POST": Operation("Replace a voicemail box", VMBOX, data="Vmbox", writes=True),
        "PATCH": Operation(
            "Change some fields of a voicemail box", VMBOX, data="Vmbox", body="VmboxPatch", writes=True
        ),
        "DELETE": Operation(
            "Delete a voicemail box and its messages",
            VMBOX,
            data="Vmbox",
            writes=True,
            query=(Parameter("should_soft_delete", "query", "false: delete for good", {"type": "boolean"}),),
        ),
    },
    MESSAGES: {
        "GET": _message_listing("List a box's messages"),
        "PUT": Operation(
            "Leave a message (metadata, with or without its audio)",
            MSG,
            data="MessageMetadata",
            success=201,
            body="NewMessageMetadata",
            multipart=True,
            body_media=AUDIO_TYPES,
            writes=True,
        ),
        "POST": Operation(
            "Change the folder of, move or copy several messages",
            MSG,
            data="BulkResult",
            body="MessageSelection",
            writes=True,
            query=(FOLDER_QUERY,),
        ),
        "DELETE": Operation(
            "Delete several (or all) messages of a box",
            MSG,
            data="BulkResult",
            body="MessageSelection",
            body_required=False,
            writes=True,
            query=(FOLDER_QUERY,),
        ),
    },
    f"{MESSAGES}/raw": {
        "POST": Operation(
            "Download several messages' audio as one ZIP",
            MSG,
            media=("application/zip",),
            success_description="A ZIP of the recordings, streamed",
            body="MessageSelection",
            negotiated=True,
            query=(ACCEPT_QUERY,),
        ),
    },
    f"{MESSAGES}/{{message_id}}": {
        "GET": Operation("Fetch a message's metadata", MSG, data="MessageMetadata", cached=True),
        "POST": Operation(
            "Change a message's folder, move it or copy it",
            MSG,
            data="MessageChangeResult",
            body="MessageChange",
            writes=True,
            query=(FOLDER_QUERY,),
        ),
        "DELETE": Operation("Delete a message", MSG, data="MessageMetadata", writes=True),
    },
    f"{MESSAGES}/{{message_id}}/raw": {
        "GET": Operation(
            "Download a message's audio",
            MSG,
            media=AUDIO_TYPES,
            success_description="The recording, streamed",
            partial=True,
            negotiated=True,
            query=(ACCEPT_QUERY, RANGE_HEADER),
        ),
        "PUT": Operation(
            "Replace a message's audio",
            MSG,
            data="MessageMetadata",
            success=201,
            body_media=AUDIO_TYPES,
            multipart=False,
            writes=True,
        ),
    },
    "/v2/openapi.json": {"GET": _service("This description of the API (OpenAPI 3.1)", "application/json")},
    "/v2/docs": {"GET": _service("The interactive API documentation page", "text/html")},
    "/healthz": {"GET": _service("Liveness: the process answers", "application/json")},
    "/readyz": {
        "GET": _service(
            "Readiness: CouchDB reachable, design documents synced, signing key loaded", "application/json", 503
        )
    },
    "/metrics": {"GET": _service("Prometheus metrics", "text/plain")},
}
