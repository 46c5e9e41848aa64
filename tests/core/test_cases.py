"""The case grid: coverage the issue asks for, readable unique ids, deterministic inputs."""

import itertools

import numpy as np
import pytest

from gatecheck.core.cases import PROFILES, Case
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.families import FAMILIES
from gatecheck.families.lstm.record import LSTM, REGIMES, make_inputs
from gatecheck.run.grid import backstopped
from gatecheck.run.grid import grid as family_grid

ORACLE_NAMES = battery_oracles("lstm")


def grid(profile):
    return family_grid(profile, LSTM)


def test_lstm_battery_oracles_are_the_framework_ones():
    assert ORACLE_NAMES == ["keras-lstm-cell", "keras-lstm-layer", "torch-lstm-cell", "torch-lstm-layer", "ort-lstm", "onnx-reference-lstm",
                            "torch-onnx-lstm", "torch-dynamo-lstm", "keras-onnx-lstm", "jax-lstm", "flax-lstm",
                            "flax-lstm-opt", "openvino-onnx-lstm", "openvino-onnx-lstm-fed", "openvino-torch-lstm",
                            "litert-lstm", "paddle-lstm-cell", "paddle-lstm-layer", "paddle-lstm-layer-tm",
                            "mlx-lstm-layer", "mlx-lstm-step", "executorch-lstm-step", "executorch-lstm-step-xnnpack"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_grid_covers_the_required_axes(profile):
    cases = grid(profile)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert {c.oracle for c in cases if ORACLES[c.oracle].battery} == set(ORACLE_NAMES)
    backstop = {c.options for c in cases if not ORACLES[c.oracle].battery}  # the reference's (gatecheck.run.grid)
    assert backstop and all(backstopped(LSTM, s, ORACLE_NAMES) for s in backstop)
    assert {c.dtype for c in cases} == {"f32", "f64"}
    assert {c.regime for c in cases} == set(REGIMES)
    assert any(c.B == 1 for c in cases) and any(c.B >= 3 for c in cases)
    assert any(c.T == 1 for c in cases) and any(c.T >= 64 for c in cases)
    assert any(c.D == 1 for c in cases) and any(c.H == 1 for c in cases)
    assert any(c.D != c.H for c in cases)
    for oracle, dtype in itertools.product(ORACLE_NAMES, ("f32", "f64")):
        if ORACLES[oracle].offers((), dtype):  # (onnxruntime's kernels: float32 only)
            assert sum(c.oracle == oracle and c.dtype == dtype for c in cases) >= 40


def test_profile_sizes():
    assert len(grid("ci")) >= 300
    assert max(c.T for c in grid("nightly")) == 1000
    assert len(grid("nightly")) >= 5000  # the nightly target: >= 5,000 cases in <= 30 min on 2 cores


def test_unknown_profile_is_named():
    with pytest.raises(ValueError, match=r"profile: expected one of \['ci', 'nightly'\], got 'fast'"):
        grid("fast")


def test_id_reads_every_axis():
    assert Case("keras-lstm-cell", 3, 7, 4, 5, "f64", 0).id == "keras-lstm-cell-B3-T7-D4-H5-f64-s0"
    assert Case("torch-lstm-layer", 2, 80, 3, 4, "f32", 1, "longmem").id == "torch-lstm-layer-B2-T80-D3-H4-f32-s1-longmem"


def test_inputs_are_deterministic_and_shared_by_oracles():
    a = make_inputs(Case("keras-lstm-cell", 3, 7, 4, 5, "f64", 0))
    b = make_inputs(Case("torch-lstm-layer", 3, 7, 4, 5, "f32", 0))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = make_inputs(Case("keras-lstm-cell", 3, 7, 4, 5, "f64", 1))
    assert not np.array_equal(a["W"], c["W"])


@pytest.mark.parametrize("case", [c for c in grid("ci") if c.oracle == "torch-lstm-cell" and c.dtype == "f64"][:12],
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
    from gatecheck.model.options import under

    oracle = ORACLES[name]
    table = FAMILIES[oracle.family].quantities
    # A quantity an option adds (proj: dWr) is in the table of the record under it.
    every = dict(table, **{q: s for o in oracle.options for q, s in under(FAMILIES[oracle.family], (o,)).quantities.items()})
    assert all(q in every for q in oracle.observes)
    observed = {table[q].source for q in oracle.observes if q in table and not table[q].last_step}
    assert set(FAMILIES[oracle.family].contract) - observed == set(oracle.cannot_observe)


@pytest.mark.parametrize("profile,n", [("ci", 3), ("nightly", 4), ("nightly", 7)])
def test_shards_are_disjoint_and_complete(profile, n):
    from gatecheck.run.grid import cost, group, shard

    cases = grid(profile)
    parts = [shard(cases, i, n) for i in range(1, n + 1)]
    ids = [c.id for part in parts for c in part]
    assert sorted(ids) == sorted(c.id for c in cases) and len(ids) == len(set(ids))
    assert all(part == [c for c in cases if c in members] for part, members in zip(parts, map(set, parts)))
    # An oracle-D-H-dtype group lives in one shard (a keras-lstm-cell graph is traced once) ...
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
    from gatecheck.run.grid import parse_shard

    with pytest.raises(ValueError, match=r"--shard: expected 'i/n' with 1 <= i <= n"):
        parse_shard(text)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_has_a_grid_per_profile_and_oracles(family):
    f = FAMILIES[family]
    for profile in PROFILES:
        cases = family_grid(profile, f)
        assert cases and len({c.id for c in cases}) == len(cases), (family, profile)
        assert {c.regime for c in cases} <= set(f.regimes)
    assert set(f.contract) == set(f.shapes(f.make_inputs(Case("-", 2, 3, 4, 5, "f64", 0))))


# --- one registry of oracles and one of families ----------------------------------------


@pytest.fixture
def scratch_registry():
    """The oracle registry, restored after the test to what it held (the modules that imported it keep the
    same dict, so a test registers into it rather than replacing it)."""
    from gatecheck import engines

    saved = dict(engines.ORACLES)
    yield engines.ORACLES
    engines.ORACLES.clear()
    engines.ORACLES.update(saved)


def test_a_stub_oracle_enters_the_grid_through_one_registry_entry(scratch_registry):
    """Registering an oracle is all it takes: the grid, the cost model and the CLI choices
    derive from the registry."""
    from gatecheck import engines as oracles
    from gatecheck.engines.base import Oracle
    from gatecheck.frontends.cli import parser
    from gatecheck.run.grid import cost

    stub = Oracle("stub-engine", "rnn", "numpy", "a stub engine", ("h",), runner=lambda inputs: {"h": None},
                  trace_ms=70)
    oracles.register(stub)
    cases = family_grid("ci", FAMILIES["rnn"])
    running = {o for o in battery_oracles("rnn") if any(oracles.ORACLES[o].offers((), d) for d in ("f32", "f64"))}
    assert {c.oracle for c in cases} - {oracles.reference_oracle("rnn").name} == running and "stub-engine" in running
    ids = [c.id for c in cases if c.oracle == "stub-engine"]
    assert "stub-engine-B3-T7-D4-H5-f64-s0" in ids
    mine = [c for c in cases if c.oracle == "stub-engine" and c.T == 7 and c.dtype == "f64"]
    assert cost(mine[:1]) == 10 + 7 + 70  # CASE_MS + STEP_MS * T + the stub's trace cost
    assert cost(mine[:2]) == 2 * (10 + 7) + 70  # traced once per D, H and dtype
    assert "stub-engine" in parser()._subparsers._group_actions[0].choices["verify"]._option_string_actions[
        "--oracle"].choices
    with pytest.raises(ValueError, match="registered twice"):
        oracles.register(stub)


def test_a_stub_family_enters_the_grid_through_one_registry_entry(monkeypatch, scratch_registry):
    """A family is a record and one registry entry: the grid, the battery and the check
    command take it as they take the LSTM."""
    import dataclasses

    from gatecheck import engines as oracles
    from gatecheck import families
    from gatecheck.engines.base import Oracle
    from gatecheck.tools import check as chk

    stub = dataclasses.replace(FAMILIES["rnn"], name="stub-rnn", description="a stub family")
    monkeypatch.setitem(families.FAMILIES, "stub-rnn", stub)
    oracles.register(Oracle("stub-rnn-reference", "stub-rnn", "numpy", "the stub's reference",
                            ("h", "dh", "dx", "dh0", "dW", "dU", "db"), runner=lambda inputs: stub.run(**inputs)))
    cases = family_grid("ci", families.get("stub-rnn"))
    assert {c.oracle for c in cases} == {"stub-rnn-reference"} and len(cases) == 30
    records = chk.run_cases(stub.run, "stub", stub, cases[:3])
    assert [r["status"] for r in records] == ["match"] * 3


def test_nothing_else_lists_oracle_names():
    """Oracle names appear in their own module (and in tests, docs, data), never in another
    module of the engine: everything derives from the registry."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    own = {name: pathlib.Path(__import__(o.runner.__module__, fromlist=["x"]).__file__).resolve()
           for name, o in ORACLES.items() if o.runner is not None and hasattr(o.runner, "__module__")}
    from gatecheck.engines import INVENTORIES

    # An engine's inventory (gatecheck/engines/<engine>/inventory.py) names which of its own oracles call
    # each API: engine knowledge in the engine's folder; tests/engines/test_inventory.py checks each name
    # is registered and of that engine's framework.
    inventory_of = {(root / "gatecheck" / "engines" / i.engine / "inventory.py").resolve(): i.framework
                    for i in INVENTORIES}
    sources = list((root / "gatecheck").rglob("*.py"))
    sources.append(root / "conftest.py")
    offenders = []
    for path in sources:
        text = path.read_text()
        for name in ORACLES:
            if own.get(name) == path.resolve() or path.relative_to(root).as_posix() in (
                    "gatecheck/engines/reference/oracles.py", "gatecheck/truth/deviations.py",
                    "gatecheck/engines/__init__.py"):
                continue  # deviations: data; the registry: its alias table (old ids -> the ids of now)
            if inventory_of.get(path.resolve()) == ORACLES[name].framework:
                continue
            if f'"{name}"' in text or f"'{name}'" in text:
                offenders.append(f"{path.relative_to(root)}: {name}")
    assert offenders == []
