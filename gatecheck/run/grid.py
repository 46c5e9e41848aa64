"""The grid of cases a run holds: every oracle of a family on every block of a profile
(``gatecheck.core.cases``), the shards that split it, and the cost model that balances them."""

from collections.abc import Iterable, Sequence

from gatecheck.core.cases import Case, check_profile, expand
from gatecheck.core.family import Family
from gatecheck.engines import ORACLES, battery_oracles, reference_oracle
from gatecheck.model.options import canonical, suffix, under


def grid(profile: str, family: Family, oracles: Iterable[str] | None = None,
         dtypes: Sequence[str] = ("f32", "f64")) -> list[Case]:
    """Every case of a family's profile, in a fixed order: for each oracle (by default the
    family's battery oracles in the registry), each dtype, each block's coordinates. A block
    with ``options`` gives cases to the oracles that run them (``Oracle.offers``); one with
    ``dtypes`` only in those, one with ``oracles`` (a predicate on the ``Oracle``) only to the
    oracles it holds for. An oracle gets no case in a dtype it declines under a set (``Oracle.declines_dtype``).

    With the family's battery (``oracles`` None, or its battery oracles), the family's reference oracle joins
    the grid on the sets no battery oracle observes a gradient under (``backstopped``): the backward pass
    there is checked against the reference, which finite differences prove (tests/core/test_finite_differences.py),
    as no engine computes it."""
    check_profile(profile)
    battery = battery_oracles(family.name)
    names = list(battery if oracles is None else oracles)
    backstop = reference_oracle(family.name).name if names == battery else None
    if backstop in names:  # (a model no framework offers: its reference is its battery)
        backstop = None
    cases: list[Case] = []
    for oracle in names + ([backstop] if backstop else []):
        for dtype in dtypes:
            for block in family.profiles[profile]:
                options = canonical(block.get("options", ()))
                if oracle == backstop and not backstopped(family, options, names):
                    continue
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


def backstopped(family: Family, options: tuple[str, ...], names: Iterable[str]) -> bool:
    """Whether oracles of ``names`` run the option set (in some dtype) and none of them observes a gradient under
    it: every engine that offers it is forward only (an inference runtime), so the reference judges the backward
    pass. (A set no engine runs stays out of the battery: the reference alone would judge it against itself.)"""
    record = under(family, options)
    backward = {q.source for q in record.quantities.values() if q.phase > 0}
    runs = [n for n in names if ORACLES[n].offers(options)]
    return bool(runs) and not any(backward & set(ORACLES[n].returns(options)) for n in runs)


def parse_shard(text: str) -> tuple[int, int]:
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


def group(case: Case) -> tuple[str, int, int, str, tuple[str, ...]]:
    """The cases that share an oracle, D, H, dtype and options (one traced graph: Keras builds
    another model for ``use_bias=False``) form a group."""
    return (case.oracle, case.D, case.H, case.dtype, case.options)


def group_name(case: Case) -> str:
    """A group as text: ``keras-lstm-cell-D4-H5-f32`` (``...-f32-nobias`` with options)."""
    return f"{case.oracle}-D{case.D}-H{case.H}-{case.dtype}{suffix(case.options)}"


def cost(cases: Iterable[Case]) -> float:
    """Estimated milliseconds to run ``cases`` in one process (CASE_MS, STEP_MS and each
    oracle's trace cost, once per group, or per group and (B, T) for an oracle that compiles
    every shape: ``Oracle.trace_per_shape``)."""
    traced: dict[tuple[object, ...], float] = {group(c) + ((c.B, c.T) if ORACLES[c.oracle].trace_per_shape else ()): ORACLES[c.oracle].trace_ms
              for c in cases}
    return sum(CASE_MS + STEP_MS * c.T for c in cases) + sum(traced.values())


def shard(cases: list[Case], i: int, n: int) -> list[Case]:
    """Shard i of n. Cases sharing an oracle, D, H and dtype stay together (a graph is
    traced on one shard only), and the groups are dealt out largest first to the
    shard with the least estimated cost so far (ties: the lowest shard). Deterministic: a
    function of the case list alone. Shards are disjoint, their union is ``cases``, and each
    keeps the grid's order."""
    groups: dict[tuple[str, int, int, str, tuple[str, ...]], list[Case]] = {}
    for c in cases:
        groups.setdefault(group(c), []).append(c)
    costs = {key: cost(members) for key, members in groups.items()}
    loads: list[float] = [0] * n
    owner: dict[tuple[str, int, int, str, tuple[str, ...]], int] = {}
    for key in sorted(groups, key=lambda key: (-costs[key], key)):
        owner[key] = loads.index(min(loads))
        loads[owner[key]] += costs[key]
    return [c for c in cases if owner[group(c)] == i - 1]
