"""Who a request is, once its credentials were checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AuthContext:
    token: str | None
    account_id: str
    owner_id: str | None = None
    method: str = "cb_api_auth"
    claims: dict[str, Any] = field(default_factory=dict)
