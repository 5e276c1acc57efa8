"""Where the data files live: ``schemas/``, ``couch_design_docs/`` and the bundled CouchDB dev server.

In a source checkout (or an editable install) they are the top-level folders of the repository; in an installed
wheel setup.cfg maps them into this package.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parents[1]


def _locate(packaged: str, checkout: str) -> Path:
    inside = _HERE / packaged
    if inside.is_dir() and any(inside.iterdir()):
        return inside
    return _CHECKOUT / checkout


def schemas_dir() -> Path:
    return _locate("schemas", "schemas")


def design_docs_dir() -> Path:
    return _locate("couch_design_docs", "couch_design_docs")


def devserver_dir() -> Path:
    return _locate("devserver", "scripts/couchdb-dev-server")
