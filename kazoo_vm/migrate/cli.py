"""``kazoo-vm migrate``: move legacy (pre-4.0) voicemail into monthly databases, as an operator runs it.

Safe to stop at any moment (Ctrl-C, kill, crash) and run again: the rerun converges on the same result. The
progress bar shows on a terminal only; the summary goes to stdout and the full account of the run to
``--report``. The exit status is 1 when any message could not be migrated (they stay in their box's array with
``migration_error``), 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from kazoo_vm.config import Settings
from kazoo_vm.domain.legacy.outcomes import Options
from kazoo_vm.migrate.driver import Selection, migrate
from kazoo_vm.migrate.report import Report
from kazoo_vm.progress import BarProgress
from kazoo_vm.runtime import couch_for, wait_for_couch
from kazoo_vm.storage.couch import CouchStore

FAILED_EXIT = 1


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "migrate",
        help="migrate legacy (pre-4.0) voicemail from box documents into monthly databases",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--account",
        dest="accounts",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="account id(s) to migrate (default: every account in the accounts database)",
    )
    parser.add_argument(
        "--box",
        dest="boxes",
        action="extend",
        nargs="+",
        default=[],
        metavar="ID",
        help="only these box ids (default: every box with legacy messages)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be done; write nothing to CouchDB")
    parser.add_argument("--report", type=Path, metavar="FILE", help="write a JSON report of the run")
    parser.add_argument(
        "--batch-size",
        type=_positive,
        metavar="N",
        help="legacy messages per batch (KAZOO_VM_MIGRATE_BATCH_SIZE, default 100)",
    )
    parser.add_argument(
        "--workers", type=_positive, metavar="N", help="boxes migrated at once (KAZOO_VM_MIGRATE_WORKERS, default 10)"
    )
    parser.add_argument(
        "--purge-legacy-media",
        action="store_true",
        help="delete each legacy media document once its audio copy is verified (default: leave it)",
    )
    parser.set_defaults(run=run_command)


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    options = Options(dry_run=args.dry_run, purge_legacy_media=args.purge_legacy_media)
    selection = Selection(account_ids=tuple(args.accounts), box_ids=tuple(args.boxes))
    progress = BarProgress(enabled=sys.stderr.isatty())
    try:
        with couch_for(settings) as ready:
            assert ready.couch_url is not None
            report = asyncio.run(
                _migrate(ready, selection, options, batch_size=args.batch_size, workers=args.workers, progress=progress)
            )
    finally:
        progress.close()
    if args.report is not None:
        report.write(args.report)
    report.print_summary(sys.stdout)
    return 0 if report.ok else FAILED_EXIT


async def _migrate(
    settings: Settings,
    selection: Selection,
    options: Options,
    *,
    batch_size: int | None,
    workers: int | None,
    progress: BarProgress,
) -> Report:
    # No prepare_couch here: a dry run must not write, and the migrator creates only the MODBs it fills.
    assert settings.couch_url is not None
    # Batch work with no client waiting: view builds over big legacy databases may take a while to answer.
    store = CouchStore(settings.couch_url, timeout_s=max(60.0, settings.couch_timeout_s))
    try:
        await wait_for_couch(store)
        return await migrate(
            store, selection, settings, options=options, batch_size=batch_size, workers=workers, progress=progress
        )
    finally:
        await store.close()
