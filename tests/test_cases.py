"""The case grid: coverage the issue asks for, readable unique ids, deterministic inputs."""

import itertools

import numpy as np
import pytest

from gatecheck.cases import ORACLE_NAMES, PROFILES, REGIMES, Case, grid, make_inputs
from gatecheck.compare import QUANTITIES
from oracles import ORACLES
from reference.lstm import CONTRACT_KEYS


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_grid_covers_the_required_axes(profile):
    cases = grid(profile)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert {c.oracle for c in cases} == set(ORACLE_NAMES)
    assert {c.dtype for c in cases} == {"f32", "f64"}
    assert {c.regime for c in cases} == set(REGIMES)
    assert any(c.B == 1 for c in cases) and any(c.B >= 3 for c in cases)
    assert any(c.T == 1 for c in cases) and any(c.T >= 64 for c in cases)
    assert any(c.D == 1 for c in cases) and any(c.H == 1 for c in cases)
    assert any(c.D != c.H for c in cases)
    for oracle, dtype in itertools.product(ORACLE_NAMES, ("f32", "f64")):
        assert sum(c.oracle == oracle and c.dtype == dtype for c in cases) >= 40


def test_profile_sizes():
    assert len(grid("ci")) >= 300
    assert max(c.T for c in grid("nightly")) == 1000
    assert len(grid("nightly")) >= 5000  # the nightly target: >= 5,000 cases in <= 30 min on 2 cores


def test_unknown_profile_is_named():
    with pytest.raises(ValueError, match=r"profile: expected one of \['ci', 'nightly'\], got 'fast'"):
        grid("fast")


def test_id_reads_every_axis():
    assert Case("keras-cell", 3, 7, 4, 5, "f64", 0).id == "keras-cell-B3-T7-D4-H5-f64-s0"
    assert Case("torch-layer", 2, 80, 3, 4, "f32", 1, "longmem").id == "torch-layer-B2-T80-D3-H4-f32-s1-longmem"


def test_inputs_are_deterministic_and_shared_by_oracles():
    a = make_inputs(Case("keras-cell", 3, 7, 4, 5, "f64", 0))
    b = make_inputs(Case("torch-layer", 3, 7, 4, 5, "f32", 0))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = make_inputs(Case("keras-cell", 3, 7, 4, 5, "f64", 1))
    assert not np.array_equal(a["W"], c["W"])


@pytest.mark.parametrize("case", [c for c in grid("ci") if c.oracle == "torch-cell" and c.dtype == "f64"][:12],
                         ids=lambda c: c.id)
def test_gates_differ(case):
    inputs = make_inputs(case)
    for name in ("W", "U", "b"):
        for j, k in itertools.combinations(range(4), 2):
            assert not np.allclose(inputs[name][j], inputs[name][k]), (case.id, name, j, k)


def test_regimes_do_what_they_say():
    base = Case("-", 3, 12, 3, 3, "f64", 0)
    zero = make_inputs(base._replace(regime="zero"))
    assert not zero["h0"].any() and not zero["c0"].any() and not zero["gc"].any()
    std = make_inputs(base)
    assert std["h0"].any() and std["c0"].any() and std["gc"].any()
    longmem = make_inputs(base._replace(regime="longmem"))
    assert (longmem["b"][1] > 2.0).all()
    sat = make_inputs(base._replace(regime="sat"))
    assert np.abs(sat["W"]).max() > 2 * np.abs(std["W"]).max()


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_oracle_says_what_it_cannot_observe(name):
    oracle = ORACLES[name]
    observed = {QUANTITIES[q].source for q in oracle.observes if not QUANTITIES[q].last_step}
    assert set(CONTRACT_KEYS) - observed == set(oracle.cannot_observe)
    assert all(q in QUANTITIES for q in oracle.observes)


@pytest.mark.parametrize("profile,n", [("ci", 3), ("nightly", 4), ("nightly", 7)])
def test_shards_are_disjoint_and_complete(profile, n):
    from gatecheck.cases import cost, group, shard

    cases = grid(profile)
    parts = [shard(cases, i, n) for i in range(1, n + 1)]
    ids = [c.id for part in parts for c in part]
    assert sorted(ids) == sorted(c.id for c in cases) and len(ids) == len(set(ids))
    assert all(part == [c for c in cases if c in members] for part, members in zip(parts, map(set, parts)))
    # An oracle-shape-dtype group lives in one shard (a keras-cell graph is traced once) ...
    groups = [set(map(group, part)) for part in parts]
    assert sum(map(len, groups)) == len(set().union(*groups))
    # ... and the estimated costs differ by at most the largest group's (largest first, least loaded).
    members = {}
    for c in cases:
        members.setdefault(group(c), []).append(c)
    loads = [cost(part) for part in parts]
    assert max(loads) - min(loads) <= max(map(cost, members.values()))
    assert shard(cases, 2, n) == shard(list(cases), 2, n)  # deterministic


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_bad_shard_is_named(text):
    from gatecheck.cases import parse_shard

    with pytest.raises(ValueError, match=r"--shard: expected 'i/n' with 1 <= i <= n"):
        parse_shard(text)
