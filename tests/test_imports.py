"""The package's modules import each other one way: no circle, not even a lazy one.

Between the layers, knowledge flows downward only: the task level (``arcpipe.arc``: tasks,
augmentation, encoding, answers) knows nothing of datasets, and the dataset level
(``arcpipe.data``: build, format, layout, sampler) knows nothing of models or training.
"""

from __future__ import annotations

import ast

from helpers import REPO


def imports_of_every_module() -> dict[str, set[str]]:
    """Module name -> the arcpipe modules it imports anywhere in its source."""
    modules = {}
    for path in (REPO / "arcpipe").rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("arcpipe"):
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("arcpipe")}
        modules[name] = found
    return {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as a path of module names, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        for dep in sorted(graph[module]):
            if dep in path:
                return [*path[path.index(dep) :], dep]
            if dep not in done:
                circle = visit(dep, [*path, dep])
                if circle:
                    return circle
        done.add(module)
        return None

    for module in sorted(graph):
        circle = visit(module, [module])
        if circle:
            return circle
    return None


def test_arcpipe_imports_run_one_way() -> None:
    graph = imports_of_every_module()
    assert "arcpipe.train.loop" in graph and "arcpipe.export" in graph["arcpipe.train.loop"]
    assert find_circle(graph) is None, " -> ".join(find_circle(graph))


def test_the_circle_finder_finds_a_circle() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


# Layer -> the arcpipe packages and modules its modules may import (beside their own layer).
LOWER_LEVELS = {
    "arcpipe.arc": {"arcpipe.errors", "arcpipe.fsutil", "arcpipe.progress"},
    "arcpipe.data": {
        "arcpipe",
        "arcpipe.arc",
        "arcpipe.errors",
        "arcpipe.fsutil",
        "arcpipe.progress",
    },
}


def imports_across_levels(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a layer's module that reaches outside what the layer may use."""
    wrong = []
    for layer, allowed in LOWER_LEVELS.items():
        for module in sorted(m for m in graph if m.startswith(layer + ".")):
            for dep in sorted(graph[module]):
                below = any(dep == a or dep.startswith(a + ".") for a in allowed - {"arcpipe"})
                if not (dep.startswith(layer + ".") or below or dep == "arcpipe"):
                    wrong.append(f"{module} -> {dep}")
    return wrong


def test_task_level_and_dataset_level_import_downward_only() -> None:
    graph = imports_of_every_module()
    assert "arcpipe.data.build" in graph and "arcpipe.arc.encode" in graph["arcpipe.data.build"]
    assert imports_across_levels(graph) == []


def test_the_level_check_finds_an_upward_import() -> None:
    graph = {
        "arcpipe.arc.encode": {"arcpipe.data.dataset"},
        "arcpipe.data.sampler": {"arcpipe.train.losses", "arcpipe.arc.encode"},
        "arcpipe.data.dataset": {"arcpipe.arc.augment"},
    }
    assert imports_across_levels(graph) == [
        "arcpipe.arc.encode -> arcpipe.data.dataset",
        "arcpipe.data.sampler -> arcpipe.train.losses",
    ]
