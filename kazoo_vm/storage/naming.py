"""Kazoo's database names and document ids (kz_util:format_account_db, kazoo_modb:get_modb,
kazoo_modb_util:modb_id).

An account id is 32 characters; its database is ``account/xx/yy/<rest>`` (CouchDB's real name), written
``account%2Fxx%2Fyy%2F<rest>`` in URLs and in Kazoo's ``pvt_account_db`` fields. A monthly database (MODB) is the
account database plus ``-YYYYMM`` (UTC). A message id is ``YYYYMM-<32 lowercase hex>`` and its prefix names the MODB.
Timestamps are Gregorian seconds (Unix time + 62167219200).
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime

GREGORIAN_OFFSET = 62_167_219_200

ACCOUNTS_DB = "accounts"
SYSTEM_AUTH_DB = "system_auth"
# The notification outbox (kazoo_vm's own: Kazoo has none), one database watched through one _changes feed.
NOTIFICATIONS_DB = "kazoo_vm_notifications"

_ACCOUNT_ID = r"[0-9a-z]{32}"
ACCOUNT_ID_RE = re.compile(rf"^{_ACCOUNT_ID}$")
_ACCOUNT_DB_RE = re.compile(
    r"^account(?:/|%2[fF])([0-9a-z]{2})(?:/|%2[fF])([0-9a-z]{2})(?:/|%2[fF])([0-9a-z]{28})(?:-(\d{4})(\d{2}))?$"
)
_RAW_MODB_RE = re.compile(rf"^({_ACCOUNT_ID})-(\d{{4}})(\d{{2}})$")
MESSAGE_ID_RE = re.compile(r"^(\d{4})(\d{2})-[0-9a-f]{32}$")
LEGACY_MESSAGE_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class NameError_(ValueError):
    """A string that is not an account id, account database or MODB name."""


def is_account_id(value: str) -> bool:
    return bool(ACCOUNT_ID_RE.match(value))


def account_id(name: str) -> str:
    """The raw account id from any of the six forms (raw id, account db or MODB, encoded or not)."""
    if ACCOUNT_ID_RE.match(name):
        return name
    raw_modb = _RAW_MODB_RE.match(name)
    if raw_modb:
        return raw_modb.group(1)
    match = _ACCOUNT_DB_RE.match(name)
    if not match:
        raise NameError_(f"not an account id or account database: {name!r}")
    return "".join(match.group(1, 2, 3))


def account_db(name: str, *, encoded: bool = False) -> str:
    """The account database of ``name`` (any form): ``account/xx/yy/rest``, or ``account%2Fxx%2Fyy%2Frest``."""
    raw = account_id(name)
    sep = "%2F" if encoded else "/"
    return f"account{sep}{raw[:2]}{sep}{raw[2:4]}{sep}{raw[4:]}"


def modb(name: str, year: int, month: int, *, encoded: bool = False) -> str:
    """The MODB of the account named by ``name`` for a UTC year and month."""
    if not 1 <= month <= 12:
        raise NameError_(f"month out of range: {month}")
    return f"{account_db(name, encoded=encoded)}-{year:04d}{month:02d}"


def modb_for_timestamp(name: str, gregorian_seconds: int, *, encoded: bool = False) -> str:
    year, month = year_month(gregorian_seconds)
    return modb(name, year, month, encoded=encoded)


def split_modb(name: str) -> tuple[str, int, int]:
    """``(account id, year, month)`` of a MODB name in any form."""
    raw_modb = _RAW_MODB_RE.match(name)
    if raw_modb:
        return raw_modb.group(1), int(raw_modb.group(2)), int(raw_modb.group(3))
    match = _ACCOUNT_DB_RE.match(name)
    if not match or match.group(4) is None:
        raise NameError_(f"not a MODB name: {name!r}")
    return "".join(match.group(1, 2, 3)), int(match.group(4)), int(match.group(5))


def encode_db(name: str) -> str:
    """Kazoo's stored form of a database name (``/`` as ``%2F``), as in ``pvt_account_db``."""
    return name.replace("/", "%2F")


def decode_db(name: str) -> str:
    return name.replace("%2F", "/").replace("%2f", "/")


def database_class(name: str) -> str | None:
    """Which design documents a database gets: ``accounts``, ``account``, ``modb``, ``system_auth`` or None."""
    if name in (ACCOUNTS_DB, SYSTEM_AUTH_DB):
        return name
    if name == NOTIFICATIONS_DB:
        return "notifications"
    match = _ACCOUNT_DB_RE.match(name)
    if not match:
        return None
    return "modb" if match.group(4) else "account"


# -- time ------------------------------------------------------------------------------------------------


# The timestamps a message may carry: from the Unix epoch to the last second of year 9999, so that its UTC month
# names a MODB (``YYYYMM``). Kazoo takes any integer and builds nonsense database names from the rest.
EARLIEST_TIMESTAMP = GREGORIAN_OFFSET
LATEST_TIMESTAMP = 253_402_300_799 + GREGORIAN_OFFSET  # 9999-12-31T23:59:59Z


def now_gregorian() -> int:
    return int(time.time()) + GREGORIAN_OFFSET


def to_datetime(gregorian_seconds: int) -> datetime:
    return datetime.fromtimestamp(gregorian_seconds - GREGORIAN_OFFSET, tz=UTC)


def from_datetime(moment: datetime) -> int:
    return int(moment.timestamp()) + GREGORIAN_OFFSET


def year_month(gregorian_seconds: int) -> tuple[int, int]:
    moment = to_datetime(gregorian_seconds)
    return moment.year, moment.month


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def months_between(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """Every (year, month) from ``end`` back to ``start`` inclusive, newest first."""
    months: list[tuple[int, int]] = []
    current = end
    while current >= start:
        months.append(current)
        current = previous_month(*current)
    return months


# -- ids -------------------------------------------------------------------------------------------------


def new_doc_id() -> str:
    """CouchDB-style document id: 32 lowercase hex (Kazoo's kz_datamgr uuid)."""
    return secrets.token_hex(16)


def message_id(gregorian_seconds: int, suffix: str | None = None) -> str:
    """``YYYYMM-<suffix>``; the UTC month of the timestamp names the MODB (kazoo_modb_util:modb_id)."""
    year, month = year_month(gregorian_seconds)
    return f"{year:04d}{month:02d}-{suffix or new_doc_id()}"


def is_message_id(value: str) -> bool:
    return bool(MESSAGE_ID_RE.match(value))


def is_legacy_message_id(value: str) -> bool:
    return bool(LEGACY_MESSAGE_ID_RE.match(value))


def message_month(message_id_: str) -> tuple[int, int]:
    match = MESSAGE_ID_RE.match(message_id_)
    if not match:
        raise NameError_(f"not a message id: {message_id_!r}")
    return int(match.group(1)), int(match.group(2))


def message_db(account: str, message_id_: str) -> str:
    """The MODB that holds ``message_id_``."""
    year, month = message_month(message_id_)
    return modb(account, year, month)
