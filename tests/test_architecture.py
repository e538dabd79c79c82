"""The layers of docs/architecture.md, enforced on the source: who may import whom.

A small AST walk instead of a linter plugin: every ``import``/``from … import`` of every module
under ``src/vbdt`` (module level or inside a function, TYPE_CHECKING blocks included) is checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vbdt"

# layer → the vbdt layers it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "kept": set(),
    "edxml": {"errors"},
    "directory": {"errors", "edxml"},
    "trust": {"errors", "kept", "edxml", "directory"},
    "conformance": {"errors", "edxml", "directory", "trust"},
    "exchange": {"errors", "kept", "edxml", "directory", "trust"},
    "testing": {"errors", "edxml", "directory", "trust", "exchange"},
    "cli": {"errors", "edxml", "directory", "trust", "conformance", "exchange", "testing", "__init__"},
    "__init__": {"errors", "edxml", "directory", "trust", "exchange"},
    "__main__": {"cli"},
}
# single exceptions: errors carry findings (a leaf module that imports nothing of vbdt)
EXCEPTIONS = {("errors", "vbdt.edxml.findings")}
# third-party modules that only one module may import
ONLY_IN = {"aio_pika": "exchange/amqp.py", "aiormq": "exchange/amqp.py", "pamqp": "exchange/amqp.py"}
# the pure layers never open sockets or databases themselves
PURE_LAYERS = {"edxml", "directory", "trust", "conformance"}
NOT_IN_PURE = {"socket", "sqlite3", "aio_pika", "aiormq", "http", "urllib.request", "requests", "httpx"}


def _layer(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "vbdt":  # `from vbdt import x` imports vbdt.x
                found += [(node.lineno, f"vbdt.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; use absolute vbdt.… imports")
    return found


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    assert {_layer(p) for p in MODULES} <= set(ALLOWED), "a new top-level module or layer: add it to docs/architecture.md"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_layer_imports(path: Path) -> None:
    layer = _layer(path)
    problems = []
    for line, name in _imports(path):
        parts = name.split(".")
        if parts[0] == "vbdt" and len(parts) > 1:
            target = parts[1] if parts[1] in ALLOWED else "__init__"
            if target != layer and target not in ALLOWED[layer] and (layer, name) not in EXCEPTIONS:
                problems.append(f"line {line}: {layer} may not import {name}")
        elif parts[0] == "vbdt" and layer != "cli":
            problems.append(f"line {line}: inside the package import a module, not the public vbdt namespace")
        owner = ONLY_IN.get(parts[0])
        if owner is not None and path.relative_to(SRC).as_posix() != owner:
            problems.append(f"line {line}: only {owner} imports {parts[0]}")
        if layer in PURE_LAYERS and any(name == bad or name.startswith(bad + ".") for bad in NOT_IN_PURE):
            problems.append(f"line {line}: the {layer} layer is pure and may not import {name}")
    assert not problems, "\n".join(problems)
