"""What a CouchDB server says about itself: membership, sessions, database and index information, ``_security``.

Read by ``kazoo-vm doctor``; every call goes through :class:`~kazoo_vm.storage.couch.CouchStore`'s request
primitive, so failures are :mod:`kazoo_vm.storage.errors` types. Endpoints a server does not offer (the development
server has no ``_membership`` and no ``_node/…``) answer None rather than raise.
"""

from __future__ import annotations

from typing import Any

from kazoo_vm.model import JsonDict
from kazoo_vm.storage.couch import CouchStore, ViewRow, quote_name
from kazoo_vm.storage.errors import BadRequest, NotFound, Unauthorized


async def _get(store: CouchStore, path: str, **params: Any) -> Any:
    return await store._json("GET", path, params=params)


async def _optional(store: CouchStore, path: str) -> JsonDict | None:
    try:
        result = await _get(store, path)
    except (NotFound, Unauthorized, BadRequest):
        return None
    return result if isinstance(result, dict) else None


async def membership(store: CouchStore) -> JsonDict | None:
    """``{"all_nodes": [...], "cluster_nodes": [...]}``, or None where the server has no cluster API."""
    return await _optional(store, "/_membership")


async def cluster_defaults(store: CouchStore) -> JsonDict | None:
    """The ``[cluster]`` section of the local node's configuration (``q``, ``n``), when readable."""
    return await _optional(store, "/_node/_local/_config/cluster")


async def session(store: CouchStore) -> JsonDict:
    """``/_session``: who our credentials are (``userCtx`` with ``name`` and ``roles``)."""
    result: JsonDict = await _get(store, "/_session")
    return result


async def database_info(store: CouchStore, db: str) -> JsonDict:
    result: JsonDict = await _get(store, f"/{quote_name(db)}")
    return result


async def design_info(store: CouchStore, db: str, design_id: str) -> JsonDict | None:
    """``/db/_design/x/_info`` (the view index's sizes), or None where the server does not tell."""
    name = design_id.removeprefix("_design/")
    return await _optional(store, f"/{quote_name(db)}/_design/{quote_name(name)}/_info")


async def security(store: CouchStore, db: str) -> JsonDict:
    result: JsonDict = await _get(store, f"/{quote_name(db)}/_security")
    return result


async def put_security(store: CouchStore, db: str, document: JsonDict) -> None:
    await store._json("PUT", f"/{quote_name(db)}/_security", body=document)


async def docs_with_prefix(store: CouchStore, db: str, prefix: str) -> list[ViewRow]:
    """Documents whose id starts with ``prefix``, with their bodies (one ``_all_docs`` range read)."""
    return await store.all_docs(db, startkey=prefix, endkey=prefix + "\ufff0", include_docs=True)


async def delete_database(store: CouchStore, db: str) -> None:
    """Delete ``db`` (the doctor's probe of whether our credentials may create databases)."""
    await store._json("DELETE", f"/{quote_name(db)}")
