"""The configuration reference is generated from the settings' declarations, and ``kazoo-vm config`` masks secrets."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from kazoo_vm import cli
from kazoo_vm.config import PREFIX, ConfigError, SettingInfo, Settings, load_settings, setting_fields
from kazoo_vm.config_reference import MASK, effective, reference_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_every_setting_is_declared_with_documentation() -> None:
    names = [item.name for item in dataclasses.fields(Settings)]
    declared = setting_fields()
    assert [item.name for item, _ in declared] == names
    for item, info in declared:
        assert isinstance(info, SettingInfo), f"{item.name} has no documentation"
        assert len(info.doc) > 20 and info.doc.endswith("."), f"{item.name} needs a sentence of documentation"


def test_docs_configuration_md_is_generated_from_the_declarations() -> None:
    assert DOCS.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is out of date: kazoo-vm config --reference > docs/configuration.md"
    )
    for item, _ in setting_fields():
        assert f"`{PREFIX}{item.name.upper()}`" in reference_markdown()


def test_every_documented_variable_is_read() -> None:
    documented = {line.split("`")[1] for line in reference_markdown().splitlines() if line.startswith("| `")}
    environ = {name: "not valid for any setting \x00" for name in documented}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    # Every variable is parsed (so every one is reported invalid, save free-form ones that accept anything).
    message = str(caught.value)
    free_form = {"KAZOO_VM_DATA_DIR", "KAZOO_VM_DEVSERVER_CACHE", "KAZOO_VM_HOST", "KAZOO_VM_COUCH_HOST"}
    free_form |= {"KAZOO_VM_NODE_NAME", "KAZOO_VM_KAZOO_VERSION", "KAZOO_VM_METRICS_TOKEN"}
    for name in documented - free_form:
        assert name in message, name


def test_config_prints_effective_settings_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KAZOO_VM_COUCH_URL", "http://admin:couch-secret@db.example:5984")
    monkeypatch.setenv("KAZOO_VM_METRICS_TOKEN", "scrape-secret")
    monkeypatch.setenv("KAZOO_VM_PORT", "9001")
    assert cli.main(["config"]) == 0
    text = capsys.readouterr().out
    assert "couch-secret" not in text and "scrape-secret" not in text
    assert f"KAZOO_VM_COUCH_URL=http://admin:{MASK}@db.example:5984" in text.splitlines()
    assert f"KAZOO_VM_METRICS_TOKEN={MASK}" in text.splitlines()
    assert "KAZOO_VM_PORT=9001" in text.splitlines()
    assert "KAZOO_VM_SYNC_DESIGN_DOCS=true" in text.splitlines()
    assert len(text.splitlines()) == len(setting_fields())

    assert cli.main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["KAZOO_VM_PORT"] == 9001 and shown["KAZOO_VM_METRICS_TOKEN"] == MASK


def test_secrets_unset_stay_unset_and_a_url_without_password_is_shown_whole() -> None:
    shown = effective(load_settings({"KAZOO_VM_COUCH_URL": "http://127.0.0.1:5984"}))
    assert shown["KAZOO_VM_COUCH_URL"] == "http://127.0.0.1:5984"
    assert shown["KAZOO_VM_METRICS_TOKEN"] is None


def test_an_invalid_secret_is_reported_without_its_value() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"KAZOO_VM_COUCH_URL": "ftp://admin:couch-secret@nowhere"})
    assert "KAZOO_VM_COUCH_URL" in str(caught.value) and "couch-secret" not in str(caught.value)
