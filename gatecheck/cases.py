"""The deterministic case grid and the inputs of each case.

A case is one oracle on one shape, dtype, seed and input regime. Its id reads like
``keras-cell-B3-T7-D4-H5-f64-s0`` (regime ``std``) or ``...-s0-longmem``, so that
``pytest -k`` selects any axis. Inputs depend on the shape, seed and regime, not on
the oracle: every oracle sees the same numbers for the same case coordinates.
"""

import zlib
from typing import NamedTuple

import numpy as np

DTYPES = {"f32": np.float32, "f64": np.float64}

# Input regimes. Weights and inputs are random in all of them, so the four gates differ.
REGIMES = {
    "std": "random weights, inputs and upstream gradients; h0, c0 and gc non-zero",
    "zero": "as std, but h0 = c0 = 0 and gc = 0",
    "longmem": "forget-gate bias raised by +3 to +6: forget gates near 1 (long memory)",
    "sat": "weights x4 and inputs x3: most gates saturated",
}


class Case(NamedTuple):
    oracle: str
    B: int
    T: int
    D: int
    H: int
    dtype: str  # "f32" or "f64"
    seed: int
    regime: str = "std"

    @property
    def id(self):
        tail = "" if self.regime == "std" else f"-{self.regime}"
        return (
            f"{self.oracle}-B{self.B}-T{self.T}-D{self.D}-H{self.H}-{self.dtype}-s{self.seed}{tail}"
        )

    @property
    def np_dtype(self):
        return np.dtype(DTYPES[self.dtype])


def case_rng(case, prefix=""):
    """The random generator of a case's inputs: a function of its shape, seed and regime
    (and of ``prefix``, which separates models), never of the oracle or dtype."""
    key = f"{prefix}{case.B}-{case.T}-{case.D}-{case.H}-{case.seed}-{case.regime}"
    return np.random.default_rng(zlib.crc32(key.encode()))


def scales(regime):
    """(weight scale, input scale) of a regime: x4 and x3 saturate the gates in "sat"."""
    return (4.0, 3.0) if regime == "sat" else (1.0, 1.0)


def make_inputs(case):
    """Float64 canonical inputs for a case, before rounding to the case's dtype."""
    if case.regime not in REGIMES:
        raise ValueError(f"regime: expected one of {sorted(REGIMES)}, got {case.regime!r}")
    rng = case_rng(case)
    B, T, D, H = case.B, case.T, case.D, case.H
    w_scale, x_scale = scales(case.regime)
    inputs = dict(
        x=x_scale * rng.standard_normal((B, T, D)),
        h0=0.5 * rng.standard_normal((B, H)),
        c0=0.5 * rng.standard_normal((B, H)),
        W=w_scale * rng.standard_normal((4, D, H)) / np.sqrt(D),
        U=w_scale * rng.standard_normal((4, H, H)) / np.sqrt(H),
        b=0.5 * rng.standard_normal((4, H)),
        gh=rng.standard_normal((B, T, H)),
        gc=rng.standard_normal((B, H)),
    )
    if case.regime == "zero":
        for k in ("h0", "c0", "gc"):
            inputs[k] = np.zeros_like(inputs[k])
    if case.regime == "longmem":
        inputs["b"][1] += rng.uniform(3.0, 6.0, size=H)
    return inputs


def rounded(inputs, dtype):
    """Inputs in ``dtype`` (every oracle and candidate gets these exact values)."""
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in inputs.items()}


# --- the grid -----------------------------------------------------------------------

ORACLE_NAMES = ("keras-cell", "keras-layer", "torch-cell", "torch-layer")

# (B, T, D, H): B=1, T=1, D=1, H=1, D != H, B >= 3 and T >= 64 all appear.
_CI_SHAPES = [
    (1, 1, 1, 1),
    (1, 1, 3, 2),
    (1, 5, 1, 4),
    (2, 3, 4, 1),
    (3, 7, 4, 5),
    (4, 6, 5, 3),
    (2, 12, 3, 3),
    (5, 4, 2, 6),
    (3, 64, 4, 5),
    (2, 80, 3, 4),
]
# Nightly adds small shapes, run over many seeds (a case costs milliseconds), and larger
# ones over fewer: wide layers, D = H (where swapped input and recurrent kernels have the
# same shape), and T up to 1,000. The keras-cell oracle traces one graph per shape and
# dtype (TRACE_STEP_MS per step, below), so long sequences are few.
_NIGHTLY_SMALL = [
    (1, 2, 2, 1),
    (2, 2, 1, 3),
    (1, 9, 5, 5),
    (3, 3, 7, 2),
    (6, 10, 2, 9),
    (2, 16, 6, 6),
    (4, 24, 8, 3),
    (1, 33, 3, 7),
]
_NIGHTLY_LARGE = [
    (8, 20, 6, 7),
    (16, 50, 10, 12),
    (32, 16, 24, 32),
    (8, 40, 16, 64),
    (4, 128, 5, 8),
    (3, 256, 4, 6),
    (2, 500, 3, 5),
    (2, 1000, 3, 4),
]


def _ci_regimes(shape):
    """The CI grid's special regimes: each on a few shapes, so that every regime meets
    T = 1, a T >= 64 and D != H without multiplying the grid."""
    B, T, D, H = shape
    regimes = []
    if T in (1, 7, 80) or B == 1 and T == 5:
        regimes.append("zero")
    if T >= 7:
        regimes.append("longmem")
    if T in (3, 6, 12, 64):
        regimes.append("sat")
    return regimes


def _every_regime(shape):
    return [r for r in REGIMES if r != "std"]


# A profile is a list of blocks: shapes x seeds in the std regime, plus each shape's
# special regimes x special seeds.
PROFILES = {
    "ci": dict(
        blocks=[dict(shapes=_CI_SHAPES, seeds=range(3), special_seeds=range(1), regimes=_ci_regimes)],
        description="every oracle and quantity on small shapes up to T=80 (runs on every change)",
    ),
    "nightly": dict(
        blocks=[
            dict(shapes=_CI_SHAPES + _NIGHTLY_SMALL, seeds=range(20), special_seeds=range(6),
                 regimes=_every_regime),
            dict(shapes=_NIGHTLY_LARGE, seeds=range(6), special_seeds=range(3), regimes=_every_regime),
        ],
        description="18 small shapes x 20 seeds, 8 larger shapes up to T=1000, every regime (nightly)",
    ),
}


def grid(profile, oracles=ORACLE_NAMES, dtypes=("f32", "f64")):
    """Every case of a profile, in a fixed order."""
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    cases = []
    for oracle in oracles:
        for dtype in dtypes:
            for block in PROFILES[profile]["blocks"]:
                for shape in block["shapes"]:
                    for seed in block["seeds"]:
                        cases.append(Case(oracle, *shape, dtype, seed))
                    for regime in block["regimes"](shape):
                        for seed in block["special_seeds"]:
                            cases.append(Case(oracle, *shape, dtype, seed, regime))
    return cases


def parse_shard(text):
    """'i/n' (1 <= i <= n) -> (i, n)."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except (ValueError, AttributeError):
        raise ValueError(f"--shard: expected 'i/n' with 1 <= i <= n, got {text!r}") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard: expected 'i/n' with 1 <= i <= n, got {text!r}")
    return i, n


# The cost model that balances shards, in milliseconds on one core (measured on the nightly
# profile, see benchmarks/README.md): a case costs about 10 ms plus 1 ms per step; the
# keras-cell oracle first traces its unrolled graph, once per shape and dtype in a process,
# at about 130 ms per step.
CASE_MS, STEP_MS, TRACE_STEP_MS = 10, 1, 130


def group(case):
    """The cases that share an oracle, shape and dtype (one keras-cell graph) form a group."""
    return (case.oracle, case.B, case.T, case.D, case.H, case.dtype)


def cost(cases):
    """Estimated milliseconds to run ``cases`` in one process (CASE_MS, STEP_MS, TRACE_STEP_MS)."""
    traced = {group(c): c.T for c in cases if c.oracle == "keras-cell"}
    return sum(CASE_MS + STEP_MS * c.T for c in cases) + TRACE_STEP_MS * sum(traced.values())


def shard(cases, i, n):
    """Shard i of n. Cases sharing an oracle, shape and dtype stay together (a keras-cell
    shape is traced on one shard only), and the groups are dealt out largest first to the
    shard with the least estimated cost so far (ties: the lowest shard). Deterministic: a
    function of the case list alone. Shards are disjoint, their union is ``cases``, and each
    keeps the grid's order."""
    groups = {}
    for c in cases:
        groups.setdefault(group(c), []).append(c)
    costs = {key: cost(members) for key, members in groups.items()}
    loads = [0] * n
    owner = {}
    for key in sorted(groups, key=lambda key: (-costs[key], key)):
        owner[key] = loads.index(min(loads))
        loads[owner[key]] += costs[key]
    return [c for c in cases if owner[group(c)] == i - 1]
