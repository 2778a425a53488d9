"""The layers and their one-way rule (docs/architecture.md), read from the code's own imports.

Every ``import`` in ``emogram/`` counts, wherever it stands: at the top of a module, inside a
function (a lazy import) or under ``TYPE_CHECKING``. A module may import its own layer and the
layers that ``MAY_IMPORT`` lists for it, nothing else; ``llama_cpp`` is the backend's alone; no
modules import each other in a circle; a layer's ``__init__.py`` imports nothing, so importing one
module of a layer does not import the rest. The last tests plant a forbidden import and a circle
in a copy of the sources and see the checks fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "emogram"

# The layers, from the top down. A module's layer is the first whose prefix names it.
LAYERS = {
    "quality": ("emogram.quality",),
    "training": ("emogram.training",),
    "cli": ("emogram.cli", "emogram.__main__", "emogram.server", "emogram.serve", "emogram.describe"),
    "face": ("emogram.__init__",),  # ``import emogram``: the public names, the rest imported lazily
    "jobs": ("emogram.jobs",),
    "api": ("emogram.api", "emogram.options", "emogram.option_table", "emogram.testing"),
    "decoding": ("emogram.decoding",),
    "knowledge": ("emogram.knowledge",),
    "constraint": ("emogram.constraint",),
    "backend": ("emogram.backend",),
    "language": ("emogram.language",),
    "base": ("emogram.errors", "emogram.checks", "emogram.defaults", "emogram.files", "emogram.stats", "emogram._version", "emogram._native"),
}
BELOW_API = {"decoding", "knowledge", "constraint", "backend", "language", "base"}
MAY_IMPORT = {
    "base": set(),
    "language": {"base"},  # the language knows no model
    "backend": {"base"},  # the backend knows no emoji
    "constraint": {"language", "base"},  # the constraint knows no llama.cpp
    "knowledge": {"language", "base"},
    "decoding": {"constraint", "knowledge", "backend", "language", "base"},
    "api": BELOW_API,
    "jobs": {"api"} | BELOW_API,
    "face": {"jobs", "api"} | BELOW_API,
    "cli": {"jobs", "api"} | BELOW_API,
    "training": {"face", "jobs", "api"} | BELOW_API,  # nothing but quality imports it
    "quality": {"training", "knowledge", "language", "base"},  # the benchmarks' scoring: nothing imports it
}
ONLY_IN = {"llama_cpp": {"backend"}}  # third-party packages one layer alone may import


def sources(package: Path = PACKAGE) -> dict[str, str]:
    """Every module of the package: dotted name -> source text (``emogram.language`` for a
    package's ``__init__.py``, except the top one, ``emogram.__init__``: the face)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 2:
            parts.pop()
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def layer_of(module: str) -> str | None:
    for layer, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    return None


def _package_of(module: str, modules: dict[str, str]) -> str:
    """The package a module's relative imports start from."""
    if module == "emogram.__init__":
        return "emogram"
    is_package = any(m.startswith(module + ".") for m in modules)
    return module if is_package else module.rsplit(".", 1)[0]


def imports(module: str, text: str, modules: dict[str, str]) -> list[tuple[int, str]]:
    """(line, what) for every import in ``text``: an emogram module by its dotted name (the module
    a name comes from, or the named submodule), or a third-party package by its top name."""
    known = set(modules) | {"emogram._native"}
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, modules).split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((node.lineno, sub if sub in known else source))
    out = []
    for line, name in found:
        if name == "emogram" or name.startswith("emogram."):
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            out.append((line, "emogram.__init__" if name == "emogram" else name))
        else:
            out.append((line, name.split(".")[0]))
    return out


def graph(modules: dict[str, str]) -> dict[str, list[tuple[int, str]]]:
    return {m: imports(m, text, modules) for m, text in modules.items()}


def broken_rules(modules: dict[str, str]) -> list[str]:
    """Every import that breaks the one-way rule, as ``module:line imports what (why)``."""
    wrong = []
    for module, found in graph(modules).items():
        layer = layer_of(module)
        if layer is None:
            wrong.append(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")
            continue
        for line, name in found:
            if name.startswith("emogram"):
                other = layer_of(name)
                if other != layer and other not in MAY_IMPORT[layer]:
                    wrong.append(f"{module}:{line} imports {name} ({layer} may not import {other})")
            elif name in ONLY_IN and layer not in ONLY_IN[name]:
                wrong.append(f"{module}:{line} imports {name} (only {', '.join(sorted(ONLY_IN[name]))} may)")
        own = [name for _, name in found if name != "__future__"]
        if module == f"emogram.{layer}" and _package_of(module, modules) == module and own:
            wrong.append(f"{module}/__init__.py imports {own[0]} (a layer's __init__ imports nothing)")
    return wrong


def circles(modules: dict[str, str]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan's algorithm)."""
    edges = {m: sorted({n for _, n in found if n in modules and n != m}) for m, found in graph(modules).items()}
    selfish = [[m] for m, found in graph(modules).items() if any(n == m for _, n in found)]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in edges[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            group = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                group.append(n)
                if n == m:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for m in sorted(edges):
        if m not in index:
            visit(m)
    return groups + selfish


def test_every_module_is_in_a_layer_and_imports_only_what_its_layer_may():
    assert broken_rules(sources()) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(sources()) == []


def test_the_layers_are_ordered_one_way():
    """The rule itself has no loop: a layer never may import one that may import it."""
    for layer, below in MAY_IMPORT.items():
        for other in below:
            assert layer not in MAY_IMPORT[other], (layer, other)


def test_a_planted_forbidden_import_is_seen():
    """Control: the language layer importing the backend, and the constraint layer importing
    llama.cpp, are each reported with their module and line."""
    modules = sources()
    planted = dict(modules)
    planted["emogram.language.tree"] += "\n\ndef _model():\n    from ..backend import llama\n"
    planted["emogram.constraint.judge"] += "\nimport llama_cpp\n"
    wrong = broken_rules(planted)
    assert any(w.startswith("emogram.language.tree:") and "emogram.backend.llama" in w for w in wrong), wrong
    assert any(w.startswith("emogram.constraint.judge:") and "llama_cpp" in w for w in wrong), wrong
    planted = dict(modules)
    planted["emogram.backend"] += "\nfrom . import llama\n"
    assert any("a layer's __init__ imports nothing" in w for w in broken_rules(planted))


def test_a_planted_circle_is_seen():
    """Control: a job that imports its scheduler back (the circle this layout removed) is found,
    even under ``TYPE_CHECKING``."""
    planted = dict(sources())
    planted["emogram.decoding.job"] += ("\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
                                        "    from .scheduler import Scheduler\n")
    assert ["emogram.decoding.job", "emogram.decoding.scheduler"] in circles(planted)
