"""The migrator over every account streams them a page at a time into its workers: it migrates its first message
long before it has read the last page of accounts, and memory holds pages, not the cluster's list."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from migration_support import TIMEZONE, clean_box

from kazoo_vm import devserver
from kazoo_vm.config import Settings
from kazoo_vm.domain import accounts
from kazoo_vm.domain.legacy.outcomes import Options
from kazoo_vm.events import Events, MessageChange, MessageEvent
from kazoo_vm.migrate import driver
from kazoo_vm.storage.couch import CouchStore

ACCOUNTS = 20


class Journal(CouchStore):
    """A real store that notes each page read of the accounts listing in ``journal``."""

    def __init__(self, url: str, journal: list[str]) -> None:
        super().__init__(url)
        self.journal = journal

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        if "/_view/listing_by_id" in path:
            self.journal.append("page")
        return await super()._json(method, path, params=params, body=body, headers=headers)


async def test_every_account_run_migrates_before_reading_the_last_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "ACCOUNT_PAGE", 2)
    cache = Path(os.environ.get("KAZOO_VM_DEVSERVER_CACHE", Path(tempfile.gettempdir()) / "kazoo-vm-devserver"))
    server = devserver.start(port=0, data_dir=None, cache_dir=cache)
    journal: list[str] = []
    store = Journal(server.url, journal)
    try:
        for index in range(ACCOUNTS):
            account, _ = await accounts.create_account(store, name=f"streamed {index}")
            await clean_box(store, account.id, "streamed", 1)
        journal.clear()

        async def heard(event: MessageEvent) -> None:
            if event.change is MessageChange.MIGRATED:
                journal.append("migrated")

        report = await driver.migrate(
            store,
            driver.Selection(),
            Settings(default_timezone=TIMEZONE),
            options=Options(),
            workers=1,
            events=Events([heard]),
        )
    finally:
        await store.close()
        server.stop()

    assert report.totals()["migrated"] == ACCOUNTS
    pages = journal.count("page")
    assert pages == ACCOUNTS // 2 + 1  # full pages, then the empty one that ends the listing
    first = journal.index("migrated")
    assert journal[:first].count("page") <= pages // 2
