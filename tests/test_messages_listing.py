"""GET /vmboxes/{B}/messages and GET /vmboxes/messages: order, paging across monthly databases, filters, ranges.

The KCRO-24 scenario is replayed exactly as Kazoo's ticket gives it; the rest follows cb_vmboxes' listings, crossbar's
filters and paging, and crossbar_view's time_range rules.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from helpers import Api, create_box
from message_support import (
    DAY,
    gregorian,
    gregorian_now,
    month_start,
    new_message,
    put_message,
)

from kazoo_vm.domain.legacy import ids as legacy_ids
from kazoo_vm.domain.paging import encode_start_key
from kazoo_vm.storage import naming

CURRENT = ["0-new", "1-saved", "2-new", "3-saved", "4-saved", "5-new", "6-saved", "7-new", "8-saved"]
PREVIOUS = ["10-new", "11-saved", "12-new", "13-saved"]
LISTING_KEYS = {
    "timestamp",
    "from",
    "to",
    "caller_id_number",
    "caller_id_name",
    "call_id",
    "folder",
    "length",
    "media_id",
}


def call_ids(body: Any) -> list[str]:
    return [item["call_id"] for item in body["data"]]


def current_base() -> int:
    """A recent second leaving room for nine messages five seconds apart before now (``created_to`` defaults to
    now, so a later one would not be listed). In the first minute of a month it lies in the previous month,
    which keeps the order and still spans two MODBs."""
    return gregorian_now() - 60


async def kcro_24_box(api: Api) -> str:
    """pqc_cb_vmboxes seq_kcro_24: messages with set folders now and in the previous month (its MODB first)."""
    box = await create_box(api, name="kcro24", mailbox="2424")
    previous = gregorian(month_start(-1) + timedelta(days=2))
    for k, call_id in enumerate(PREVIOUS):
        await kcro_message(api, box["id"], call_id, previous + k * 60)
    base = current_base()
    for k, call_id in enumerate(CURRENT):
        await kcro_message(api, box["id"], call_id, base + k * 5)
    return str(box["id"])


async def kcro_message(api: Api, box_id: str, call_id: str, timestamp: int) -> None:
    folder = call_id.split("-")[1]
    data = {
        "call_id": call_id,
        "timestamp": timestamp,
        "folder": folder,
        "metadata": {
            "call_id": call_id,
            "caller_id_name": "pqc_cb_vmboxes",
            "caller_id_number": "pqc_cb_vmboxes",
            "length": 0,
            "folder": folder,
            "timestamp": timestamp,
        },
    }
    status, body = await put_message(api, box_id, data, b"ID3" + bytes(64), "audio/mp3")
    assert status == 201, body


async def test_kcro_24_filtered_pagination_across_monthly_databases(api: Api) -> None:
    box_id = await kcro_24_box(api)
    path = f"/vmboxes/{box_id}/messages"
    new_ids = ["7-new", "5-new", "2-new", "0-new", "12-new", "10-new"]
    everything = [*reversed(CURRENT), *reversed(PREVIOUS)]

    status, first = await api.get(f"{path}?page_size=5&filter_not_folder=saved")
    assert status == 200 and first["status"] == "success"
    assert first["page_size"] == 5
    assert call_ids(first) == new_ids[:5]
    assert first["next_start_key"]

    status, second = await api.get(f"{path}?page_size=5&filter_not_folder=saved&start_key={first['next_start_key']}")
    assert second["page_size"] == 1
    assert call_ids(second) == ["10-new"]
    assert "next_start_key" not in second

    status, body = await api.get(f"{path}?filter_not_folder=saved")
    assert body["page_size"] == 6 and call_ids(body) == new_ids

    status, body = await api.get(f"{path}?")
    assert body["page_size"] == 13 and call_ids(body) == everything
    assert body["start_key"] and "next_start_key" not in body
    assert set(body["data"][0]) == LISTING_KEYS
    assert body["data"][0]["caller_id_number"] == "anonymous" and body["data"][0]["caller_id_name"] == "anonymous"

    status, body = await api.get(f"{path}?paginate=false")
    assert call_ids(body) == everything
    assert not {"page_size", "start_key", "next_start_key"} & set(body)

    status, body = await api.get(f"{path}?paginate=false&filter_not_folder=saved")
    assert call_ids(body) == new_ids

    status, body = await api.delete(f"/vmboxes/{box_id}")
    assert status == 200 and body["data"]["id"] == box_id and body["data"]["_read_only"]["deleted"] is True
    status, body = await api.get(path)
    assert status == 404 and body["message"] == "bad_identifier"


async def test_pages_without_filters_cover_everything_once_even_with_shared_timestamps(api: Api) -> None:
    box = await create_box(api)
    base = current_base()
    previous = gregorian(month_start(-1) + timedelta(days=5))
    stamps = [previous, previous, previous + 1, base, base, base, base + 1, base + 2]
    for number, stamp in enumerate(stamps):
        await new_message(api, box["id"], timestamp=stamp, call_id=f"m{number}")
    status, whole = await api.get(f"/vmboxes/{box['id']}/messages?paginate=false")
    expected = [item["media_id"] for item in whole["data"]]
    assert len(expected) == 8

    seen: list[str] = []
    query = "page_size=2"
    for _page in range(10):
        status, body = await api.get(f"/vmboxes/{box['id']}/messages?{query}")
        assert status == 200 and body["page_size"] <= 2
        seen += [item["media_id"] for item in body["data"]]
        if "next_start_key" not in body:
            break
        query = f"page_size=2&start_key={body['next_start_key']}"
    assert seen == expected
    timestamps = [item["timestamp"] for item in whole["data"]]
    assert timestamps == sorted(timestamps, reverse=True)


async def test_ascending_lists_oldest_first_across_months(api: Api) -> None:
    box_id = await kcro_24_box(api)
    _, body = await api.get(f"/vmboxes/{box_id}/messages?ascending=true&page_size=6")
    assert call_ids(body) == [*PREVIOUS, *CURRENT[:2]]
    _, rest = await api.get(f"/vmboxes/{box_id}/messages?ascending=true&start_key={body['next_start_key']}")
    assert call_ids(rest) == CURRENT[2:]
    _, body = await api.get(f"/vmboxes/{box_id}/messages?descending=false&page_size=1")
    assert call_ids(body) == ["8-saved"]  # descending=false alone does not flip the order (crossbar_view)
    _status, body = await api.get(f"/vmboxes/{box_id}/messages?ascending=true&descending=true&page_size=1")
    assert call_ids(body) == ["8-saved"]


async def test_created_from_and_to_select_the_range_with_kazoos_limits(api: Api) -> None:
    box_id = await kcro_24_box(api)
    previous = gregorian(month_start(-1) + timedelta(days=2))
    path = f"/vmboxes/{box_id}/messages"
    status, body = await api.get(f"{path}?created_from={previous}&created_to={previous + 120}")
    assert status == 200 and call_ids(body) == ["12-new", "11-saved", "10-new"]

    status, body = await api.get(f"{path}?created_from={previous + 100}&created_to={previous}")
    assert status == 400 and body["message"] == "validation error"
    assert body["data"]["created_from"]["date_range"] == {
        "message": f"created_to {previous} is prior to created_from {previous + 100}",
        "cause": previous + 100,
    }
    too_far = previous + 2_682_000 + 1
    status, body = await api.get(f"{path}?created_from={previous}&created_to={too_far}")
    assert status == 400
    assert body["data"]["created_from"]["date_range"] == {
        "message": f"created_to {too_far} is more than 2682000 seconds from created_from {previous}",
        "cause": too_far,
    }
    # Non-numeric bounds fall back to the defaults; with created_from given the range is 31 days + 1 hour.
    status, body = await api.get(f"{path}?created_to=soon")
    assert status == 200 and len(body["data"]) == 13
    status, body = await api.get(f"{path}?created_from=0")
    since = gregorian_now() - 2_682_000
    older = [call_id for k, call_id in enumerate(PREVIOUS) if previous + k * 60 >= since]
    assert status == 200 and call_ids(body) == [*reversed(CURRENT), *reversed(older)]


async def test_kazoo_style_start_key_is_understood_and_garbage_is_refused(api: Api) -> None:
    box_id = await kcro_24_box(api)
    status, body = await api.get(f"/vmboxes/{box_id}/messages?paginate=false")
    eleven = next(item for item in body["data"] if item["call_id"] == "11-saved")
    key = encode_start_key([box_id, eleven["timestamp"]])
    status, body = await api.get(f"/vmboxes/{box_id}/messages?start_key={key}")
    assert status == 200 and call_ids(body) == ["11-saved", "10-new"]
    assert body["start_key"] == key

    status, body = await api.get(f"/vmboxes/{box_id}/messages?start_key=whatever")
    assert status == 400 and "start_key" in body["data"]


async def test_filters_apply_to_the_metadata(api: Api) -> None:
    box = await create_box(api)
    await new_message(api, box["id"], caller_id_number="1001")
    wanted = await new_message(api, box["id"], caller_id_number="1002")
    _, body = await api.get(f"/vmboxes/{box['id']}/messages?filter_caller_id_number=1002")
    assert [item["media_id"] for item in body["data"]] == [wanted["media_id"]]
    _, body = await api.get(f'/vmboxes/{box["id"]}/messages?filter_caller_id_number=["1001","1002"]')
    assert len(body["data"]) == 2
    _status, body = await api.get(f"/vmboxes/{box['id']}/messages?has_key=transcription")
    assert body["data"] == []


async def test_listing_marks_transcribed_and_hides_expired_unless_asked(api: Api, store: Any) -> None:
    box = await create_box(api)
    fresh = await new_message(api, box["id"])
    old_time = gregorian_now() - 100 * DAY
    old = await new_message(api, box["id"], timestamp=old_time)
    db = naming.message_db(api.account.id, fresh["media_id"])
    doc = await store.get_doc(db, fresh["media_id"])
    doc["transcription"] = {"result": "success", "text": "hi"}
    await store.put_doc(db, doc)

    _, body = await api.get(f"/vmboxes/{box['id']}/messages")
    assert [item["media_id"] for item in body["data"]] == [fresh["media_id"]]
    assert body["data"][0]["transcribed"] is True

    _status, body = await api.get(
        f"/vmboxes/{box['id']}/messages?created_from={old_time - 10}&created_to={old_time + 10}"
    )
    assert [item["media_id"] for item in body["data"]] == [old["media_id"]]
    assert body["data"][0]["folder"] == "deleted" and body["data"][0]["retention"] == "enforced"


async def test_unknown_box_is_404(api: Api) -> None:
    status, body = await api.get(f"/vmboxes/{'b' * 32}/messages")
    assert status == 404 and body["data"]["cause"] == "b" * 32


async def test_account_listing_wraps_items_by_box_newest_first(api: Api) -> None:
    first = await create_box(api, name="a", mailbox="100")
    second = await create_box(api, name="b", mailbox="200")
    base = current_base()
    one = await new_message(api, first["id"], timestamp=base)
    two = await new_message(api, second["id"], timestamp=base + 1)
    old = await new_message(api, second["id"], timestamp=gregorian(month_start(-1) + timedelta(days=1)))
    status, body = await api.get("/vmboxes/messages")
    assert status == 200
    assert by_box(body) == [
        (second["id"], two["media_id"]),
        (first["id"], one["media_id"]),
        (second["id"], old["media_id"]),
    ]
    assert body["data"][0][second["id"]] == {key: two[key] for key in LISTING_KEYS}
    status, body = await api.get("/vmboxes/messages?page_size=1")
    assert by_box(body) == [(second["id"], two["media_id"])] and body["next_start_key"]
    status, body = await api.get(f"/vmboxes/messages?page_size=5&start_key={body['next_start_key']}")
    assert by_box(body) == [(first["id"], one["media_id"]), (second["id"], old["media_id"])]


def by_box(body: Any) -> list[tuple[str, str]]:
    return [(box_id, item["media_id"]) for entry in body["data"] for box_id, item in entry.items()]


async def test_not_yet_migrated_legacy_messages_are_merged_by_time(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    box = await create_box(api)
    base = current_base()
    newer = await new_message(api, box["id"], timestamp=base + 20)
    older = await new_message(api, box["id"], timestamp=base - 20)
    legacy = {"media_id": "c" * 32, "timestamp": base, "folder": "new", "call_id": "legacy", "from": "a@b"}

    async def summaries(*args: Any) -> list[dict[str, Any]]:
        return [dict(legacy), {"media_id": "d" * 32, "timestamp": 12, "folder": "new"}]

    monkeypatch.setattr(legacy_ids, "legacy_summaries", summaries)
    _, body = await api.get(f"/vmboxes/{box['id']}/messages")
    assert [item["media_id"] for item in body["data"]] == [newer["media_id"], "c" * 32, older["media_id"]]
    _, page = await api.get(f"/vmboxes/{box['id']}/messages?page_size=1")
    _, page = await api.get(f"/vmboxes/{box['id']}/messages?page_size=1&start_key={page['next_start_key']}")
    assert [item["media_id"] for item in page["data"]] == ["c" * 32]
    _status, body = await api.get(f"/vmboxes/{box['id']}/messages?filter_call_id=legacy")
    assert [item["media_id"] for item in body["data"]] == ["c" * 32]


async def test_a_start_key_outside_the_requested_range_is_clamped_to_it(api: Api) -> None:
    box_id = await kcro_24_box(api)
    path = f"/vmboxes/{box_id}/messages"
    previous = gregorian(month_start(-1) + timedelta(days=2))
    _, first = await api.get(f"{path}?page_size=2")
    key = first["next_start_key"]  # a row of this month
    status, body = await api.get(f"{path}?start_key={key}&created_from={previous}&created_to={previous + 120}")
    assert status == 200 and call_ids(body) == ["12-new", "11-saved", "10-new"]
    status, body = await api.get(
        f"{path}?start_key={key}&ascending=true&created_from={previous}&created_to={previous + 120}"
    )
    assert status == 200 and body["data"] == []


@pytest.mark.parametrize(
    ("page_size", "reason"),
    [
        ("abc", "invalid page size"),
        ("", "invalid page size"),
        ("0", "page size must be at least 1"),
        ("-4", "page size must be at least 1"),
    ],
)
async def test_a_message_listing_refuses_a_page_size_that_is_not_a_positive_integer(
    api: Api, page_size: str, reason: str
) -> None:
    """crossbar_view:get_page_size_from_request (the box listing, a crossbar_doc one, falls back instead)."""
    box = await create_box(api, name="paged", mailbox="100")
    for path in (f"/vmboxes/{box['id']}/messages", "/vmboxes/messages"):
        status, body = await api.get(f"{path}?page_size={page_size}")
        assert status == 404, (path, body)
        assert body["error"] == "404" and body["message"] == "faulty_request"
        assert body["data"] == {"message": reason}


async def test_a_message_listing_rounds_a_decimal_page_size_and_ignores_it_without_paging(api: Api) -> None:
    box = await create_box(api, name="paged", mailbox="100")
    for _ in range(3):
        await new_message(api, box["id"])
    status, body = await api.get(f"/vmboxes/{box['id']}/messages?page_size=1.6")
    assert status == 200 and len(body["data"]) == 2
    status, body = await api.get(f"/vmboxes/{box['id']}/messages?page_size=abc&paginate=false")
    assert status == 200 and len(body["data"]) == 3
