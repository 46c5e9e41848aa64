"""Mutants: realistic bugs of a family's reference, defined as data in the family's
catalogue (``Family.mutants``), each runnable as a candidate.

A mutant is either a textual edit of the family's reference module (``old`` -> ``new``;
the snippet must occur exactly once, so a mutant cannot silently stop applying when the
reference changes), loaded as its own module, or a wrapper around the reference
(``wrap``) for bugs of interface and layout (gate order, which weights meet which input,
precision, clipping). ``candidate(family, mutant)`` is then a candidate like any other.

``first``, where given, is where the comparison must report the first divergence
("<quantity> <slice>", with T-1 / T-2 standing for the last steps); ``needs`` says what a
case must have to show the bug at all.
"""

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, NamedTuple

from gatecheck.core.family import Family


class Mutant(NamedTuple):
    name: str
    wrong: str  # what is wrong
    why: str  # why someone writes it
    old: str = ""
    new: str = ""
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None  # run -> run, for wrapper mutants
    first: str = ""
    family: str = ""  # a group within the catalogue ("gate-order")
    needs: str = ""  # the least a case needs to show the bug, beyond B, T >= 2: "T>20", "D==H"


def edited(module: types.ModuleType, old: str, new: str, name: str, count: int = 1) -> types.ModuleType:
    """``module``'s source with ``old`` replaced by ``new`` (which must occur ``count``
    times), loaded as a fresh module; the original module is untouched."""
    text = inspect.getsource(module)
    found = text.count(old)
    if found != count:
        raise ValueError(f"{name}: snippet {old!r} occurs {found} times in {module.__name__}; expected {count}")
    fresh = types.ModuleType(f"gatecheck_variant_{name.replace('-', '_')}")
    exec(compile(text.replace(old, new), f"<variant {name}>", "exec"), fresh.__dict__)
    return fresh


def load(family: Family, mutant: Mutant) -> types.ModuleType:
    """A textual mutant's module (the real reference is untouched)."""
    assert family.mutant_source is not None, f"{family.name}: a textual mutant needs Family.mutant_source"
    return edited(family.mutant_source, mutant.old, mutant.new, mutant.name)


@functools.lru_cache(maxsize=None)
def _candidate(family: Family, name: str) -> Callable[..., Any]:
    mutant = family.mutants_by_name[name]
    if mutant.wrap is not None:
        run = mutant.wrap(family.run)
    else:
        assert family.mutant_bind is not None, f"{family.name}: a textual mutant needs Family.mutant_bind"
        run = family.mutant_bind(load(family, mutant))
    run.__name__ = f"mutant_{name.replace('-', '_')}"
    return run


def candidate(family: Family, mutant: Mutant) -> Callable[..., Any]:
    """The mutant as a candidate callable under ``family``'s contract."""
    return _candidate(family, mutant.name)


def called_with(**keywords: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``wrap`` that calls the run with ``keywords`` in place of the candidate's own (a keyword dropped: None; a
    definition read otherwise: its value)."""
    def wrap(run: Callable[..., Any]) -> Callable[..., Any]:
        def mutated(**kw: Any) -> Any:
            return run(**dict(kw, **keywords))
        return mutated
    return wrap


def reverse_mutants(call: str, states: tuple[str, ...] = ("h",), first: str = "h") -> tuple[Mutant, ...]:
    """The reverse option's mutants, as edits of a reference's ``run_rev`` whose body is
    ``call`` (the family's run on the time-flipped x and gh) and the flip back of every per-step
    output; ``states``: the per-step states, each left unflipped by one mutant; ``first``: the
    state the comparison reaches first (the quantity table's order)."""
    back = "return {k: v if k in TIMELESS else v[:, ::-1] for k, v in out.items()}"
    forward = call.replace("x[:, ::-1]", "x").replace("gh[:, ::-1]", "gh")
    return (
        Mutant("rev-ignored", "the reverse layer runs forwards: x[:, 0] first (the option is ignored)",
               "go_backwards is accepted and dropped on the way to the loop",
               old=f"{call}\n    {back}", new=f"{forward}\n    return out", first=f"{first} t=T-1"),
        Mutant("rev-processing-order", "every per-step output is returned in processing order (index 0 is the "
               "state after x[:, T-1]), not indexed by the original t",
               "Keras returns go_backwards sequences in processing order (tensorflow#40345), and the flip "
               "back is forgotten", old=back, new="return out", first=f"{first} t=T-1"),
    ) + tuple(
        Mutant(f"rev-{s}-not-flipped", f"{s} stays in processing order while dx and the deltas are flipped back"
               + (" (so the final state sits at t = T-1 instead of after x[:, 0])" if s == "c" else ""),
               f"only the gradients are put back in the original order; {s} is taken as the loop wrote it",
               old=back, new=back.replace("k in TIMELESS", f"k in TIMELESS + ({s!r},)"),
               first=f"{s} t=T-1")
        for s in states)
