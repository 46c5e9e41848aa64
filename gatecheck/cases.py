"""The deterministic case grid and the inputs of each case.

A case is one oracle on one shape, dtype, seed, input regime and set of layer options
(``gatecheck.options``). Its id reads like ``keras-cell-B3-T7-D4-H5-f64-s0`` (regime ``std``,
no option) or ``...-s0-longmem``, then one suffix per option in the registry's order
(``...-s0-longmem-nobias``), so that ``pytest -k`` selects any axis and a case without
options keeps the id it always had. Inputs depend on the shape, seed and regime, not on
the oracle or the options: every oracle sees the same numbers for the same case
coordinates, and an option that removes inputs (no bias) leaves the others as they were.
"""

import zlib
from typing import NamedTuple

import numpy as np

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
    options: tuple = ()  # layer options (gatecheck.options), in the registry's order

    @property
    def id(self):
        from gatecheck.options import suffix

        tail = ("" if self.regime == "std" else f"-{self.regime}") + suffix(self.options)
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


def rounded(inputs, dtype):
    """Inputs in ``dtype`` (every oracle and candidate gets these exact values)."""
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in inputs.items()}


# --- the grid -----------------------------------------------------------------------

# Every family defines each profile (Family.profiles) as a list of blocks: shapes x seeds in
# the std regime plus each shape's special regimes x special seeds, or explicit points.
PROFILES = {
    "ci": "small shapes, every oracle and quantity of every family (runs on every change)",
    "nightly": "many seeds and larger shapes, up to T=1000 for the LSTM (nightly)",
}


def expand(block):
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


def per_step_traced(oracle):
    """A traced oracle that observes every quantity (the probed Keras cells): under a structural
    option it returns every layer's and direction's per-step states and deltas, and each set of
    options costs it a trace per (D, H, dtype) of about a second (``Oracle.trace_ms`` is the
    plain cell's)."""
    return oracle.trace_ms > 0 and not oracle.cannot_observe


def structural_ci(points, option_sets, dtypes=("f64", "f32")):
    """The ci blocks of the structural sets (gatecheck.options.STRUCTURAL): every oracle but the
    per-step traced ones on ``points`` in every dtype; those on the first point, each set in one
    dtype, the sets taking turns (bi f64, bisum f32, ...): each set is covered and both dtypes
    are, at a trace per set rather than two (an oracle that declines a set's dtype takes the set
    in a dtype it runs: ``grid``)."""
    others = [dict(points=points, options=o, oracles=lambda oracle: not per_step_traced(oracle))
              for o in option_sets]
    cells = [dict(points=points[:1], options=o, dtypes=(dtypes[n % len(dtypes)],), oracles=per_step_traced)
             for n, o in enumerate(option_sets)]
    return others + cells


def check_profile(profile):
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {sorted(PROFILES)}, got {profile!r}")


def grid(profile, family, oracles=None, dtypes=("f32", "f64")):
    """Every case of a family's profile, in a fixed order: for each oracle (by default the
    family's battery oracles in the registry), each dtype, each block's coordinates. A block
    with ``options`` gives cases to the oracles that run them (``Oracle.offers``); one with
    ``dtypes`` only in those, one with ``oracles`` (a predicate on the ``Oracle``) only to the
    oracles it holds for. An oracle gets no case in a dtype it declines under a set (``Oracle.declines_dtype``)."""
    from gatecheck.oracles import ORACLES, battery_oracles
    from gatecheck.options import canonical

    check_profile(profile)
    names = battery_oracles(family.name) if oracles is None else oracles
    cases = []
    for oracle in names:
        for dtype in dtypes:
            for block in family.profiles[profile]:
                options = canonical(block.get("options", ()))
                taken = block.get("dtypes", (dtype,))
                if not any(ORACLES[oracle].offers(options, d) for d in taken):  # a set's turn in a declined dtype:
                    taken = [d for d in dtypes if ORACLES[oracle].offers(options, d)][:1]  # the first it runs
                if not ORACLES[oracle].offers(options, dtype) or dtype not in taken:
                    continue
                if not block.get("oracles", lambda o: True)(ORACLES[oracle]):
                    continue
                for shape, seed, regime in expand(block):
                    cases.append(Case(oracle, *shape, dtype, seed, regime, options))
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
# profile, see benchmarks/README.md): a case costs about 10 ms plus 1 ms per step; an oracle
# that traces a graph (``Oracle.trace_ms``, measured by benchmarks/trace_cost.py) does so once
# per D, H and dtype in a process, whatever B and T.
CASE_MS, STEP_MS = 10, 1


def group(case):
    """The cases that share an oracle, D, H, dtype and options (one traced graph: Keras builds
    another model for ``use_bias=False``) form a group."""
    return (case.oracle, case.D, case.H, case.dtype, case.options)


def group_name(case):
    """A group as text: ``keras-cell-D4-H5-f32`` (``...-f32-nobias`` with options)."""
    from gatecheck.options import suffix

    return f"{case.oracle}-D{case.D}-H{case.H}-{case.dtype}{suffix(case.options)}"


def cost(cases):
    """Estimated milliseconds to run ``cases`` in one process (CASE_MS, STEP_MS and each
    oracle's trace cost, once per group, or per group and (B, T) for an oracle that compiles
    every shape: ``Oracle.trace_per_shape``)."""
    from gatecheck.oracles import ORACLES

    traced = {group(c) + ((c.B, c.T) if ORACLES[c.oracle].trace_per_shape else ()): ORACLES[c.oracle].trace_ms
              for c in cases}
    return sum(CASE_MS + STEP_MS * c.T for c in cases) + sum(traced.values())


def shard(cases, i, n):
    """Shard i of n. Cases sharing an oracle, D, H and dtype stay together (a graph is
    traced on one shard only), and the groups are dealt out largest first to the
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
