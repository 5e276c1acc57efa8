"""Typed storage errors, and the table that turns CouchDB HTTP failures into them.

    StorageError
    ├── StorageUnreachable      CouchDB did not answer (connection refused, timeout)
    ├── StorageFault            any other unexpected CouchDB answer (5xx, odd 4xx)
    ├── BadRequest              400 (illegal names, compilation errors, bad query)
    ├── Unauthorized            401 / 403 (our credentials are wrong or lack rights)
    ├── NotFound                404
    │   ├── DatabaseNotFound    404 "Database does not exist."
    │   └── DocumentNotFound    404 for a document, attachment or view in an existing database
    ├── Conflict                409 (stale or missing revision)
    │   └── KeptChanging        an update retried on every conflict until the limit (storage.updates)
    ├── AlreadyExists           412 (database exists)
    └── RangeNotSatisfiable     416

Nothing outside :mod:`kazoo_vm.storage` sees aiocouch or aiohttp client exceptions.
"""

from __future__ import annotations


class StorageError(Exception):
    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class StorageUnreachable(StorageError):
    pass


class StorageFault(StorageError):
    pass


class BadRequest(StorageError):
    pass


class Unauthorized(StorageError):
    pass


class NotFound(StorageError):
    pass


class DatabaseNotFound(NotFound):
    pass


class DocumentNotFound(NotFound):
    pass


class Conflict(StorageError):
    pass


class KeptChanging(Conflict):
    """A read-modify-write lost the race on every attempt (:mod:`kazoo_vm.storage.updates`); nothing was written,
    and a later try may well succeed."""


class AlreadyExists(StorageError):
    pass


class RangeNotSatisfiable(StorageError):
    pass


# CouchDB's words for a 404 that concerns the database rather than a document in it.
_MISSING_DATABASE_REASONS = frozenset({"Database does not exist.", "no_db_file"})

STATUS_ERRORS: dict[int, type[StorageError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Unauthorized,
    404: DocumentNotFound,
    409: Conflict,
    412: AlreadyExists,
    416: RangeNotSatisfiable,
}


def error_for_status(status: int, reason: str | None, what: str) -> StorageError:
    """The typed error for a failed CouchDB request on ``what`` (a database, document or view path)."""
    if status == 404 and reason in _MISSING_DATABASE_REASONS:
        error_type: type[StorageError] = DatabaseNotFound
    else:
        error_type = STATUS_ERRORS.get(status, StorageFault)
    return error_type(f"CouchDB answered {status} ({reason or 'no reason'}) for {what}", status=status, reason=reason)
