"""``kazoo-vm``: serve the API, manage accounts and users, create next month's databases ahead of time, migrate
legacy voicemail, see notifications."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from kazoo_vm import config_cli, devserver, serving
from kazoo_vm.app import create_app
from kazoo_vm.config import ConfigError, Settings, load_settings
from kazoo_vm.config_reference import mask_url
from kazoo_vm.doctor.cli import add_command as add_doctor_command
from kazoo_vm.domain import accounts
from kazoo_vm.errors import KazooError
from kazoo_vm.logs import configure_logging
from kazoo_vm.migrate.cli import add_command as add_migrate_command
from kazoo_vm.notify.cli import add_command as add_notifications_command
from kazoo_vm.runtime import couch_for, prepare_couch, wait_for_couch
from kazoo_vm.storage import naming, rollover
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.errors import StorageError

log = logging.getLogger("kazoo_vm")


def version() -> str:
    try:
        return metadata.version("kazoo-vm")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def command_name() -> str:
    """How to run another ``kazoo-vm`` command beside this one: the checkout's script when this code runs from a
    checkout, the installed command otherwise."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "kazoo-vm"
    if not script.is_file():
        return "kazoo-vm"
    return "./scripts/kazoo-vm" if Path.cwd().resolve() == script.parents[1] else str(script)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers or settings.workers,
    )
    couch_died: list[int] = []

    def bundled_couch_died(code: int) -> None:
        # No silent half-service: stop serving and exit non-zero, so a supervisor restarts the whole.
        log.error("the bundled CouchDB exited (code %s) while serving; shutting down", code)
        couch_died.append(code)
        os.kill(os.getpid(), signal.SIGTERM)

    def terminated_early(signum: int, frame: object) -> None:
        # Until run_app installs its own handler: SIGTERM (ours or an operator's) still shuts down cleanly.
        raise SystemExit(3 if couch_died else 128 + signum)

    signal.signal(signal.SIGTERM, terminated_early)
    with couch_for(settings, announce=True, on_couch_exit=bundled_couch_died) as ready:
        base = f"http://{ready.host}:{ready.port}"
        print(
            f"kazoo_vm serving the Kazoo 4.3 vmboxes API on {base}/v2\n"
            f"CouchDB: {mask_url(ready.couch_url or '')}\n"
            "Get a token (in another terminal):\n"
            f"  {command_name()} accounts create --name 'My Company'      # prints account_id and api_key\n"
            f'  curl -s -X PUT {base}/v2/api_auth -d \'{{"data":{{"api_key":"<api_key>"}}}}\'\n'
            "  # the token is the response's auth_token; send it as X-Auth-Token",
            flush=True,
        )
        code = serving.serve(ready, create_app)
    return 3 if couch_died else code


def _run(settings: Settings, work: Callable[[CouchStore], Awaitable[Any]]) -> Any:
    with couch_for(settings) as ready:
        assert ready.couch_url is not None
        couch_url = ready.couch_url

        async def main() -> Any:
            store = CouchStore(couch_url, timeout_s=settings.couch_timeout_s)
            try:
                await wait_for_couch(store)
                await prepare_couch(store)
                return await work(store)
            finally:
                await store.close()

        return asyncio.run(main())


def _accounts_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(store: CouchStore) -> dict[str, Any]:
        account, api_key = await accounts.create_account(store, name=args.name, realm=args.realm, parent_id=args.parent)
        return {"account_id": account.id, "api_key": api_key, "name": account.name, "realm": account.realm}

    print(json.dumps(_run(settings, work), indent=2))
    return 0


def _new_password(args: argparse.Namespace) -> str:
    """The password from ``--password-file`` (its first line), ``--password``, or a prompt (asked twice)."""
    if args.password_file is not None:
        with open(args.password_file, encoding="utf-8") as file:
            password = file.readline().rstrip("\r\n")
    elif args.password is not None:
        password = str(args.password)
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("password again: ") != password:
            raise SystemExit("error: the passwords differ")
    if not password:
        raise SystemExit("error: the password is empty")
    return password


def _users_create(settings: Settings, args: argparse.Namespace) -> int:
    password = _new_password(args)

    async def work(store: CouchStore) -> dict[str, Any]:
        user = await accounts.create_user(store, account_id=args.account, username=args.username, password=password)
        return {"user_id": user["_id"], "account_id": args.account, "username": user["username"]}

    print(json.dumps(_run(settings, work), indent=2))
    return 0


def _month(raw: str) -> tuple[int, int] | str:
    """``next``, ``current``, ``YYYYMM`` or ``YYYY-MM``."""
    if raw in ("next", "current"):
        return raw
    digits = raw.replace("-", "")
    if len(digits) != 6 or not digits.isdigit() or not 1 <= int(digits[4:]) <= 12:
        raise argparse.ArgumentTypeError("must be next, current, YYYYMM or YYYY-MM")
    return int(digits[:4]), int(digits[4:])


def _rate(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number of databases per second")
    return value


def _modbs_precreate(settings: Settings, args: argparse.Namespace) -> int:
    this_month = naming.year_month(naming.now_gregorian())
    month = args.month
    if month == "current":
        month = this_month
    elif month == "next":
        month = rollover.next_month(*this_month)

    async def work(store: CouchStore) -> rollover.PrecreateReport:
        return await rollover.precreate_modbs(store, month[0], month[1], rate=args.rate)

    report: rollover.PrecreateReport = _run(settings, work)
    print(json.dumps(dataclasses.asdict(report), indent=2))
    return 1 if report.failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kazoo-vm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kazoo-vm {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="serve the API (starts the bundled CouchDB when KAZOO_VM_COUCH_URL is unset)"
    )
    serve.add_argument("--host", help="listen address (KAZOO_VM_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (KAZOO_VM_PORT, default 8000)")
    serve.add_argument(
        "--workers", type=serving.worker_count, help="processes sharing the port (KAZOO_VM_WORKERS, default 1)"
    )
    serve.set_defaults(run=_serve)

    account_cmd = commands.add_parser("accounts", help="manage accounts").add_subparsers(dest="action", required=True)
    create = account_cmd.add_parser("create", help="create an account; prints account_id, api_key and realm")
    create.add_argument("--name", required=True)
    create.add_argument("--realm")
    create.add_argument("--parent", help="parent account id (the new account is its descendant)")
    create.set_defaults(run=_accounts_create)

    user_cmd = commands.add_parser("users", help="manage users").add_subparsers(dest="action", required=True)
    create_user = user_cmd.add_parser("create", help="create a user; prints user_id")
    create_user.add_argument("--account", required=True)
    create_user.add_argument("--username", required=True)
    secret = create_user.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-file", help="read the password from the first line of this file ('-' is not special)"
    )
    secret.add_argument(
        "--password",
        help="the password itself: visible to every user of this machine (ps, /proc, shell history); "
        "prefer --password-file or the prompt (neither given)",
    )
    create_user.set_defaults(run=_users_create)

    modbs_cmd = commands.add_parser("modbs", help="monthly message databases").add_subparsers(
        dest="action", required=True
    )
    precreate = modbs_cmd.add_parser(
        "precreate",
        help="create every account's MODB of a month ahead of time, with design documents and built indexes",
    )
    precreate.add_argument("--month", type=_month, default="next", help="next (default), current, YYYYMM or YYYY-MM")
    precreate.add_argument("--rate", type=_rate, default=20.0, help="at most N databases a second (default 20)")
    precreate.set_defaults(run=_modbs_precreate)

    add_migrate_command(commands)
    add_doctor_command(commands)
    config_cli.add_command(commands)
    add_notifications_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        result: int = args.run(settings, args)
    except KazooError as exc:
        print(json.dumps({"error": exc.message, "data": exc.data}), file=sys.stderr)
        return 1
    except (StorageError, devserver.DevServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
