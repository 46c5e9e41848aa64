"""The deterministic case grid and the inputs of each case.

A case is one oracle on one shape, dtype, seed, input regime and set of layer options
(``gatecheck.model.options``). Its id reads like ``keras-lstm-cell-B3-T7-D4-H5-f64-s0`` (regime ``std``,
no option) or ``...-s0-longmem``, then one suffix per option in the registry's order
(``...-s0-longmem-nobias``), so that ``pytest -k`` selects any axis and a case without
options keeps the id it always had. Inputs depend on the shape, seed and regime, not on
the oracle or the options: every oracle sees the same numbers for the same case
coordinates, and an option that removes inputs (no bias) leaves the others as they were.
"""

import zlib
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

DTYPES = {"f32": np.float32, "f64": np.float64}


class Case(NamedTuple):
    oracle: str
    B: int
    T: int
    D: int
    H: int
    dtype: str  # "f32" or "f64"
    seed: int
    regime: str = "std"
    options: tuple[str, ...] = ()  # layer options (gatecheck.model.options), in the registry's order

    @property
    def id(self) -> str:
        # the options are in the registry's order (gatecheck.model.options.canonical, as the grid makes them)
        tail = ("" if self.regime == "std" else f"-{self.regime}") + "".join(f"-{name}" for name in self.options)
        return (
            f"{self.oracle}-B{self.B}-T{self.T}-D{self.D}-H{self.H}-{self.dtype}-s{self.seed}{tail}"
        )

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(DTYPES[self.dtype])


def case_rng(case: Case, prefix: str = "") -> np.random.Generator:
    """The random generator of a case's inputs: a function of its shape, seed and regime
    (and of ``prefix``, which separates models), never of the oracle or dtype."""
    key = f"{prefix}{case.B}-{case.T}-{case.D}-{case.H}-{case.seed}-{case.regime}"
    return np.random.default_rng(zlib.crc32(key.encode()))


def scales(regime: str) -> tuple[float, float]:
    """(weight scale, input scale) of a regime: x4 and x3 saturate the gates in "sat"."""
    return (4.0, 3.0) if regime == "sat" else (1.0, 1.0)


def rounded(inputs: Mapping[str, Any], dtype: npt.DTypeLike) -> dict[str, np.ndarray]:
    """Inputs in ``dtype`` (every oracle and candidate gets these exact values)."""
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in inputs.items()}


# --- the grid -----------------------------------------------------------------------

# Every family defines each profile (Family.profiles) as a list of blocks: shapes x seeds in
# the std regime plus each shape's special regimes x special seeds, or explicit points.
PROFILES = {
    "ci": "small shapes, every oracle and quantity of every family (runs on every change)",
    "nightly": "many seeds and larger shapes, up to T=1000 for the LSTM (nightly)",
}


# A shape (B, T, D, H), a seed and a regime: one point of a block.
Point = tuple[tuple[int, int, int, int], int, str]


def expand(block: Mapping[str, Any]) -> Iterator[Point]:
    """(shape, seed, regime) of a block, in order (its ``options``, if any, apply to all)."""
    if "points" in block:
        yield from block["points"]
        return
    for shape in block["shapes"]:
        for seed in block["seeds"]:
            yield shape, seed, "std"
        for regime in block["regimes"](shape):
            for seed in block["special_seeds"]:
                yield shape, seed, regime


class _Traced(Protocol):
    """What ``per_step_traced`` reads of an oracle (``gatecheck.engines.base.Oracle``, a layer above)."""

    @property
    def trace_ms(self) -> float: ...
    @property
    def cannot_observe(self) -> Mapping[str, str]: ...


def per_step_traced(oracle: _Traced) -> bool:
    """A traced oracle that observes every quantity (the probed Keras cells): under a structural
    option it returns every layer's and direction's per-step states and deltas, and each set of
    options costs it a trace per (D, H, dtype) of about a second (``Oracle.trace_ms`` is the
    plain cell's)."""
    return oracle.trace_ms > 0 and not oracle.cannot_observe


def structural_ci(points: list[Point], option_sets: list[tuple[str, ...]],
                  dtypes: tuple[str, ...] = ("f64", "f32")) -> list[dict[str, Any]]:
    """The ci blocks of the structural sets (gatecheck.model.options.STRUCTURAL): every oracle but the
    per-step traced ones on ``points`` in every dtype; those on the first point, each set in one
    dtype, the sets taking turns (bi f64, bisum f32, ...): each set is covered and both dtypes
    are, at a trace per set rather than two (an oracle that declines a set's dtype takes the set
    in a dtype it runs: ``grid``)."""
    others = [dict(points=points, options=o, oracles=lambda oracle: not per_step_traced(oracle))
              for o in option_sets]
    cells = [dict(points=points[:1], options=o, dtypes=(dtypes[n % len(dtypes)],), oracles=per_step_traced)
             for n, o in enumerate(option_sets)]
    return others + cells


def check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
