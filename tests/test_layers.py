"""memtune's package layering, checked from the source so that a new upward import fails a test.

Layers, bottom to top (a package may import from its own layer and the ones below it):

    errors, cpu, recipes,      no memtune imports beyond each other
    secrets                    (memtune.secrets: detection and redaction)
    chatformat, models         (the chat format; the model registry and loader)
    store                      the guideline database, its filters and redaction
    ingest                     memory files -> store
    dataset                    store -> training bundle
    generation                 conversations -> answers (eval, serve, chat and probes share it)
    train                      bundle -> adapter
    infer                      adapter -> answers
    evaluate                   probes, controls and reports over infer
    serve                      HTTP / MCP / chat over infer and the store
    run, doctor                the one-command pipeline (ingest, export, train, eval); the machine report
    cli                        the typer commands on top of everything

Every ``import`` / ``from ... import`` counts, wherever it sits in a file (module level,
inside functions, under ``TYPE_CHECKING``): a lazy import still makes the packages depend on
each other, it only hides the cycle until someone imports the other way round at module
level. The package facade ``memtune/__init__.py`` and ``memtune/__main__.py`` take part in
the cycle check but not in the layer order.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
TOP = "memtune"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "cpu", "recipes", "secrets", "chatformat", "models"),
    ("store",),
    ("ingest",),
    ("dataset",),
    ("generation",),
    ("train",),
    ("infer",),
    ("evaluate",),
    ("serve",),
    ("run", "doctor"),
    ("cli",),
]

# Package-level cycles that are known and being removed. Each pair allows exactly the two-way
# cycle between its packages and the upward imports inside it; empty this as they are fixed.
PENDING: set[tuple[str, str]] = set()

# Names of the two root files that are not layers: the lazy public API and ``python -m memtune``.
FACADE = TOP
ENTRY = "__main__"


@dataclass(frozen=True)
class Edge:
    """One import statement: module ``src`` imports module ``dst`` at ``file:line``."""

    src: str
    dst: str
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}"


# ----------------------------------------------------------------------------- the graph
def _module_names(root: Path, top: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of package ``top`` under ``root``."""
    out: dict[str, Path] = {}
    for path in sorted((root / top).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from`` import reads from (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, node.module] if node.module else base)


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The longest existing module that ``name`` is or lies inside (``a.b.C`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_edges(root: Path, top: str = TOP, *, shown_from: Path | None = None) -> list[Edge]:
    """Every import of a ``top`` module by a ``top`` module, with the file (relative to
    ``shown_from``, default ``root``) and line it is on."""
    modules = _module_names(root, top)
    edges: list[Edge] = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        rel = path.relative_to(shown_from or root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, module, is_package)
                # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in dict.fromkeys(targets):
                dst = _owner(target, modules)
                if dst is not None and dst != module:
                    edges.append(Edge(module, dst, rel, node.lineno))
    return sorted(edges, key=lambda e: (e.file, e.line, e.dst))


def package_of(module: str, top: str = TOP) -> str:
    """First-level name under ``top``: ``memtune.train.loop`` -> ``train``; the facade is ``top``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else top


def _simple_cycles(graph: dict[str, set[str]], limit: int = 50) -> list[list[str]]:
    """Elementary cycles, each started at its smallest node (graphs here have a few dozen nodes)."""
    found: list[list[str]] = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack and len(found) < limit:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ()), reverse=True):
                if nxt == start:
                    found.append(path)
                elif nxt > start and nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return found


def _describe(cycle: list[str], edges_between: dict[tuple[str, str], list[Edge]]) -> str:
    """The cycle on one line, then every import statement behind each of its steps."""
    lines = [" -> ".join([*cycle, cycle[0]])]
    for a, b in zip(cycle, [*cycle[1:], cycle[0]]):
        lines.append(f"    {a} -> {b}:")
        lines += [f"        {e.where()} ({e.src} -> {e.dst})" for e in edges_between[(a, b)]]
    return "\n".join(lines)


def package_cycles(edges: list[Edge], pending: AbstractSet[tuple[str, str]] = frozenset(), top: str = TOP) -> list[str]:
    """Package-level cycles, each named with the import statements that make it; a two-way
    cycle between a ``pending`` pair is left out, any longer cycle through it is not."""
    between: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges:
        a, b = package_of(e.src, top), package_of(e.dst, top)
        if a != b:
            between[(a, b)].append(e)
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in between:
        graph[a].add(b)
    allowed = {frozenset(p) for p in pending}
    return [_describe(c, between) for c in _simple_cycles(graph) if not (len(c) == 2 and frozenset(c) in allowed)]


def module_cycles(edges: list[Edge], top: str = TOP) -> list[str]:
    """File-level cycles between modules of the same package."""
    between: dict[tuple[str, str], list[Edge]] = defaultdict(list)
    for e in edges:
        if package_of(e.src, top) == package_of(e.dst, top):
            between[(e.src, e.dst)].append(e)
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in between:
        graph[a].add(b)
    return [_describe(c, between) for c in _simple_cycles(graph)]


def layer_violations(edges: list[Edge], layers: list[tuple[str, ...]], pending: AbstractSet[tuple[str, str]] = frozenset(),
                     top: str = TOP) -> list[str]:
    """Imports from a lower layer into a higher one (and packages missing from ``layers``)."""
    rank = {pkg: i for i, names in enumerate(layers) for pkg in names}
    allowed = {frozenset(p) for p in pending}
    out: list[str] = []
    for e in edges:
        a, b = package_of(e.src, top), package_of(e.dst, top)
        if a == b or {a, b} & {top, ENTRY}:
            continue
        for pkg in (a, b):
            if pkg not in rank:
                out.append(f"{e.where()}: package {pkg!r} has no layer; add it to LAYERS in tests/test_layers.py")
        if a in rank and b in rank and rank[a] < rank[b] and frozenset((a, b)) not in allowed:
            out.append(f"{e.where()}: {e.src} (layer {a}) imports {e.dst} (layer {b}, above it)")
    return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------- memtune itself
@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges(SRC, shown_from=SRC.parent)


def test_the_graph_sees_lazy_relative_and_from_imports(edges: list[Edge]) -> None:
    """Guards the checker against silently finding nothing (e.g. a moved src folder)."""
    found = {(e.src, e.dst) for e in edges}
    assert ("memtune.cli", "memtune.cli.guidelines") in found  # from memtune.cli import guidelines
    assert len({package_of(e.src) for e in edges}) >= 10


def test_no_package_cycles(edges: list[Edge]) -> None:
    cycles = package_cycles(edges, PENDING)
    assert not cycles, "package import cycles (move the shared code down a layer):\n" + "\n".join(cycles)


def test_pending_cycles_still_exist(edges: list[Edge]) -> None:
    """A pending pair whose cycle is gone must leave PENDING, so it cannot come back unseen."""
    gone = [p for p in PENDING if package_cycles(edges, PENDING - {p}) == package_cycles(edges, PENDING)]
    assert not gone, f"these cycles are fixed; remove them from PENDING in tests/test_layers.py: {sorted(gone)}"


def test_no_module_cycles_within_a_package(edges: list[Edge]) -> None:
    cycles = module_cycles(edges)
    assert not cycles, "file-level import cycles inside a package:\n" + "\n".join(cycles)


def test_lower_layers_never_import_higher_ones(edges: list[Edge]) -> None:
    packages = {package_of(m) for m in _module_names(SRC, TOP)} - {FACADE, ENTRY}
    unlisted = packages - {p for names in LAYERS for p in names}
    assert not unlisted, f"packages without a layer: {sorted(unlisted)}; add them to LAYERS in tests/test_layers.py"
    bad = layer_violations(edges, LAYERS, PENDING)
    assert not bad, "imports from a lower layer into a higher one:\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- the checker
def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


BASE = {
    "pkg/__init__.py": "",
    "pkg/low/__init__.py": "",
    "pkg/low/a.py": "import os\n",
    "pkg/mid/__init__.py": "from pkg.mid.m import thing\n",
    "pkg/mid/m.py": "from pkg.low import a\nthing = 1\n",
    "pkg/high/__init__.py": "",
    "pkg/high/h.py": "def f():\n    from ..mid import thing\n    return thing\n",
    "pkg/other/__init__.py": "",
    "pkg/other/o.py": "from pkg.mid.m import thing\n",
}
SYNTH_LAYERS = [("low",), ("mid",), ("other",), ("high",)]


def test_checker_passes_a_clean_package(tmp_path: Path) -> None:
    edges = import_edges(_write(tmp_path, BASE), "pkg")
    assert {(e.src, e.dst) for e in edges} >= {("pkg.mid.m", "pkg.low.a"), ("pkg.high.h", "pkg.mid"),
                                               ("pkg.mid", "pkg.mid.m")}
    assert package_cycles(edges, top="pkg") == module_cycles(edges, "pkg") == []
    assert layer_violations(edges, SYNTH_LAYERS, top="pkg") == []


def test_checker_names_a_lazy_relative_cycle_and_its_lines(tmp_path: Path) -> None:
    files = {**BASE, "pkg/low/b.py": "x = 1\n\n\ndef g():\n    from ..high.h import f\n    return f\n"}
    edges = import_edges(_write(tmp_path, files), "pkg")
    cycles = package_cycles(edges, top="pkg")
    assert len(cycles) == 1
    assert cycles[0].splitlines()[0] == "high -> mid -> low -> high"
    assert "pkg/low/b.py:5 (pkg.low.b -> pkg.high.h)" in cycles[0]
    assert "pkg/high/h.py:2 (pkg.high.h -> pkg.mid)" in cycles[0]
    assert "pkg/mid/m.py:1 (pkg.mid.m -> pkg.low.a)" in cycles[0]
    assert layer_violations(edges, SYNTH_LAYERS, top="pkg") == [
        "pkg/low/b.py:5: pkg.low.b (layer low) imports pkg.high.h (layer high, above it)"]


def test_pending_allows_only_its_own_two_way_cycle(tmp_path: Path) -> None:
    files = {**BASE, "pkg/mid/up.py": "import pkg.other.o\n"}
    edges = import_edges(_write(tmp_path, files), "pkg")
    pending = {("mid", "other")}
    assert package_cycles(edges, top="pkg") and package_cycles(edges, pending, "pkg") == []
    assert layer_violations(edges, SYNTH_LAYERS, pending, "pkg") == []
    # Any other cycle still fails, even one that runs through the pending pair.
    files["pkg/low/c.py"] = "from pkg.mid import up\n"
    edges = import_edges(_write(tmp_path, files), "pkg")
    cycles = package_cycles(edges, pending, "pkg")
    assert [c.splitlines()[0] for c in cycles] == ["low -> mid -> low"]
    assert "pkg/low/c.py:1 (pkg.low.c -> pkg.mid.up)" in cycles[0]
    assert layer_violations(edges, SYNTH_LAYERS, pending, "pkg") == [
        "pkg/low/c.py:1: pkg.low.c (layer low) imports pkg.mid.up (layer mid, above it)"]


def test_checker_finds_file_cycles_inside_a_package(tmp_path: Path) -> None:
    files = {**BASE, "pkg/mid/n.py": "from . import m\n", "pkg/mid/m.py": "def h():\n    import pkg.mid.n\n"}
    edges = import_edges(_write(tmp_path, files), "pkg")
    cycles = module_cycles(edges, "pkg")
    assert [c.splitlines()[0] for c in cycles] == ["pkg.mid.m -> pkg.mid.n -> pkg.mid.m"]
    assert "pkg/mid/m.py:2" in cycles[0] and "pkg/mid/n.py:1" in cycles[0]
    assert package_cycles(edges, top="pkg") == []


def test_a_package_missing_from_the_layers_is_named(tmp_path: Path) -> None:
    files = {**BASE, "pkg/new/__init__.py": "from pkg.low import a\n"}
    edges = import_edges(_write(tmp_path, files), "pkg")
    assert layer_violations(edges, SYNTH_LAYERS, top="pkg") == [
        "pkg/new/__init__.py:1: package 'new' has no layer; add it to LAYERS in tests/test_layers.py"]
