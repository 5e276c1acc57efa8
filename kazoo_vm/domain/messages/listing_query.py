"""What a message listing request asks for: time window, order, paging and filters (crossbar_view's rules).

``created_from``/``created_to`` bound the view keys (cb_vmboxes get_max_range, crossbar_view time_range); the
order is newest first unless ``ascending=true`` (crossbar_view direction); the query-string filters apply to the
message's ``metadata`` (cb_vmboxes prefix_qs_filter_keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kazoo_vm.config import Settings
from kazoo_vm.domain.filters import DocFilter, build_filter
from kazoo_vm.domain.inputs import RequestValues
from kazoo_vm.domain.messages import retention
from kazoo_vm.domain.paging import Paging, paging_from
from kazoo_vm.errors import ValidationFailed
from kazoo_vm.storage import naming


@dataclass(frozen=True)
class Window:
    low: int
    high: int


@dataclass(frozen=True)
class ListingQuery:
    window: Window
    descending: bool
    paging: Paging
    doc_filter: DocFilter
    start_key: Any = None  # the start key as the client sent it, echoed in the answer


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _in_range(name: str, value: int) -> int:
    """A bound no message can lie beyond (the Unix epoch .. year 9999, what a MODB name can say) is refused
    rather than turned into a database name."""
    if not naming.EARLIEST_TIMESTAMP <= value <= naming.LATEST_TIMESTAMP:
        raise ValidationFailed.single(
            name,
            "date_range",
            f"{name} must lie between {naming.EARLIEST_TIMESTAMP} and {naming.LATEST_TIMESTAMP}",
            cause=value,
        )
    return value


def time_window(parsed: RequestValues, settings: Settings, now: int) -> Window:
    """``created_from``/``created_to`` with Kazoo's rules (cb_vmboxes get_max_range, crossbar_view time_range).

    ``created_to`` defaults to now. Without ``created_from`` the whole retention period is listed; with it the
    range may span at most ``maximum_range_s``. Non-positive or non-numeric values fall back to the defaults.
    """
    max_range = settings.maximum_range_s
    if parsed.value("created_from") is None:
        max_range = retention.retention_seconds(settings)
    high = _in_range("created_to", _positive_int(parsed.value("created_to")) or now)
    low = _in_range("created_from", _positive_int(parsed.value("created_from")) or high - max_range)
    if high < low:
        raise ValidationFailed.single(
            "created_from", "date_range", f"created_to {high} is prior to created_from {low}", cause=low
        )
    if high - low > max_range:
        raise ValidationFailed.single(
            "created_from",
            "date_range",
            f"created_to {high} is more than {max_range} seconds from created_from {low}",
            cause=high,
        )
    return Window(low, high)


def is_descending(parsed: RequestValues) -> bool:
    """crossbar_view direction: newest first unless ``ascending=true``; ``descending=true`` always wins."""
    query = parsed.query
    if str(query.get("descending", "")).lower() == "true":
        return True
    return str(query.get("ascending", "")).lower() != "true"


def listing_query(parsed: RequestValues, settings: Settings) -> ListingQuery:
    paging = paging_from(parsed, settings.page_size, view_listing=True)
    return ListingQuery(
        window=time_window(parsed, settings, naming.now_gregorian()),
        descending=is_descending(parsed),
        paging=paging,
        # The created_* bounds are the key range here, not document filters.
        doc_filter=build_filter(parsed.query, key_prefix="metadata.", time_filters=False),
        start_key=parsed.value("start_key") if paging.start_key_given else None,
    )
