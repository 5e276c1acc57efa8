"""Package discovery; everything else is declared in setup.cfg.

The code packages are found automatically (namespace packages too), so a new package can never be left out of a
wheel. The data folders at the top of the checkout are mapped into ``kazoo_vm.resources`` under fixed names, which
``kazoo_vm.resources`` looks for.
"""

from setuptools import find_namespace_packages, setup

RESOURCES = {
    "kazoo_vm.resources.schemas": "schemas",
    "kazoo_vm.resources.couch_design_docs": "couch_design_docs",
    "kazoo_vm.resources.devserver": "scripts/couchdb-dev-server",
}

setup(
    packages=[*find_namespace_packages(include=["kazoo_vm", "kazoo_vm.*"], exclude=["*.__pycache__"]), *RESOURCES],
    package_dir=RESOURCES,
)
