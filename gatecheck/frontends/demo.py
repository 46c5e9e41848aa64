"""``python -m gatecheck demo``: a first run with nothing of one's own. Two implementations
that ship with gatecheck (``gatecheck.examples``), one correct and one with a slip in its
backward pass, are checked as ``check`` checks anyone's code, and both verdicts are printed.

The oracles are a small selection, named in the output: the family's NumPy reference (in
every install; proven by finite differences) and the first PyTorch oracle of the family's
battery when PyTorch is installed. ``check`` runs the whole battery.

Exit code: 0 when the correct implementation passes and the buggy one fails, as they
should; otherwise the correct one's exit code when it does not pass, or 1 when the slip
goes unnoticed.
"""

from typing import NamedTuple

from gatecheck.core.exit_codes import FAIL, PASS
from gatecheck.engines import ORACLES, battery_oracles, reference_oracle
from gatecheck.engines.frameworks import FRAMEWORKS
from gatecheck.frontends.api import check


class Demo(NamedTuple):
    correct: str  # 'module:callable' of the correct implementation
    correct_what: str
    buggy: str  # 'module:callable' of the same with a slip
    buggy_what: str


DEMOS = {
    "lstm": Demo("gatecheck.examples.course:run",
                 "a course-style LSTM (gatecheck/examples/course.py)",
                 "gatecheck.examples.course_buggy:run",
                 "the same LSTM with a slip in its backward pass (gatecheck/examples/course_buggy.py: the candidate "
                 "gate's derivative written 1 - g instead of 1 - g**2)"),
}


def _installed(dist):
    """Whether a distribution is installed (read from its metadata; nothing is imported)."""
    from importlib import metadata

    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def oracles(family):
    """(the demo's oracles, a sentence that names them and says what was left out)."""

    chosen = [reference_oracle(family).name]
    torch = [name for name in battery_oracles(family) if ORACLES[name].framework == "torch"][:1]
    if torch and all(_installed(d) for d in FRAMEWORKS["torch"].dists):
        chosen += torch
        said = f"the oracles {chosen[0]} (NumPy, proven by finite differences) and {torch[0]} (PyTorch)"
    else:
        said = (f"the oracle {chosen[0]} alone (NumPy, proven by finite differences)"
                + (f"; {torch[0]} (PyTorch) is left out: torch is not installed" if torch else ""))
    return chosen, said + "; `check` runs the family's whole battery"


def run(family="lstm"):
    """Check the family's two bundled implementations, print both reports; the exit code."""

    demo = DEMOS[family]
    names, said = oracles(family)
    print(f"gatecheck demo: two implementations of the {family} family that ship with gatecheck, checked as "
          f"`check` checks your code, against {said}.")
    codes = []
    for n, (spec, what) in enumerate(((demo.correct, demo.correct_what), (demo.buggy, demo.buggy_what)), 1):
        print(f"\n== {n} of 2: {what}")
        print(f"$ python -m gatecheck check {spec} --family {family} --oracles {','.join(names)}")
        result = check(spec, family=family, oracles=names)
        print(result.text)
        codes.append(result.exit_code)
    good, bad = codes
    print()
    if good == PASS and bad == FAIL:
        print("demo: as it should be: the correct implementation passes (exit 0) and the slip is found (exit 1). "
              f"Your own code: python -m gatecheck check my_module:run --family {family} (docs/guide/quickstart.md)")
        return PASS
    print(f"demo: NOT as it should be: the correct implementation exits {good}, the buggy one {bad} "
          "(expected 0 and 1)")
    return good if good != PASS else FAIL
