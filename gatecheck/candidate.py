"""Loading and calling an LSTM under test ("candidate") under the contract of
``reference.lstm.run``; every way a candidate can misbehave becomes a
``CandidateError`` that says what was expected."""

import importlib
import sys

import numpy as np

from reference.lstm import CONTRACT_KEYS

REFERENCE_SPEC = "reference.lstm:run"


class CandidateError(Exception):
    """The candidate could not be loaded, raised, or returned something off-contract."""


def load(spec, what="--candidate"):
    """``'module:callable'`` (module importable from the current directory) -> callable.
    ``what`` names the option or argument the spec came from, for messages."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise CandidateError(f"{what}: expected 'module:callable', got {spec!r}")
    module_name, attr = spec.split(":")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the candidate's, reported as such
        raise CandidateError(
            f"{what} {spec!r}: module {module_name!r} does not import: {type(exc).__name__}: {exc}"
        ) from exc
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise CandidateError(f"{what} {spec!r}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise CandidateError(
            f"{what} {spec!r}: {attr!r} is a {type(target).__name__}, not callable"
        )
    return target


def expected_shapes(inputs):
    B, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    bth = (B, T, H)
    return dict(h=bth, c=bth, dh=bth, dc=bth, dW=(4, D, H), dU=(4, H, H), db=(4, H),
                dx=(B, T, D), dh0=(B, H), dc0=(B, H))


def cannot_observe(candidate, keys=CONTRACT_KEYS):
    """Contract keys a candidate declares it cannot expose ({key: reason}), via an attribute
    ``cannot_observe`` on the callable; those are left out of every comparison, and said so."""
    declared = getattr(candidate, "cannot_observe", {}) or {}
    if not isinstance(declared, dict) or set(declared) - set(keys):
        raise CandidateError(f"cannot_observe: expected a dict keyed by contract keys {list(keys)}, got {declared!r}")
    return declared


def call(candidate, inputs, name="candidate", keys=CONTRACT_KEYS, shapes=expected_shapes):
    """Run the candidate on canonical inputs and check its result against the contract:
    ``keys`` and ``shapes(inputs)`` (by default the LSTM's, ``reference.lstm.run``)."""
    args = {k: v.copy() for k, v in inputs.items()}  # a candidate may not alter our inputs
    try:
        out = candidate(**args)
    except Exception as exc:
        raise CandidateError(f"{name} raised {type(exc).__name__}: {exc}") from exc
    if not hasattr(out, "keys") or not hasattr(out, "__getitem__"):
        raise CandidateError(f"{name} returned a {type(out).__name__}; expected a mapping with keys {list(keys)}")
    excused = cannot_observe(candidate, keys)
    missing = [k for k in keys if k not in out and k not in excused]
    if missing:
        raise CandidateError(f"{name} returned no {missing}; the contract needs {list(keys)}")
    dtype = inputs["x"].dtype
    checked = {}
    for key, shape in shapes(inputs).items():
        if key in excused and key not in out:
            continue
        value = out[key]
        if not isinstance(value, np.ndarray):
            raise CandidateError(f"{name}: {key!r} is a {type(value).__name__}; expected a numpy.ndarray")
        if value.shape != shape:
            raise CandidateError(f"{name}: {key!r} has shape {value.shape}; expected {shape}")
        if value.dtype != dtype:
            raise CandidateError(f"{name}: {key!r} has dtype {value.dtype}; expected {dtype} (the inputs' dtype)")
        if not np.all(np.isfinite(value)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise CandidateError(f"{name}: {key!r} holds {value[bad]} at {bad}; expected finite values")
        checked[key] = value
    return checked
