"""Paging parameters and Kazoo's opaque start keys (crossbar_view:start_key, next_start_key).

Start keys are opaque strings to clients: base64url (no padding) of the JSON view key. A value that does not
decode that way is used as a literal key, as Kazoo does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from kazoo_vm import jsontext
from kazoo_vm.domain.inputs import RequestValues
from kazoo_vm.errors import FaultyRequest

_INTEGER = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?\d+\.\d+(?:[eE][+-]?\d+)?$")


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


# A page never asks CouchDB for more rows than this (a larger page_size pages by this many): the work of one
# request stays bounded, and CouchDB refuses a `limit` beyond its integer range.
MAX_PAGE_SIZE = 10_000


def _view_page_size(raw: Any) -> int:
    """crossbar_view's reading of ``page_size``: ``kz_term:to_integer`` (an integer, or a decimal rounded), else
    404 ``faulty_request`` "invalid page size"; below 1, "page size must be at least 1"."""
    if isinstance(raw, bool):
        raise FaultyRequest("invalid page size")
    if isinstance(raw, int):
        size = raw
    elif isinstance(raw, float):
        size = round(raw)
    elif isinstance(raw, str) and _INTEGER.match(raw):
        size = int(raw)
    elif isinstance(raw, str) and _DECIMAL.match(raw):
        size = round(float(raw))
    else:
        raise FaultyRequest("invalid page size")
    if size < 1:
        raise FaultyRequest("page size must be at least 1")
    return size


def paging_from(parsed: RequestValues, default_page_size: int, *, view_listing: bool = False) -> Paging:
    """``paginate=false`` and ``/v1/`` paths lift the limit. A ``page_size`` that is not a positive integer
    falls back to the default in a crossbar_doc listing (the box listing; cb_context.erl L419-431) and is refused
    in a crossbar_view listing (``view_listing``: the message listings; crossbar_view:get_page_size_from_request)."""
    # API version 1 never paginates (cb_context:should_paginate/1).
    paginate = str(parsed.value("paginate")).lower() != "false" and parsed.api_version != 1
    page_size = default_page_size
    raw_size = parsed.value("page_size")
    if view_listing and paginate and raw_size is not None:
        page_size = _view_page_size(raw_size)
    elif raw_size is not None:
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
        page_size=min(page_size, MAX_PAGE_SIZE),
        start_key=decode_start_key(raw_start) if given else None,
        start_key_given=given,
    )
