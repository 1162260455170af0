"""The package's layers hold: no import cycle between modules, and no module imports one from
a higher layer (physics never reaches into fleets, fleets never into the CLI). Every import
counts, at module level or inside a function; ``if TYPE_CHECKING:`` blocks do not (they never
run); a name a package exports lazily counts as an import of the module that defines it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "accelsim"

# Lowest first. A module may import its own layer's and lower layers' modules.
LAYERS: list[tuple[str, ...]] = [
    ("accelsim.errors", "accelsim.units", "accelsim.lazy", "accelsim.xp", "accelsim.precision",
     "accelsim.overrides",
     "accelsim.outputs", "accelsim.cache", "accelsim.parallel", "accelsim.machine",
     "accelsim.bisection"),
    ("accelsim.config",),
    ("accelsim.refs",),
    ("accelsim.devices", "accelsim.runtime", "accelsim.roofline", "accelsim.collectives",
     "accelsim.kernels", "accelsim.stacks", "accelsim.stack_memory", "accelsim.stack_kernels",
     "accelsim.traffic", "accelsim.transformer"),
    ("accelsim.training", "accelsim.llm", "accelsim.serving", "accelsim.cost", "accelsim.rental",
     "accelsim.goodput", "accelsim.sharing"),
    ("accelsim.workloads", "accelsim.runs"),
    ("accelsim.plan.spec",),
    ("accelsim.fleet", "accelsim.optimize"),
    ("accelsim.plan", "accelsim.uncertainty"),
    ("accelsim.kinds",),
    ("accelsim.sweep",),
    ("accelsim.schemas",),
    ("accelsim.report", "accelsim.plots", "accelsim.htmlreport"),
    ("accelsim.cli", "accelsim.__main__", "accelsim.entry", "accelsim.replay"),
    ("accelsim",),
]


def modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _lazy_exports(tree: ast.Module) -> dict[str, str]:
    """``name -> module`` of a package's ``exports(__name__, {...})`` (accelsim.lazy)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "exports":
            for d in ast.walk(node):
                if isinstance(d, ast.Dict):
                    for k, v in zip(d.keys, d.values, strict=True):
                        if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                            out[k.value] = v.value
                if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "fromkeys":
                    names, mod = d.args
                    if isinstance(names, ast.List) and isinstance(mod, ast.Constant):
                        out.update({e.value: mod.value for e in names.elts})
    return out


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    return [n for n in ast.walk(tree) if id(n) not in skip]


def graph() -> dict[str, set[str]]:
    mods = modules()
    trees = {m: ast.parse(p.read_text()) for m, p in mods.items()}
    lazy = {m: _lazy_exports(t) for m, t in trees.items()}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, tree in trees.items():
        for node in _runtime_nodes(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.startswith("accelsim"):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    if sub in mods:
                        targets.append(sub)
                    elif a.name in lazy.get(node.module, {}):
                        targets.append(lazy[node.module][a.name])
                    else:
                        targets.append(node.module)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("accelsim")]
            for t in targets:
                if t in mods and t != name and not name.startswith(t + "."):
                    edges[name].add(t)
    return edges


def layer_of(module: str) -> int:
    best, depth = -1, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = i, len(prefix)
    assert best >= 0, f"{module} is in no layer of tests/test_layers.py"
    return best


def test_every_module_has_a_layer():
    for m in modules():
        layer_of(m)


def test_no_module_imports_a_higher_layer():
    up = sorted(f"{a} -> {b}" for a, bs in graph().items() for b in bs
                if layer_of(b) > layer_of(a))
    assert not up, "upward imports:\n" + "\n".join(up)


def test_no_import_cycles():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(modules()):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)
