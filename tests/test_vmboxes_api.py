"""The voicemail-box API through real HTTP: PUT, GET, POST, PATCH and DELETE of ``/vmboxes`` and ``/vmboxes/{B}``.

What is expected comes from Kazoo 4.3 (cb_vmboxes.erl, kz_json_schema, docs/compatibility.md). Every test
gets a fresh account; stored documents are read back straight from CouchDB with the ``store`` fixture.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import ClientResponse
from helpers import Api, create_box, make_account, raw_box_doc

from kazoo_vm.model import BoxDoc
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.naming import account_db

GREGORIAN_OFFSET = 62_167_219_200  # seconds from 0000-01-01 to 1970-01-01
UNIQUE_MESSAGE = "Invalid mailbox number or already exists"
MIGRATE_MESSAGE = "Please migrate your voicemail box messages to MODB"
EMAIL_WARNING = "214 Transformation applied: attribute notify_email_address replaced"

# Every defaulted key of Kazoo's vmboxes.json, with its default (schemas/vmboxes.json).
SCHEMA_DEFAULTS: dict[str, Any] = {
    "announcement_only": False,
    "check_if_owner": True,
    "delete_after_notify": False,
    "include_message_on_notify": True,
    "include_transcription_on_notify": True,
    "is_setup": False,
    "is_voicemail_ff_rw_enabled": False,
    "media": {},
    "media_extension": "mp3",
    "not_configurable": False,
    "notify_email_addresses": [],
    "oldest_message_first": False,
    "require_pin": False,
    "save_after_notify": False,
    "seek_duration_ms": 10000,
    "skip_envelope": False,
    "skip_greeting": False,
    "skip_instructions": False,
    "transcribe": False,
}

_NO_DATA = object()


def gregorian_now() -> int:
    return int(time.time()) + GREGORIAN_OFFSET


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if not key.startswith(("_", "pvt_"))}


def private_keys_in(data: dict[str, Any]) -> list[str]:
    return [key for key in data if key.startswith("pvt_") or (key.startswith("_") and key != "_read_only")]


async def call(
    api: Api,
    method: str,
    path: str,
    data: Any = _NO_DATA,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[ClientResponse, Any]:
    """Like ``api.request`` but also hands back the response (for headers)."""
    if data is not _NO_DATA:
        kwargs["json"] = {"data": data}
    response = await api.client.request(
        method, api.url(path), headers={**api.account.headers, **(headers or {})}, **kwargs
    )
    body = None if response.status == 304 else await response.json(content_type=None)
    return response, body


async def stored(store: CouchStore, api: Api, box_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = await store.get_doc(account_db(api.account.id), box_id)
    return doc


async def put_raw_box(store: CouchStore, api: Api, **fields: Any) -> BoxDoc:
    """A box document written straight into CouchDB, the way Kazoo itself (or an old Kazoo) stored it."""
    doc = raw_box_doc(api.account.id, **fields)
    await store.put_doc(account_db(api.account.id), doc)
    return doc


def legacy_messages() -> list[dict[str, Any]]:
    return [
        {
            "media_id": uuid.uuid4().hex,
            "folder": "new",
            "timestamp": 63_700_000_000,
            "caller_id_number": "2101",
            "caller_id_name": "Front Door",
            "length": 4200,
        },
        {
            "media_id": uuid.uuid4().hex,
            "folder": "saved",
            "timestamp": 63_700_000_500,
            "caller_id_number": "2102",
            "caller_id_name": "Back Door",
            "length": 1800,
        },
    ]


def assert_validation_error(status: int, body: dict[str, Any]) -> dict[str, Any]:
    assert status == 400, body
    assert body["status"] == "error"
    assert body["error"] == "400"
    assert body["message"] == "validation error"
    errors: dict[str, Any] = body["data"]
    return errors


def assert_bad_identifier(status: int, body: dict[str, Any], box_id: str) -> None:
    assert status == 404, body
    assert body["error"] == "404"
    assert body["message"] == "bad_identifier"
    assert body["status"] == "error"
    assert body["data"] == {"cause": box_id, "message": "bad identifier"}


# -- create -----------------------------------------------------------------------------------------------


async def test_create_answers_201_with_location_of_the_new_box(api: Api) -> None:
    response, body = await call(api, "PUT", "/vmboxes", {"name": "VMBox 0", "mailbox": "3000"})

    assert response.status == 201, body
    assert body["status"] == "success"
    box_id = body["data"]["id"]
    assert isinstance(box_id, str) and len(box_id) == 32 and int(box_id, 16) >= 0
    assert response.headers["Location"] == f"/v2/accounts/{api.account.id}/vmboxes/{box_id}"


async def test_create_response_is_the_request_plus_every_schema_default_and_id(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "VMBox 0", "mailbox": "3000"})

    assert status == 201, body
    data = body["data"]
    assert data == {**SCHEMA_DEFAULTS, "name": "VMBox 0", "mailbox": "3000", "id": data["id"]}


async def test_create_stores_every_schema_default_in_the_document(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="VMBox 0", mailbox="3000")

    doc = await stored(store, api, box["id"])

    assert public(doc) == {**SCHEMA_DEFAULTS, "name": "VMBox 0", "mailbox": "3000"}
    assert doc["_id"] == box["id"]


async def test_create_keeps_explicit_values_instead_of_defaults(api: Api, store: CouchStore) -> None:
    explicit: dict[str, Any] = {
        "require_pin": True,
        "check_if_owner": False,
        "media_extension": "wav",
        "seek_duration_ms": 2500,
        "notify_email_addresses": ["owner@example.com"],
        "media": {"unavailable": "a" * 32},
        "transcribe": True,
    }

    box = await create_box(api, **explicit)

    for key, value in explicit.items():
        assert box[key] == value, key
    doc = await stored(store, api, box["id"])
    for key, value in explicit.items():
        assert doc[key] == value, key


async def test_create_revision_is_the_stored_first_revision(api: Api, store: CouchStore) -> None:
    status, body = await api.put("/vmboxes", {"name": "VMBox 0", "mailbox": "3000"})

    assert status == 201
    doc = await stored(store, api, body["data"]["id"])
    assert body["revision"] == doc["_rev"]
    assert body["revision"].startswith("1-")


async def test_create_sets_kazoo_private_fields_on_the_stored_document(api: Api, store: CouchStore) -> None:
    before = gregorian_now()
    response, body = await call(
        api,
        "PUT",
        "/vmboxes",
        {"name": "Front-Desk Box 7 (Main)", "mailbox": "3000"},
        headers={"X-Request-Id": "vmbox-create-request-1"},
    )
    after = gregorian_now()
    assert response.status == 201, body

    doc = await stored(store, api, body["data"]["id"])

    account_id = api.account.id
    assert doc["pvt_type"] == "vmbox"
    assert doc["pvt_vsn"] == "1"
    assert doc["pvt_account_id"] == account_id
    assert doc["pvt_account_db"] == f"account%2F{account_id[:2]}%2F{account_id[2:4]}%2F{account_id[4:]}"
    assert isinstance(doc["pvt_created"], int)
    assert before <= doc["pvt_created"] <= after  # Gregorian seconds, not Unix seconds
    assert doc["pvt_modified"] == doc["pvt_created"]
    assert doc["pvt_alphanum_name"] == "frontdeskbox7main"
    assert doc["pvt_request_id"] == "vmbox-create-request-1"
    assert doc["pvt_is_authenticated"] is True
    assert doc["pvt_auth_account_id"] == account_id
    assert "pvt_deleted" not in doc


async def test_create_ignores_private_fields_sent_by_the_client(api: Api, store: CouchStore) -> None:
    other_account = "f" * 32
    status, body = await api.put(
        "/vmboxes",
        {
            "name": "VMBox 0",
            "mailbox": "3000",
            "pvt_type": "user",
            "pvt_account_id": other_account,
            "pvt_created": 1,
            "pvt_deleted": True,
            "_hidden": "nope",
        },
    )

    assert status == 201, body
    assert private_keys_in(body["data"]) == []
    doc = await stored(store, api, body["data"]["id"])
    assert doc["pvt_type"] == "vmbox"
    assert doc["pvt_account_id"] == api.account.id
    assert doc["pvt_created"] > GREGORIAN_OFFSET
    assert "pvt_deleted" not in doc
    assert "_hidden" not in doc
    status, _ = await api.get(f"/vmboxes/{body['data']['id']}")
    assert status == 200


async def test_create_uses_an_id_given_in_the_data_as_document_id(api: Api, store: CouchStore) -> None:
    wanted = "ab" * 16

    response, body = await call(api, "PUT", "/vmboxes", {"id": wanted, "name": "VMBox 0", "mailbox": "3000"})

    assert response.status == 201, body
    assert body["data"]["id"] == wanted
    assert response.headers["Location"].endswith(f"/vmboxes/{wanted}")
    doc = await stored(store, api, wanted)
    assert doc["name"] == "VMBox 0"
    assert "id" not in doc


async def test_ids_of_the_mailbox_claims_are_reserved(api: Api, store: CouchStore) -> None:
    status, body = await api.put("/vmboxes", {"id": "vmbox_mailbox_5", "name": "Squatter", "mailbox": "2"})
    assert status == 400, body
    assert body["data"]["id"]["reserved"]["value"] == "vmbox_mailbox_5"
    status, _ = await api.get("/vmboxes/vmbox_mailbox_5")
    assert status == 404


async def test_a_document_on_a_claim_id_that_is_no_claim_is_never_overwritten(api: Api, store: CouchStore) -> None:
    """An old box written outside the API under a claim's id: creating its number must not replace it."""
    await put_raw_box(store, api, _id="vmbox_mailbox_6", mailbox="7", pvt_created=63_000_000_000)

    status, body = await api.put("/vmboxes", {"name": "Six", "mailbox": "6"})

    assert status == 400, body
    assert body["data"]["mailbox"]["unique"]["message"] == UNIQUE_MESSAGE
    doc = await stored(store, api, "vmbox_mailbox_6")
    assert doc["_rev"].startswith("1-")
    assert (doc["pvt_type"], doc["name"], doc["mailbox"]) == ("vmbox", "Legacy Box", "7")


async def test_private_fields_never_appear_in_any_response(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    path = f"/vmboxes/{box['id']}"
    responses = [
        await api.get(path),
        await api.post(path, {"name": "Renamed", "mailbox": "3000"}),
        await api.patch(path, {"pin": "1234"}),
        await api.delete(path),
    ]
    listing_box = await create_box(api, name="Listed", mailbox="3001")
    status, listing = await api.get("/vmboxes")
    assert status == 200 and [item["id"] for item in listing["data"]] == [listing_box["id"]]

    for status, body in responses:
        assert status == 200, body
        assert private_keys_in(body["data"]) == []
    for item in listing["data"]:
        assert private_keys_in(item) == []
    doc = await stored(store, api, box["id"])
    assert doc["pvt_deleted"] is True  # the private fields do exist, they are just never shown


# -- lenient casting ----------------------------------------------------------------------------------------


async def test_integer_and_boolean_strings_are_cast(api: Api, store: CouchStore) -> None:
    status, body = await api.put(
        "/vmboxes",
        {
            "name": "VMBox 0",
            "mailbox": "3000",
            "seek_duration_ms": "10000",
            "require_pin": "true",
            "skip_greeting": "false",
            "check_if_owner": "false",
        },
    )

    assert status == 201, body
    data = body["data"]
    assert data["seek_duration_ms"] == 10000 and isinstance(data["seek_duration_ms"], int)
    assert data["require_pin"] is True
    assert data["skip_greeting"] is False
    assert data["check_if_owner"] is False
    doc = await stored(store, api, data["id"])
    assert doc["seek_duration_ms"] == 10000 and isinstance(doc["seek_duration_ms"], int)
    assert doc["require_pin"] is True
    assert doc["check_if_owner"] is False


async def test_nested_callback_integer_and_boolean_strings_are_cast(api: Api, store: CouchStore) -> None:
    callback = {"attempts": "3", "disabled": "true", "interval_s": "60", "schedule": ["30", 90], "number": "2025550100"}

    box = await create_box(api, notify={"callback": callback})

    expected = {"attempts": 3, "disabled": True, "interval_s": 60, "schedule": [30, 90], "number": "2025550100"}
    assert box["notify"] == {"callback": expected}
    doc = await stored(store, api, box["id"])
    assert doc["notify"] == {"callback": expected}


async def test_mailbox_given_as_integer_is_a_type_error_not_cast(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "VMBox 0", "mailbox": 3000})

    errors = assert_validation_error(status, body)
    assert errors == {
        "mailbox": {"type": {"message": "Value did not match type(s): string", "target": "string", "value": 3000}}
    }


async def test_pin_given_as_integer_is_a_type_error_not_cast(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "VMBox 0", "mailbox": "3000", "pin": 1234})

    errors = assert_validation_error(status, body)
    assert errors == {
        "pin": {"type": {"message": "Value did not match type(s): string", "target": "string", "value": 1234}}
    }


async def test_strings_that_are_not_numbers_or_booleans_stay_type_errors(api: Api) -> None:
    status, body = await api.put(
        "/vmboxes", {"name": "VMBox 0", "mailbox": "3000", "seek_duration_ms": "fast", "require_pin": "yes"}
    )

    errors = assert_validation_error(status, body)
    assert set(errors) == {"seek_duration_ms", "require_pin"}
    assert errors["seek_duration_ms"]["type"]["target"] == "integer"
    assert errors["seek_duration_ms"]["type"]["value"] == "fast"
    assert errors["require_pin"]["type"]["target"] == "boolean"
    status, listing = await api.get("/vmboxes")
    assert status == 200 and listing["data"] == []


# -- validation shapes ----------------------------------------------------------------------------------------


async def test_empty_data_reports_name_and_mailbox_required(api: Api) -> None:
    status, body = await api.put("/vmboxes", {})

    errors = assert_validation_error(status, body)
    assert set(errors) == {"name", "mailbox"}
    assert errors["name"] == {"required": {"message": "Field is required but missing", "value": "name"}}
    assert errors["mailbox"] == {"required": {"message": "Field is required but missing", "value": "mailbox"}}


async def test_pin_shorter_than_four_characters_is_min_length_error(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "pin": "12"})

    errors = assert_validation_error(status, body)
    assert errors == {
        "pin": {
            "minLength": {"message": "String must be at least 4 characters", "target": 4, "cause": "12", "value": "12"}
        }
    }


async def test_pin_longer_than_six_characters_is_max_length_error(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "pin": "1234567"})

    errors = assert_validation_error(status, body)
    assert errors == {
        "pin": {
            "maxLength": {
                "message": "String must not be more than 6 characters",
                "target": 6,
                "cause": "1234567",
                "value": "1234567",
            }
        }
    }


async def test_pin_of_four_to_six_characters_is_accepted_without_digit_rule(api: Api) -> None:
    for mailbox, pin in (("3001", "0000"), ("3002", "123456"), ("3003", "ab12")):
        status, body = await api.put("/vmboxes", {"name": "x", "mailbox": mailbox, "pin": pin})
        assert status == 201, body
        assert body["data"]["pin"] == pin


async def test_require_pin_does_not_make_pin_required(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "require_pin": True})

    assert status == 201, body
    assert "pin" not in body["data"]


async def test_media_extension_outside_enum_is_rejected(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "media_extension": "ogg"})

    errors = assert_validation_error(status, body)
    assert errors == {
        "media_extension": {
            "enum": {
                "message": "Value not found in enumerated list of values",
                "target": ["mp3", "mp4", "wav"],
                "value": "ogg",
            }
        }
    }


async def test_notify_email_address_that_is_not_an_email_is_wrong_format(api: Api) -> None:
    status, body = await api.put(
        "/vmboxes",
        {"name": "x", "mailbox": "3001", "notify_email_addresses": ["ok@example.com", "not-an-email"]},
    )

    errors = assert_validation_error(status, body)
    assert len(errors) == 1
    ((path, error),) = errors.items()
    assert path.startswith("notify_email_addresses")
    assert error == {
        "wrong_format": {"message": "Field is not in the correct format", "value": "not-an-email", "format": "email"}
    }


async def test_notify_email_addresses_must_be_a_list(api: Api) -> None:
    status, body = await api.put(
        "/vmboxes", {"name": "x", "mailbox": "3001", "notify_email_addresses": "one@example.com"}
    )

    errors = assert_validation_error(status, body)
    assert errors["notify_email_addresses"]["type"]["target"] == "array"


async def test_notify_callback_fields_are_type_checked_by_the_nested_schema(api: Api) -> None:
    status, body = await api.put(
        "/vmboxes",
        {"name": "x", "mailbox": "3001", "notify": {"callback": {"attempts": "many", "number": 2025550100}}},
    )

    errors = assert_validation_error(status, body)
    assert set(errors) == {"notify.callback.attempts", "notify.callback.number"}
    assert errors["notify.callback.attempts"]["type"]["target"] == "integer"
    assert errors["notify.callback.attempts"]["type"]["message"] == "Value did not match type(s): integer"
    assert errors["notify.callback.number"]["type"]["target"] == "string"
    assert errors["notify.callback.number"]["type"]["value"] == 2025550100


async def test_notify_callback_that_is_not_an_object_is_a_type_error(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "notify": {"callback": "soon"}})

    errors = assert_validation_error(status, body)
    assert errors["notify.callback"]["type"]["target"] == "object"


async def test_length_limits_of_name_mailbox_owner_and_timezone(api: Api) -> None:
    status, body = await api.put(
        "/vmboxes",
        {"name": "n" * 129, "mailbox": "9" * 31, "owner_id": "short", "timezone": "UTC", "media": {"unavailable": "x"}},
    )

    errors = assert_validation_error(status, body)
    assert errors["name"]["maxLength"]["target"] == 128
    assert errors["mailbox"]["maxLength"]["target"] == 30
    assert errors["owner_id"]["minLength"]["target"] == 32
    assert errors["timezone"]["minLength"]["target"] == 5
    assert errors["media.unavailable"]["minLength"]["target"] == 32


async def test_empty_name_and_mailbox_are_min_length_errors(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "", "mailbox": ""})

    errors = assert_validation_error(status, body)
    assert errors["name"]["minLength"]["target"] == 1
    assert errors["mailbox"]["minLength"]["target"] == 1


async def test_negative_seek_duration_is_below_minimum(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "seek_duration_ms": -1})

    errors = assert_validation_error(status, body)
    assert errors == {
        "seek_duration_ms": {"minimum": {"message": "Value must be at least 0", "target": 0, "value": -1}}
    }


async def test_owner_id_is_not_checked_to_exist(api: Api) -> None:
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "owner_id": "0" * 32})

    assert status == 201, body
    assert body["data"]["owner_id"] == "0" * 32


async def test_unknown_keys_are_accepted_stored_and_returned(api: Api, store: CouchStore) -> None:
    extra: dict[str, Any] = {
        "custom_label": "lobby",
        "custom_settings": {"volume": 7, "tags": ["a", "b"]},
        "x_enabled": True,
    }

    box = await create_box(api, **extra)

    for key, value in extra.items():
        assert box[key] == value
    doc = await stored(store, api, box["id"])
    for key, value in extra.items():
        assert doc[key] == value
    status, body = await api.get(f"/vmboxes/{box['id']}")
    assert status == 200
    for key, value in extra.items():
        assert body["data"][key] == value


async def test_failed_validation_stores_nothing(api: Api) -> None:
    status, _ = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "pin": "1"})
    assert status == 400

    status, body = await api.get("/vmboxes")

    assert status == 200
    assert body["data"] == []


async def test_a_value_matching_none_of_a_fields_alternatives_is_a_validation_error(api: Api) -> None:
    """operator_number is oneOf integer or string: null matches neither, and the answer says so for that field."""
    status, body = await api.put("/vmboxes", {"name": "x", "mailbox": "3001", "operator_number": None})

    assert status == 400, body
    assert body["message"] == "validation error"
    assert list(body["data"]) == ["operator_number"]
    assert (await api.get("/vmboxes"))[1]["data"] == []


# -- legacy notify_email_address ----------------------------------------------------------------------------------


async def test_legacy_notify_email_address_is_migrated_with_a_warning_header(api: Api, store: CouchStore) -> None:
    response, body = await call(
        api, "PUT", "/vmboxes", {"name": "x", "mailbox": "3001", "notify_email_address": ["legacy@example.com"]}
    )

    assert response.status == 201, body
    assert response.headers.get("Warning") == EMAIL_WARNING
    assert body["data"]["notify_email_addresses"] == ["legacy@example.com"]
    doc = await stored(store, api, body["data"]["id"])
    assert doc["notify_email_addresses"] == ["legacy@example.com"]


async def test_legacy_notify_email_address_is_migrated_on_post_too(api: Api, store: CouchStore) -> None:
    box = await create_box(api)

    response, body = await call(
        api,
        "POST",
        f"/vmboxes/{box['id']}",
        {"name": "VMBox 0", "mailbox": "3000", "notify_email_address": ["later@example.com"]},
    )

    assert response.status == 200, body
    assert response.headers.get("Warning") == EMAIL_WARNING
    assert body["data"]["notify_email_addresses"] == ["later@example.com"]
    assert (await stored(store, api, box["id"]))["notify_email_addresses"] == ["later@example.com"]


async def test_no_warning_header_without_the_legacy_key(api: Api) -> None:
    response, body = await call(api, "PUT", "/vmboxes", {"name": "x", "mailbox": "3001"})

    assert response.status == 201, body
    assert "Warning" not in response.headers


# -- unique mailbox numbers -----------------------------------------------------------------------------------------


async def test_duplicate_mailbox_is_rejected_with_kazoos_exact_message(api: Api) -> None:
    await create_box(api, name="First", mailbox="3000")

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "3000"})

    errors = assert_validation_error(status, body)
    assert errors == {"mailbox": {"unique": {"message": UNIQUE_MESSAGE}}}
    status, listing = await api.get("/vmboxes")
    assert [item["name"] for item in listing["data"]] == ["First"]


async def test_mailbox_numbers_are_compared_numerically(api: Api) -> None:
    await create_box(api, name="First", mailbox="300")

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "0300"})

    errors = assert_validation_error(status, body)
    assert errors["mailbox"] == {"unique": {"message": UNIQUE_MESSAGE}}


async def test_zero_padded_existing_number_blocks_the_plain_number(api: Api) -> None:
    await create_box(api, name="First", mailbox="0300")

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "300"})

    errors = assert_validation_error(status, body)
    assert errors["mailbox"] == {"unique": {"message": UNIQUE_MESSAGE}}


async def test_non_numeric_mailboxes_never_collide(api: Api) -> None:
    first = await create_box(api, name="First", mailbox="frontdesk")

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "frontdesk"})

    assert status == 201, body
    assert body["data"]["id"] != first["id"]


async def test_unique_error_is_reported_together_with_schema_errors(api: Api) -> None:
    await create_box(api, name="First", mailbox="3000")

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "3000", "pin": "12"})

    errors = assert_validation_error(status, body)
    assert errors["mailbox"] == {"unique": {"message": UNIQUE_MESSAGE}}
    assert errors["pin"]["minLength"]["target"] == 4


async def test_soft_deleted_box_number_can_be_reused(api: Api) -> None:
    first = await create_box(api, name="First", mailbox="3000")
    status, _ = await api.delete(f"/vmboxes/{first['id']}")
    assert status == 200

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "3000"})

    assert status == 201, body


async def test_number_of_a_box_soft_deleted_outside_the_api_can_be_reused(api: Api, store: CouchStore) -> None:
    first = await create_box(api, name="First", mailbox="3000")
    doc = await stored(store, api, first["id"])
    doc["pvt_deleted"] = True
    await store.put_doc(account_db(api.account.id), doc)

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "3000"})

    assert status == 201, body


async def test_number_of_a_box_hard_deleted_outside_the_api_can_be_reused(api: Api, store: CouchStore) -> None:
    # Operators and Kazoo itself share the CouchDB; once the box document is gone, listing_by_mailbox has no row
    # for the number, so Kazoo's uniqueness check lets it be used again.
    first = await create_box(api, name="First", mailbox="3000")
    doc = await stored(store, api, first["id"])
    await store.delete_doc(account_db(api.account.id), first["id"], doc["_rev"])

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "3000"})

    assert status == 201, body


async def test_changing_a_box_to_a_non_numeric_mailbox_frees_its_number(api: Api) -> None:
    box = await create_box(api, name="First", mailbox="3100")
    status, body = await api.patch(f"/vmboxes/{box['id']}", {"mailbox": "frontdesk"})
    assert status == 200, body

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "3100"})

    assert status == 201, body


async def test_number_held_by_a_box_written_outside_the_api_is_taken(api: Api, store: CouchStore) -> None:
    await put_raw_box(store, api, mailbox="4100")

    status, body = await api.put("/vmboxes", {"name": "Second", "mailbox": "4100"})

    errors = assert_validation_error(status, body)
    assert errors["mailbox"] == {"unique": {"message": UNIQUE_MESSAGE}}


async def test_post_of_a_box_keeping_its_own_number_succeeds(api: Api) -> None:
    box = await create_box(api, name="First", mailbox="3000")

    status, body = await api.post(f"/vmboxes/{box['id']}", {"name": "Renamed", "mailbox": "3000"})

    assert status == 200, body
    assert body["data"]["name"] == "Renamed"


async def test_post_of_a_box_with_its_own_number_written_differently_succeeds(api: Api) -> None:
    box = await create_box(api, name="First", mailbox="3000")

    status, body = await api.post(f"/vmboxes/{box['id']}", {"name": "First", "mailbox": "03000"})

    assert status == 200, body
    assert body["data"]["mailbox"] == "03000"


async def test_patch_that_leaves_the_number_alone_succeeds(api: Api) -> None:
    box = await create_box(api, name="First", mailbox="3000")

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"name": "Patched"})

    assert status == 200, body
    assert body["data"]["mailbox"] == "3000"


async def test_changing_a_box_number_frees_the_old_one_and_takes_the_new_one(api: Api) -> None:
    box = await create_box(api, name="First", mailbox="3000")

    status, body = await api.post(f"/vmboxes/{box['id']}", {"name": "First", "mailbox": "3001"})
    assert status == 200, body

    status, body = await api.put("/vmboxes", {"name": "Takes old", "mailbox": "3000"})
    assert status == 201, body
    status, body = await api.put("/vmboxes", {"name": "Wants new", "mailbox": "3001"})
    errors = assert_validation_error(status, body)
    assert errors["mailbox"] == {"unique": {"message": UNIQUE_MESSAGE}}


async def test_patching_a_number_to_a_taken_one_is_rejected_and_changes_nothing(api: Api, store: CouchStore) -> None:
    await create_box(api, name="First", mailbox="3000")
    second = await create_box(api, name="Second", mailbox="3001")

    status, body = await api.patch(f"/vmboxes/{second['id']}", {"mailbox": "3000", "name": "Changed"})

    errors = assert_validation_error(status, body)
    assert errors["mailbox"] == {"unique": {"message": UNIQUE_MESSAGE}}
    doc = await stored(store, api, second["id"])
    assert doc["mailbox"] == "3001"
    assert doc["name"] == "Second"


async def test_mailbox_numbers_are_unique_per_account_only(api: Api, client: Any) -> None:
    await create_box(api, name="Mine", mailbox="3000")
    other = Api(client, await make_account(client, name="Other Account"))

    status, body = await other.put("/vmboxes", {"name": "Theirs", "mailbox": "3000"})

    assert status == 201, body


async def test_concurrent_creates_with_the_same_mailbox_let_exactly_one_succeed(api: Api) -> None:
    results = await asyncio.gather(*(api.put("/vmboxes", {"name": f"Racer {n}", "mailbox": "5000"}) for n in range(10)))

    statuses = [status for status, _ in results]
    assert statuses.count(201) == 1, statuses
    assert statuses.count(400) == 9, statuses
    for status, body in results:
        if status == 400:
            assert body["data"] == {"mailbox": {"unique": {"message": UNIQUE_MESSAGE}}}
    winner = next(body["data"] for status, body in results if status == 201)
    status, listing = await api.get("/vmboxes")
    assert status == 200
    assert [item["id"] for item in listing["data"]] == [winner["id"]]


async def test_concurrent_creates_of_differently_written_equal_numbers_let_one_succeed(api: Api) -> None:
    spellings = ["600", "0600", "00600", "600", "0600", "000600", "600", "0600"]

    results = await asyncio.gather(
        *(api.put("/vmboxes", {"name": f"Racer {n}", "mailbox": mailbox}) for n, mailbox in enumerate(spellings))
    )

    statuses = [status for status, _ in results]
    assert statuses.count(201) == 1, statuses
    assert statuses.count(400) == len(spellings) - 1, statuses
    status, listing = await api.get("/vmboxes")
    assert status == 200
    assert len(listing["data"]) == 1


async def test_concurrent_renumbering_of_boxes_to_one_number_lets_exactly_one_succeed(
    api: Api, store: CouchStore
) -> None:
    # The race is run in a few rounds: one round may by chance not interleave, a correct service passes all.
    for round_number in range(3):
        target = 7000 + 100 * round_number
        boxes = [await create_box(api, name=f"Box {n}", mailbox=str(target + 1 + n)) for n in range(10)]

        results = await asyncio.gather(*(api.patch(f"/vmboxes/{box['id']}", {"mailbox": str(target)}) for box in boxes))

        statuses = [status for status, _ in results]
        assert statuses.count(200) == 1, (target, statuses)
        assert statuses.count(400) == 9, (target, statuses)
        for status, body in results:
            if status == 400:
                assert body["data"] == {"mailbox": {"unique": {"message": UNIQUE_MESSAGE}}}
        mailboxes = [(await stored(store, api, box["id"]))["mailbox"] for box in boxes]
        winner = statuses.index(200)
        assert mailboxes[winner] == str(target)
        assert [m for n, m in enumerate(mailboxes) if n != winner] == [
            str(target + 1 + n) for n in range(10) if n != winner
        ]


async def test_create_racing_a_renumber_to_the_same_number_lets_exactly_one_succeed(api: Api) -> None:
    for round_number in range(3):
        target = str(8000 + 100 * round_number)
        boxes = [await create_box(api, name=f"Box {n}", mailbox=str(int(target) + 1 + n)) for n in range(5)]

        results = await asyncio.gather(
            *(api.patch(f"/vmboxes/{box['id']}", {"mailbox": target}) for box in boxes),
            *(api.put("/vmboxes", {"name": f"New {n}", "mailbox": target}) for n in range(5)),
        )

        statuses = [status for status, _ in results]
        assert statuses.count(400) == 9, (target, statuses)
        assert sum(1 for status in statuses if status in (200, 201)) == 1, (target, statuses)
        status, listing = await api.get("/vmboxes", params={"filter_mailbox": target})
        assert status == 200
        assert len(listing["data"]) == 1, (target, listing["data"])


# -- fetch ----------------------------------------------------------------------------------------------------


async def test_fetch_returns_the_box_with_its_revision(api: Api, store: CouchStore) -> None:
    box = await create_box(api, pin="1234", timezone="America/Los_Angeles")

    status, body = await api.get(f"/vmboxes/{box['id']}")

    assert status == 200, body
    assert body["status"] == "success"
    assert body["data"] == box
    assert body["data"]["pin"] == "1234"  # returned in clear text
    doc = await stored(store, api, box["id"])
    assert body["revision"] == doc["_rev"]


async def test_fetch_sends_the_revision_as_etag_and_honours_if_none_match(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    rev = (await stored(store, api, box["id"]))["_rev"]

    response, _ = await call(api, "GET", f"/vmboxes/{box['id']}")
    assert response.status == 200
    assert response.headers["ETag"] == f'"{rev}"'

    response, _ = await call(api, "GET", f"/vmboxes/{box['id']}", headers={"If-None-Match": f'"{rev}"'})
    assert response.status == 304


async def test_fetch_with_a_stale_etag_returns_the_current_box(api: Api) -> None:
    box = await create_box(api)
    response, first = await call(api, "GET", f"/vmboxes/{box['id']}")
    old_etag = response.headers["ETag"]
    status, _ = await api.patch(f"/vmboxes/{box['id']}", {"name": "Changed"})
    assert status == 200

    response, body = await call(api, "GET", f"/vmboxes/{box['id']}", headers={"If-None-Match": old_etag})

    assert response.status == 200
    assert body["data"]["name"] == "Changed"
    assert response.headers["ETag"] != old_etag
    assert body["revision"] != first["revision"]


async def test_fetch_of_an_unknown_id_is_404_bad_identifier(api: Api) -> None:
    missing = uuid.uuid4().hex

    status, body = await api.get(f"/vmboxes/{missing}")

    assert_bad_identifier(status, body, missing)


async def test_document_of_another_type_is_not_a_box(api: Api, store: CouchStore) -> None:
    user_id = uuid.uuid4().hex
    user = {"_id": user_id, "pvt_type": "user", "username": "alice", "name": "Alice", "mailbox": "3000"}
    await store.put_doc(account_db(api.account.id), user)
    path = f"/vmboxes/{user_id}"

    for status, body in (
        await api.get(path),
        await api.post(path, {"name": "x", "mailbox": "3001"}),
        await api.patch(path, {"name": "x"}),
        await api.delete(path),
    ):
        assert_bad_identifier(status, body, user_id)
    doc = await stored(store, api, user_id)
    assert doc["pvt_type"] == "user"
    assert doc["username"] == "alice"
    assert "pvt_deleted" not in doc


# -- POST: replace ----------------------------------------------------------------------------------------------


async def test_post_drops_missing_public_fields_and_refills_defaults(api: Api, store: CouchStore) -> None:
    box = await create_box(
        api,
        pin="1234",
        timezone="America/New_York",
        require_pin=True,
        media_extension="wav",
        owner_id="b" * 32,
        custom_label="lobby",
        flags=["vip"],
    )

    status, body = await api.post(f"/vmboxes/{box['id']}", {"name": "Replaced", "mailbox": "3000"})

    assert status == 200, body
    assert body["data"] == {**SCHEMA_DEFAULTS, "name": "Replaced", "mailbox": "3000", "id": box["id"]}
    doc = await stored(store, api, box["id"])
    assert public(doc) == {**SCHEMA_DEFAULTS, "name": "Replaced", "mailbox": "3000"}


async def test_post_keeps_private_fields_and_creation_time(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    db = account_db(api.account.id)
    doc = await stored(store, api, box["id"])
    doc["pvt_created"] = doc["pvt_created"] - 86_400  # a box made yesterday
    doc["pvt_operator_note"] = "keep me"
    await store.put_doc(db, doc)
    before = await stored(store, api, box["id"])

    status, body = await api.post(
        f"/vmboxes/{box['id']}",
        {"name": "Replaced", "mailbox": "3000", "pvt_created": 5, "pvt_operator_note": "client value", "pvt_type": "x"},
    )

    assert status == 200, body
    after = await stored(store, api, box["id"])
    assert after["pvt_created"] == before["pvt_created"]
    assert after["pvt_operator_note"] == "keep me"
    assert after["pvt_type"] == "vmbox"
    assert after["pvt_account_id"] == api.account.id
    assert after["pvt_account_db"] == before["pvt_account_db"]
    assert after["pvt_modified"] >= before["pvt_modified"]
    assert after["pvt_alphanum_name"] == "replaced"
    assert after["_rev"] != before["_rev"]
    assert body["revision"] == after["_rev"]
    assert private_keys_in(body["data"]) == []


async def test_post_is_validated_like_a_create(api: Api, store: CouchStore) -> None:
    box = await create_box(api, pin="1234")

    status, body = await api.post(f"/vmboxes/{box['id']}", {})

    errors = assert_validation_error(status, body)
    assert set(errors) == {"name", "mailbox"}
    doc = await stored(store, api, box["id"])
    assert doc["pin"] == "1234"
    assert doc["_rev"].startswith("1-")


async def test_post_to_an_unknown_box_is_404(api: Api) -> None:
    missing = uuid.uuid4().hex

    status, body = await api.post(f"/vmboxes/{missing}", {"name": "x", "mailbox": "3000"})

    assert_bad_identifier(status, body, missing)


# -- PATCH: merge -------------------------------------------------------------------------------------------------


async def test_patch_deep_merges_like_kazoos_crossbar_doc_eunit_example(api: Api, store: CouchStore) -> None:
    box = await create_box(api, foo="bar", enabled=False, elbow="grease", sip={"username": "foo", "password": "bar"})

    status, body = await api.patch(
        f"/vmboxes/{box['id']}",
        {"enabled": True, "sip": {"username": "me123"}, "new": "field", "nested": {"another": "one"}},
    )

    assert status == 200, body
    doc = await stored(store, api, box["id"])
    for merged in (body["data"], doc):
        assert merged["enabled"] is True
        assert merged["elbow"] == "grease"
        assert merged["foo"] == "bar"
        assert merged["new"] == "field"
        assert merged["nested"] == {"another": "one"}
        assert merged["sip"] == {"username": "me123", "password": "bar"}
        assert merged["name"] == "VMBox 0"
        assert merged["mailbox"] == "3000"
        for key, value in SCHEMA_DEFAULTS.items():
            assert merged[key] == value, key


async def test_patch_null_deletes_keys_at_any_depth(api: Api, store: CouchStore) -> None:
    box = await create_box(api, pin="1234", timezone="America/Chicago", sip={"username": "foo", "password": "bar"})

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"pin": None, "timezone": None, "sip": {"password": None}})

    assert status == 200, body
    doc = await stored(store, api, box["id"])
    for merged in (body["data"], doc):
        assert "pin" not in merged
        assert "timezone" not in merged
        assert merged["sip"] == {"username": "foo"}


async def test_patch_null_on_a_defaulted_key_brings_the_default_back(api: Api) -> None:
    box = await create_box(api, media_extension="wav", seek_duration_ms=500)

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"media_extension": None, "seek_duration_ms": None})

    assert status == 200, body
    assert body["data"]["media_extension"] == "mp3"
    assert body["data"]["seek_duration_ms"] == 10000


async def test_patch_null_mailbox_is_a_required_error(api: Api, store: CouchStore) -> None:
    box = await create_box(api)

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"mailbox": None})

    errors = assert_validation_error(status, body)
    assert errors == {"mailbox": {"required": {"message": "Field is required but missing", "value": "mailbox"}}}
    assert (await stored(store, api, box["id"]))["mailbox"] == "3000"


async def test_patch_replaces_arrays_instead_of_merging_them(api: Api, store: CouchStore) -> None:
    box = await create_box(
        api, notify_email_addresses=["a@example.com", "b@example.com"], flags=["one", "two", "three"]
    )

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"notify_email_addresses": ["c@example.com"], "flags": []})

    assert status == 200, body
    doc = await stored(store, api, box["id"])
    for merged in (body["data"], doc):
        assert merged["notify_email_addresses"] == ["c@example.com"]
        assert merged["flags"] == []


async def test_patch_with_an_empty_object_replaces_the_stored_object(api: Api) -> None:
    box = await create_box(api, sip={"username": "foo", "password": "bar"})

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"sip": {}})

    assert status == 200, body
    assert body["data"]["sip"] == {}


async def test_patch_validates_the_merged_box(api: Api, store: CouchStore) -> None:
    box = await create_box(api, pin="1234")

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"pin": "12", "media_extension": "ogg"})

    errors = assert_validation_error(status, body)
    assert set(errors) == {"pin", "media_extension"}
    assert (await stored(store, api, box["id"]))["pin"] == "1234"


async def test_patch_casts_like_put(api: Api) -> None:
    box = await create_box(api)

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"seek_duration_ms": "2500", "is_setup": "true"})

    assert status == 200, body
    assert body["data"]["seek_duration_ms"] == 2500
    assert body["data"]["is_setup"] is True


async def test_patch_keeps_private_fields_and_creation_time(api: Api, store: CouchStore) -> None:
    box = await create_box(api)
    before = await stored(store, api, box["id"])

    status, body = await api.patch(f"/vmboxes/{box['id']}", {"name": "Patched Name", "pvt_created": 1})

    assert status == 200, body
    after = await stored(store, api, box["id"])
    assert after["pvt_created"] == before["pvt_created"]
    assert after["pvt_type"] == "vmbox"
    assert after["pvt_alphanum_name"] == "patchedname"
    assert after["_rev"] != before["_rev"]
    assert body["revision"] == after["_rev"]


async def test_patch_of_an_unknown_box_is_404(api: Api) -> None:
    missing = uuid.uuid4().hex

    status, body = await api.patch(f"/vmboxes/{missing}", {"name": "x"})

    assert_bad_identifier(status, body, missing)


# -- DELETE ---------------------------------------------------------------------------------------------------------


async def test_delete_returns_the_box_marked_read_only_deleted(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="abc12345", mailbox="abc12345", pin="4321")

    status, body = await api.delete(f"/vmboxes/{box['id']}")

    assert status == 200, body
    assert body["status"] == "success"
    data = body["data"]
    assert data["id"] == box["id"]
    assert data["name"] == "abc12345"
    assert data["_read_only"] == {"deleted": True}
    assert {key: value for key, value in data.items() if key != "_read_only"} == box
    doc = await stored(store, api, box["id"])
    assert body["revision"] == doc["_rev"]


async def test_delete_soft_deletes_the_stored_document(api: Api, store: CouchStore) -> None:
    box = await create_box(api)

    status, _ = await api.delete(f"/vmboxes/{box['id']}")

    assert status == 200
    doc = await stored(store, api, box["id"])
    assert doc["pvt_deleted"] is True
    assert doc["pvt_type"] == "vmbox"
    assert doc["name"] == "VMBox 0"


async def test_deleted_box_is_404_for_every_method_afterwards(api: Api) -> None:
    box = await create_box(api)
    path = f"/vmboxes/{box['id']}"
    status, _ = await api.delete(path)
    assert status == 200

    for status, body in (
        await api.get(path),
        await api.post(path, {"name": "x", "mailbox": "3000"}),
        await api.patch(path, {"name": "x"}),
        await api.delete(path),
    ):
        assert_bad_identifier(status, body, box["id"])


async def test_deleted_box_is_left_out_of_the_listing(api: Api) -> None:
    kept = await create_box(api, name="Kept", mailbox="3000")
    gone = await create_box(api, name="Gone", mailbox="3001")

    status, _ = await api.delete(f"/vmboxes/{gone['id']}")
    assert status == 200
    status, body = await api.get("/vmboxes")

    assert status == 200
    assert [item["id"] for item in body["data"]] == [kept["id"]]


async def test_delete_of_an_unknown_box_is_404(api: Api) -> None:
    missing = uuid.uuid4().hex

    status, body = await api.delete(f"/vmboxes/{missing}")

    assert_bad_identifier(status, body, missing)


# -- methods that do not exist --------------------------------------------------------------------------------------


async def test_methods_not_offered_are_405_invalid_method(api: Api) -> None:
    box = await create_box(api)
    attempts = [
        ("PUT", f"/vmboxes/{box['id']}", {"name": "x", "mailbox": "3001"}),
        ("DELETE", "/vmboxes", None),
        ("POST", "/vmboxes", {"name": "x", "mailbox": "3001"}),
        ("PATCH", "/vmboxes", {"name": "x"}),
    ]

    for method, path, data in attempts:
        status, body = await api.request(method, path, data=data)
        assert status == 405, (method, path, body)
        assert body["status"] == "error"
        assert body["error"] == "405"
        assert body["message"] == "invalid_method"
        assert body["data"] == {"message": "method not allowed"}
    status, listing = await api.get("/vmboxes")
    assert [item["id"] for item in listing["data"]] == [box["id"]]


# -- the legacy messages array --------------------------------------------------------------------------------------


async def test_fetch_hides_the_legacy_messages_array_and_asks_to_migrate(api: Api, store: CouchStore) -> None:
    legacy = await put_raw_box(store, api, messages=legacy_messages())

    status, body = await api.get(f"/vmboxes/{legacy['_id']}")

    assert status == 200, body
    assert "messages" not in body["data"]
    assert body["data"]["name"] == "Legacy Box"
    assert body["message"] == MIGRATE_MESSAGE


async def test_post_keeps_the_legacy_messages_array_in_the_stored_box(api: Api, store: CouchStore) -> None:
    messages = legacy_messages()
    legacy = await put_raw_box(store, api, messages=messages)

    status, body = await api.post(f"/vmboxes/{legacy['_id']}", {"name": "Renamed Legacy", "mailbox": "4000"})

    assert status == 200, body
    assert "messages" not in body["data"]
    assert body["message"] == MIGRATE_MESSAGE
    doc = await stored(store, api, legacy["_id"])
    assert doc["messages"] == messages
    assert doc["name"] == "Renamed Legacy"


async def test_client_cannot_overwrite_the_legacy_messages_array(api: Api, store: CouchStore) -> None:
    messages = legacy_messages()
    legacy = await put_raw_box(store, api, messages=messages)

    status, body = await api.post(
        f"/vmboxes/{legacy['_id']}", {"name": "Legacy Box", "mailbox": "4000", "messages": []}
    )

    assert status == 200, body
    assert "messages" not in body["data"]
    assert (await stored(store, api, legacy["_id"]))["messages"] == messages


async def test_a_messages_array_sent_by_a_client_is_never_stored(api: Api, store: CouchStore) -> None:
    """The legacy array is the migrator's: a client cannot make a box look as if it held legacy messages."""
    entries = legacy_messages()
    status, body = await api.put("/vmboxes", {"name": "Fresh", "mailbox": "4100", "messages": entries})
    assert status == 201, body
    box_id = body["data"]["id"]
    assert "messages" not in await stored(store, api, box_id)

    for method in (api.post, api.patch):
        status, body = await method(f"/vmboxes/{box_id}", {"name": "Fresh", "mailbox": "4100", "messages": entries})
        assert status == 200, body
        assert "message" not in body
        assert "messages" not in await stored(store, api, box_id)

    status, body = await api.get(f"/vmboxes/{box_id}")
    assert "message" not in body
    status, body = await api.get("/vmboxes")
    assert [item["messages"] for item in body["data"] if item["id"] == box_id] == [0]


async def test_patch_keeps_the_legacy_messages_array(api: Api, store: CouchStore) -> None:
    messages = legacy_messages()
    legacy = await put_raw_box(store, api, messages=messages)

    status, body = await api.patch(f"/vmboxes/{legacy['_id']}", {"pin": "9876"})

    assert status == 200, body
    assert "messages" not in body["data"]
    assert body["message"] == MIGRATE_MESSAGE
    doc = await stored(store, api, legacy["_id"])
    assert doc["messages"] == messages
    assert doc["pin"] == "9876"


async def test_delete_of_a_box_with_legacy_messages_soft_deletes_it_and_hides_the_array(
    api: Api, store: CouchStore
) -> None:
    legacy = await put_raw_box(store, api, messages=legacy_messages())

    status, body = await api.delete(f"/vmboxes/{legacy['_id']}")

    assert status == 200, body
    assert "messages" not in body["data"]
    assert body["data"]["_read_only"] == {"deleted": True}
    assert (await stored(store, api, legacy["_id"]))["pvt_deleted"] is True
    status, _ = await api.get(f"/vmboxes/{legacy['_id']}")
    assert status == 404


async def test_box_without_legacy_messages_gets_no_migration_message(api: Api, store: CouchStore) -> None:
    modern = await create_box(api)
    empty_legacy = await put_raw_box(store, api, mailbox="4001", messages=[])

    for box_id in (modern["id"], empty_legacy["_id"]):
        status, body = await api.get(f"/vmboxes/{box_id}")
        assert status == 200, body
        assert "message" not in body
        assert "messages" not in body["data"]


async def test_should_soft_delete_false_removes_the_box_document(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="Gone", mailbox="9900")
    status, body = await api.delete(f"/vmboxes/{box['id']}", params={"should_soft_delete": "false"})
    assert status == 200
    assert body["data"]["_read_only"] == {"deleted": True}
    rows = await store.all_docs(account_db(api.account.id), keys=[box["id"]])
    assert rows and rows[0].value.get("deleted") is True  # a CouchDB tombstone, not a soft-deleted document
    assert (await api.put("/vmboxes", {"name": "Again", "mailbox": "9900"}))[0] == 201


async def test_concurrent_patches_of_one_box_all_land_without_409(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="Busy", mailbox="9800")
    results = await asyncio.gather(*(api.patch(f"/vmboxes/{box['id']}", {f"field_{n}": n}) for n in range(8)))
    assert [status for status, _ in results] == [200] * 8
    saved = await stored(store, api, box["id"])
    assert {f"field_{n}" for n in range(8)} <= set(saved)


async def test_a_box_update_keeps_legacy_entries_written_meanwhile(api: Api, store: CouchStore) -> None:
    box = await create_box(api, name="Legacy", mailbox="9801")
    doc = await stored(store, api, box["id"])
    doc["messages"] = [{"media_id": "ab" * 16, "timestamp": 63630058722}]
    await store.put_doc(account_db(api.account.id), doc)
    status, body = await api.post(f"/vmboxes/{box['id']}", {"name": "Renamed", "mailbox": "9801"})
    assert status == 200 and body["message"] == "Please migrate your voicemail box messages to MODB"
    assert (await stored(store, api, box["id"]))["messages"] == doc["messages"]
