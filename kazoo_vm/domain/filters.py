"""Crossbar's generic query-string filters (crossbar_filter.erl).

``filter_<path>=v`` (the value at that dot path, as a string, equals ``v``, or is a member of a JSON array ``v``),
``filter_not_<path>``, ``has_key``, ``key_missing``, ``has_value``, ``value_missing``, and
``created_from``/``created_to``/``modified_from``/``modified_to`` against ``pvt_created``/``pvt_modified``.
Every filter present must match. Message listings point the key filters under ``metadata.``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from kazoo_vm import jsontext

_MISSING = object()

TIME_FILTERS = {
    "created_from": ("pvt_created", 1),
    "created_to": ("pvt_created", -1),
    "modified_from": ("pvt_modified", 1),
    "modified_to": ("pvt_modified", -1),
}


def get_path(doc: Any, path: str) -> Any:
    current = doc
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def as_text(value: Any) -> str:
    """Kazoo compares filter values as binaries: ``true`` → "true", 3000 → "3000"."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _wanted(raw: str) -> list[str]:
    text = raw.strip()
    if text.startswith("["):
        try:
            values = jsontext.loads(text)
        except ValueError:
            return [raw]
        if isinstance(values, list):
            return [as_text(value) for value in values]
    return [raw]


def _is_empty(value: Any) -> bool:
    """kz_term:is_empty: missing, null, false, 0, "", "0", "false", "NULL", "undefined", [] and {} are empty."""
    if value is _MISSING or value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str):
        return value in ("", "0", "false", "NULL", "undefined")
    return value in ([], {})


Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class DocFilter:
    predicates: tuple[Predicate, ...]
    # The dot paths the predicates read (a document holding only these is filtered as the whole one would be).
    paths: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return bool(self.predicates)

    def reads_only(self, paths: Collection[str]) -> bool:
        """Whether every predicate reads a path among ``paths`` (and nothing below them)."""
        return self.paths <= set(paths)

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return all(predicate(doc) for predicate in self.predicates)


def _equals(path: str, wanted: list[str], negate: bool) -> Predicate:
    def check(doc: Mapping[str, Any]) -> bool:
        value = get_path(doc, path)
        hit = value is not _MISSING and as_text(value) in wanted
        return hit != negate

    return check


def _time_bound(field: str, bound: int, direction: int) -> Predicate:
    def check(doc: Mapping[str, Any]) -> bool:
        value = doc.get(field)
        if not isinstance(value, int | float):
            return False
        return value >= bound if direction > 0 else value <= bound

    return check


_KEY_TESTS: dict[str, Callable[[Any], bool]] = {
    "has_key": lambda value: value is not _MISSING,
    "key_missing": lambda value: value is _MISSING,
    "has_value": lambda value: not _is_empty(value),
    "value_missing": _is_empty,
}


def _key_test(path: str, test: Callable[[Any], bool]) -> Predicate:
    def check(doc: Mapping[str, Any]) -> bool:
        return test(get_path(doc, path))

    return check


def build_filter(query: Mapping[str, str], *, key_prefix: str = "", time_filters: bool = True) -> DocFilter:
    predicates: list[Predicate] = []
    paths: set[str] = set()
    for name, raw in query.items():
        if name.startswith("filter_not_"):
            path = key_prefix + name[len("filter_not_") :]
            predicates.append(_equals(path, _wanted(raw), True))
        elif name.startswith("filter_"):
            path = key_prefix + name[len("filter_") :]
            predicates.append(_equals(path, _wanted(raw), False))
        elif name in _KEY_TESTS:
            path = key_prefix + raw
            predicates.append(_key_test(path, _KEY_TESTS[name]))
        elif time_filters and name in TIME_FILTERS:
            try:
                bound = int(raw)
            except ValueError:
                continue  # Kazoo ignores non-numeric bounds
            path, direction = TIME_FILTERS[name]
            predicates.append(_time_bound(path, bound, direction))
        else:
            continue
        paths.add(path)
    return DocFilter(tuple(predicates), frozenset(paths))
