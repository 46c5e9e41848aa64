"""The package's layers as a tested rule: every import of a gatecheck module, inside functions too,
goes to its own layer or one below it, no import cycle exists, and gatecheck's own modules are
imported at the top of a file (a framework, imported where it is needed, is a lazy load and not
read here). The table is the layer order, bottom up; a module belongs to the first prefix it has."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / "gatecheck"

LAYERS = (
    ("core values", ("gatecheck.core", "gatecheck.reference")),
    ("option and structure model", ("gatecheck.model",)),
    ("family records", ("gatecheck.families",)),
    ("engines", ("gatecheck.engines",)),
    ("truth", ("gatecheck.truth.views",)),
    ("deviations", ("gatecheck.truth.deviations",)),
    ("run", ("gatecheck.run",)),
    ("tools", ("gatecheck.tools",)),
    ("front ends", ("gatecheck.frontends", "gatecheck.__main__", "gatecheck")),
)

# Modules whose gatecheck imports are made inside functions, with the reason (a real lazy load).
LAZY_MODULES = {
    "gatecheck.frontends.pytest_plugin": "pytest loads it in every session where gatecheck is installed: it "
                                         "imports the suite only once a run uses gatecheck",
}
# gatecheck modules imported inside a function, each with the reason it is a real lazy load.
LAZY = {
    ("gatecheck", "gatecheck.frontends.api"): "`import gatecheck` stays light: the API loads the registries on first use",
}


def module_name(path, root=ROOT):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root=ROOT):
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def layer_of(name):
    """The index of a module's layer in LAYERS (the longest prefix that holds it)."""
    best = None
    for n, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (n, len(prefix))
    if best is None:
        raise LookupError(f"{name}: in no layer of tests/meta/test_layers.py's LAYERS")
    return best[0]


def imports(name, path, known):
    """(imported gatecheck module, line, inside a function) for every import statement of a module."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if n is not f}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == "gatecheck" or target.startswith("gatecheck."):
                while target not in known and "." in target:
                    target = target.rpartition(".")[0]
                if target != name:
                    found.append((target, node.lineno, id(node) in nested))
    return found


def graph(root=ROOT):
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def upward(edges):
    """Every import that goes to a higher layer, as text."""
    return [f"{name}:{line} imports {target} ({LAYERS[layer_of(target)][0]}, above {LAYERS[layer_of(name)][0]})"
            for name, found in edges.items() for target, line, _ in found if layer_of(target) > layer_of(name)]


def cycles(edges):
    """The import cycles, each as the list of its modules (Tarjan's strongly connected components)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w, _, _ in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def inner(edges):
    return [f"{name}:{line} imports {target} inside a function" for name, found in edges.items()
            for target, line, nested in found if nested and (name, target) not in LAZY and name not in LAZY_MODULES]


def test_every_module_is_in_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_goes_to_a_higher_layer():
    assert upward(graph()) == []


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_gatecheck_modules_are_imported_at_the_top_of_a_file():
    assert inner(graph()) == []


@pytest.fixture
def package(tmp_path):
    """A copy of the package to break."""
    import shutil

    shutil.copytree(ROOT, tmp_path / "gatecheck", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "gatecheck"


def test_an_upward_import_fails_the_rule(package):
    """An engine that calls the judge (gatecheck.run.battery) is an upward import; a reference module that
    imports an engine inside a function is one too, and a cycle."""
    target = package / "engines" / "base.py"
    target.write_text(target.read_text() + "\nfrom gatecheck.run import battery  # noqa\n")
    inside = package / "core" / "compare.py"
    inside.write_text(inside.read_text() + "\n\ndef _late():\n    from gatecheck.core import candidate  # noqa\n")
    edges = graph(package)
    assert upward(edges) == [f"gatecheck.engines.base:{len(target.read_text().splitlines())} imports "
                             "gatecheck.run.battery (run, above engines)"]
    assert any(set(c) >= {"gatecheck.engines.base", "gatecheck.run.battery"} for c in cycles(edges))
    assert [line for line in inner(edges) if line.startswith("gatecheck.core.compare")] == [
        f"gatecheck.core.compare:{len(inside.read_text().splitlines())} imports gatecheck.core.candidate inside a function"]
