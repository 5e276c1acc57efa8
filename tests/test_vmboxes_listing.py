"""GET ``/v2/accounts/{A}/vmboxes``: item shape, order, paging with opaque start keys, and the generic filters.

Expected behaviour: Kazoo 4.3's ``crossbar_listing`` view and ``crossbar_doc:load_view`` paging
(crossbar_view, crossbar_filter; filtered-out rows not using up the page).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

from helpers import Api, create_box, raw_box_doc

from kazoo_vm.model import BoxDoc, Document
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.naming import account_db

GREGORIAN_OFFSET = 62_167_219_200
DEFAULT_PAGE_SIZE = 50  # crossbar.pagination_page_size
PAGING_KEYS = ("page_size", "start_key", "next_start_key")


def box_id(n: int) -> str:
    """A 32-hex id whose sort order is ``n``'s order."""
    return f"{n:032x}"


def raw_box(api: Api, n: int, **fields: Any) -> BoxDoc:
    return raw_box_doc(api.account.id, _id=box_id(n), name=f"Raw {n}", mailbox=str(9000 + n), **fields)


async def insert_raw_boxes(store: CouchStore, api: Api, docs: list[Document]) -> None:
    results = await store.bulk_docs(account_db(api.account.id), docs)
    assert all("error" not in result for result in results), results


async def create_numbered_boxes(api: Api, numbers: list[int], **fields: Any) -> list[dict[str, Any]]:
    """Boxes with ids ``box_id(n)``, created through the API in the given order."""
    boxes = []
    for n in numbers:
        boxes.append(await create_box(api, name=f"Box {n}", mailbox=str(3000 + n), id=box_id(n), **fields))
    return boxes


async def list_boxes(api: Api, **params: str) -> dict[str, Any]:
    status, body = await api.get("/vmboxes", params=params)
    assert status == 200, body
    assert body["status"] == "success"
    result: dict[str, Any] = body
    return result


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["data"]]


async def walk_pages(api: Api, page_size: int, **params: str) -> list[dict[str, Any]]:
    """Every page from the first until one comes without ``next_start_key``."""
    pages = []
    start_key: str | None = None
    for _ in range(100):
        query = {"page_size": str(page_size), **params}
        if start_key is not None:
            query["start_key"] = start_key
        page = await list_boxes(api, **query)
        pages.append(page)
        start_key = page.get("next_start_key")
        if start_key is None:
            return pages
    raise AssertionError("paging never ended")


# -- shape and order -------------------------------------------------------------------------------------------


async def test_listing_items_carry_the_crossbar_listing_fields(api: Api) -> None:
    owned = await create_box(
        api,
        name="Owned",
        mailbox="3000",
        owner_id="c" * 32,
        flags=["vip", "front"],
        pin="1234",
        timezone="Europe/Paris",
    )
    plain = await create_box(api, name="Plain", mailbox="3001")

    body = await list_boxes(api)

    items = {item["id"]: item for item in body["data"]}
    assert items[owned["id"]] == {
        "id": owned["id"],
        "name": "Owned",
        "mailbox": "3000",
        "owner_id": "c" * 32,
        "messages": 0,
        "flags": ["vip", "front"],
    }
    assert items[plain["id"]] == {"id": plain["id"], "name": "Plain", "mailbox": "3001", "messages": 0, "flags": []}


async def test_empty_account_lists_no_boxes(api: Api) -> None:
    body = await list_boxes(api)

    assert body["data"] == []
    assert body["page_size"] == 0
    assert "next_start_key" not in body


async def test_listing_is_in_ascending_box_id_order_not_creation_order(api: Api) -> None:
    numbers = [7, 2, 9, 0, 5, 3]
    await create_numbered_boxes(api, numbers)

    body = await list_boxes(api)

    assert ids(body) == [box_id(n) for n in sorted(numbers)]


async def test_listing_ignores_ascending_and_descending(api: Api) -> None:
    await create_numbered_boxes(api, [4, 1, 3])

    for params in ({"descending": "true"}, {"ascending": "false"}, {"ascending": "true"}):
        body = await list_boxes(api, **params)
        assert ids(body) == [box_id(1), box_id(3), box_id(4)], params


async def test_listing_leaves_out_other_document_types_and_deleted_boxes(api: Api, store: CouchStore) -> None:
    live = await create_box(api, name="Live", mailbox="3000")
    await insert_raw_boxes(
        store,
        api,
        [
            raw_box(api, 1, pvt_deleted=True),
            {**raw_box(api, 2), "pvt_type": "user", "username": "someone"},
            {"_id": box_id(3), "name": "no type at all", "mailbox": "3003"},
        ],
    )

    body = await list_boxes(api)

    assert ids(body) == [live["id"]]


async def test_listing_counts_a_legacy_messages_array(api: Api, store: CouchStore) -> None:
    legacy_messages = [{"media_id": uuid.uuid4().hex, "folder": "new"} for _ in range(3)]
    await insert_raw_boxes(store, api, [raw_box(api, 1, messages=legacy_messages)])

    body = await list_boxes(api)

    assert len(body["data"]) == 1
    assert body["data"][0]["messages"] == 3
    assert body["data"][0]["id"] == box_id(1)


async def test_listing_reflects_updates_and_renumbering(api: Api) -> None:
    box = await create_box(api, name="Before", mailbox="3000")
    status, _ = await api.post(f"/vmboxes/{box['id']}", {"name": "After", "mailbox": "3100", "flags": ["x"]})
    assert status == 200

    body = await list_boxes(api)

    assert body["data"] == [{"id": box["id"], "name": "After", "mailbox": "3100", "messages": 0, "flags": ["x"]}]


async def test_listing_never_shows_private_fields(api: Api, store: CouchStore) -> None:
    await create_box(api)
    await insert_raw_boxes(store, api, [raw_box(api, 1, pvt_secret="x")])

    body = await list_boxes(api)

    assert len(body["data"]) == 2
    for item in body["data"]:
        assert not [key for key in item if key.startswith(("_", "pvt_"))]


# -- paging -------------------------------------------------------------------------------------------------------


async def test_page_size_limits_the_page_and_offers_an_opaque_next_start_key(api: Api) -> None:
    await create_numbered_boxes(api, list(range(5)))

    body = await list_boxes(api, page_size="2")

    assert ids(body) == [box_id(0), box_id(1)]
    assert body["page_size"] == 2
    assert isinstance(body["next_start_key"], str) and body["next_start_key"]
    assert "start_key" not in body  # only echoed when the client sent one


async def test_next_start_key_leads_to_the_next_page(api: Api) -> None:
    await create_numbered_boxes(api, list(range(5)))
    first = await list_boxes(api, page_size="2")

    second = await list_boxes(api, page_size="2", start_key=first["next_start_key"])

    assert ids(second) == [box_id(2), box_id(3)]
    assert second["start_key"] == first["next_start_key"]
    assert second["page_size"] == 2
    assert second["next_start_key"] != first["next_start_key"]


async def test_walking_all_pages_has_no_duplicates_and_no_gaps(api: Api) -> None:
    numbers = list(range(7))
    random.Random(7).shuffle(numbers)
    await create_numbered_boxes(api, numbers)

    pages = await walk_pages(api, 3)

    assert [len(page["data"]) for page in pages] == [3, 3, 1]
    assert [page["page_size"] for page in pages] == [3, 3, 1]
    seen = [item_id for page in pages for item_id in ids(page)]
    assert seen == [box_id(n) for n in range(7)]
    assert "next_start_key" not in pages[-1]


async def test_page_exactly_holding_the_rest_has_no_next_start_key(api: Api) -> None:
    await create_numbered_boxes(api, list(range(4)))

    pages = await walk_pages(api, 2)

    assert [ids(page) for page in pages] == [[box_id(0), box_id(1)], [box_id(2), box_id(3)]]


async def test_paginate_false_returns_every_box_without_paging_keys(api: Api, store: CouchStore) -> None:
    count = DEFAULT_PAGE_SIZE + 5
    await insert_raw_boxes(store, api, [raw_box(api, n) for n in range(count)])

    body = await list_boxes(api, paginate="false", page_size="10")

    assert ids(body) == [box_id(n) for n in range(count)]
    for key in PAGING_KEYS:
        assert key not in body


async def test_default_page_size_is_fifty(api: Api, store: CouchStore) -> None:
    await insert_raw_boxes(store, api, [raw_box(api, n) for n in range(DEFAULT_PAGE_SIZE + 3)])

    body = await list_boxes(api)

    assert ids(body) == [box_id(n) for n in range(DEFAULT_PAGE_SIZE)]
    assert body["page_size"] == DEFAULT_PAGE_SIZE
    rest = await list_boxes(api, start_key=body["next_start_key"])
    assert ids(rest) == [box_id(n) for n in range(DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE + 3)]


async def test_invalid_page_size_falls_back_to_the_default(api: Api, store: CouchStore) -> None:
    await insert_raw_boxes(store, api, [raw_box(api, n) for n in range(DEFAULT_PAGE_SIZE + 3)])

    for page_size in ("abc", "0", "-4", "2.5"):
        body = await list_boxes(api, page_size=page_size)
        assert len(body["data"]) == DEFAULT_PAGE_SIZE, page_size
        assert body["page_size"] == DEFAULT_PAGE_SIZE, page_size
        assert "next_start_key" in body, page_size


async def test_page_size_can_come_from_the_request_envelope_data(api: Api) -> None:
    await create_numbered_boxes(api, list(range(3)))

    status, body = await api.request(
        "GET",
        "/vmboxes",
        body=json.dumps({"data": {"page_size": 1}}),
        headers={"Content-Type": "application/json"},
    )

    assert status == 200, body
    assert ids(body) == [box_id(0)]
    assert "next_start_key" in body


# -- filters ---------------------------------------------------------------------------------------------------------


async def make_filter_fixture(api: Api) -> dict[str, dict[str, Any]]:
    owner = "d" * 32
    boxes = {
        "front": await create_box(
            api,
            id=box_id(1),
            name="Front Desk",
            mailbox="3001",
            owner_id=owner,
            timezone="America/New_York",
            require_pin=True,
            custom="x",
            sip={"username": "alice"},
        ),
        "back": await create_box(
            api,
            id=box_id(2),
            name="Back Office",
            mailbox="3002",
            timezone="Europe/London",
            custom="",
            sip={"username": "bob"},
        ),
        "lab": await create_box(
            api,
            id=box_id(3),
            name="Lab",
            mailbox="3003",
            owner_id=owner,
            require_pin=True,
        ),
        "store": await create_box(api, id=box_id(4), name="Store Room", mailbox="3004", timezone="America/New_York"),
    }
    return boxes


async def test_filter_by_name_matches_the_exact_value(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    body = await list_boxes(api, filter_name="Front Desk")

    assert ids(body) == [boxes["front"]["id"]]


async def test_filter_not_excludes_the_value(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    body = await list_boxes(api, filter_not_mailbox="3002")

    assert ids(body) == [boxes["front"]["id"], boxes["lab"]["id"], boxes["store"]["id"]]


async def test_filter_by_owner_id(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    body = await list_boxes(api, filter_owner_id="d" * 32)

    assert ids(body) == [boxes["front"]["id"], boxes["lab"]["id"]]


async def test_filters_apply_to_the_full_document_not_the_listing_value(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    by_timezone = await list_boxes(api, filter_timezone="America/New_York")
    by_nested = await list_boxes(api, **{"filter_sip.username": "bob"})
    by_private = await list_boxes(api, filter_pvt_type="vmbox")

    assert ids(by_timezone) == [boxes["front"]["id"], boxes["store"]["id"]]
    assert ids(by_nested) == [boxes["back"]["id"]]
    assert len(by_private["data"]) == 4
    for item in by_timezone["data"]:
        assert "timezone" not in item  # items keep the listing shape


async def test_filter_compares_booleans_as_text(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    body = await list_boxes(api, filter_require_pin="true")

    assert ids(body) == [boxes["front"]["id"], boxes["lab"]["id"]]


async def test_filter_with_a_json_array_matches_any_member(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    matching = await list_boxes(api, filter_mailbox='["3001","3003"]')
    not_matching = await list_boxes(api, filter_not_mailbox='["3001","3003"]')

    assert ids(matching) == [boxes["front"]["id"], boxes["lab"]["id"]]
    assert ids(not_matching) == [boxes["back"]["id"], boxes["store"]["id"]]


async def test_has_key_and_key_missing(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    has_timezone = await list_boxes(api, has_key="timezone")
    no_owner = await list_boxes(api, key_missing="owner_id")
    has_nested = await list_boxes(api, has_key="sip.username")

    assert ids(has_timezone) == [boxes["front"]["id"], boxes["back"]["id"], boxes["store"]["id"]]
    assert ids(no_owner) == [boxes["back"]["id"], boxes["store"]["id"]]
    assert ids(has_nested) == [boxes["front"]["id"], boxes["back"]["id"]]


async def test_has_value_and_value_missing_treat_empty_strings_as_missing(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    has_value = await list_boxes(api, has_value="custom")
    value_missing = await list_boxes(api, value_missing="custom")
    has_key = await list_boxes(api, has_key="custom")

    assert ids(has_value) == [boxes["front"]["id"]]
    assert ids(value_missing) == [boxes["back"]["id"], boxes["lab"]["id"], boxes["store"]["id"]]
    assert ids(has_key) == [boxes["front"]["id"], boxes["back"]["id"]]


async def test_has_value_treats_false_and_zero_as_empty_as_kazoo_does(api: Api) -> None:
    # crossbar_filter has_value uses kz_json:get_ne_value, i.e. kz_term:is_empty: false, 0, "0", "false", "", [], {}
    # and null all count as "no value".
    with_value = await create_box(api, id=box_id(1), name="A", mailbox="3001", require_pin=True, score=5)
    await create_box(api, id=box_id(2), name="B", mailbox="3002", score=0)
    await create_box(api, id=box_id(3), name="C", mailbox="3003", score="0")

    by_boolean = await list_boxes(api, has_value="require_pin")
    by_number = await list_boxes(api, has_value="score")

    assert ids(by_boolean) == [with_value["id"]]
    assert ids(by_number) == [with_value["id"]]


async def test_every_filter_must_match(api: Api) -> None:
    boxes = await make_filter_fixture(api)

    both = await list_boxes(api, filter_require_pin="true", key_missing="timezone")
    contradicting = await list_boxes(api, filter_name="Lab", filter_not_mailbox="3003")
    three = await list_boxes(api, filter_timezone="America/New_York", has_key="owner_id", filter_require_pin="true")

    assert ids(both) == [boxes["lab"]["id"]]
    assert ids(contradicting) == []
    assert ids(three) == [boxes["front"]["id"]]


async def test_filter_matching_nothing_gives_an_empty_page(api: Api) -> None:
    await make_filter_fixture(api)

    body = await list_boxes(api, filter_name="Nobody")

    assert body["data"] == []
    assert body["page_size"] == 0
    assert "next_start_key" not in body


async def test_created_from_and_created_to_bound_pvt_created_inclusively(api: Api, store: CouchStore) -> None:
    base = 63_850_000_000
    await insert_raw_boxes(
        store, api, [raw_box(api, n, pvt_created=base + 100 * n, pvt_modified=base + 100 * n) for n in range(4)]
    )

    from_ = await list_boxes(api, created_from=str(base + 100))
    to = await list_boxes(api, created_to=str(base + 200))
    between = await list_boxes(api, created_from=str(base + 100), created_to=str(base + 200))
    future = await list_boxes(api, created_from=str(base + 1_000_000))

    assert ids(from_) == [box_id(1), box_id(2), box_id(3)]
    assert ids(to) == [box_id(0), box_id(1), box_id(2)]
    assert ids(between) == [box_id(1), box_id(2)]
    assert ids(future) == []


async def test_modified_from_and_modified_to_bound_pvt_modified(api: Api, store: CouchStore) -> None:
    base = 63_850_000_000
    await insert_raw_boxes(
        store, api, [raw_box(api, n, pvt_created=base, pvt_modified=base + 100 * n) for n in range(4)]
    )

    body = await list_boxes(api, modified_from=str(base + 50), modified_to=str(base + 250))

    assert ids(body) == [box_id(1), box_id(2)]


async def test_created_range_around_now_finds_boxes_made_through_the_api(api: Api) -> None:
    before = int(time.time()) + GREGORIAN_OFFSET
    box = await create_box(api)
    after = int(time.time()) + GREGORIAN_OFFSET

    inside = await list_boxes(api, created_from=str(before), created_to=str(after))
    earlier = await list_boxes(api, created_to=str(before - 3600))

    assert ids(inside) == [box["id"]]
    assert ids(earlier) == []


# -- filters with paging --------------------------------------------------------------------------------------------


async def test_filtered_out_rows_do_not_use_up_the_page(api: Api, store: CouchStore) -> None:
    # 12 boxes; every third one (2, 5, 8, 11) is tagged; pages of 2 must each be full.
    await insert_raw_boxes(store, api, [raw_box(api, n, tag="hit" if n % 3 == 2 else "miss") for n in range(12)])

    first = await list_boxes(api, page_size="2", filter_tag="hit")
    second = await list_boxes(api, page_size="2", filter_tag="hit", start_key=first["next_start_key"])

    assert ids(first) == [box_id(2), box_id(5)]
    assert first["page_size"] == 2
    assert ids(second) == [box_id(8), box_id(11)]
    assert second["page_size"] == 2
    assert "next_start_key" not in second


async def test_walking_filtered_pages_returns_every_match_once(api: Api, store: CouchStore) -> None:
    # Matches at 0, 3, 6, 9 and non-matching rows after the last match.
    await insert_raw_boxes(store, api, [raw_box(api, n, tag="hit" if n % 3 == 0 else "miss") for n in range(12)])

    pages = await walk_pages(api, 2, filter_tag="hit")

    assert all(len(page["data"]) == 2 for page in pages[:-1])
    assert len(pages[-1]["data"]) <= 2
    assert all(page["page_size"] == len(page["data"]) for page in pages)
    seen = [item_id for page in pages for item_id in ids(page)]
    assert seen == [box_id(0), box_id(3), box_id(6), box_id(9)]


async def test_filtered_paging_across_many_rows_with_few_matches(api: Api, store: CouchStore) -> None:
    # Matches are sparse (one in ten) so each page has to read well past page_size rows.
    await insert_raw_boxes(store, api, [raw_box(api, n, tag="hit" if n % 10 == 4 else "miss") for n in range(60)])

    pages = await walk_pages(api, 2, filter_tag="hit")

    seen = [item_id for page in pages for item_id in ids(page)]
    assert seen == [box_id(n) for n in range(4, 60, 10)]
    assert [len(page["data"]) for page in pages[:3]] == [2, 2, 2]


async def test_paginate_false_with_a_filter_returns_every_match(api: Api, store: CouchStore) -> None:
    await insert_raw_boxes(
        store, api, [raw_box(api, n, tag="hit" if n % 2 else "miss") for n in range(DEFAULT_PAGE_SIZE + 10)]
    )

    body = await list_boxes(api, paginate="false", filter_tag="hit")

    assert ids(body) == [box_id(n) for n in range(1, DEFAULT_PAGE_SIZE + 10, 2)]
    for key in PAGING_KEYS:
        assert key not in body


async def test_concurrent_listings_see_the_same_pages(api: Api) -> None:
    await create_numbered_boxes(api, list(range(5)))

    first, second = await asyncio.gather(list_boxes(api, page_size="3"), list_boxes(api, page_size="3"))

    assert ids(first) == ids(second) == [box_id(0), box_id(1), box_id(2)]
    assert first["next_start_key"] == second["next_start_key"]


async def test_a_page_size_beyond_any_listing_pages_by_the_largest_page(api: Api) -> None:
    await create_box(api, name="Only", mailbox="4400")
    status, body = await api.get("/vmboxes?page_size=61279061051536162078582636544&paginate=true")
    assert status == 200, body
    assert [item["name"] for item in body["data"]] == ["Only"]
    assert body["page_size"] == 1
