"""The package's modules import each other one way: no circle, not even a lazy one."""

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
