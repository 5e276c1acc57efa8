"""``kazoo-vm doctor``: what a CouchDB needs for kazoo_vm and Kazoo, checked, and what is safe repaired.

Server-wide checks first (version, cluster membership and ``n``/``q``, what our credentials may do, ``_security``
of ``system_auth``), then every account database and MODB, a few at a time: design documents in the current form
(and what a sync would rebuild), orphaned mailbox claims, half-finished moves, legacy messages left to migrate.

With ``fix``, the repairs reuse the service's own code: design documents are written as the start-up sync writes
them, a stale claim is deleted only when the claim rules of :mod:`kazoo_vm.domain.vmboxes` call it stale, and a
half-finished move is finished by the move protocol of :mod:`kazoo_vm.domain.messages.transit`. Without
``fix`` the only write is the probe of whether databases may be created: a uniquely named database, created and
deleted at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from kazoo_vm.config import Settings
from kazoo_vm.domain.accounts import Account, load_account
from kazoo_vm.domain.context import Scope
from kazoo_vm.domain.messages import transit
from kazoo_vm.domain.messages.records import move_plan
from kazoo_vm.domain.vmboxes import CLAIM_PREFIX, CLAIM_TYPE, claim_is_held, mailbox_number
from kazoo_vm.errors import KazooError
from kazoo_vm.model import JsonDict
from kazoo_vm.progress import Progress
from kazoo_vm.storage import boxes as stored_boxes
from kazoo_vm.storage import messages as stored_messages
from kazoo_vm.storage import naming, server
from kazoo_vm.storage.couch import CouchStore
from kazoo_vm.storage.design_docs import DATABASE_CLASSES, design_docs, ensure_design_docs
from kazoo_vm.storage.errors import Conflict, DatabaseNotFound, DocumentNotFound, NotFound, StorageError, Unauthorized

# A move younger than this may still be finishing inside a live request: it is not reported (or finished) yet.
MOVE_GRACE_S = 300
# Databases examined at once.
CONCURRENCY = 8
# Databases named per finding; the rest are counted.
SHOWN = 10
# kazoo_vm (and Kazoo 4.3) need CouchDB 3's API: _all_dbs key ranges, cluster-aware databases.
MINIMUM_MAJOR = 3


# The checks whose problems --fix repairs.
FIXABLE = frozenset({"design_docs", "claims", "moves", "system_auth"})


class Level(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    PROBLEM = "problem"


@dataclass
class Finding:
    check: str
    level: Level
    message: str
    details: list[str] = field(default_factory=list)
    fixed: str | None = None  # what --fix did about it

    @property
    def open_problem(self) -> bool:
        return self.level is Level.PROBLEM and self.fixed is None


@dataclass
class Report:
    url: str
    fix: bool
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, level: Level, message: str, details: Iterable[str] = ()) -> Finding:
        finding = Finding(check, level, message, list(details))
        self.findings.append(finding)
        return finding

    def of(self, check: str) -> list[Finding]:
        return [finding for finding in self.findings if finding.check == check]

    @property
    def ok(self) -> bool:
        return not any(finding.open_problem for finding in self.findings)

    def render(self) -> str:
        lines = [f"kazoo-vm doctor: CouchDB at {self.url}" + (" (repairing)" if self.fix else "")]
        width = max((len(finding.check) for finding in self.findings), default=0)
        for finding in self.findings:
            lines.append(f"  {finding.level.value.upper():<8} {finding.check:<{width}}  {finding.message}")
            lines.extend(f"  {'':<8} {'':<{width}}    {detail}" for detail in finding.details)
            if finding.fixed is not None:
                lines.append(f"  {'FIXED':<8} {finding.check:<{width}}  {finding.fixed}")
        problems = sum(1 for finding in self.findings if finding.level is Level.PROBLEM)
        fixed = sum(1 for finding in self.findings if finding.level is Level.PROBLEM and finding.fixed is not None)
        warnings = sum(1 for finding in self.findings if finding.level is Level.WARNING)
        summary = f"{problems} problem(s)"
        if fixed:
            summary += f", {fixed} fixed"
        summary += f", {warnings} warning(s)"
        if not self.fix and any(finding.open_problem and finding.check in FIXABLE for finding in self.findings):
            summary += "; `kazoo-vm doctor --fix` repairs design documents, claims, moves and system_auth's _security"
        lines.append(summary)
        return "\n".join(lines)


def _shown(items: list[str]) -> list[str]:
    more = [f"… and {len(items) - SHOWN} more"] if len(items) > SHOWN else []
    return items[:SHOWN] + more


def _size(num: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num < 1024 or unit == "GiB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} TiB"


def _index_size(info: JsonDict | None) -> int | None:
    """The active size of a view index from ``_design/x/_info`` (CouchDB 3: ``view_index.sizes.active``)."""
    index = (info or {}).get("view_index")
    sizes = index.get("sizes") if isinstance(index, dict) else None
    active = sizes.get("active") if isinstance(sizes, dict) else None
    return active if isinstance(active, int) else None


def _content(doc: JsonDict) -> JsonDict:
    return {key: value for key, value in doc.items() if key not in ("_id", "_rev")}


@dataclass
class _StaleDesign:
    db: str
    design_id: str
    missing: bool
    rebuilds: bool
    index_bytes: int | None  # the current index's size, for a changed design document
    doc_count: int | None  # documents a new index is built over


@dataclass
class _Tally:
    """What the walk over the databases found, folded into findings afterwards."""

    stale_designs: list[_StaleDesign] = field(default_factory=list)
    designs_fixed: int = 0
    orphans: list[str] = field(default_factory=list)
    orphans_fixed: int = 0
    moves: list[str] = field(default_factory=list)
    moves_fixed: int = 0
    legacy_boxes: list[str] = field(default_factory=list)
    legacy_messages: int = 0
    unreadable: list[str] = field(default_factory=list)


class Doctor:
    def __init__(
        self, store: CouchStore, settings: Settings, *, fix: bool = False, progress: Progress | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.fix = fix
        self.progress = progress
        self.report = Report(url=store.base_url, fix=fix)
        self.tally = _Tally()

    async def run(self) -> Report:
        if not await self._server():
            return self.report
        await self._cluster()
        dbs = await self._permissions()
        if dbs is None:
            self.report.add("databases", Level.INFO, "account databases and MODBs not examined: no _all_dbs")
            return self.report
        await self._system_auth(dbs)
        await self._databases(dbs)
        return self.report

    # -- the server --------------------------------------------------------------------------------------------

    async def _server(self) -> bool:
        try:
            info = await self.store.server_info()
        except StorageError as exc:
            self.report.add("server", Level.PROBLEM, f"not reachable with the configured URL: {exc}")
            return False
        version = str(info.get("version", "?"))
        vendor = (info.get("vendor") or {}).get("name", "")
        try:
            major = int(version.split(".")[0])
        except ValueError:
            major = 0
        if major < MINIMUM_MAJOR:
            self.report.add("server", Level.PROBLEM, f"CouchDB {version}: kazoo_vm needs CouchDB 3.x")
        else:
            self.report.add("server", Level.OK, f"CouchDB {version}" + (f" ({vendor})" if vendor else ""))
        if "development" in str(vendor).lower():
            self.report.add("server", Level.INFO, "the bundled development server: not for production data")
        return True

    async def _cluster(self) -> None:
        members = await server.membership(self.store)
        if members is None:
            self.report.add("cluster", Level.INFO, "no cluster membership API")
            return
        connected = set(members.get("all_nodes") or [])
        cluster = list(members.get("cluster_nodes") or [])
        absent = [node for node in cluster if node not in connected]
        strangers = sorted(connected - set(cluster))
        if absent:
            self.report.add("cluster", Level.PROBLEM, f"{len(absent)} of {len(cluster)} member node(s) down", absent)
        else:
            self.report.add("cluster", Level.OK, f"{len(cluster)} node(s), all connected")
        if strangers:
            self.report.add("cluster", Level.WARNING, "connected nodes that are not cluster members", strangers)
        await self._shards(len(cluster))

    async def _shards(self, nodes: int) -> None:
        sharding: JsonDict | None = None
        try:
            sharding = (await server.database_info(self.store, naming.ACCOUNTS_DB)).get("cluster")
        except StorageError:
            sharding = None
        source = f"the {naming.ACCOUNTS_DB} database"
        if not isinstance(sharding, dict):
            sharding = await server.cluster_defaults(self.store)
            source = "the node's defaults"
        if not isinstance(sharding, dict) or "n" not in sharding:
            self.report.add("cluster", Level.INFO, "n and q could not be read")
            return
        n, q = int(sharding["n"]), int(sharding.get("q", 0))
        message = f"n={n} q={q} ({source})"
        if nodes and n > nodes:
            self.report.add("cluster", Level.PROBLEM, f"{message}: more copies than the {nodes} node(s)")
        elif n < min(3, nodes):
            self.report.add("cluster", Level.WARNING, f"{message}: fewer copies than nodes allow (3 advised)")
        else:
            self.report.add("cluster", Level.OK, message)

    async def _all_database_names(self, page_size: int = 1000) -> list[str]:
        """Every database name, read a page of ``_all_dbs`` at a time (never one response for the whole cluster)."""
        names: list[str] = []
        after: str | None = None
        while True:
            page = await self.store.all_dbs_page(after, page_size)
            names.extend(page)
            if len(page) < page_size:
                return names
            after = page[-1]

    async def _permissions(self) -> list[str] | None:
        try:
            user = (await server.session(self.store)).get("userCtx") or {}
            roles = ", ".join(user.get("roles") or []) or "no roles"
            self.report.add("credentials", Level.INFO, f"as {user.get('name') or 'anonymous'} ({roles})")
        except StorageError:
            pass
        dbs: list[str] | None
        try:
            dbs = await self._all_database_names()
            self.report.add("credentials", Level.OK, f"may list _all_dbs ({len(dbs)} databases)")
        except Unauthorized:
            dbs = None
            self.report.add(
                "credentials", Level.PROBLEM, "may not list _all_dbs: the design-document sync and migrate need it"
            )
        probe = f"kazoo_vm_doctor_probe_{uuid.uuid4().hex}"
        try:
            await self.store.create_db(probe)
        except Unauthorized:
            self.report.add(
                "credentials", Level.PROBLEM, "may not create databases: a message's month needs a new MODB"
            )
        else:
            await server.delete_database(self.store, probe)
            self.report.add("credentials", Level.OK, "may create databases")
        return dbs

    async def _system_auth(self, dbs: list[str]) -> None:
        if naming.SYSTEM_AUTH_DB not in dbs:
            self.report.add("system_auth", Level.INFO, "no system_auth database yet (the service creates it)")
            return
        try:
            security = await server.security(self.store, naming.SYSTEM_AUTH_DB)
        except Unauthorized:
            self.report.add("system_auth", Level.WARNING, "_security not readable with these credentials")
            return
        members = security.get("members") or {}
        if not members.get("names") and not members.get("roles"):
            finding = self.report.add(
                "system_auth",
                Level.PROBLEM,
                "_security admits every user: anyone can read the token signing key",
            )
            if self.fix:
                admins = security.get("admins") or {}
                restricted = {
                    "admins": {**admins, "roles": sorted({*(admins.get("roles") or []), "_admin"})},
                    "members": {"roles": ["_admin"]},
                }
                await server.put_security(self.store, naming.SYSTEM_AUTH_DB, restricted)
                finding.fixed = "_security now admits server admins only"
            return
        others = [*members.get("names", []), *(role for role in members.get("roles", []) if role != "_admin")]
        if others:
            self.report.add("system_auth", Level.WARNING, "_security admits more than server admins", others)
        else:
            self.report.add("system_auth", Level.OK, "_security admits server admins only")

    # -- every database -----------------------------------------------------------------------------------------

    async def _databases(self, dbs: list[str]) -> None:
        walked = [(db, naming.database_class(db)) for db in dbs]
        jobs = [(db, db_class) for db, db_class in walked if db_class in DATABASE_CLASSES]
        if self.progress is not None:
            self.progress.add_total(len(jobs))
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(db: str, db_class: str) -> None:
            async with gate:
                try:
                    await self._database(db, db_class)
                except DatabaseNotFound:
                    pass  # deleted since _all_dbs listed it
                except StorageError as exc:
                    self.tally.unreadable.append(f"{db}: {exc}")
                if self.progress is not None:
                    self.progress.advance(1)

        await asyncio.gather(*(one(db, str(db_class)) for db, db_class in jobs))
        self._fold()

    async def _database(self, db: str, db_class: str) -> None:
        designs_ok = await self._designs(db, db_class)
        if db_class == "account":
            await self._claims(db)
            if designs_ok:
                await self._legacy(db)
        elif db_class == "modb" and designs_ok:
            await self._moves(db)

    async def _designs(self, db: str, db_class: str) -> bool:
        """Whether ``db``'s design documents are (now) current: views can be queried."""
        wanted = {doc["_id"]: doc for doc in design_docs(db_class)}
        rows = await self.store.all_docs(db, keys=sorted(wanted), include_docs=True)
        current = {str(row.id): row.doc for row in rows if row.doc is not None}
        stale: list[_StaleDesign] = []
        for design_id, doc in wanted.items():
            have = current.get(design_id)
            if have is not None and _content(have) == _content(doc):
                continue
            missing = have is None
            rebuilds = have is None or any(have.get(key) != doc.get(key) for key in ("views", "language"))
            index_bytes = None
            if rebuilds and not missing:
                index_bytes = _index_size(await server.design_info(self.store, db, design_id))
            stale.append(_StaleDesign(db, design_id, missing, rebuilds, index_bytes, None))
        if stale and any(item.rebuilds for item in stale):
            doc_count = (await server.database_info(self.store, db)).get("doc_count")
            for item in stale:
                item.doc_count = doc_count if isinstance(doc_count, int) else None
        self.tally.stale_designs.extend(stale)
        if stale and self.fix:
            written = await ensure_design_docs(self.store, db, db_class)
            self.tally.designs_fixed += written  # after the await: other databases add to it meanwhile
            return True
        return not stale

    async def _claims(self, db: str) -> None:
        account = _bare_account(db)
        for row in await server.docs_with_prefix(self.store, db, CLAIM_PREFIX):
            claim = row.doc
            if claim is None or claim.get("pvt_type") != CLAIM_TYPE:
                continue
            number = mailbox_number(claim.get("mailbox"))
            if number is not None and await claim_is_held(self.store, account, claim, number):
                continue
            self.tally.orphans.append(f"{db}: mailbox {claim.get('mailbox')} (box {claim.get('vmbox_id')})")
            if self.fix:
                try:
                    await self.store.delete_doc(db, claim["_id"], claim["_rev"])
                    self.tally.orphans_fixed += 1
                except (Conflict, NotFound):
                    pass  # taken over or released meanwhile: no longer ours to remove

    async def _legacy(self, db: str) -> None:
        try:
            counts = await stored_boxes.legacy_message_counts(self.store, db, repair=False)
        except DocumentNotFound:
            return
        for box_id, count in counts:
            if count > 0:
                self.tally.legacy_boxes.append(f"{db}: box {box_id} ({count})")
                self.tally.legacy_messages += count

    async def _moves(self, db: str) -> None:
        try:
            rows = await stored_messages.all_listed(self.store, db)
        except DocumentNotFound:
            return
        ids = [str(row.id) for row in rows if row.id and transit.in_transit_row(str(row.id), row.value)]
        if not ids:
            return
        now = naming.now_gregorian()
        docs = list((await stored_messages.messages_by_id(self.store, db, ids)).values())
        scope: Scope | None = None
        for doc in docs:
            plan = move_plan(doc)
            if plan is None or now - int(plan.get("at") or 0) < MOVE_GRACE_S:
                continue
            self.tally.moves.append(f"{db}: {doc['_id']} → box {plan['vmbox_id']}")
            if self.fix:
                # The moved copy's "to" and name use the account's realm and time zone: the real account.
                scope = scope or Scope(self.store, self.settings, await _account(self.store, db))
                try:
                    finished = await transit.settle(scope, doc)
                except (KazooError, StorageError):
                    finished = None  # the source kept changing: left for a later run (or the next reader)
                if finished is not None:
                    self.tally.moves_fixed += 1

    # -- findings --------------------------------------------------------------------------------------------------

    def _fold(self) -> None:
        tally = self.tally
        self._fold_designs()
        self._found(
            "claims",
            tally.orphans,
            tally.orphans_fixed,
            "orphaned mailbox claim(s): their box is gone or no longer has the number",
            "deleted",
            "no orphaned mailbox claims",
        )
        self._found(
            "moves",
            tally.moves,
            tally.moves_fixed,
            "half-finished move(s) of messages",
            "finished",
            "no half-finished moves",
        )
        if tally.legacy_boxes:
            self.report.add(
                "legacy",
                Level.WARNING,
                f"{tally.legacy_messages} legacy message(s) in {len(tally.legacy_boxes)} box(es) left to migrate: "
                "run `kazoo-vm migrate`",
                _shown(tally.legacy_boxes),
            )
        else:
            self.report.add("legacy", Level.OK, "no legacy messages left to migrate")
        if tally.unreadable:
            self.report.add(
                "databases", Level.PROBLEM, "databases that could not be examined", _shown(tally.unreadable)
            )

    def _fold_designs(self) -> None:
        stale = self.tally.stale_designs
        if not stale:
            self.report.add("design_docs", Level.OK, "every database has its design documents in the current form")
            return
        dbs = sorted({item.db for item in stale})
        rebuilt = [item for item in stale if item.rebuilds]
        message = f"{len(stale)} design document(s) missing or out of date in {len(dbs)} database(s)"
        if rebuilt:
            known = [item.index_bytes for item in rebuilt if item.index_bytes is not None]
            docs = sum(item.doc_count or 0 for item in rebuilt)
            estimate = f"~{_size(sum(known))} of current index" if known else "index size unknown"
            message += f"; a sync rebuilds {len(rebuilt)} index(es) over {docs} document(s) ({estimate})"
        details = [f"{item.db}: {item.design_id} ({'missing' if item.missing else 'changed'})" for item in stale]
        finding = self.report.add("design_docs", Level.PROBLEM, message, _shown(details))
        if self.fix:
            finding.fixed = f"wrote {self.tally.designs_fixed} design document(s)"

    def _found(self, check: str, items: list[str], fixed: int, what: str, verb: str, none: str) -> None:
        if not items:
            self.report.add(check, Level.OK, none)
            return
        finding = self.report.add(check, Level.PROBLEM, f"{len(items)} {what}", _shown(items))
        if self.fix and fixed == len(items):
            finding.fixed = f"{verb} {fixed}"
        elif self.fix:
            finding.details.append(f"{verb} {fixed} of {len(items)}; the others changed meanwhile: run again")


def _bare_account(db: str) -> Account:
    """The account a database belongs to, by id only: the claim rules need no more of it."""
    account_id = naming.account_id(db if naming.database_class(db) == "account" else naming.split_modb(db)[0])
    return Account(id=account_id, name="", realm=None, tree=(), doc={"_id": account_id})


async def _account(store: CouchStore, db: str) -> Account:
    """The account a database belongs to, read from the accounts database (by id only when it is gone)."""
    bare = _bare_account(db)
    try:
        return await load_account(store, bare.id)
    except KazooError:
        return bare


async def diagnose(
    store: CouchStore, settings: Settings, *, fix: bool = False, progress: Progress | None = None
) -> Report:
    """Check (and with ``fix``, repair) the CouchDB behind ``store``."""
    return await Doctor(store, settings, fix=fix, progress=progress).run()
