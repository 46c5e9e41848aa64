"""tests/inprocess.py imports torch when it is imported: a test module that imports it inside a function
imports torch during a test, the ``pytester`` fixture drops it from ``sys.modules`` when that test ends, and
the next import of torch in the process fails ('SystemError: ... bad call flags', then a segmentation fault:
torch's compiled core cannot be loaded twice). Every test module imports it at its top."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _imports_inprocess(node):
    if isinstance(node, ast.ImportFrom):
        return node.module == "tests" and any(a.name == "inprocess" for a in node.names) or \
            node.module == "tests.inprocess"
    return isinstance(node, ast.Import) and any(a.name == "tests.inprocess" for a in node.names)


def test_tests_inprocess_is_imported_at_the_top_of_a_module_only():
    inside = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top = {id(n) for n in tree.body}
        inside += [f"{path.relative_to(TESTS)}:{n.lineno}" for n in ast.walk(tree)
                   if _imports_inprocess(n) and id(n) not in top]
    assert not inside, f"tests.inprocess imported inside a function (import it at the module's top): {inside}"
