"""Legacy (pre-4.0) message ids in the message API — the seam between the message API and the migrator.

Kazoo before 4.0 kept message metadata in the box document's ``messages`` array (32-hex ``media_id``) and the
audio in ``private_media`` documents. The message API calls these functions; the migrator (issue #4) gives them
their real behaviour. Until then they find nothing, so legacy ids answer 404 and listings show only MODB messages.
"""

from __future__ import annotations

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account
from kazoo_vm.storage.couch import CouchStore, JsonDict


async def resolve_legacy_id(
    store: CouchStore, settings: Settings, account: Account, box: JsonDict, legacy_id: str
) -> str | None:
    """The MODB id for a legacy 32-hex message id of ``box``: migrate the entry first if it is still in the
    box's ``messages`` array, or find the document already migrated from it (``pvt_previous_id``).
    None when the id is unknown to this box."""
    del store, settings, account, box, legacy_id
    return None


async def legacy_summaries(store: CouchStore, settings: Settings, account: Account, box: JsonDict) -> list[JsonDict]:
    """Listing items (same shape as ``listing_by_mailbox`` values) for the box's not-yet-migrated entries."""
    del store, settings, account, box
    return []
