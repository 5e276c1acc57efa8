"""The configurable limits on messages: upload size (413) and the per-box message count (Kazoo's
``max_message_count``: a full box refuses new messages). Settings are small here so the limits are quick to hit."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Api, create_box
from test_messages_helpers import fake_mp3, put_message

from kazoo_vm.config import Settings, load_settings

UPLOAD_LIMIT = 50_000
MAX_MESSAGES = 2


@pytest.fixture
def settings(couch_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        {}, couch_url=couch_url, data_dir=tmp_path, max_upload_bytes=UPLOAD_LIMIT, max_message_count=MAX_MESSAGES
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
