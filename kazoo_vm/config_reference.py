"""The settings, as documentation (``docs/configuration.md``) and as the effective values (``kazoo-vm config``).

Both are generated from the declarations in :mod:`kazoo_vm.config`, the one source of what a setting is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kazoo_vm.config import SettingInfo, Settings, env_name, setting_fields

MASK = "********"

HEADER = """# Configuration

kazoo_vm reads its settings from environment variables, once, at start-up, and refuses to start when any is
invalid (naming every invalid variable at once). `kazoo-vm config` prints the settings in effect, secrets masked.

This file is generated from the settings' declarations in `kazoo_vm/config.py`; regenerate it with
`kazoo-vm config --reference > docs/configuration.md` (a test fails when it is out of date).
"""


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by the mask."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:{MASK}@{host}", parts.path, parts.query, parts.fragment))


def shown(value: Any, info: SettingInfo) -> Any:
    """A setting's value as it may be printed: secrets masked (a URL keeps all but its password)."""
    if value is None:
        return None
    if info.secret:
        if isinstance(value, str) and "://" in value:
            return mask_url(value)
        return MASK
    if isinstance(value, Path):
        return str(value)
    return value


def effective(settings: Settings) -> dict[str, Any]:
    """Every setting in effect, by environment variable name, secrets masked."""
    return {env_name(item.name): shown(getattr(settings, item.name), info) for item, info in setting_fields()}


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def effective_text(settings: Settings) -> str:
    """``NAME=value`` lines, in the form the environment takes them."""
    return "\n".join(f"{name}={_env_value(value)}" for name, value in effective(settings).items())


def effective_json(settings: Settings) -> str:
    return json.dumps(effective(settings), indent=2)


def _default_text(item: Any, info: SettingInfo) -> str:
    if info.shown_default is not None:
        return f"`{info.shown_default}`"
    default = item.default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return "`true`" if default else "`false`"
    return f"`{default}`"


def reference_markdown() -> str:
    """``docs/configuration.md``: one table per group of settings."""
    groups: dict[str, list[str]] = {}
    for item, info in setting_fields():
        doc = info.doc.replace("|", "\\|")
        secret = " **Secret**: masked by `kazoo-vm config`, never logged." if info.secret else ""
        groups.setdefault(info.group, []).append(
            f"| `{env_name(item.name)}` | {_default_text(item, info)} | {doc}{secret} |"
        )
    parts = [HEADER]
    for group, rows in groups.items():
        parts.append(f"## {group}\n\n| Variable | Default | Meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return "\n".join(parts)
