"""Decoding JSON text from clients strictly: only what CouchDB stores and every JSON parser reads back.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity``, turns ``1e999`` into an infinite float and
integers of any size into ints; CouchDB refuses the first ones (and JavaScript views cannot hold the others), so
a body carrying them would pass validation and fail on the write. Nesting is bounded too: the validator, the
merge of a PATCH and the encoder all walk documents recursively.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

# Containers inside containers, the envelope included: Kazoo's documents never come close.
MAX_DEPTH = 32
# Digits beyond these cannot be a double (1.8e308 has 309 digits).
_MAX_INT_DIGITS = 309


class JsonRejected(ValueError):
    """The text is not JSON we accept; the message never quotes the offending value."""


def _constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRejected("a number is beyond the range of a double")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or abs(value := int(text)) > sys.float_info.max:
        raise JsonRejected("a number is beyond the range of a double")
    return value


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests containers more than ``limit`` levels deep (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` refusing non-finite numbers, numbers beyond a double and nesting beyond ``max_depth``.

    Raises :class:`JsonRejected` for those, ``json.JSONDecodeError`` for malformed text and
    ``UnicodeDecodeError`` for bytes that are not UTF-8."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise JsonRejected(f"JSON nested more than {max_depth} levels deep") from None
    if too_deep(value, max_depth):
        raise JsonRejected(f"JSON nested more than {max_depth} levels deep")
    return value
