"""Kazoo's database names and ids (kz_util:format_account_db, kazoo_modb), without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from kazoo_vm.storage import naming

RAW = "0a936fc79bdb4a8c38e6089ab44ad030"
UNENCODED = "account/0a/93/6fc79bdb4a8c38e6089ab44ad030"
ENCODED = "account%2F0a%2F93%2F6fc79bdb4a8c38e6089ab44ad030"
ALL_FORMS = [
    RAW,
    UNENCODED,
    ENCODED,
    f"{RAW}-201405",
    f"{UNENCODED}-201405",
    f"{ENCODED}-201405",
    ENCODED.replace("%2F", "%2f"),
]


@pytest.mark.parametrize("name", ALL_FORMS)
def test_every_form_converts_to_the_raw_account_id(name: str) -> None:
    assert naming.account_id(name) == RAW


@pytest.mark.parametrize("name", ALL_FORMS)
def test_every_form_converts_to_the_account_database_in_both_encodings(name: str) -> None:
    assert naming.account_db(name) == UNENCODED
    assert naming.account_db(name, encoded=True) == ENCODED


def test_modb_name_is_the_account_database_plus_padded_month() -> None:
    assert naming.modb(RAW, 2014, 5) == f"{UNENCODED}-201405"
    assert naming.modb(ENCODED, 2014, 5, encoded=True) == f"{ENCODED}-201405"


@pytest.mark.parametrize("name", [f"{ENCODED}-201405", f"{UNENCODED}-201405", f"{RAW}-201405"])
def test_split_modb_gives_account_year_and_month(name: str) -> None:
    # kazoo_modb_util_tests: split_account_mod/1 on both encodings
    assert naming.split_modb(name) == (RAW, 2014, 5)


def test_split_modb_refuses_a_plain_account_database() -> None:
    # kz_util_tests: format_account_modb on a non-MODB is a function_clause
    with pytest.raises(ValueError):
        naming.split_modb(UNENCODED)


def test_previous_month_wraps_january_to_december_of_the_previous_year() -> None:
    assert naming.previous_month(2014, 1) == (2013, 12)
    assert naming.previous_month(2014, 5) == (2014, 4)


def test_months_between_lists_newest_first_across_a_year_boundary() -> None:
    # kazoo_modb:get_year_month_sequence(Id, {2013,11}, {2014,1}) covers the same months
    assert naming.months_between((2013, 11), (2014, 1)) == [(2014, 1), (2013, 12), (2013, 11)]


def test_gregorian_seconds_are_unix_seconds_plus_the_kazoo_offset() -> None:
    moment = datetime(2016, 5, 24, 19, 38, 42, tzinfo=UTC)
    assert naming.from_datetime(moment) == int(moment.timestamp()) + 62167219200
    assert naming.to_datetime(naming.from_datetime(moment)) == moment


def test_message_id_uses_the_utc_month_of_the_timestamp() -> None:
    # 2017-10-31 23:30 UTC is still October in UTC even where it is already November locally
    ts = naming.from_datetime(datetime(2017, 10, 31, 23, 30, tzinfo=UTC))
    message_id = naming.message_id(ts)
    assert re.fullmatch(r"201710-[0-9a-f]{32}", message_id)
    assert naming.message_id(ts, "ab" * 16) == "201710-" + "ab" * 16
    assert naming.message_db(RAW, message_id) == f"{UNENCODED}-201710"


@pytest.mark.parametrize(
    ("value", "is_message", "is_legacy"),
    [
        ("201605-6aadef09f6fcf5fd8bcdfca312e923ba", True, False),
        ("6aadef09f6fcf5fd8bcdfca312e923ba", False, True),
        ("201605-6AADEF09F6FCF5FD8BCDFCA312E923BA", False, False),
        ("201605-6aadef09", False, False),
        ("../../etc", False, False),
    ],
)
def test_message_id_shapes(value: str, is_message: bool, is_legacy: bool) -> None:
    assert naming.is_message_id(value) is is_message
    assert naming.is_legacy_message_id(value) is is_legacy


def test_database_class_tells_which_design_documents_a_database_gets() -> None:
    assert naming.database_class("accounts") == "accounts"
    assert naming.database_class(UNENCODED) == "account"
    assert naming.database_class(f"{UNENCODED}-201405") == "modb"
    assert naming.database_class("_users") is None


def test_new_doc_ids_are_32_lowercase_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", naming.new_doc_id())
