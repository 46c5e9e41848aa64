"""The JAX and Flax NNX oracles (gatecheck/engines/jax/oracles.py, flax_oracle.py): their remaps
(pure NumPy: round trips, gate order, where each bias goes), a wrong remap per oracle failing against
the reference with its first divergence named, dtypes kept, the probes that make dc the total delta,
nnx.GRUCell's missing hidden-side bias (the one deviation), the grid and the cost model. Every
oracle against every ci case is the battery's (tests/battery/test_battery.py)."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gatecheck.core.cases import Case, per_step_traced
from gatecheck.engines import ORACLES
from gatecheck.engines.flax import layout as flax_layout
from gatecheck.engines.jax import layout as jax_layout
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.run.battery import explained, run_case
from gatecheck.run.grid import cost, grid
from gatecheck.truth import deviations
from gatecheck.truth.views import view
from tests.engines.remaps import wrong_remap_fails

JAX = [name for name, o in ORACLES.items() if o.framework == "jax"]
FLAX = [name for name, o in ORACLES.items() if o.framework == "flax"]
_FLAX_GRU_DEVIATION = next(d for d in deviations.DEVIATIONS if d.oracle == "flax-gru")
REPO = Path(__file__).resolve().parents[3]
SHAPES = [(1, 1), (3, 2), (4, 5), (1, 4)]  # (D, H), D != H included


def _params(family, D, H, seed=0):
    """A family's weights with every gate block distinct (so that a permutation cannot hide)."""
    inputs = FAMILIES[family].make_inputs(Case("-", 2, 3, D, H, "f64", seed))
    keys = ("W", "U", "b") if family != "gru" else ("W", "U", "bx", "bh")
    p = {k: inputs[k] for k in keys}
    if p["W"].ndim == 3:
        for name, value in p.items():
            for j, k in itertools.combinations(range(value.shape[0]), 2):
                assert not np.array_equal(value[j], value[k]), (name, j, k)
    return p


def _require(request, framework):
    from conftest import require_framework

    return require_framework(request.config, framework)


# --- the JAX models' layout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
def test_jax_remaps_round_trip(D, H):
    for family, to, back, keys in (("lstm", jax_layout.to_jax_lstm, jax_layout.from_jax_lstm, ("kernel", "bias")),
                                   ("rnn", jax_layout.to_jax_rnn, jax_layout.from_jax_rnn, ("kernel", "bias")),
                                   ("gru", jax_layout.to_jax_gru, jax_layout.from_jax_gru,
                                    ("kernel", "recurrent_kernel", "input_bias", "recurrent_bias"))):
        p = _params(family, D, H)
        fused = to(p)
        assert tuple(fused) == keys, family
        back_p = back(fused, D)
        assert set(back_p) == set(p) and all(np.array_equal(back_p[k], p[k]) for k in p), family
        no_bias = {k: v for k, v in p.items() if not k.startswith("b")}
        assert set(to(no_bias)) == {k for k in keys if "bias" not in k}, family
        assert set(back(to(no_bias), D)) == set(no_bias), family


def test_jax_lstm_kernel_is_x_then_h_with_gates_i_g_f_o():
    """kernel (D + H, 4H) on concat([x_t, h_{t-1}]): rows 0..D-1 are W, the rest U; the column block k
    is gate k of (i, g, f, o), i.e. canonical blocks 0, 2, 1, 3."""
    D, H = 3, 2
    p = _params("lstm", D, H)
    fused = jax_layout.to_jax_lstm(p)
    assert fused["kernel"].shape == (D + H, 4 * H) and fused["bias"].shape == (4 * H,)
    for k, canonical in enumerate((0, 2, 1, 3)):
        block = slice(k * H, (k + 1) * H)
        assert np.array_equal(fused["kernel"][:D, block], p["W"][canonical])
        assert np.array_equal(fused["kernel"][D:, block], p["U"][canonical])
        assert np.array_equal(fused["bias"][block], p["b"][canonical])


def test_jax_gru_blocks_are_r_z_n_with_a_bias_each_side():
    D, H = 3, 2
    p = _params("gru", D, H)
    fused = jax_layout.to_jax_gru(p)
    for k in range(3):
        block = slice(k * H, (k + 1) * H)
        assert np.array_equal(fused["kernel"][:, block], p["W"][k])
        assert np.array_equal(fused["recurrent_kernel"][:, block], p["U"][k])
        assert np.array_equal(fused["input_bias"][block], p["bx"][k])
        assert np.array_equal(fused["recurrent_bias"][block], p["bh"][k])


def test_jax_rnn_kernel_stacks_W_over_U():
    p = _params("rnn", 3, 2)
    fused = jax_layout.to_jax_rnn(p)
    assert np.array_equal(fused["kernel"], np.vstack([p["W"], p["U"]])) and np.array_equal(fused["bias"], p["b"])


@pytest.mark.parametrize("perm", [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)],
                         ids=lambda p: "".join("ifgo"[k] for k in p))
def test_permuted_lstm_gates_give_other_arrays(perm):
    p = _params("lstm", 3, 4)
    permuted = {k: v[list(perm)] for k, v in p.items()}
    for to in (jax_layout.to_jax_lstm, flax_layout.to_optimized_lstm):
        a, b = to(p), to(permuted)
        assert all(not np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b))), to.__name__


def _leaves(tree):
    return [leaf for v in tree.values() for leaf in (_leaves(v) if isinstance(v, dict) else [v])]


def test_jax_gradients_map_back_per_gate():
    """A permutation and a concatenation: gradients map back like weights."""
    for family, to, grads in (("lstm", jax_layout.to_jax_lstm, jax_layout.grads_from_jax_lstm),
                              ("rnn", jax_layout.to_jax_rnn, jax_layout.grads_from_jax_rnn),
                              ("gru", jax_layout.to_jax_gru, jax_layout.grads_from_jax_gru)):
        g = _params(family, 2, 3, seed=1)
        back = grads(to(g), 2)
        assert set(back) == {"d" + k for k in g} and all(np.array_equal(back["d" + k], g[k]) for k in g), family


# --- flax.nnx's cells' parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
def test_flax_remaps_round_trip_where_the_cell_has_a_slot_for_everything(D, H):
    for family, to, back in (("lstm", flax_layout.to_lstm, flax_layout.from_lstm),
                             ("lstm", flax_layout.to_optimized_lstm, flax_layout.from_optimized_lstm),
                             ("rnn", flax_layout.to_simple, flax_layout.from_simple)):
        p = _params(family, D, H)
        found = back(to(p))
        assert set(found) == set(p) and all(np.array_equal(found[k], p[k]) for k in p), to.__name__
        grads = getattr(flax_layout, "grads_from_" + to.__name__[3:])(to(p))
        assert all(np.array_equal(grads["d" + k], p[k]) for k in p), to.__name__


def test_flax_lstm_cell_layers_per_gate_and_the_bias_on_the_hidden_side():
    """nnx.LSTMCell: ii, if_, ig, io take x_t (no bias), hi, hf, hg, ho take h_{t-1} and hold the bias."""
    p = _params("lstm", 3, 2)
    w = flax_layout.to_lstm(p)
    for k, (x_side, h_side) in enumerate((("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho"))):
        assert set(w[x_side]) == {"kernel"} and np.array_equal(w[x_side]["kernel"], p["W"][k])
        assert np.array_equal(w[h_side]["kernel"], p["U"][k]) and np.array_equal(w[h_side]["bias"], p["b"][k])
    o = flax_layout.to_optimized_lstm(p)
    assert set(o["dense_i"]) == {"kernel"} and np.array_equal(o["dense_h"]["bias"], np.concatenate(list(p["b"])))


def test_flax_gru_has_one_bias_on_the_input_side():
    """bias = [bx + bh] for r and z, bx for n (bh[n] has no slot); its gradient is dbx for every gate."""
    D, H = 3, 2
    p = _params("gru", D, H)
    w = flax_layout.to_gru(p)
    assert set(w["dense_h"]) == {"kernel"} and w["dense_i"]["bias"].shape == (3 * H,)
    bias = w["dense_i"]["bias"].reshape(3, H)
    np.testing.assert_array_equal(bias[:2], p["bx"][:2] + p["bh"][:2])
    np.testing.assert_array_equal(bias[2], p["bx"][2])
    for k in range(3):
        assert np.array_equal(w["dense_i"]["kernel"][:, k * H:(k + 1) * H], p["W"][k])
        assert np.array_equal(w["dense_h"]["kernel"][:, k * H:(k + 1) * H], p["U"][k])
    grads = flax_layout.grads_from_gru({"dense_i": {"kernel": w["dense_i"]["kernel"], "bias": w["dense_i"]["bias"]},
                                        "dense_h": w["dense_h"]})
    assert set(grads) == {"dW", "dU", "dbx"} and np.array_equal(grads["dbx"], bias)
    assert "dbh" in ORACLES["flax-gru"].cannot_observe and "dbh" not in ORACLES["flax-gru"].observes


# --- a wrong remap fails against the reference, from where it first shows ------------------------------------


def _swapped_lstm_gates(order):
    """The JAX LSTM's remap with its gate blocks in ``order`` (as if the step split them so)."""
    def to(params):
        out = {"kernel": np.concatenate([jax_layout.fuse(params["W"], jax_layout.LSTM_CANONICAL, order),
                                         jax_layout.fuse(params["U"], jax_layout.LSTM_CANONICAL, order)])}
        if "b" in params:
            out["bias"] = jax_layout.fuse(params["b"], jax_layout.LSTM_CANONICAL, order)
        return out
    return to


def _gru_gates(to):
    """A GRU remap with the r and z blocks exchanged (gates z, r, n)."""
    def wrong(params):
        return to(dict(params, **{k: params[k][[1, 0, 2]] for k in ("W", "U", "bx", "bh") if k in params}))
    return wrong


def _flax_lstm_f_g_kernels_swapped(params, to=flax_layout.to_lstm):
    w = to(params)
    w["if_"], w["ig"] = w["ig"], w["if_"]
    return w


# oracle -> (layout module, remap name, the wrong remap, what it gets wrong, the first divergence)
WRONG = {
    "jax-lstm": (jax_layout, "to_jax_lstm", _swapped_lstm_gates(("i", "f", "g", "o")),
                 "gates i,f,g,o (PyTorch's) instead of i,g,f,o", "c t=0"),
    "jax-lstm-head": (jax_layout, "to_jax_lstm", _swapped_lstm_gates(("i", "f", "g", "o")),
                      "gates i,f,g,o (PyTorch's) instead of i,g,f,o", "c t=0"),
    "jax-rnn": (jax_layout, "to_jax_rnn",
                lambda p, to=jax_layout.to_jax_rnn: dict(to(p), kernel=np.concatenate([p["W"], p["U"].T])),
                "the recurrent block transposed (PyTorch's weight_hh)", "h t=0"),
    "jax-gru": (jax_layout, "to_jax_gru", _gru_gates(jax_layout.to_jax_gru), "gates z,r,n (Keras')", "h t=0"),
    "jax-gru-before": (jax_layout, "to_jax_gru", _gru_gates(jax_layout.to_jax_gru), "gates z,r,n (Keras')",
                       "h t=0"),
    "flax-lstm": (flax_layout, "to_lstm", _flax_lstm_f_g_kernels_swapped, "the f and g input kernels exchanged",
                  "c t=0"),
    "flax-lstm-opt": (flax_layout, "to_optimized_lstm",
                      lambda p, to=flax_layout.to_optimized_lstm: to(dict(p, **{k: p[k][[0, 2, 1, 3]] for k in "WUb"})),
                      "gates i,g,f,o (Haiku's) instead of i,f,g,o", "c t=0"),
    "flax-rnn": (flax_layout, "to_simple", lambda p, to=flax_layout.to_simple: to(dict(p, U=p["U"].T)),
                 "the recurrent kernel transposed", "h t=0"),
    "flax-gru": (flax_layout, "to_gru", _gru_gates(flax_layout.to_gru), "gates z,r,n (Keras')", "h t=0"),
}


def _ci_case(name):
    """The oracle's ci case B=3 T=7 D=4 H=5 f64 seed 0, standard regime, no option."""
    o = ORACLES[name]
    return next(c for c in grid("ci", FAMILIES[o.family], [name])
                if (c.B, c.T, c.D, c.H, c.dtype, c.seed, c.regime, c.options) == (3, 7, 4, 5, "f64", 0, "std", ()))


def _report(case, oracle):
    """The battery's comparison of the reference with the oracle (flax-gru: on the inputs of its deviation's
    model, bh[n] = 0: gatecheck.run.battery.explained, as the battery checks each of its deviating cases)."""
    if oracle.name != "flax-gru":
        return run_case(case, oracle)
    return explained(case, oracle, _FLAX_GRU_DEVIATION)


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_remap_fails_from_its_first_divergence(name, request, monkeypatch):
    _require(request, ORACLES[name].framework)
    module, remap, wrong, what, first = WRONG[name]
    wrong_remap_fails(name, module, (remap, wrong, what, first), monkeypatch, compare=_report)


def test_every_oracle_has_a_wrong_remap_test():
    assert set(WRONG) == set(JAX) | set(FLAX)


# --- dtypes, probes, the deviation ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", JAX + FLAX)
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_outputs_keep_the_inputs_dtype(name, dtype, request):
    o = ORACLES[name]
    _require(request, o.framework)
    case = Case(name, 2, 3, 3, 2, dtype, 0)
    inputs = {k: v.copy() for k, v in view(case, FAMILIES[o.family])[0].items()}
    for options in [()] + [(option,) for option in sorted(o.options) if option in ("nobias", "rev")]:
        record = opts.under(FAMILIES[o.family], options)
        out = o.run({k: v for k, v in inputs.items() if k in record.inputs}, options, o.observing(record))
        assert out and {v.dtype for v in out.values()} == {case.np_dtype}, (options, {k: v.dtype for k, v in
                                                                                     out.items()})


@pytest.mark.parametrize("name", ["flax-lstm", "flax-lstm-opt"])
def test_the_c_probe_must_reach_the_output_tanh(name, request, monkeypatch):
    """The probe of c_t rides on the cell's carry and on its activation_fn's second call (tanh(c_t)):
    on the carry alone its gradient misses the path through h_t = o_t * tanh(c_t), and dc alone fails."""
    from gatecheck.engines.flax import oracles as flax_oracle

    _require(request, "flax")
    case = Case(name, 3, 7, 4, 5, "f64", 0)
    assert run_case(case, ORACLES[name]).ok

    def carry_only(self, a):
        self.calls += 1
        return self.fn(a)

    monkeypatch.setattr(flax_oracle, "_built", {})  # built and traced again, with the probe on the carry alone
    monkeypatch.setattr(flax_oracle._ProbedActivation, "__call__", carry_only)
    report = run_case(case, ORACLES[name])
    assert {r.quantity for r in report.failures} == {"dc"}, report.message()


def test_flax_gru_is_the_reset_after_gru_without_the_hidden_n_bias(request):
    """On inputs with bh[n] = 0 nnx.GRUCell matches every quantity it observes, forwards and reversed; on the
    case's own inputs it fails from h t=0, which gatecheck/truth/deviations.py records (google/flax#5594)."""
    _require(request, "flax")
    from gatecheck.truth import deviations

    o = ORACLES["flax-gru"]
    for options in [(), ("rev",)]:
        case = _ci_case("flax-gru")._replace(options=options)
        report = _report(case, o)
        assert report.ok and {"h", "dh", "dx", "dh0", "dW", "dU", "dbx"} <= {r.quantity for r in report.results}
        report = run_case(case, o)
        first = f"h t={case.T - 1}" if options else "h t=0"  # (a reverse layer computes t = T-1 first)
        assert not report.ok and f"{report.failures[0].quantity} {report.failures[0].label}" == first
        assert report.deviation and deviations.outcome(report, report.deviation) == "as recorded"
    assert deviations.missing_hidden_bias_shows(_ci_case("flax-gru"))


def test_the_deviation_model_is_checked_and_can_fail(request, monkeypatch):
    """The battery checks each deviating flax-gru case on the inputs of the entry's model (bh[n] = 0):
    a model that leaves bh[n] as it is does not explain the difference, and a wrong remap of the cell
    fails on the model's inputs too (so the deviating cases still judge the remap)."""
    _require(request, "flax")
    o = ORACLES["flax-gru"]
    case = _ci_case("flax-gru")
    assert explained(case, o, _FLAX_GRU_DEVIATION).ok
    unexplained = explained(case, o, _FLAX_GRU_DEVIATION._replace(explained_by=lambda inputs: inputs))
    assert not unexplained.ok and unexplained.failures[0].quantity == "h"
    module, remap, wrong, what, first = WRONG["flax-gru"]
    monkeypatch.setattr(module, remap, wrong)
    assert not explained(case, o, _FLAX_GRU_DEVIATION).ok, what


# --- the grid and the cost model -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", JAX + FLAX)
def test_the_ci_grid_gives_every_option_offered(name):
    """Each option the family defines and the oracle offers has ci cases: no bias and reverse in both dtypes;
    each structural set once (a traced oracle that observes every quantity, as the probed Keras cells), the
    sets taking turns between the dtypes."""
    o = ORACLES[name]
    cases = grid("ci", FAMILIES[o.family], [name])
    defined = set(opts.defined(FAMILIES[o.family]))
    assert {c.dtype for c in cases if not c.options} == {"f32", "f64"}
    for option in sorted(o.options & defined):
        mine = {c.dtype for c in cases if option in c.options}
        assert mine == {"f32", "f64"} if not opts.OPTIONS[option].structural else mine, option
    sets = [s for s in opts.STRUCTURAL if set(s) <= o.options and set(s) <= defined]
    assert per_step_traced(o) == (not o.cannot_observe)
    for s in sets:
        assert len([c for c in cases if c.options == s]) == 1, s
    if sets:
        assert {c.dtype for c in cases if c.options in sets} == {"f32", "f64"}


def test_nobias_is_offered_only_where_the_model_has_a_bias_switch():
    """The JAX models are written with or without a bias; no nnx cell has use_bias."""
    assert all("nobias" in ORACLES[n].options for n in JAX if n != "jax-lstm-head")
    assert not [n for n in FLAX if "nobias" in ORACLES[n].options]


def test_an_xla_compile_is_charged_per_shape():
    """XLA compiles static shapes: a JAX or Flax oracle's trace cost comes once per (B, T) in a group."""
    for name in JAX + FLAX:
        a = Case(name, 3, 7, 4, 5, "f64", 0)
        b, c = a._replace(seed=1), a._replace(T=8)
        step = a.T + 10
        assert cost([a, b]) == 2 * step + ORACLES[name].trace_ms
        assert cost([a, c]) == step + step + 1 + 2 * ORACLES[name].trace_ms


# --- structures: every layer's and direction's per-step states and deltas ------------------------------------


@pytest.mark.parametrize("name", ["jax-lstm", "flax-lstm"])
def test_every_layer_and_direction_is_compared_and_the_directions_are_not_interchangeable(name, request, monkeypatch):
    """Under bi,L2 the oracles return h, c, dh, dc of each layer and direction (by the original t), C_T of
    each, every gradient and each layer's y; given the two directions' weights the other way round
    (layer-major order read as reverse-first), the case fails."""
    from gatecheck.engines import structured

    o = ORACLES[name]
    _require(request, o.framework)
    case = Case(name, 3, 7, 4, 5, "f64", 0, "std", ("bisum", "L2"))
    report = run_case(case, o)
    assert report.ok, report.message()
    parts = ("", "_r", "_l1", "_r_l1")
    every = {p + k + s for k in ("h", "c") for p in ("", "d") for s in parts}
    every |= {q + s for q in ("cT", "dh0", "dc0", "dW", "dU", "db") for s in parts} | {"y", "y_l1", "dx"}
    assert every <= {r.quantity for r in report.results}
    monkeypatch.setattr(structured, "suffixes", lambda options: ["_r", "", "_r_l1", "_l1"])
    assert not run_case(case, o).ok


_IN_A_FRESH_PROCESS = """
import hashlib, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
if sys.argv[1] == "tensorflow-first":
    import tensorflow  # it imports jax (through Keras) and so starts JAX before gatecheck does
from gatecheck.engines import ORACLES
from gatecheck.families import FAMILIES
from gatecheck.run.battery import expected_of
from gatecheck.run.grid import grid
for case_id in sys.argv[2:]:
    oracle = ORACLES[case_id.split("-B")[0]]
    family = FAMILIES[oracle.family]
    case = next(c for c in grid("nightly", family, [oracle.name]) if c.id == case_id)
    out = expected_of(case, oracle, family)
    print(case_id, hashlib.sha1(b"".join(out[k].tobytes() for k in sorted(out))).hexdigest())
"""


@pytest.mark.parametrize("case_id", ["jax-gru-before-B4-T5-D4-H1-f64-s0-longmem", "flax-rnn-B2-T40-D3-H4-f64-s0-rev"])
def test_an_oracle_computes_the_same_bits_whatever_the_process_imported_first(case_id):
    """XLA's options are read once, by the first library to start JAX's CPU backend: TensorFlow's import
    starts it (Keras imports jax), and an option gatecheck set in XLA_FLAGS after that was lost, so that
    a nightly worker that ran a Keras case first computed small float64 dots in another order (few-ulp
    differences, x6 the baseline's error). The options now go with each compile (frameworks.xla_options)."""
    pytest.importorskip("tensorflow", reason="the order at stake is TensorFlow's import before jax's")
    bits = [subprocess.run([sys.executable, "-c", _IN_A_FRESH_PROCESS, first, case_id], capture_output=True,
                           text=True, check=True, cwd=REPO).stdout.split()
            for first in ("gatecheck-first", "tensorflow-first")]
    assert bits[0] == bits[1] and bits[0][0] == case_id


def test_every_jax_program_of_gatecheck_is_compiled_through_frameworks_jit():
    """A jax.jit of its own would compile with whatever options the process started JAX with (the test above)."""
    import ast

    found = []
    for path in sorted((REPO / "gatecheck").rglob("*.py")):
        if path.name == "frameworks.py" and path.parent.name == "engines":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("jit", "pmap") and getattr(node.value, "id", "") == "jax":
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == [], f"compile through gatecheck.engines.frameworks.jit: {found}"
