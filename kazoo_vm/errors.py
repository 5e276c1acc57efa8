"""The errors kazoo_vm answers with, each carrying the exact Kazoo 4.3 code, message and data.

    KazooError                      (status, message, data) → one Kazoo error envelope
    ├── ValidationFailed            400 "validation error", data = {"<field>": {"<validator>": {...}}}
    ├── InvalidJson                 400 "validation error", data = {"json": {"invalid": {...}}}
    ├── InvalidCredentials          401 "invalid_credentials"
    ├── Forbidden                   403 "forbidden"
    ├── BadIdentifier               404 "bad_identifier", data = {"cause": id, "message": "bad identifier"}
    ├── InvalidAccountId            404 "bad identifier" (account id of the wrong shape)
    ├── UnknownApiKey               404 "bad identifier", data = [api_key]
    ├── RouteNotFound               404 "not_found"
    ├── MethodNotAllowed            405 "invalid_method"
    ├── NotAcceptable               406 "not_acceptable"
    ├── DatastoreConflict           409 "datastore_conflict"
    ├── RequestTimeout              408 "request_timeout" (the body did not arrive in time)
    ├── PayloadTooLarge             413 "payload_too_large"
    ├── UnsupportedMediaType        415 "unsupported_media_type"
    ├── UnspecifiedFault            500 "unspecified_fault"
    └── DatastoreUnreachable        503 "datastore_unreachable"

The error middleware (:mod:`kazoo_vm.http.middleware`) renders every one of them; storage errors are mapped to
these in :mod:`kazoo_vm.http.error_handlers`, so handlers never catch anything from aiocouch.
"""

from __future__ import annotations

from typing import Any

Json = Any


class KazooError(Exception):
    status: int = 500
    message: str = "unspecified_fault"

    def __init__(self, data: Json = None, *, message: str | None = None, status: int | None = None) -> None:
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        self.data: Json = {"message": self.message.replace("_", " ")} if data is None else data
        super().__init__(f"{self.status} {self.message}: {self.data!r}")


class ValidationFailed(KazooError):
    """Kazoo forces every validation error to 400 ``"validation error"`` (kz_json_schema set_default_options)."""

    status = 400
    message = "validation error"

    def __init__(self, errors: dict[str, dict[str, dict[str, Any]]]) -> None:
        super().__init__(errors)

    @classmethod
    def single(cls, field: str, validator: str, message: str, **extra: Any) -> ValidationFailed:
        return cls({field: {validator: {"message": message, **extra}}})


class InvalidJson(ValidationFailed):
    def __init__(self, reason: str) -> None:
        super().__init__({"json": {"invalid": {"message": reason, "target": "body"}}})


class InvalidCredentials(KazooError):
    status = 401
    message = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__({"message": "invalid credentials"})


class Forbidden(KazooError):
    status = 403
    message = "forbidden"

    def __init__(self) -> None:
        super().__init__({"message": "forbidden"})


class BadIdentifier(KazooError):
    status = 404
    message = "bad_identifier"

    def __init__(self, cause: str) -> None:
        super().__init__({"cause": cause, "message": "bad identifier"})
        self.cause = cause


class InvalidAccountId(KazooError):
    status = 404
    message = "bad identifier"

    def __init__(self, account_id: str) -> None:
        super().__init__({"message": f"invalid account_id '{account_id}'"})


class UnknownApiKey(KazooError):
    """Kazoo answers an unknown api key with 404 and the key itself as data (cb_api_auth.erl)."""

    status = 404
    message = "bad identifier"

    def __init__(self, api_key: str) -> None:
        super().__init__([api_key])


class RouteNotFound(KazooError):
    status = 404
    message = "not_found"

    def __init__(self) -> None:
        super().__init__({"message": "not found"})


class MethodNotAllowed(KazooError):
    status = 405
    message = "invalid_method"

    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        super().__init__({"message": "method not allowed"})
        self.allowed = allowed


class NotAcceptable(KazooError):
    """Kazoo (Cowboy) answers 406 with an empty body; we keep the status and use the envelope (see compatibility)."""

    status = 406
    message = "not_acceptable"

    def __init__(self, offered: list[str]) -> None:
        super().__init__({"message": "requested media type is not available", "available": offered})


class DatastoreConflict(KazooError):
    status = 409
    message = "datastore_conflict"

    def __init__(self) -> None:
        super().__init__({"message": "conflicting documents"})


class PayloadTooLarge(KazooError):
    """Kazoo's data for an oversized body, with the honest 413 status (Kazoo sends 400)."""

    status = 413
    message = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            {
                "file": {
                    "maxSize": {
                        "message": f"Payload or Files must not be more than {limit} bytes",
                        "target": limit,
                    }
                }
            }
        )


class RequestTimeout(KazooError):
    """The request body did not arrive within the body read timeout; the connection is closed after the answer."""

    status = 408
    message = "request_timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__({"message": f"the request body was not received within {seconds:g} seconds"})


class UnsupportedMediaType(KazooError):
    status = 415
    message = "unsupported_media_type"

    def __init__(self, content_type: str, accepted: list[str]) -> None:
        super().__init__({"message": f"content type '{content_type}' is not accepted here", "accepted": accepted})


class UnspecifiedFault(KazooError):
    status = 500
    message = "unspecified_fault"

    def __init__(self, cause: str | None = None) -> None:
        data: dict[str, str] = {"message": "unspecified fault"}
        if cause:
            data["cause"] = cause
        super().__init__(data)


class DatastoreUnreachable(KazooError):
    status = 503
    message = "datastore_unreachable"

    def __init__(self) -> None:
        super().__init__({"message": "datastore timeout"})


class NothingFound(KazooError):
    """404 ``not_found`` for a request that names nothing that exists (Kazoo's add_system_error('not_found'))."""

    status = 404
    message = "not_found"

    def __init__(self, cause: str) -> None:
        super().__init__({"message": "not found", "cause": cause})


class FaultyRequest(KazooError):
    """404 ``faulty_request``: crossbar_view refuses a listing's paging parameters (crossbar_view.erl, 4.3)."""

    status = 404
    message = "faulty_request"

    def __init__(self, reason: str) -> None:
        super().__init__({"message": reason})
