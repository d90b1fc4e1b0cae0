"""The package import rules, read from the source with ``ast`` (imports inside functions too).

* ``raters`` imports nothing of ours (pure algorithms);
* ``forum.protocol`` imports no storage, no web framework, no socket code and nothing
  of ``forum`` outside itself (the pure core the SDK shares);
* ``clients.sdk`` imports nothing of the server beyond ``forum.protocol`` and nothing
  of the other client rooms (installable alone);
* ``forum`` never imports ``clients`` or ``feeds``; ``feeds`` never imports ``clients``;
* no cycle between the top-level packages, nor between the subpackages of ``forum``
  (``forum.protocol``, ``forum.scores``, ``forum.values``, ...);
* no module over :data:`MAX_LINES` lines.

The checker is tested on synthetic violating packages written to a temporary
directory, so each rule is shown to fail when broken (the real code is never edited).
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("forum", "raters", "feeds", "clients")
OURS = frozenset(PACKAGES)

STORAGE = frozenset({"sqlalchemy", "aiosqlite", "asyncpg", "alembic", "sqlite3"})
WEB = frozenset({"starlette", "uvicorn", "sse_starlette"})
SOCKETS = frozenset({"websockets", "socket", "asyncio", "ssl", "selectors", "http"})
MAX_LINES = 650
"""About 600 lines ("no module over ~600 lines"), with a little slack."""
LONG_FOR_NOW = {"forum/protocol/events.py": 800}
"""Known exceptions with a ceiling: the event kinds' schemas, which the governance and
arbitration work is extending right now; to split by kind family once it settles."""

Graph = Mapping[str, frozenset[str]]
"""Module name -> every module name it imports (absolute, as written or resolved)."""


# --------------------------------------------------------------------------- the checker


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> frozenset[str]:
    """Every module ``source`` imports, anywhere in it (functions, TYPE_CHECKING blocks...).

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule); relative
    imports are resolved against ``module``; ``importlib.import_module("x")`` with a
    constant name counts as importing ``x``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                prefix = base[: len(base) - (node.level - 1)]
                target = ".".join([*prefix, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target:
                found.add(target)
            found.update(
                f"{target}.{alias.name}" if target else alias.name
                for alias in node.names
                if alias.name != "*"
            )
        elif isinstance(node, ast.Call) and _is_import_module(node.func) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return frozenset(found)


def _is_import_module(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id == "import_module"
    )


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, frozenset[str]]:
    graph: dict[str, frozenset[str]] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            graph[name] = imports_of(
                path.read_text("utf-8"), name, is_package=path.name == "__init__.py"
            )
    return graph


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def top(name: str) -> str:
    return name.partition(".")[0]


def subpackage(name: str, package: str, graph: Graph) -> str:
    """``forum.scores.engine`` -> ``forum.scores``; a module directly in ``forum`` -> ``forum``."""
    parts = name.split(".")
    depth = package.count(".") + 1
    if len(parts) > depth:
        candidate = f"{package}.{parts[depth]}"
        if any(m.startswith(candidate + ".") for m in graph):  # a package, not a module
            return candidate
    return package


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's nodes, found by depth-first search (small graphs only)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def visit(path: list[str]) -> None:
        for nxt in sorted(edges.get(path[-1], ())):
            if nxt == path[0]:
                key = frozenset(path)
                if key not in seen:
                    seen.add(key)
                    found.append([*path, nxt])
            elif nxt not in path and nxt > path[0]:
                visit([*path, nxt])

    for start in sorted(edges):
        visit([start])
    return found


def violations(graph: Graph) -> list[str]:
    """Every broken import rule in ``graph``, one readable line each."""
    out: list[str] = []
    for module, imported in sorted(graph.items()):
        ours = {m for m in imported if top(m) in OURS}
        tops = {top(m) for m in imported}
        if within(module, "raters"):
            for m in sorted(m for m in ours if not within(m, "raters")):
                out.append(f"{module} imports {m}: raters imports nothing of ours")
        if within(module, "forum.protocol"):
            for m in sorted(tops & STORAGE):
                out.append(f"{module} imports {m}: forum.protocol imports no storage")
            for m in sorted(tops & WEB):
                out.append(f"{module} imports {m}: forum.protocol imports no web framework")
            for m in sorted(tops & SOCKETS):
                out.append(f"{module} imports {m}: forum.protocol imports no socket code")
            for m in sorted(m for m in ours if not within(m, "forum.protocol") and m != "forum"):
                out.append(f"{module} imports {m}: forum.protocol imports nothing outside itself")
        if within(module, "clients.sdk"):
            for m in sorted(ours):
                if not (within(m, "clients.sdk") or within(m, "forum.protocol") or m in ("forum", "clients")):
                    out.append(f"{module} imports {m}: clients.sdk imports only forum.protocol of ours")
        if within(module, "forum"):
            for m in sorted(m for m in ours if top(m) in ("clients", "feeds")):
                out.append(f"{module} imports {m}: forum never imports clients or feeds")
        if within(module, "feeds"):
            for m in sorted(m for m in ours if top(m) == "clients"):
                out.append(f"{module} imports {m}: feeds never imports clients")
    # no cycle between the top-level packages
    edges: dict[str, set[str]] = {}
    for module, imported in graph.items():
        for m in imported:
            if top(m) in OURS and top(m) != top(module):
                edges.setdefault(top(module), set()).add(top(m))
    for cycle in cycles(edges):
        out.append("cycle between packages: " + " -> ".join(cycle))
    # no cycle between the subpackages of forum (its top-level modules are the server itself)
    sub_edges: dict[str, set[str]] = {}
    for module, imported in graph.items():
        if not within(module, "forum"):
            continue
        src = subpackage(module, "forum", graph)
        for m in imported:
            if within(m, "forum"):
                dst = subpackage(m, "forum", graph)
                if src != dst and "forum" not in (src, dst):
                    sub_edges.setdefault(src, set()).add(dst)
    for cycle in cycles(sub_edges):
        out.append("cycle between forum subpackages: " + " -> ".join(cycle))
    return out


# --------------------------------------------------------------------------- the real code


@pytest.fixture(scope="module")
def graph() -> dict[str, frozenset[str]]:
    return import_graph(ROOT)


def test_the_import_rules_hold(graph: Graph) -> None:
    assert set(PACKAGES) <= set(graph)
    assert violations(graph) == []


def test_the_checker_sees_the_real_layers(graph: Graph) -> None:
    # The rules are not vacuous: the layers do import each other where allowed.
    assert any(within(m, "forum.protocol") for m in graph["clients.sdk.client"])
    assert any(within(m, "forum") for m in graph["feeds.site"])
    assert any(within(m, "raters") for m in graph["forum.scores.documents"])
    assert "clients.cli.commands" in {subpackage(m, "clients.cli", graph) for m in graph if within(m, "clients.cli.commands")}


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if (n := len(path.read_text("utf-8").splitlines()))
        > LONG_FOR_NOW.get(str(path.relative_to(ROOT)), MAX_LINES)
    }
    assert long == {}, f"split these by concept (over {MAX_LINES} lines): {long}"


# --------------------------------------------------------------------------- the checker fails when a rule breaks

SYNTHETIC_OK = {
    "raters/__init__.py": "",
    "raters/algo.py": "import numpy\n",
    "forum/__init__.py": "",
    "forum/protocol/__init__.py": "",
    "forum/protocol/events.py": "import orjson\nfrom forum.protocol import identity\n",
    "forum/protocol/identity.py": "import nacl\n",
    "forum/store.py": "import sqlalchemy\nfrom forum.protocol.events import Event\n",
    "forum/scores/__init__.py": "",
    "forum/scores/engine.py": "from forum.store import Store\nfrom raters import algo\n",
    "forum/values/__init__.py": "",
    "forum/values/engine.py": "from forum.scores import engine\n",
    "feeds/__init__.py": "",
    "feeds/pages.py": "from forum.scores.engine import X\nfrom raters.algo import y\n",
    "clients/__init__.py": "",
    "clients/sdk/__init__.py": "",
    "clients/sdk/client.py": "import websockets\nfrom forum.protocol import events\n",
    "clients/cli.py": "def main():\n    from forum.settings import Settings\n    from feeds import pages\n",
}

BROKEN = [
    ("raters/algo.py", "def f():\n    from forum.store import Store\n", "raters imports nothing of ours"),
    ("raters/algo.py", "from .. import feeds\n", "raters imports nothing of ours"),
    ("forum/protocol/events.py", "import sqlalchemy.orm\n", "forum.protocol imports no storage"),
    ("forum/protocol/events.py", "from starlette.requests import Request\n", "no web framework"),
    ("forum/protocol/events.py", "async def f():\n    import asyncio\n    await asyncio.open_connection('x', 1)\n", "no socket code"),
    ("forum/protocol/events.py", "import websockets\n", "no socket code"),
    ("forum/protocol/events.py", "from ..store import Store\n", "forum.protocol imports nothing outside itself"),
    ("forum/protocol/events.py", "from forum.scores import engine\n", "forum.protocol imports nothing outside itself"),
    ("clients/sdk/client.py", "from forum.store import Store\n", "clients.sdk imports only forum.protocol"),
    ("clients/sdk/client.py", "from clients import cli\n", "clients.sdk imports only forum.protocol"),
    ("clients/sdk/client.py", "import raters.algo\n", "clients.sdk imports only forum.protocol"),
    ("forum/store.py", "def f():\n    import importlib\n    importlib.import_module('feeds.pages')\n", "forum never imports clients or feeds"),
    ("forum/scores/engine.py", "from clients.sdk import client\n", "forum never imports clients or feeds"),
    ("feeds/pages.py", "from clients.cli import main\n", "feeds never imports clients"),
    ("raters/algo.py", "import numpy\n", None),  # control: allowed
    ("forum/scores/engine.py", "from forum.values import engine\n", "cycle between forum subpackages"),
]


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def test_the_synthetic_tree_is_clean(tmp_path: Path) -> None:
    _write(tmp_path, SYNTHETIC_OK)
    assert violations(import_graph(tmp_path)) == []


@pytest.mark.parametrize(("rel", "extra", "rule"), BROKEN)
def test_the_checker_reports_a_broken_rule(tmp_path: Path, rel: str, extra: str, rule: str | None) -> None:
    _write(tmp_path, {**SYNTHETIC_OK, rel: SYNTHETIC_OK[rel] + extra})
    found = violations(import_graph(tmp_path))
    if rule is None:
        assert found == []
    else:
        module = module_name(tmp_path / rel, tmp_path)
        assert any(line.startswith(module + " ") or line.startswith("cycle") for line in found), found
        assert any(rule in line for line in found), found


def test_the_checker_reports_a_cycle_between_packages(tmp_path: Path) -> None:
    # feeds -> forum is allowed; forum -> raters too; raters -> feeds closes a cycle
    # (and breaks "raters imports nothing of ours"): both are reported.
    _write(tmp_path, {**SYNTHETIC_OK, "raters/algo.py": "import numpy\nimport feeds.pages\n"})
    found = violations(import_graph(tmp_path))
    assert any(line.startswith("cycle between packages: ") and "raters" in line and "feeds" in line for line in found), found


def test_cycles_are_found_once_each() -> None:
    edges = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(tuple, cycles(edges))) == [("a", "b", "a"), ("a", "b", "c", "a")]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []
    assert list(itertools.chain.from_iterable(cycles({"x": {"x"}}))) == ["x", "x"]
