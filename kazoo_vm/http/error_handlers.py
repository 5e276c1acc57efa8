"""One registry that turns any exception into the Kazoo error to answer with (starlette-style).

Lookup walks the exception's class hierarchy, so the most specific registered class wins.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from kazoo_vm.errors import (
    DatastoreConflict,
    DatastoreUnreachable,
    KazooError,
    MethodNotAllowed,
    RouteNotFound,
    UnspecifiedFault,
)
from kazoo_vm.storage import errors as storage

Converter = Callable[[BaseException], KazooError]


def _datastore_fault(exc: BaseException) -> KazooError:
    cause = getattr(exc, "reason", None) or "datastore error"
    return KazooError({"cause": str(cause), "message": "unknown failure"}, message="datastore_fault", status=500)


def _not_found(exc: BaseException) -> KazooError:
    return KazooError({"message": "bad identifier"}, message="bad_identifier", status=404)


def _method_not_allowed(exc: BaseException) -> KazooError:
    allowed = tuple(sorted(getattr(exc, "allowed_methods", ()) or ()))
    return MethodNotAllowed(allowed)


ERROR_HANDLERS: dict[type[BaseException], Converter] = {
    web.HTTPNotFound: lambda exc: RouteNotFound(),
    web.HTTPMethodNotAllowed: _method_not_allowed,
    storage.Conflict: lambda exc: DatastoreConflict(),
    storage.StorageUnreachable: lambda exc: DatastoreUnreachable(),
    storage.NotFound: _not_found,
    storage.StorageError: _datastore_fault,
}


def to_kazoo_error(exc: BaseException) -> KazooError | None:
    """The Kazoo error for ``exc``, or None when it is unexpected (a bug: 500 unspecified_fault, logged)."""
    if isinstance(exc, KazooError):
        return exc
    for cls in type(exc).__mro__:
        converter = ERROR_HANDLERS.get(cls)
        if converter is not None:
            return converter(exc)
    return None


__all__ = ["ERROR_HANDLERS", "UnspecifiedFault", "to_kazoo_error"]
