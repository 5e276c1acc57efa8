"""Every setting of kazoo_vm, read from the environment in one place and validated at start-up.

Nothing else in the package reads ``os.environ``: the CLI calls :func:`load_settings` once and passes the
resulting :class:`Settings` down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "KAZOO_VM_"

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


@dataclass(frozen=True)
class Settings:
    # Where CouchDB is. None means: start the bundled development server.
    couch_url: str | None = None
    data_dir: Path = Path("./var")
    couch_host: str = "127.0.0.1"
    couch_port: int = 15984
    devserver_cache: Path = field(default_factory=lambda: Path.home() / ".cache" / "kazoo-vm")

    host: str = "127.0.0.1"
    port: int = 8000

    # Kazoo's crossbar.auth token_auth_expiry_s default.
    token_expiry_s: int = 3600
    # Kazoo's crossbar.max_upload_size default.
    max_upload_bytes: int = 8_000_000
    # Kazoo's crossbar.pagination_page_size default.
    page_size: int = 50
    # callflow voicemail.message_retention_duration (days) and voicemail.max_message_count.
    retention_days: int = 93
    max_message_count: int = 100
    # crossbar.maximum_range: 31 days + 1 hour.
    maximum_range_s: int = 2_682_000
    # Last resort of Kazoo's timezone lookup chain (box → owner → account → system).
    default_timezone: str = "America/Los_Angeles"
    # Hashed into the envelope's ``node`` (Kazoo: the Erlang node name); also written as messages' pvt_node.
    node_name: str = field(default_factory=lambda: f"kazoo_vm@{socket.gethostname()}")
    kazoo_version: str = "4.3.142"
    log_level: str = "INFO"
    # Compare every database's design documents with couch_design_docs/ at start-up (in the background).
    sync_design_docs: bool = True
    # Legacy migration (kazoo-vm migrate): legacy entries per batch, and boxes migrated at once. Kazoo's
    # callflow voicemail.migrate_max_worker is 10; its batch of 2000 carried no audio, ours does, so it is smaller.
    migrate_batch_size: int = 100
    migrate_workers: int = 10

    # -- notifications (voicemail-to-email and webhooks) --
    # KAZOO_VM_NOTIFY_WORKERS (1): delivery workers in each serve process; 0 only queues (another process delivers).
    notify_workers: int = 1
    # KAZOO_VM_NOTIFICATIONS_DB (kazoo_vm_notifications): the outbox database.
    notifications_db: str = "kazoo_vm_notifications"
    # KAZOO_VM_NOTIFY_MAX_ATTEMPTS (5): attempts of one email before it is marked failed.
    notify_max_attempts: int = 5
    # KAZOO_VM_NOTIFY_BACKOFF_S (30): the pause after a first failed attempt; doubled each time, ±50% jitter.
    notify_backoff_s: float = 30.0
    # KAZOO_VM_NOTIFY_BACKOFF_MAX_S (3600): the longest pause between two attempts.
    notify_backoff_max_s: float = 3600.0
    # KAZOO_VM_NOTIFY_LEASE_S (120): how long a claimed item is its worker's before another may take it.
    notify_lease_s: float = 120.0
    # KAZOO_VM_WEBHOOK_TIMEOUT_S (10): how long a webhook receiver may take to answer.
    webhook_timeout_s: float = 10.0
    # KAZOO_VM_WEBHOOK_DISABLE_AFTER (6): consecutive failed deliveries that disable a hook (Kazoo's
    # webhooks.attempt_failure_count).
    webhook_disable_after: int = 6
    # KAZOO_VM_SMTP_URL (none: no email): smtp://user:pass@host:587 (STARTTLS when offered) or smtps://host:465.
    smtp_url: str | None = None
    # KAZOO_VM_SMTP_FROM (no_reply@<node host>): the From address of voicemail-to-email.
    smtp_from: str = field(default_factory=lambda: f"no_reply@{socket.gethostname()}")
    # KAZOO_VM_TEMPLATES_DIR (none): a folder whose voicemail_to_email.{subject,text,html} override the bundled ones.
    templates_dir: Path | None = None

    @property
    def uses_bundled_couch(self) -> bool:
        return self.couch_url is None


def _int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def cast(raw: str) -> int:
        value = int(raw.strip())
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise ValueError(f"must be at least {minimum}{upper}")
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


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def _seconds(raw: str) -> float:
    value = float(raw.strip())
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _smtp_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be an smtp:// or smtps:// URL such as smtp://user:secret@mail.example.com:587")
    return raw.strip()


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from ``environ`` (default: the process environment).

    ``overrides`` (keyword = Settings field) win over the environment; the CLI uses them for flags.
    Raises :class:`ConfigError` naming every invalid variable at once.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, object] = {}

    def read(name: str, cast: Callable[[str], T]) -> None:
        raw = env.get(PREFIX + name.upper())
        if raw is None or raw == "":
            return
        try:
            values[name] = cast(raw)
        except ValueError as exc:
            problems.append(f"{PREFIX}{name.upper()}={raw!r} {exc}")

    read("couch_url", _url)
    read("data_dir", lambda raw: Path(raw).expanduser())
    read("couch_host", _non_empty)
    read("couch_port", _int(0, 65535))
    read("devserver_cache", lambda raw: Path(raw).expanduser())
    read("host", _non_empty)
    read("port", _int(0, 65535))
    read("token_expiry_s", _int(1))
    read("max_upload_bytes", _int(1))
    read("page_size", _int(1))
    read("retention_days", _int(1))
    read("max_message_count", _int(0))
    read("maximum_range_s", _int(1))
    read("default_timezone", _timezone)
    read("node_name", _non_empty)
    read("log_level", _log_level)
    read("sync_design_docs", _bool)
    read("migrate_batch_size", _int(1))
    read("migrate_workers", _int(1))
    # notifications
    read("notify_workers", _int(0))
    read("notifications_db", _non_empty)
    read("notify_max_attempts", _int(1))
    read("notify_backoff_s", _seconds)
    read("notify_backoff_max_s", _seconds)
    read("notify_lease_s", _seconds)
    read("webhook_timeout_s", _seconds)
    read("webhook_disable_after", _int(1))
    read("smtp_url", _smtp_url)
    read("smtp_from", _non_empty)
    read("templates_dir", lambda raw: Path(raw).expanduser())
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)  # type: ignore[arg-type]
