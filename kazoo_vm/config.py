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

    # --- the start-up walk over every database (only when our design documents changed) ---
    # KAZOO_VM_DESIGN_SYNC_WORKERS (default 2): databases brought up to date at once by the walk.
    design_sync_workers: int = 2
    # KAZOO_VM_DESIGN_SYNC_PAGE (default 500): database names read per _all_dbs request (and per checkpoint).
    design_sync_page: int = 500

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
    # the start-up walk over every database
    read("design_sync_workers", _int(1, 64))
    read("design_sync_page", _int(1, 10_000))
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    values.update({key: value for key, value in overrides.items() if value is not None})
    return Settings(**values)  # type: ignore[arg-type]
