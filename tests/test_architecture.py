"""The package's layers (docs/architecture.md): every module imports only modules on its own floor or below, no
two modules import each other (directly or round a circle, also through imports inside functions), and only the
storage layer talks to the CouchDB client library."""

from __future__ import annotations

import ast
from pathlib import Path

import kazoo_vm

PACKAGE_ROOT = Path(kazoo_vm.__file__).parent

# Floors from the ground up; the longest matching prefix decides a module's floor.
FLOORS: dict[str, int] = {
    "kazoo_vm": 0,
    "kazoo_vm.config": 0,
    "kazoo_vm.errors": 0,
    "kazoo_vm.model": 0,
    "kazoo_vm.events": 0,
    "kazoo_vm.concurrency": 0,
    "kazoo_vm.jsontext": 0,
    "kazoo_vm.resources": 0,
    "kazoo_vm.observability": 0,
    "kazoo_vm.logs": 0,
    "kazoo_vm.config_reference": 0,
    "kazoo_vm.progress": 0,
    "kazoo_vm.storage": 1,
    "kazoo_vm.devserver": 1,
    "kazoo_vm.domain": 2,
    "kazoo_vm.auth": 3,
    "kazoo_vm.migrate": 3,
    "kazoo_vm.notify": 3,
    "kazoo_vm.runtime": 3,
    "kazoo_vm.doctor": 3,
    "kazoo_vm.config_cli": 3,
    "kazoo_vm.appkeys": 4,
    "kazoo_vm.http": 4,
    "kazoo_vm.handlers": 5,
    "kazoo_vm.routes": 6,
    "kazoo_vm.app": 7,
    "kazoo_vm.serving": 7,
    "kazoo_vm.cli": 8,
}

# The CouchDB client library is the storage layer's alone; the web framework belongs to the HTTP floor and above.
STORAGE_ONLY = ("aiocouch",)
HTTP_FLOOR = FLOORS["kazoo_vm.http"]
WEB_LIBRARIES = ("aiohttp.web",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def floor_of(module: str) -> int:
    best = max((prefix for prefix in FLOORS if module == prefix or module.startswith(prefix + ".")), key=len)
    return FLOORS[best]


def imports_of(module: str) -> set[str]:
    """Every module name imported anywhere in ``module`` (top level, inside functions, under TYPE_CHECKING)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES or not base.startswith("kazoo_vm") else base)
    return found


GRAPH = {module: {name for name in imports_of(module) if name in MODULES and name != module} for module in MODULES}


def test_the_floor_table_covers_every_module() -> None:
    assert MODULES, "no modules found"
    for module in MODULES:
        assert any(module == prefix or module.startswith(prefix + ".") for prefix in FLOORS), module


def test_no_module_imports_a_module_on_a_higher_floor() -> None:
    upward = [
        f"{module} (floor {floor_of(module)}) imports {target} (floor {floor_of(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if floor_of(target) > floor_of(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


def _uses(name: str, libraries: tuple[str, ...]) -> bool:
    return any(name == library or name.startswith(library + ".") for library in libraries)


def test_only_storage_uses_the_couchdb_client() -> None:
    leaks = [
        f"{module} imports {name}"
        for module in MODULES
        for name in imports_of(module)
        if _uses(name, STORAGE_ONLY) and not module.startswith("kazoo_vm.storage")
    ]
    assert leaks == []


def test_below_http_nothing_uses_the_web_framework() -> None:
    leaks = [
        f"{module} imports {name}"
        for module in MODULES
        for name in imports_of(module)
        if _uses(name, WEB_LIBRARIES) and floor_of(module) < HTTP_FLOOR
    ]
    assert leaks == []


def test_the_checker_sees_an_upward_import() -> None:
    # The walk itself is checked: a module known to import the domain is seen doing so.
    assert "kazoo_vm.domain.vmboxes" in GRAPH["kazoo_vm.handlers.vmboxes"]
    assert floor_of("kazoo_vm.domain.legacy.ids") > floor_of("kazoo_vm.storage.naming")
