"""``kazoo-vm config``: the settings in effect (secrets masked), or the configuration reference."""

from __future__ import annotations

import argparse
from typing import Any

from kazoo_vm.config import Settings
from kazoo_vm.config_reference import effective_json, effective_text, reference_markdown


def _config(settings: Settings, args: argparse.Namespace) -> int:
    if args.reference:
        print(reference_markdown(), end="")
    elif args.json:
        print(effective_json(settings))
    else:
        print(effective_text(settings))
    return 0


def add_command(commands: Any) -> None:
    config = commands.add_parser(
        "config", help="print the settings in effect (from KAZOO_VM_* variables), secrets masked"
    )
    shape = config.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="as a JSON object")
    shape.add_argument(
        "--reference", action="store_true", help="print the configuration reference (docs/configuration.md)"
    )
    config.set_defaults(run=_config)
