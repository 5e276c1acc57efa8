"""What the domain reads from a request, independent of HTTP: request values and uploaded files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class UploadedFile:
    """One file of a request body: a multipart part that is not JSON, or a raw / base64 body."""

    content_type: str
    data: bytes
    filename: str | None = None


class RequestValues(Protocol):
    """Kazoo's request values: ``value`` looks in the request data, then the query string, then the envelope
    (cb_context:req_value); ``query`` is the query string alone (where crossbar_filter reads filters)."""

    @property
    def query(self) -> Mapping[str, str]: ...

    @property
    def api_version(self) -> int:
        """The API version in the path: 1 for ``/v1/...``, else 2."""
        ...

    def value(self, key: str) -> Any: ...
