"""Paging parameters and Kazoo's opaque start keys (crossbar_view:start_key, next_start_key).

Start keys are opaque strings to clients: base64url (no padding) of the JSON view key. A value that does not
decode that way is used as a literal key, as Kazoo does.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from kazoo_vm import jsontext
from kazoo_vm.domain.inputs import RequestValues


def encode_start_key(key: Any) -> str:
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_start_key(value: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return jsontext.loads(raw)
    except (binascii.Error, ValueError):
        # Not base64 of JSON we accept (malformed, too deep, non-finite numbers): a literal key.
        return value


@dataclass(frozen=True)
class Paging:
    paginate: bool
    page_size: int
    start_key: Any = None
    start_key_given: bool = False

    @property
    def limit(self) -> int | None:
        return self.page_size if self.paginate else None


def paging_from(parsed: RequestValues, default_page_size: int) -> Paging:
    """``paginate=false`` lifts the limit; a non-numeric or non-positive ``page_size`` falls back to the
    default (cb_context.erl L419-431, the 4.3 behaviour)."""
    paginate = str(parsed.value("paginate")).lower() != "false"
    page_size = default_page_size
    raw_size = parsed.value("page_size")
    try:
        candidate = int(str(raw_size))
        if candidate > 0:
            page_size = candidate
    except ValueError:
        pass
    raw_start = parsed.value("start_key")
    given = isinstance(raw_start, str) and raw_start != ""
    return Paging(
        paginate=paginate,
        page_size=page_size,
        start_key=decode_start_key(raw_start) if given else None,
        start_key_given=given,
    )
