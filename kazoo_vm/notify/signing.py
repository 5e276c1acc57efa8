"""The signature on every webhook delivery (docs/webhooks.md): HMAC-SHA256, keyed with the hook's secret, of
``<timestamp>.<body>``, where the timestamp is the Unix time of sending in seconds and the body the bytes sent
(for a ``get`` hook, the query string). A receiver recomputes it and refuses old timestamps to stop replays."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Kazoo-VM-Timestamp"
SIGNATURE_HEADER = "X-Kazoo-VM-Signature"
EVENT_HEADER = "X-Kazoo-VM-Event"
DELIVERY_HEADER = "X-Kazoo-VM-Delivery"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header)
