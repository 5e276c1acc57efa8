"""How many CouchDB requests each API request sends (counted by the store where aiohttp starts them): as many as
the work needs and not one more, so a change that adds a round trip fails here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Api, create_box
from message_support import fake_mp3, new_message, put_message, raw
from observability_support import total

from kazoo_vm.config import Settings, load_settings
from kazoo_vm.domain.filters import build_filter
from kazoo_vm.domain.messages.listing import ROW_METADATA_PATHS
from kazoo_vm.observability.metrics import exposition
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming
from kazoo_vm.storage.couch import CouchStore


@pytest.fixture
def settings(couch_url: str, tmp_path: Path) -> Settings:
    # A bound far longer than a test: what is counted does not depend on how busy the machine is. No notification
    # workers: their traffic is not the request's.
    return load_settings(
        {},
        couch_url=couch_url,
        data_dir=tmp_path,
        account_cache_s=600.0,
        missing_db_recheck_s=600.0,
        couch_timeout_s=30.0,
        notify_workers=0,
    )


async def couch_requests(store: CouchStore, call: Callable[[], Awaitable[Any]]) -> tuple[int, Any]:
    before = store.requests_sent
    result = await call()
    return store.requests_sent - before, result


async def warm(api: Api) -> None:
    """One authorised request, so the account is in the authorisation cache as it is for a busy account."""
    status, _ = await api.get("/vmboxes")
    assert status == 200


async def test_get_box_reads_the_box_only(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await warm(api)
    sent, (status, _) = await couch_requests(store, lambda: api.get(f"/vmboxes/{box['id']}"))
    assert status == 200
    assert sent == 1


async def test_get_message_reads_the_message_only(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    message = await new_message(api, box["id"])
    await warm(api)
    path = f"/vmboxes/{box['id']}/messages/{message['media_id']}"
    sent, (status, _) = await couch_requests(store, lambda: api.get(path))
    assert status == 200
    assert sent == 1


async def test_a_folder_change_reads_and_writes_the_message_once(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    message = await new_message(api, box["id"])
    await warm(api)
    path = f"/vmboxes/{box['id']}/messages/{message['media_id']}"
    sent, (status, body) = await couch_requests(store, lambda: api.post(path, {"folder": "saved"}))
    assert status == 200, body
    # the message read, the message written, and the voicemail_saved notification's outbox item
    assert sent == 3


async def test_raw_audio_is_one_request_for_the_message_and_its_audio(api: Api, store: CouchStore) -> None:
    box = await create_box(api, timezone="Europe/Paris")
    audio = fake_mp3(200_000)
    status, body = await put_message(api, box["id"], {}, audio)
    assert status == 201, body
    path = f"/vmboxes/{box['id']}/messages/{body['data']['media_id']}/raw"
    await raw(api, "GET", path)  # the box's time zone is now known, as for a box in use
    sent, (response, received) = await couch_requests(store, lambda: raw(api, "GET", path))
    assert response.status == 200 and received == audio
    assert response.headers["Content-Length"] == str(len(audio))
    assert sent == 1
    sent, (response, received) = await couch_requests(
        store, lambda: raw(api, "GET", path, headers={"Range": "bytes=10-19"})
    )
    assert response.status == 206 and received == audio[10:20]
    assert sent == 2  # the message, then the range of its audio


async def test_a_new_message_with_audio_counts_only_existing_monthly_databases(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await new_message(api, box["id"])
    await warm(api)
    sent, (status, body) = await couch_requests(
        store, lambda: put_message(api, box["id"], {"caller_id_number": "555"}, fake_mp3())
    )
    assert status == 201, body
    # the box, the box's new and saved messages this month (one query), the document, and the voicemail_new
    # notification's outbox item; which monthly databases there are was asked by the listing before, and is known
    # for a while
    assert sent == 4


async def test_box_listing_asks_only_existing_monthly_databases(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    await new_message(api, box["id"])
    await warm(api)
    before = this_months_count_queries()
    sent, (status, body) = await couch_requests(store, lambda: api.get("/vmboxes"))
    assert status == 200, body
    # the listing and this month's counts; which monthly databases there are was asked by the listing before, and
    # is known for a while
    assert sent - 1 in {before, this_months_count_queries()}
    assert sent <= 4  # at most a day, an hour and a second run of buckets, or the whole month less its future


def this_months_count_queries() -> int:
    """The view queries that count this month so far, which depend on the time: the part of the month gone by in
    day, hour and second buckets while it is the shorter part, else the whole month less its future part."""
    now = naming.now_gregorian()
    span = stored_messages.month_span(*naming.year_month(now))
    whole, runs = stored_messages.plan(span[0], now, span)
    return int(whole) + len(runs)


async def test_the_store_count_and_the_couch_requests_metric_count_the_same_requests(
    api: Api, store: CouchStore
) -> None:
    box = await create_box(api)

    def metric() -> float:
        return total(exposition()[0].decode(), "kazoo_vm_couch_requests_total")

    before_metric, before_store = metric(), store.requests_sent
    status, body = await put_message(api, box["id"], {}, fake_mp3())
    assert status == 201, body
    status, _ = await api.get(f"/vmboxes/{box['id']}/messages/{body['data']['media_id']}")
    assert status == 200
    counted = store.requests_sent - before_store
    assert counted >= 5  # the creation's reads and writes, then the message read
    assert metric() - before_metric == counted


def test_folder_and_caller_filters_are_checked_on_listing_rows_without_reading_documents() -> None:
    on_rows = build_filter({"filter_folder": "new", "filter_not_caller_id_number": "5"}, key_prefix="metadata.")
    assert on_rows.reads_only(ROW_METADATA_PATHS)
    beyond_rows = build_filter({"filter_folder": "new", "has_key": "transcription"}, key_prefix="metadata.")
    assert not beyond_rows.reads_only(ROW_METADATA_PATHS)
