"""``kazoo-vm doctor [--fix]``: check the configured CouchDB, print a report, exit 1 while problems remain.

The progress bar (databases examined) shows on a terminal only; the report goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from kazoo_vm.config import Settings
from kazoo_vm.doctor.checks import Report, diagnose
from kazoo_vm.progress import BarProgress
from kazoo_vm.runtime import couch_for
from kazoo_vm.storage.couch import CouchStore

PROBLEMS_EXIT = 1


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "doctor",
        help="check the configured CouchDB for what kazoo_vm and Kazoo need (--fix repairs what is safe)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="write missing or changed design documents, delete orphaned mailbox claims, finish half-finished "
        "moves, restrict system_auth to admins; and say what was done",
    )
    parser.set_defaults(run=run_command)


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    progress = BarProgress(enabled=sys.stderr.isatty(), desc="checking", unit="db")
    try:
        with couch_for(settings) as ready:
            assert ready.couch_url is not None
            report = asyncio.run(_diagnose(ready, ready.couch_url, fix=args.fix, progress=progress))
    finally:
        progress.close()
    print(report.render())
    return 0 if report.ok else PROBLEMS_EXIT


async def _diagnose(settings: Settings, couch_url: str, *, fix: bool, progress: BarProgress) -> Report:
    store = CouchStore(couch_url, timeout_s=60.0)
    try:
        return await diagnose(store, settings, fix=fix, progress=progress)
    finally:
        await store.close()
