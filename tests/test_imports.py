"""No import cycle between the files of rt_jax/.

The graph is read from the source with ast, not by importing. An edge A -> B means file A
imports module B: `import rt_jax.x.y`, `from rt_jax.x import y` (y a module: an edge to y, not
to the package), `from rt_jax.x import name` (an edge to rt_jax.x, its __init__), relative
imports resolved. Two graphs are checked: the module-level imports (what runs when a file is
imported: a cycle there breaks depending on who is imported first), and every import including
those inside functions (a lazy import only hides a cycle of the design). Importing a submodule
also runs its package's __init__; that implicit edge is not counted.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in (ROOT / "rt_jax").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(lazy: bool) -> dict[str, set[str]]:
    mods = modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = ast.walk(tree) if lazy else tree.body
        targets = []
        for node in nodes:
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        graph[name] = {owner(t) for t in targets if t.startswith("rt_jax")} - {None, name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_right():
    graph = import_graph(lazy=True)
    assert "rt_jax.run_dir" in graph["rt_jax.train.loop"] and "rt_jax.train.storage" in graph["rt_jax.run_dir"]
    assert "rt_jax.decoding.driver" in graph["rt_jax.decoding"]  # the package's __init__ imports it
    assert "rt_jax.decoding" not in graph["rt_jax.decoding.driver"]  # `from rt_jax.decoding import adapters`
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycle_at_module_level():
    assert cycles(import_graph(lazy=False)) == []


def test_no_import_cycle_through_function_level_imports():
    unexpected = cycles(import_graph(lazy=True))
    assert unexpected == []
