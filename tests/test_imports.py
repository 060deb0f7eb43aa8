"""The package's import graph: no cycles, and no module imports a layer above its own.

Every ``import`` / ``from ... import`` of a colmda module in the package's source (module level and inside
functions alike: a lazy import is still a dependency) is an edge, read with ``ast`` (nothing is imported).

- test_no_import_cycles: the graph has no cycle (Tarjan's strongly connected components), e.g. config <-> matrix
  <-> run <-> restart <-> setup or forcing.perturb <-> forcing.weather as before issue 9.
- test_no_upward_imports: each module belongs to a layer of :data:`LAYERS` (longest matching prefix) and imports
  only its own layer or lower ones: cli > experiments > driver > config > subsystems (assim > obs > forcing;
  evaluation) > core and data > foundations. Subsystems own their namelist keys, config aggregates them, so
  nothing below config imports it. A new top-level module must be given a layer here.
- test_the_walker_finds_cycles_and_upward_imports: on a small synthetic package the checks do report a cycle
  (through a function-level import) and an upward import, so the two tests above cannot pass vacuously.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pydriver" / "colmda"

#: layer of each module prefix (higher may import lower or equal, never higher)
LAYERS = {
    # foundations: constants, errors, index tables, time and random helpers, parallel primitives
    "colmda.errors": 0, "colmda.constants": 0, "colmda.layout": 0, "colmda.keys": 0, "colmda.timeutil": 0,
    "colmda.timeaxis": 0, "colmda.keyed": 0, "colmda.solar": 0, "colmda.progress": 0, "colmda.parallel": 0,
    # the core and the data it runs on; output files
    "colmda.core": 10, "colmda.soilparams": 10, "colmda.pft": 10, "colmda.domain": 10, "colmda.make_domain": 10,
    "colmda.ensemble": 10, "colmda.curvelet": 10, "colmda.output": 10, "colmda.manifest": 10,
    "colmda.testing": 10, "colmda.verification": 10,
    # reading run outputs back (history files of earlier runs: bias fitting, evaluation, the twin matrix)
    "colmda.evaluation.history": 15,
    # subsystems (each owns its namelist keys)
    "colmda.forcing": 20, "colmda.obs": 21, "colmda.assim": 22, "colmda.evaluation": 22,
    # configuration: aggregates the subsystems' key tables
    "colmda.matrix_keys": 29, "colmda.config": 30,
    # the driver
    "colmda.rundir": 40, "colmda.initial_state": 40, "colmda.setup": 40, "colmda.restart": 40, "colmda.run": 41,
    # experiments built from runs
    "colmda.matrix": 50, "colmda.image_twin": 50, "colmda.api": 50,
    # user interface; the package itself re-exports the API
    "colmda.cli": 60, "colmda.__main__": 60, "colmda": 70,
}


def module_files(package: Path) -> dict[str, Path]:
    root = package.name
    mods = {}
    for p in sorted(package.rglob("*.py")):
        parts = p.relative_to(package).with_suffix("").parts
        name = ".".join((root,) + parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        mods[name] = p
    return mods


def import_edges(package: Path) -> dict[str, dict[str, int]]:
    """{module: {imported module: line}} for every import of a module of the package (its root excluded: it is
    imported implicitly before any submodule)."""
    mods = module_files(package)
    root = package.name
    edges: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        out: dict[str, int] = {}

        def add(target, line):
            if target in mods and target != name and target != root:
                out.setdefault(target, line)

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    add(a.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    prefix = base[: len(base) - node.level + 1]
                    module = ".".join(prefix + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                if module.split(".")[0] != root:
                    continue
                for a in node.names:
                    sub = f"{module}.{a.name}"
                    add(sub if sub in mods else module, node.lineno)
        edges[name] = out
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index, low, on, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(edges.get(w, {}))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def layer_of(module: str, layers: dict[str, int]) -> int | None:
    best = None
    for prefix in layers:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return None if best is None else layers[best]


def upward_imports(edges, layers, files) -> list[str]:
    bad = []
    for a, targets in sorted(edges.items()):
        la = layer_of(a, layers)
        for b, line in sorted(targets.items()):
            lb = layer_of(b, layers)
            if la is not None and lb is not None and lb > la:
                bad.append(f"{files[a].name}:{line}: {a} (layer {la}) imports {b} (layer {lb})")
    return bad


def describe_cycle(comp, edges, files):
    lines = []
    for a in comp:
        for b, line in edges[a].items():
            if b in comp:
                lines.append(f"    {files[a].relative_to(files[a].parents[len(a.split('.')) - 1])}:{line}: {a} -> {b}")
    return "\n".join(lines)


def test_no_import_cycles():
    edges = import_edges(PACKAGE)
    files = module_files(PACKAGE)
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(f"  {c}\n{describe_cycle(c, edges, files)}" for c in found)


def test_no_upward_imports():
    edges = import_edges(PACKAGE)
    files = module_files(PACKAGE)
    unplaced = [m for m in edges if layer_of(m, LAYERS) is None]
    assert not unplaced, f"modules without a layer (add them to LAYERS in tests/test_imports.py): {unplaced}"
    bad = upward_imports(edges, LAYERS, files)
    assert not bad, "imports of a higher layer:\n  " + "\n  ".join(bad)


def test_the_walker_finds_cycles_and_upward_imports(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("import numpy\n\ndef f():\n    from .sub import high\n")
    (pkg / "sub" / "high.py").write_text("from ..low import f\nfrom .. import mid\n")
    (pkg / "mid.py").write_text("from toy.low import f\n")
    edges = import_edges(pkg)
    assert edges["toy.low"] == {"toy.sub.high": 4}
    assert edges["toy.sub.high"] == {"toy.low": 1, "toy.mid": 2}
    assert cycles(edges) == [["toy.low", "toy.mid", "toy.sub.high"]]
    layers = {"toy.low": 0, "toy.mid": 1, "toy.sub": 2}
    bad = upward_imports(edges, layers, module_files(pkg))
    assert len(bad) == 1 and "toy.low (layer 0) imports toy.sub.high (layer 2)" in bad[0]
    (pkg / "low.py").write_text("import numpy\n")
    assert cycles(import_edges(pkg)) == []
