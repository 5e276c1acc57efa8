"""The configurable limits on messages: upload size (413) and the per-box message count (Kazoo's
``max_message_count``: a full box refuses new messages). Settings are small here so the limits are quick to hit."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Api, create_box
from message_support import fake_mp3, gregorian_now, put_message

from kazoo_vm.config import Settings, load_settings

UPLOAD_LIMIT = 50_000
MAX_MESSAGES = 2
RETENTION_DAYS = 5
DAY = 86_400


@pytest.fixture
def settings(couch_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """The limits above; a test can set another ``max_message_count`` with an indirect parameter."""
    return load_settings(
        {},
        couch_url=couch_url,
        data_dir=tmp_path,
        max_upload_bytes=UPLOAD_LIMIT,
        max_message_count=getattr(request, "param", MAX_MESSAGES),
        retention_days=RETENTION_DAYS,
    )


async def test_upload_over_the_size_limit_is_413_with_kazoos_data(api: Api) -> None:
    box = await create_box(api)
    status, body = await put_message(api, box["id"], {}, fake_mp3(UPLOAD_LIMIT + 10))
    assert status == 413
    assert body["data"]["file"]["maxSize"]["target"] == UPLOAD_LIMIT
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert listing["data"] == []


async def test_full_box_refuses_new_messages_until_one_is_deleted(api: Api) -> None:
    box = await create_box(api)
    other = await create_box(api, name="other", mailbox="3001")
    ids = []
    for _ in range(MAX_MESSAGES):
        status, body = await put_message(api, box["id"], {}, fake_mp3())
        assert status == 201
        ids.append(body["data"]["media_id"])
    status, body = await put_message(api, box["id"], {}, fake_mp3())
    assert status == 400
    assert body["message"] == "validation error"
    assert body["data"]["messages"]["maxItems"] == {
        "message": "The voicemail box is full",
        "target": MAX_MESSAGES,
        "cause": MAX_MESSAGES,
    }
    # Another box is not affected; a message in the trash still counts, a deleted one does not.
    status, _ = await put_message(api, other["id"], {}, fake_mp3())
    assert status == 201
    status, _ = await api.post(f"/vmboxes/{box['id']}/messages/{ids[0]}", {"folder": "deleted"})
    assert status == 200
    status, _ = await put_message(api, box["id"], {}, fake_mp3())
    assert status == 201
    # new + saved is 2 again (the created one and ids[1]); deleting one makes room.
    status, _ = await put_message(api, box["id"], {}, fake_mp3())
    assert status == 400
    status, _ = await api.delete(f"/vmboxes/{box['id']}/messages/{ids[1]}")
    assert status == 200
    status, _ = await put_message(api, box["id"], {}, fake_mp3())
    assert status == 201


@pytest.mark.parametrize("settings", [0], indirect=True)
async def test_a_message_count_limit_of_zero_means_no_limit(api: Api) -> None:
    box = await create_box(api)
    for _ in range(MAX_MESSAGES + 2):
        status, body = await put_message(api, box["id"], {}, fake_mp3())
        assert status == 201, body
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert len(listing["data"]) == MAX_MESSAGES + 2


async def test_retention_is_configurable_and_hides_refuses_and_stops_counting(api: Api) -> None:
    box = await create_box(api)
    dest = await create_box(api, name="dest", mailbox="3001")
    # Retention is 5 days + 1 hour: a 5-day-old message is still in, a 6-day-old one is out.
    inside = (await put_message(api, box["id"], {"timestamp": gregorian_now() - 5 * DAY}, fake_mp3()))[1]["data"]
    outside = (await put_message(api, box["id"], {"timestamp": gregorian_now() - 6 * DAY}, fake_mp3()))[1]["data"]
    status, listing = await api.get(f"/vmboxes/{box['id']}/messages")
    assert [item["media_id"] for item in listing["data"]] == [inside["media_id"]]
    status, boxes = await api.get("/vmboxes")
    counted = {item["id"]: item for item in boxes["data"]}[box["id"]]
    assert counted["messages"] == 1 and counted["folders"] == {"new": 1, "saved": 0}
    status, body = await api.post(f"/vmboxes/{box['id']}/messages/{outside['media_id']}", {"source_id": dest["id"]})
    assert status == 400 and "date_range" in body["data"][outside["media_id"]]
    status, body = await api.post(
        f"/vmboxes/{box['id']}/messages",
        {"messages": [outside["media_id"], inside["media_id"]], "source_id": [dest["id"]]},
    )
    assert body["data"]["failed"] == {outside["media_id"]: "prior_to_retention_duration"}
    assert len(body["data"]["succeeded"]) == 1
    status, body = await api.get(f"/vmboxes/{box['id']}/messages/{outside['media_id']}")
    assert body["data"]["retention"] == "enforced"
