"""The operator's documents and deployment files name only real settings and document every metric."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from kazoo_vm.config import env_name, load_settings, setting_fields
from kazoo_vm.observability.metrics import exposition

ROOT = Path(__file__).resolve().parent.parent
OPERATOR_FILES = [ROOT / "docs" / "operating.md", *sorted((ROOT / "deploy").iterdir())]


def test_every_variable_named_for_operators_is_a_setting() -> None:
    settings = {env_name(item.name) for item, _ in setting_fields()}
    for path in OPERATOR_FILES:
        named = set(re.findall(r"KAZOO_VM_[A-Z_]+[A-Z]", path.read_text(encoding="utf-8")))
        assert named, path
        assert named <= settings, f"{path.name}: {sorted(named - settings)}"


def test_every_metric_of_the_service_is_documented() -> None:
    operating = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    families = list(text_string_to_metric_families(exposition()[0].decode()))
    # (``*_created`` timestamps come along with every counter and histogram: not metrics of their own.)
    ours = [f for f in families if f.name.startswith("kazoo_vm_") and not f.name.endswith("_created")]
    assert len(ours) >= 8
    for family in ours:
        shown = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{shown}`" in operating, shown


def test_systemd_units_wait_longer_than_the_grace_period_and_signal_the_main_process_only() -> None:
    grace = load_settings({}).shutdown_grace_s
    for unit in ("kazoo-vm.service", "kazoo-vm@.service"):
        text = (ROOT / "deploy" / unit).read_text(encoding="utf-8")
        timeout = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
        assert timeout > grace
        assert "KillMode=mixed" in text and "ExecStart=/opt/kazoo-vm/bin/kazoo-vm serve" in text
