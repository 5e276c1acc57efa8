"""Settings come from KAZOO_VM_* variables, validated all at once at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from kazoo_vm.config import ConfigError, load_settings


def test_defaults_follow_kazoo_settings() -> None:
    settings = load_settings({})
    assert settings.couch_url is None and settings.uses_bundled_couch
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.token_expiry_s == 3600
    assert settings.max_upload_bytes == 8_000_000
    assert settings.page_size == 50
    assert settings.retention_days == 93
    assert settings.max_message_count == 100
    assert settings.data_dir == Path("./var")


def test_values_are_read_and_cast() -> None:
    settings = load_settings(
        {
            "KAZOO_VM_COUCH_URL": "http://admin:secret@127.0.0.1:5984/",
            "KAZOO_VM_PORT": "9000",
            "KAZOO_VM_DATA_DIR": "/srv/vm",
            "KAZOO_VM_DEFAULT_TIMEZONE": "Europe/Paris",
            "KAZOO_VM_LOG_LEVEL": "debug",
        }
    )
    assert settings.couch_url == "http://admin:secret@127.0.0.1:5984"
    assert settings.port == 9000
    assert settings.data_dir == Path("/srv/vm")
    assert settings.default_timezone == "Europe/Paris"
    assert settings.log_level == "DEBUG"


def test_every_invalid_variable_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "KAZOO_VM_COUCH_URL": "ftp://nowhere",
                "KAZOO_VM_PORT": "eighty",
                "KAZOO_VM_PAGE_SIZE": "0",
                "KAZOO_VM_DEFAULT_TIMEZONE": "Mars/Olympus",
            }
        )
    message = str(caught.value)
    for name in ("KAZOO_VM_COUCH_URL", "KAZOO_VM_PORT", "KAZOO_VM_PAGE_SIZE", "KAZOO_VM_DEFAULT_TIMEZONE"):
        assert name in message


def test_explicit_overrides_win_over_the_environment() -> None:
    settings = load_settings({"KAZOO_VM_PORT": "9000"}, port=9100)
    assert settings.port == 9100


def test_design_document_sync_can_be_switched_off_strictly() -> None:
    assert load_settings({"KAZOO_VM_SYNC_DESIGN_DOCS": "false"}).sync_design_docs is False
    assert load_settings({}).sync_design_docs is True
    with pytest.raises(ConfigError):
        load_settings({"KAZOO_VM_SYNC_DESIGN_DOCS": "maybe"})


def test_notification_settings_are_read_and_checked() -> None:
    settings = load_settings(
        {
            "KAZOO_VM_SMTP_URL": "smtps://user:secret@mail.example.com:465",
            "KAZOO_VM_SMTP_FROM": "vm@example.com",
            "KAZOO_VM_NOTIFY_BACKOFF_S": "0.5",
            "KAZOO_VM_WEBHOOK_DISABLE_AFTER": "4",
            "KAZOO_VM_NOTIFY_WORKERS": "0",
        }
    )
    assert settings.smtp_url == "smtps://user:secret@mail.example.com:465" and settings.smtp_from == "vm@example.com"
    assert (settings.notify_backoff_s, settings.webhook_disable_after, settings.notify_workers) == (0.5, 4, 0)
    assert load_settings({}).smtp_url is None and load_settings({}).notify_max_attempts == 5
    with pytest.raises(ConfigError) as raised:
        load_settings({"KAZOO_VM_SMTP_URL": "http://mail.example.com", "KAZOO_VM_NOTIFY_LEASE_S": "-1"})
    assert "KAZOO_VM_SMTP_URL" in str(raised.value) and "KAZOO_VM_NOTIFY_LEASE_S" in str(raised.value)


def test_the_design_sync_walk_settings_default_and_validate() -> None:
    assert load_settings({}).design_sync_workers == 1
    assert load_settings({}).design_sync_share == 0.5
    assert load_settings({"KAZOO_VM_DESIGN_SYNC_SHARE": "1"}).design_sync_share == 1.0
    with pytest.raises(ConfigError, match="KAZOO_VM_DESIGN_SYNC_SHARE"):
        load_settings({"KAZOO_VM_DESIGN_SYNC_SHARE": "0"})
    assert load_settings({"KAZOO_VM_DESIGN_SYNC_PAGE": "100"}).design_sync_page == 100
    with pytest.raises(ConfigError, match="KAZOO_VM_DESIGN_SYNC_WORKERS"):
        load_settings({"KAZOO_VM_DESIGN_SYNC_WORKERS": "0"})


def test_next_month_s_modbs_are_made_ahead_by_default_and_can_be_switched_off() -> None:
    assert load_settings({}).modb_precreate_rate == 20.0
    assert load_settings({}).modb_precreate_days == 3
    assert load_settings({"KAZOO_VM_MODB_PRECREATE_RATE": "0"}).modb_precreate_rate == 0
    with pytest.raises(ConfigError, match="KAZOO_VM_MODB_PRECREATE_DAYS"):
        load_settings({"KAZOO_VM_MODB_PRECREATE_DAYS": "0"})
