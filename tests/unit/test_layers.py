"""The layering of docs/architecture.md, checked from every module's imports (with ast).

One table says what each layer may import. An import inside ``if TYPE_CHECKING:`` counts for
the table (it still couples the layers) but not for cycles; an import inside a function counts
for the table and not for cycles (it runs later, when everything is loaded)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mailharness", "harness", "reference_agents", "reports", "suites")

#: layer (a module prefix; the longest match wins) -> the project layers it may import.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "harness.protocol": frozenset({"harness.protocol"}),
    "harness": frozenset({"harness"}),
    "reference_agents": frozenset({"reference_agents", "harness"}),
    # reports read results: the registry and the verdict rules, never agents or clients.
    "reports": frozenset({"reports", "harness.checks", "harness.errors", "harness.requirements"}),
    "suites": frozenset({"suites", "harness"}),
    "mailharness": frozenset({"mailharness", "harness", "reference_agents", "reports"}),
}
#: Standard modules the sans-IO core must not use.
NO_IO = ("asyncio", "socket", "ssl", "selectors")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports (absolute)
    line: int
    top_level: bool  # runs when the module is imported (not in a function, not TYPE_CHECKING)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import in *source* (the text of *module*), resolved to absolute names."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]

    def walk(node: ast.AST, top: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, top)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    # "from a import b" may name a submodule b, or an attribute of a.
                    yield Import(module, f"{base}.{alias.name}" if alias.name != "*" else base,
                                 child.lineno, top)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                yield from walk(child, False)
            else:
                yield from walk(child, top)

    yield from walk(tree, True)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _layer(name: str) -> str | None:
    matches = [layer for layer in MAY_IMPORT if name == layer or name.startswith(layer + ".")]
    return max(matches, key=len) if matches else None


def violations(found: list[Import]) -> list[str]:
    """What breaks the table, one line each."""
    problems = []
    for imp in found:
        layer = _layer(imp.module)
        if layer is None:
            continue
        top = imp.target.split(".")[0]
        if layer == "harness.protocol" and top in NO_IO:
            problems.append(f"{imp.module}:{imp.line}: the sans-IO core imports {imp.target}")
        if top not in PACKAGES:
            continue
        allowed = MAY_IMPORT[layer]
        if not any(imp.target == a or imp.target.startswith(a + ".") for a in allowed):
            problems.append(f"{imp.module}:{imp.line}: {layer} may not import {imp.target}")
    return problems


def _sources() -> dict[str, tuple[str, bool]]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return found


def _all_imports() -> list[Import]:
    return [imp for name, (text, pkg) in _sources().items() for imp in imports_of(name, text, is_package=pkg)]


def cycles(found: list[Import], modules: set[str]) -> list[list[str]]:
    """Cycles among the imports that run at import time, between project modules."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in found:
        if not imp.top_level:
            continue
        # "from a import b": a module a.b if there is one, else the module a.
        target = imp.target if imp.target in modules else imp.target.rpartition(".")[0]
        if target in modules and target != imp.module:
            graph[imp.module].add(target)
    # A package's __init__ running a submodule import is not a cycle with that submodule's own
    # import of the package's other submodules; a real cycle is found by depth-first search.
    seen: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []

    def visit(node: str) -> None:
        seen.add(node)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_stack:
                cycle = stack[stack.index(nxt):] + [nxt]
                # A submodule importing its parent package (which imports it) is how packages
                # work: the parent is already in sys.modules; not a cycle that can fail.
                if not all(b.startswith(a + ".") or a.startswith(b + ".") for a, b in pairwise(cycle)):
                    result.append(cycle)
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        on_stack.discard(node)

    for node in sorted(graph):
        if node not in seen:
            visit(node)
    return result


def test_every_import_keeps_to_the_table() -> None:
    problems = violations(_all_imports())
    assert problems == [], "\n".join(problems)


def test_no_import_cycle_at_import_time() -> None:
    modules = set(_sources())
    found = cycles(_all_imports(), modules)
    assert found == [], "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize(("module", "source", "expected"), [
    # A deliberately wrong import in each layer is caught, and names the line.
    ("harness.plugin", "from reference_agents.topology import TopologyThread\n",
     "harness.plugin:1: harness may not import reference_agents.topology.TopologyThread"),
    ("harness.suite", "def f():\n    from reports.html import write_report\n",
     "harness.suite:2: harness may not import reports.html.write_report"),
    ("harness.protocol.smtp", "import asyncio\n",
     "harness.protocol.smtp:1: the sans-IO core imports asyncio"),
    ("harness.protocol.smtp", "from harness.clients.smtp import SMTPClient\n",
     "harness.protocol.smtp:1: harness.protocol may not import harness.clients.smtp.SMTPClient"),
    ("reports.html", "from harness.clients.imap import IMAPClient\n",
     "reports.html:1: reports may not import harness.clients.imap.IMAPClient"),
    ("reference_agents.smtpd", "import suites.flow\n",
     "reference_agents.smtpd:1: reference_agents may not import suites.flow"),
    ("suites.flow.test_1_submit", "from mailharness.embedded import embedded_target\n",
     "suites.flow.test_1_submit:1: suites may not import mailharness.embedded.embedded_target"),
])
def test_a_wrong_import_is_caught(module: str, source: str, expected: str) -> None:
    assert violations(list(imports_of(module, source))) == [expected]


def test_allowed_imports_pass() -> None:
    ok = ("from harness.protocol.smtp import Reply\nfrom reference_agents.quirks import QUIRKS\n"
          "from reports.html import write_report\n")
    assert violations(list(imports_of("mailharness.cli", ok))) == []
    assert violations(list(imports_of("harness.protocol.imap.lexer", "from . import seqset\n",
                                      is_package=False))) == []


def test_a_cycle_is_caught() -> None:
    found = [Import("harness.a", "harness.b.X", 1, True), Import("harness.b", "harness.a.Y", 1, True)]
    assert cycles(found, {"harness.a", "harness.b"}) == [["harness.a", "harness.b", "harness.a"]]
    lazy = [Import("harness.a", "harness.b.X", 1, True), Import("harness.b", "harness.a.Y", 3, False)]
    assert cycles(lazy, {"harness.a", "harness.b"}) == []


def test_the_quirk_tables_import_first() -> None:
    """Each quirk module can be the first thing imported (there used to be a real cycle)."""
    import subprocess
    import sys

    for module in ("reference_agents.quirks.imap", "reference_agents.quirks.smtp",
                   "reference_agents.quirks.flow", "reference_agents.config"):
        done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (module, done.stderr)
