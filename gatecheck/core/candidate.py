"""Loading and calling an implementation under test ("candidate") under a family's contract;
every way a candidate can misbehave becomes a ``CandidateError`` that says what was expected.

A candidate behaves the same under ``python -m gatecheck`` and under pytest: its warnings
are recorded and shown with the comparison (never turned into errors by a warning filter),
and an exception it raises is reported with the candidate's own file and line.
"""

import importlib
import linecache
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from gatecheck.core.family import Arrays, Family
from gatecheck.reference.layers import LAYER, REVERSE


class CandidateError(Exception):
    """The candidate could not be loaded, raised, or returned something off-contract."""


def load(spec: object, what: str = "--candidate") -> Callable[..., Any]:
    """``'module:callable'`` (module importable from the current directory) -> callable.
    ``what`` names the option or argument the spec came from, for messages."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise CandidateError(f"{what}: expected 'module:callable', got {spec!r}")
    module_name, attr = spec.split(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # a warning at import is the candidate's, not an error
            module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the candidate's, reported as such
        raise CandidateError(
            f"{what} {spec!r}: module {module_name!r} does not import: {type(exc).__name__}: {exc}"
            f"{where(exc)}") from exc
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise CandidateError(f"{what} {spec!r}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise CandidateError(
            f"{what} {spec!r}: {attr!r} is a {type(target).__name__}, not callable"
        )
    return target


def base_key(key: str) -> str:
    """A contract key without its direction and layer suffixes: 'dc_r_l1', 'dc_l1', 'dc_r' -> 'dc'
    (``gatecheck.reference.layers``: '_r' the reverse direction, '_l1' the second layer)."""
    for end in (LAYER, REVERSE):
        if key.endswith(end) and len(key) > len(end):
            key = key[:-len(end)]
    return key


def covers(declared: Mapping[str, Any], key: str) -> bool:
    """Whether a declaration (``cannot_observe``'s keys) covers contract key ``key``: the key itself,
    or its base key, which covers the quantity in every direction and layer ('dc': dc_r, dc_l1, dc_r_l1)."""
    return key in declared or base_key(key) in declared


def cannot_observe(candidate: object, family: Family, valid: Iterable[str] | None = None) -> dict[str, Any]:
    """Contract keys a candidate declares it cannot expose ({key: reason}, as declared), via an
    attribute ``cannot_observe`` on the callable; those are left out of every comparison, and
    said so. A key of the family's own contract ('dc') covers that quantity in every direction
    and layer ('dc_r', 'dc_l1', 'dc_r_l1'); a suffixed key ('dc_r') names that one only, and is
    simply absent from a case that has no such quantity. With ``valid`` (the keys of the family under
    every set of its options: ``gatecheck.model.options.declared`` passes them) every key must be one of
    them; without it (a record under options, what ``call`` is given) the form only is checked."""
    declared = getattr(candidate, "cannot_observe", {}) or {}
    if not isinstance(declared, dict) or not all(isinstance(k, str) for k in declared):
        raise CandidateError(f"cannot_observe: expected a dict keyed by the {family.name} contract's keys "
                             f"{list(family.contract)}, got {declared!r}")
    if valid is not None:
        unknown = [k for k in declared if k not in valid]
        if unknown:
            bases = [k for k in valid if base_key(k) == k]
            raise CandidateError(
                f"cannot_observe: {unknown} {'is not a key' if len(unknown) == 1 else 'are not keys'} of the "
                f"{family.name} contract under any of its option sets; expected keys from {bases}, or one of them "
                f"with the suffix _r, _l1 or _r_l1 where a set has that direction or layer (a key without a suffix "
                f"covers every direction and layer)")
    return declared


def excused(candidate: object, family: Family) -> dict[str, Any]:
    """{contract key of ``family`` (a record, under options or not): reason} for each key the
    candidate's declaration covers (``covers``)."""
    declared = cannot_observe(candidate, family)
    return {k: declared.get(k, declared.get(base_key(k))) for k in family.contract if covers(declared, k)}


def comparable(observed: Iterable[str], candidate: object, family: Family) -> tuple[str, ...]:
    """The oracle's quantities less those the candidate declares it cannot observe."""
    unobservable = excused(candidate, family)
    return tuple(q for q in observed if family.quantities[q].source not in unobservable)


def coverage(observed: Iterable[str], candidate: object, family: Family) -> tuple[tuple[str, ...], bool]:
    """(compared quantities, whether a gradient is among them). Comparing nothing is a
    candidate error: a verdict must cover something."""
    quantities = comparable(observed, candidate, family)
    if not quantities:
        raise CandidateError(f"the candidate declares every quantity this oracle observes unobservable "
                             f"({', '.join(observed)}): nothing can be compared")
    return quantities, any(family.quantities[q].phase > 0 for q in quantities)


def _is_candidate_frame(filename: str) -> bool:
    """A frame of the candidate's code: not gatecheck's, NumPy's, or the standard library's."""
    path = os.path.abspath(filename)
    if path.startswith(os.path.dirname(os.__file__)) or "site-packages" in path.split(os.sep):
        return False
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the gatecheck package
    return not path.startswith(here + os.sep) and not filename.startswith("<frozen")


def where(exc: BaseException) -> str:
    """" at FILE:LINE in FUNCTION: `source`" for the innermost frame of the candidate's own code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_candidate_frame(f.filename)]
    if not frames:
        return ""
    f = frames[-1]
    line = (f.line or linecache.getline(f.filename, f.lineno or 0)).strip()
    return f" (at {f.filename}:{f.lineno} in {f.name}: {line})" if line else f" (at {f.filename}:{f.lineno} in {f.name})"


def _warning_text(w: warnings.WarningMessage) -> str:
    return f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"


def summarize_warnings(caught: Iterable[warnings.WarningMessage]) -> list[str]:
    """Distinct warnings, each once with a count."""
    counts: dict[str, int] = {}
    for w in caught:
        text = _warning_text(w)
        counts[text] = counts.get(text, 0) + 1
    return [text + (f" x{n}" if n > 1 else "") for text, n in counts.items()]


class Outputs(dict[str, np.ndarray]):
    """A candidate's checked outputs (copies: a candidate may reuse its buffers); ``warnings``
    lists what it warned (and printed) while running."""

    warnings: list[str] | tuple[()] = ()


class Foreign:
    """Stands for a returned value that is not an array (it may not survive the trip from
    the candidate's process): its type is what the contract check reports."""

    def __init__(self, value: object) -> None:
        self.type_name = type(value).__name__


class Returned(dict[str, Any]):
    """What a candidate run in its own process returned (``gatecheck.run.isolation``): plain
    arrays, with the warnings and output it produced there."""

    warnings: list[str] | tuple[()] = ()


def extract(out: Any, keys: Iterable[str]) -> dict[str, Any] | None:
    """The contract's keys of a candidate's result as a plain dict, with bounded work on any
    object: each key is looked up once with ``out[key]`` (a KeyError means absent); nothing
    iterates or searches the object, which may be a mapping that never ends. Returns None
    when ``out`` is not a mapping at all."""
    if not hasattr(out, "keys") or not hasattr(out, "__getitem__"):
        return None
    found: dict[str, Any] = {}
    for key in keys:
        try:
            value = out[key]
        except KeyError:
            continue
        except Exception as exc:  # a mapping whose lookup fails otherwise is the candidate's problem
            raise CandidateError(f"looking up {key!r} in the candidate's result raised "
                                 f"{type(exc).__name__}: {exc}{where(exc)}") from exc
        found[key] = np.array(value, copy=True) if isinstance(value, np.ndarray) else value
    return found


def call(candidate: Callable[..., Any], inputs: Arrays, family: Family, name: str = "candidate") -> Outputs:
    """Run the candidate on canonical inputs and check its result against ``family``'s
    contract (keys, shapes, dtype, finiteness). Returns ``Outputs``. The candidate may be a
    plain callable (run here) or an ``gatecheck.run.isolation.Isolated`` (run in its own process)."""
    args = {k: v.copy() for k, v in inputs.items()}  # a candidate may not alter our inputs
    keys = family.contract
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = candidate(**args, **family.keywords)  # under reverse: reverse=True
        except CandidateError:
            raise
        except Exception as exc:
            raise CandidateError(f"{name} raised {type(exc).__name__}: {exc}{where(exc)}") from exc
        got = extract(out, keys)
    if got is None:
        raise CandidateError(f"{name} returned a {type(out).__name__}; expected a mapping with keys {list(keys)}")
    extra = [k for k in family.removed if k in (extract(out, family.removed) or {})]
    if extra:  # under a layer option (no bias) a quantity the model does not have
        raise CandidateError(f"{name} returned {extra}, which the {family.name} contract under its options does not "
                             f"have (no bias: no bias gradient); the contract needs {list(keys)}")
    unobservable = excused(candidate, family)
    missing = [k for k in keys if k not in got and k not in unobservable]
    if missing:
        raise CandidateError(f"{name} returned no {missing}; the contract needs {list(keys)}")
    dtype = inputs["x"].dtype
    checked = Outputs()
    for key, shape in family.shapes(inputs).items():
        if key in unobservable and key not in got:
            continue
        value = got[key]
        if not isinstance(value, np.ndarray):
            kind = value.type_name if isinstance(value, Foreign) else type(value).__name__
            raise CandidateError(f"{name}: {key!r} is a {kind}; expected a numpy.ndarray")
        if value.shape != shape:
            raise CandidateError(f"{name}: {key!r} has shape {value.shape}; expected {shape}")
        if value.dtype != dtype:
            raise CandidateError(f"{name}: {key!r} has dtype {value.dtype}; expected {dtype} (the inputs' dtype)")
        if not np.all(np.isfinite(value)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise CandidateError(f"{name}: {key!r} holds {value[bad]} at {bad}; expected finite values")
        checked[key] = value
    checked.warnings = (list(out.warnings) if isinstance(out, Returned) else []) + summarize_warnings(caught)
    return checked
