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


def test_the_design_sync_walk_settings_default_and_validate() -> None:
    assert load_settings({}).design_sync_workers == 2
    assert load_settings({"KAZOO_VM_DESIGN_SYNC_PAGE": "100"}).design_sync_page == 100
    with pytest.raises(ConfigError, match="KAZOO_VM_DESIGN_SYNC_WORKERS"):
        load_settings({"KAZOO_VM_DESIGN_SYNC_WORKERS": "0"})
