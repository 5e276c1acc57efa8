"""Every setting of kazoo_vm, read from the environment in one place and validated at start-up.

Nothing else in the package reads ``os.environ``: the CLI calls :func:`load_settings` once and passes the
resulting :class:`Settings` down.

Each field of :class:`Settings` carries, in its metadata (:func:`doc`), its documentation, its parser and
whether it is a secret: ``docs/configuration.md`` and ``kazoo-vm config`` are generated from these declarations
(:mod:`kazoo_vm.config_reference`), so a setting cannot exist without its documentation.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "KAZOO_VM_"


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


# -- parsers: raw environment text → value, ValueError (with the reason) when invalid ------------------------------


def _int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def cast(raw: str) -> int:
        value = int(raw.strip())
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"must be at least {minimum}{upper}")
        return value

    return cast


def _float(minimum: float) -> Callable[[str], float]:
    def cast(raw: str) -> float:
        value = float(raw.strip())
        if not value >= minimum:  # also refuses nan
            raise ValueError(f"must be a number of at least {minimum:g}")
        return value

    return cast


def _float_range(minimum: float, maximum: float) -> Callable[[str], float]:
    def cast(raw: str) -> float:
        value = float(raw.strip())
        if not minimum <= value <= maximum:  # also refuses nan
            raise ValueError(f"must be a number from {minimum:g} to {maximum:g}")
        return value

    return cast


def _url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL such as http://admin:secret@127.0.0.1:5984")
    return raw.strip().rstrip("/")


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("is not a known IANA time zone") from exc
    return raw


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _choice(*choices: str, upper: bool = False) -> Callable[[str], str]:
    def cast(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return value

    return cast


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _seconds(raw: str) -> float:
    value = float(raw.strip())
    if not 0 < value < 86_400:  # also refuses nan
        raise ValueError("must be a number of seconds above 0 and below 86400")
    return value


def _readable_file(raw: str) -> Path:
    path = Path(raw.strip()).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ValueError("must name a readable file")
    return path


def _smtp_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be an smtp:// or smtps:// URL such as smtp://user:secret@mail.example.com:587")
    return raw.strip()


def _email(raw: str) -> str:
    local, at, domain = raw.strip().rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or not c.isprintable() for c in raw.strip()):
        raise ValueError("must be an email address such as voicemail@example.com")
    return raw.strip()


def _db_name(raw: str) -> str:
    # CouchDB's rule for database names.
    if not re.fullmatch(r"[a-z][a-z0-9_$()+/-]*", raw.strip()):
        raise ValueError("must be a CouchDB database name (a lower-case letter, then a-z 0-9 _ $ ( ) + - /)")
    return raw.strip()


def _directory(raw: str) -> Path:
    path = Path(raw.strip()).expanduser()
    if not path.is_dir():
        raise ValueError("must name an existing folder")
    return path


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


# -- declarations -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingInfo:
    """What the documentation and ``kazoo-vm config`` say about one setting."""

    group: str
    doc: str
    parse: Callable[[str], object]
    secret: bool = False
    # How the default reads in the documentation, when it is computed at start-up.
    shown_default: str | None = None


COUCHDB = "CouchDB"
SERVICE = "HTTP service"
KAZOO = "Kazoo behaviour"
OPERATIONS = "Operations"
MIGRATION = "Legacy migration"
NOTIFICATIONS = "Notifications"


def doc(
    group: str, text: str, parse: Callable[[str], object], *, secret: bool = False, shown_default: str | None = None
) -> dict[str, SettingInfo]:
    """A :class:`Settings` field's metadata: its documentation (``text``), parser and secrecy."""
    return {"setting": SettingInfo(group=group, doc=text, parse=parse, secret=secret, shown_default=shown_default)}


@dataclass(frozen=True)
class Settings:
    couch_url: str | None = field(
        default=None,
        metadata=doc(
            COUCHDB,
            "URL of the CouchDB 3 server or cluster, credentials included (`http://user:password@host:5984`). "
            "Unset: `kazoo-vm serve` starts the bundled development server.",
            _url,
            secret=True,
        ),
    )
    data_dir: Path = field(
        default=Path("./var"),
        metadata=doc(
            COUCHDB,
            "Folder for the bundled development server's data (`<data_dir>/couchdb`) and its state file.",
            _path,
            shown_default="./var",
        ),
    )
    couch_host: str = field(
        default="127.0.0.1", metadata=doc(COUCHDB, "Listen address of the bundled development server.", _non_empty)
    )
    couch_port: int = field(
        default=15984, metadata=doc(COUCHDB, "Listen port of the bundled development server.", _int(0, 65535))
    )
    devserver_cache: Path = field(
        default_factory=lambda: Path.home() / ".cache" / "kazoo-vm",
        metadata=doc(
            COUCHDB,
            "Where the bundled development server's npm packages are installed when the package folder is read-only.",
            _path,
            shown_default="~/.cache/kazoo-vm",
        ),
    )
    sync_design_docs: bool = field(
        default=True,
        metadata=doc(
            COUCHDB,
            "Compare every database's design documents with the shipped ones at start-up (in the background).",
            _bool,
        ),
    )

    host: str = field(default="127.0.0.1", metadata=doc(SERVICE, "Listen address of the API.", _non_empty))
    port: int = field(default=8000, metadata=doc(SERVICE, "Listen port of the API.", _int(0, 65535)))
    workers: int = field(
        default=1,
        metadata=doc(
            SERVICE,
            "Processes `kazoo-vm serve` runs, sharing the port (SO_REUSEPORT); `--workers` overrides it.",
            _int(1, 64),
        ),
    )
    shutdown_grace_s: float = field(
        default=30.0,
        metadata=doc(
            SERVICE,
            "On SIGTERM or SIGINT: seconds requests in flight (uploads, downloads, ZIP streams) get to finish "
            "after the service stops accepting connections.",
            _float(0),
        ),
    )
    max_upload_bytes: int = field(
        default=8_000_000,
        metadata=doc(SERVICE, "Largest request body accepted (Kazoo's `crossbar.max_upload_size`).", _int(1)),
    )
    malloc_mmap_threshold_bytes: int = field(
        default=65_536,
        metadata=doc(
            SERVICE,
            "glibc's mmap threshold for `kazoo-vm serve`, fixed at start-up: blocks this large are mapped and given "
            "back when freed, so 100 KB recordings do not fragment the heap and the memory stays flat; 0 leaves "
            "glibc's own, rising threshold. At most 32 MiB, glibc's own limit.",
            _int(0, 32 * 1024 * 1024),
        ),
    )

    token_expiry_s: int = field(
        default=3600,
        metadata=doc(KAZOO, "Lifetime of auth tokens (Kazoo's `crossbar.auth token_auth_expiry_s`).", _int(1)),
    )
    page_size: int = field(
        default=50,
        metadata=doc(KAZOO, "Default page size of listings (Kazoo's `crossbar.pagination_page_size`).", _int(1)),
    )
    retention_days: int = field(
        default=93,
        metadata=doc(
            KAZOO, "Days a message is kept and listed (callflow `voicemail.message_retention_duration`).", _int(1)
        ),
    )
    max_message_count: int = field(
        default=100,
        metadata=doc(
            KAZOO,
            "Default `max_message_count` of a box (callflow `voicemail.max_message_count`); 0 means unlimited.",
            _int(0),
        ),
    )
    maximum_range_s: int = field(
        default=2_682_000,
        metadata=doc(
            KAZOO,
            "Widest `created_from`..`created_to` range of a listing, in seconds (`crossbar.maximum_range`).",
            _int(1),
        ),
    )
    default_timezone: str = field(
        default="America/Los_Angeles",
        metadata=doc(KAZOO, "Last resort of the timezone lookup chain (box, owner, account, system).", _timezone),
    )
    node_name: str = field(
        default_factory=lambda: f"kazoo_vm@{socket.gethostname()}",
        metadata=doc(
            KAZOO,
            "Hashed into the envelope's `node` (Kazoo: the Erlang node name); written as messages' `pvt_node`.",
            _non_empty,
            shown_default="kazoo_vm@<hostname>",
        ),
    )
    kazoo_version: str = field(
        default="4.3.142", metadata=doc(KAZOO, "Version reported in the envelope's `version`.", _non_empty)
    )

    log_level: str = field(
        default="INFO",
        metadata=doc(
            OPERATIONS,
            "Least severe log level written: DEBUG, INFO, WARNING, ERROR or CRITICAL.",
            _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", upper=True),
        ),
    )
    log_format: str = field(
        default="auto",
        metadata=doc(
            OPERATIONS,
            "`json` (one JSON object per line), `console` (human-readable) or `auto` (console on a terminal, "
            "JSON otherwise).",
            _choice("auto", "json", "console"),
        ),
    )
    metrics_token: str | None = field(
        default=None,
        metadata=doc(
            OPERATIONS, "When set, `GET /metrics` needs `Authorization: Bearer <token>`.", _non_empty, secret=True
        ),
    )
    metrics_port: int | None = field(
        default=None,
        metadata=doc(
            OPERATIONS,
            "When set, `/metrics` is served on this port (on `host`) instead of the API's port; with several "
            "workers, worker *i* (from 0) uses this port + *i*.",
            _int(1, 65535),
        ),
    )
    readiness_timeout_s: float = field(
        default=2.0,
        metadata=doc(OPERATIONS, "How long `GET /readyz` waits for CouchDB before answering 503.", _float(0.1)),
    )
    health_cache_s: float = field(
        default=1.0,
        metadata=doc(
            OPERATIONS,
            "How long a `GET /readyz` result is reused, so that load balancers polling every second cost CouchDB "
            "at most one light read per period.",
            _float(0),
        ),
    )

    max_bulk_messages: int = field(
        default=1000,
        metadata=doc(
            SERVICE,
            "Most message ids in one bulk change, bulk delete or ZIP download (400 `maxItems` beyond).",
            _int(1),
        ),
    )
    body_read_timeout_s: float = field(
        default=60.0,
        metadata=doc(SERVICE, "A request body not fully received in this many seconds is cut off (408).", _seconds),
    )
    keepalive_timeout_s: float = field(
        default=15.0,
        metadata=doc(SERVICE, "Seconds an idle keep-alive connection is kept open.", _seconds),
    )
    couch_timeout_s: float = field(
        default=5.0,
        metadata=doc(
            COUCHDB,
            "Seconds CouchDB may stay silent (connecting, or between two reads of an answer) before a request "
            "answers 503 `datastore_unreachable`. Raise it where first queries of new views on big databases are "
            "slow.",
            _seconds,
        ),
    )
    account_cache_s: float = field(
        default=5.0,
        metadata=doc(
            SERVICE,
            "Seconds an account read to authorise requests is reused; an account changed, disabled or deleted "
            "through any process is seen within this bound (0: read it on every request).",
            _float_range(0, 3600),
        ),
    )
    missing_db_recheck_s: float = field(
        default=5.0,
        metadata=doc(
            SERVICE,
            "Seconds a monthly database found missing is taken as missing without asking CouchDB again (counts and "
            "the full-box check skip it); one created since through another process is counted within this bound, "
            "through this process at once (0: ask on every request that needs it).",
            _float_range(0, 3600),
        ),
    )
    signing_key_check_s: float = field(
        default=30.0,
        metadata=doc(
            SERVICE,
            "Seconds the token signing key is used before CouchDB is asked whether it changed; a new key is used by "
            "every process within this bound, and at once by a process shown a token signed with it (0: never "
            "asked again on a timer).",
            _float_range(0, 3600),
        ),
    )
    token_key_file: Path | None = field(
        default=None,
        metadata=doc(
            SERVICE,
            "PEM file with the RSA private key that signs tokens, for keys kept out of the database. Unset: the key "
            "is generated once and kept in CouchDB's `system_auth` database (admins only).",
            _readable_file,
        ),
    )

    design_sync_workers: int = field(
        default=1,
        metadata=doc(
            COUCHDB,
            "Databases the start-up walk (run only when our design documents changed) brings up to date at once.",
            _int(1, 64),
        ),
    )
    design_sync_page: int = field(
        default=500,
        metadata=doc(
            COUCHDB,
            "Database names the start-up walk reads per `_all_dbs` request (and per checkpoint).",
            _int(1, 10_000),
        ),
    )
    design_sync_share: float = field(
        default=0.5,
        metadata=doc(
            COUCHDB,
            "Share of the time each walk worker spends on CouchDB requests: after each database it rests in "
            "proportion to how long that database took (1: no rest), so the walk slows down when CouchDB is busy and "
            "leaves it to the requests being served.",
            _float_range(0.05, 1.0),
        ),
    )
    modb_precreate_rate: float = field(
        default=20.0,
        metadata=doc(
            COUCHDB,
            "Next month's MODBs (with design documents and built indexes) the service creates ahead, at most this "
            "many a second, in the last `KAZOO_VM_MODB_PRECREATE_DAYS` days of a month, one process of the cluster "
            "at a time (0: off; `kazoo-vm modbs precreate` does the same on demand).",
            _float(0),
        ),
    )
    modb_precreate_days: int = field(
        default=3,
        metadata=doc(
            COUCHDB,
            "How many days before the end of a month (UTC) the service starts creating next month's MODBs.",
            _int(1, 27),
        ),
    )

    migrate_batch_size: int = field(
        default=100,
        metadata=doc(
            MIGRATION,
            "Legacy entries migrated per batch by `kazoo-vm migrate` (Kazoo's batch of 2000 carried no audio; ours "
            "does, so it is smaller).",
            _int(1),
        ),
    )
    migrate_workers: int = field(
        default=10,
        metadata=doc(
            MIGRATION, "Boxes `kazoo-vm migrate` migrates at once (callflow `voicemail.migrate_max_worker`).", _int(1)
        ),
    )

    notify_workers: int = field(
        default=1,
        metadata=doc(
            NOTIFICATIONS, "Delivery workers per `serve` process (0: only queue; other processes deliver).", _int(0)
        ),
    )
    notifications_db: str = field(
        default="kazoo_vm_notifications",
        metadata=doc(NOTIFICATIONS, "The outbox database of notifications to deliver.", _db_name),
    )
    notify_max_attempts: int = field(
        default=5,
        metadata=doc(
            NOTIFICATIONS,
            "Attempts of one email before it is marked failed (webhooks: the hook's own `retries` + 1).",
            _int(1),
        ),
    )
    notify_backoff_s: float = field(
        default=30.0,
        metadata=doc(NOTIFICATIONS, "First pause after a failed delivery (doubled each time, ±50 % jitter).", _seconds),
    )
    notify_backoff_max_s: float = field(
        default=3600.0, metadata=doc(NOTIFICATIONS, "Longest pause between two delivery attempts.", _seconds)
    )
    notify_lease_s: float = field(
        default=120.0,
        metadata=doc(
            NOTIFICATIONS, "How long a claimed item is its worker's before another process may take it.", _seconds
        ),
    )
    notify_confirm_s: float = field(
        default=300.0,
        metadata=doc(
            NOTIFICATIONS,
            "How long a recorded event waits for the message write it announces (written right after it); an event "
            "whose message never shows it by then is removed: the writer died before the change was made.",
            _seconds,
        ),
    )
    notify_batch: int = field(
        default=50,
        metadata=doc(
            NOTIFICATIONS,
            "Outbox items a worker handles at once; their writes (claims, outcomes) go to CouchDB together, up to "
            "this many per request.",
            _int(1, 1000),
        ),
    )
    email_voicemail_deleted: bool = field(
        default=False,
        metadata=doc(
            NOTIFICATIONS,
            "Also email the box's recipients when a message is deleted (teletype's `voicemail_deleted`, which "
            "Kazoo ships switched off).",
            _bool,
        ),
    )
    webhook_timeout_s: float = field(
        default=10.0, metadata=doc(NOTIFICATIONS, "How long a webhook receiver may take to answer.", _seconds)
    )
    webhook_disable_after: int = field(
        default=6,
        metadata=doc(
            NOTIFICATIONS,
            "Consecutive failed deliveries that disable a hook (Kazoo's `webhooks.attempt_failure_count`).",
            _int(1),
        ),
    )
    smtp_url: str | None = field(
        default=None,
        metadata=doc(
            NOTIFICATIONS,
            "SMTP server for voicemail-to-email: `smtp://user:pass@host:587` (STARTTLS when offered) or "
            "`smtps://user:pass@host:465`. Unset: no email.",
            _smtp_url,
            secret=True,
        ),
    )
    smtp_from: str = field(
        default_factory=lambda: f"no_reply@{socket.gethostname()}",
        metadata=doc(
            NOTIFICATIONS, "The From address of voicemail-to-email.", _email, shown_default="no_reply@<host name>"
        ),
    )
    templates_dir: Path | None = field(
        default=None,
        metadata=doc(
            NOTIFICATIONS,
            "A folder whose `<template>.subject`/`.text`/`.html` files (`voicemail_to_email`, `voicemail_full`, "
            "`voicemail_deleted`) replace the bundled templates.",
            _directory,
        ),
    )

    @property
    def uses_bundled_couch(self) -> bool:
        return self.couch_url is None


def setting_fields() -> list[tuple[dataclasses.Field[Any], SettingInfo]]:
    """Every setting with its declaration, in declaration order."""
    return [(item, item.metadata["setting"]) for item in dataclasses.fields(Settings)]


def env_name(name: str) -> str:
    return PREFIX + name.upper()


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment).

    ``overrides`` (keyword = Settings field) win over the environment; the CLI uses them for flags.
    Raises :class:`ConfigError` naming every invalid variable at once.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, object] = {}
    for item, info in setting_fields():
        raw = env.get(env_name(item.name))
        if raw is None or raw == "":
            continue
        try:
            values[item.name] = info.parse(raw)
        except ValueError as exc:
            shown = "(secret)" if info.secret else repr(raw)
            problems.append(f"{env_name(item.name)}={shown} {exc}")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)  # type: ignore[arg-type]
