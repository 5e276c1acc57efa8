"""Who a request is, once its credentials were checked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuthContext:
    """The caller: the token to echo in the envelope (None for Basic credentials), its account and its user."""

    token: str | None
    account_id: str
    owner_id: str | None = None
