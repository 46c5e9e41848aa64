"""The PaddlePaddle oracles (gatecheck/engines/paddle/): their remaps (pure NumPy: round trips, gate order,
where each bias goes), a wrong remap per oracle failing against the reference from its first divergence,
dtypes kept, the GRU's reset convention, the layers' declined no-bias sets, the deviation's cause, and the
import order the framework entry keeps. Every oracle against every ci case is the battery's
(tests/battery/test_battery.py, marker paddle)."""

import dataclasses
import itertools
import subprocess
import sys

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.core.compare import contract_value
from gatecheck.engines import ORACLES
from gatecheck.engines.paddle import layout as paddle_layout
from gatecheck.engines.paddle import oracles as paddle_oracles
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.reference import gru as reference_gru
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.truth import deviations
from gatecheck.truth.views import case_inputs, family_of, under, view
from tests.engines.remaps import ci_case, wrong_remap_fails

PADDLE = [name for name, o in ORACLES.items() if o.framework == "paddle"]
SHAPES = [(1, 1), (3, 2), (4, 5), (1, 4)]  # (D, H), D != H included
REMAPS = {"lstm": ("to_paddle_lstm", "from_paddle_lstm", "grads_from_paddle_lstm"),
          "gru": ("to_paddle_gru", "from_paddle_gru", "grads_from_paddle_gru"),
          "rnn": ("to_paddle_rnn", "from_paddle_rnn", "grads_from_paddle_rnn")}


def _params(family, D, H, seed=0):
    """A family's weights with every gate block distinct (so that a permutation cannot hide)."""
    inputs = FAMILIES[family].make_inputs(Case("-", 2, 3, D, H, "f64", seed))
    p = {k: inputs[k] for k in ("W", "U", "b", "bx", "bh") if k in inputs}
    if p["W"].ndim == 3:
        for name, value in p.items():
            for j, k in itertools.combinations(range(value.shape[0]), 2):
                assert not np.array_equal(value[j], value[k]), (name, j, k)
    return p


def _require(request, framework="paddle"):
    from conftest import require_framework

    return require_framework(request.config, framework)


# --- the remaps ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
@pytest.mark.parametrize("family", sorted(REMAPS))
def test_remaps_round_trip(family, D, H):
    to, back, grads = (getattr(paddle_layout, n) for n in REMAPS[family])
    p = _params(family, D, H)
    w = to(p)
    assert set(w) == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    found = back(w)
    assert set(found) == set(p) and all(np.array_equal(found[k], p[k]) for k in p)
    no_bias = {k: v for k, v in p.items() if not k.startswith("b")}
    assert set(to(no_bias)) == {"weight_ih", "weight_hh"} and set(back(to(no_bias))) == set(no_bias)
    g = grads(w)  # the remap is a permutation and a transpose (and the half split): gradients map back per gate
    assert all(np.array_equal(g["d" + k], p[k] / (2 if k == "b" else 1)) for k in ("W", "U", "b", "bx", "bh")
               if k in p)


def test_lstm_blocks_are_i_f_g_o_with_b_in_halves():
    D, H = 3, 2
    p = _params("lstm", D, H)
    w = paddle_layout.to_paddle_lstm(p)
    assert w["weight_ih"].shape == (4 * H, D) and w["weight_hh"].shape == (4 * H, H)
    for k in range(4):
        rows = slice(k * H, (k + 1) * H)
        assert np.array_equal(w["weight_ih"][rows], p["W"][k].T) and np.array_equal(w["weight_hh"][rows], p["U"][k].T)
        assert np.array_equal(w["bias_ih"][rows], p["b"][k] / 2) and np.array_equal(w["bias_hh"][rows], p["b"][k] / 2)


def test_gru_blocks_are_r_z_c_with_each_bias_on_its_side():
    D, H = 3, 2
    p = _params("gru", D, H)
    w = paddle_layout.to_paddle_gru(p)
    for k in range(3):  # Paddle's c block is the canonical n
        rows = slice(k * H, (k + 1) * H)
        assert np.array_equal(w["weight_ih"][rows], p["W"][k].T) and np.array_equal(w["weight_hh"][rows], p["U"][k].T)
        assert np.array_equal(w["bias_ih"][rows], p["bx"][k]) and np.array_equal(w["bias_hh"][rows], p["bh"][k])


def test_the_projection_is_weight_ho_exactly():
    """proj: weight_ho (H, P) is Wr, weight_hh (4H, P) is U (4, P, H) remapped as without it; dWr maps back."""
    p = dict(_params("lstm", 3, 4), U=np.arange(4 * 2 * 4.0).reshape(4, 2, 4), Wr=np.arange(8.0).reshape(4, 2))
    w = paddle_layout.to_paddle_lstm_proj(p)
    assert np.array_equal(w["weight_ho"], p["Wr"]) and w["weight_hh"].shape == (16, 2)
    back = paddle_layout.from_paddle_lstm_proj(w)
    assert set(back) == set(p) and all(np.array_equal(back[k], p[k]) for k in p)
    assert np.array_equal(paddle_layout.grads_from_paddle_lstm_proj(w)["dWr"], p["Wr"])


@pytest.mark.parametrize("perm", [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)],
                         ids=lambda p: "".join("ifgo"[k] for k in p))
def test_permuted_lstm_gates_give_other_arrays(perm):
    p = _params("lstm", 3, 4)
    a, b = paddle_layout.to_paddle_lstm(p), paddle_layout.to_paddle_lstm({k: v[list(perm)] for k, v in p.items()})
    assert all(not np.array_equal(a[k], b[k]) for k in a)


# --- a wrong remap fails against the reference, from where it first shows ------------------------------------


def _exchanged(to, order):
    """A remap given the canonical gate blocks in ``order`` (as if Paddle split its gates so)."""
    def wrong(params):
        return to(dict(params, **{k: params[k][list(order)] for k in ("W", "U", "b", "bx", "bh") if k in params}))
    return wrong


# oracle -> (remap name, the wrong remap, what it gets wrong, the first divergence)
_LSTM_WRONG = ("to_paddle_lstm", _exchanged(paddle_layout.to_paddle_lstm, (1, 0, 2, 3)), "gates f,i,g,o", "c t=0")
_GRU_WRONG = ("to_paddle_gru", _exchanged(paddle_layout.to_paddle_gru, (1, 0, 2)), "gates z,r,n (Keras')", "h t=0")
_RNN_WRONG = ("to_paddle_rnn", lambda p, to=paddle_layout.to_paddle_rnn: to(dict(p, U=p["U"].T)),
              "the recurrent weight transposed", "h t=0")
WRONG = {"paddle-lstm-cell": _LSTM_WRONG, "paddle-gru-cell": _GRU_WRONG, "paddle-rnn-cell": _RNN_WRONG}
for _tm in ("", "-tm"):
    WRONG.update({"paddle-lstm-layer" + _tm: _LSTM_WRONG[:3] + ("h t=0",), "paddle-gru-layer" + _tm: _GRU_WRONG,
                  "paddle-rnn-layer" + _tm: _RNN_WRONG})




@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_remap_fails_from_its_first_divergence(name, request, monkeypatch):
    _require(request)
    wrong_remap_fails(name, paddle_layout, WRONG[name], monkeypatch)


def test_every_oracle_has_a_wrong_remap_test():
    assert set(WRONG) == set(PADDLE)


def _projection_columns_exchanged(params, to=paddle_layout.to_paddle_lstm_proj):
    w = to(params)
    w["weight_ho"] = w["weight_ho"][:, ::-1].copy()
    return w


@pytest.mark.parametrize("name", ["paddle-lstm-cell", "paddle-lstm-layer"])
def test_a_wrong_projection_fails_at_the_first_step(name, request, monkeypatch):
    """proj: weight_ho with its P columns in the other order (P = 2 here) fails from h at t = 0."""
    _require(request)
    case = ci_case(name, ("proj",))
    assert run_case(case, ORACLES[name]).ok
    monkeypatch.setattr(paddle_layout, "to_paddle_lstm_proj", _projection_columns_exchanged)
    report = run_case(case, ORACLES[name])
    assert not report.ok and f"{report.failures[0].quantity} {report.failures[0].label}" == "h t=0", report.message()


def test_layers_load_every_layer_and_direction_into_its_own_cell(request, monkeypatch):
    """Under bi and L2 each (layer, direction) gets its own arrays: read in another order, the case fails."""
    _require(request)
    case = ci_case("paddle-lstm-layer", ("bi", "L2"))
    assert run_case(case, ORACLES["paddle-lstm-layer"]).ok
    monkeypatch.setattr(paddle_oracles.structured, "suffixes", lambda options: ["_r", "", "_r_l1", "_l1"])
    assert not run_case(case, ORACLES["paddle-lstm-layer"]).ok


# --- dtypes, the GRU's convention, what Paddle cannot run ------------------------------------------------------


@pytest.mark.parametrize("name", PADDLE)
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_outputs_keep_the_inputs_dtype(name, dtype, request):
    paddle = _require(request)
    o = ORACLES[name]
    before = paddle.get_default_dtype()
    case = Case(name, 2, 3, 3, 2, dtype, 0)
    inputs = {k: v.copy() for k, v in view(case, FAMILIES[o.family])[0].items()}
    for options in [()] + ([("nobias",)] if o.offers(("nobias",)) else []):
        record = opts.under(FAMILIES[o.family], options)
        out = o.run({k: v for k, v in inputs.items() if k in record.inputs}, options, o.observing(record))
        assert out and {v.dtype for v in out.values()} == {case.np_dtype}, (options, {k: v.dtype for k, v in
                                                                                     out.items()})
    assert paddle.get_default_dtype() == before  # the default dtype is Paddle's process-wide state: restored


@pytest.mark.parametrize("name", ["paddle-gru-cell", "paddle-gru-layer", "paddle-gru-layer-tm"])
def test_paddle_gru_is_the_reset_after_gru(name, request):
    """Paddle's GRU puts r_t outside W_hc h + b_hc (reset after): it matches the reset-after reference and
    not the reset-before one on the same inputs, so the gru-reset-before family has no Paddle oracle."""
    _require(request)
    o = ORACLES[name]
    case = ci_case(name)
    inputs = case_inputs(case, family_of(o))
    h = o.run(inputs, (), ("h",))["h"]
    keys = ("x", "h0", "W", "U", "bx", "bh", "gh")
    after, before = (reference_gru.run(**{k: inputs[k] for k in keys}, reset=r)["h"] for r in ("after", "before"))
    assert np.allclose(h, after, rtol=1e-12, atol=1e-12)
    assert not np.allclose(h, before, rtol=1e-3, atol=1e-3)
    assert not [n for n, x in ORACLES.items() if x.framework == "paddle" and x.family == "gru-reset-before"]


@pytest.mark.parametrize("name", [n for n in PADDLE if "-layer" in n])
def test_layers_decline_every_set_without_a_bias_with_the_reason(name):
    o = ORACLES[name]
    for options in [("nobias",)] + [("nobias",) + s for s in (("bi",), ("L2",), ("len",))]:
        assert "PaddlePaddle/Paddle#70231" in o.declined(options)
    assert not o.declined(("bi", "L2")) and not o.declined(("len",))
    cases = grid("ci", FAMILIES[o.family], [name])
    assert cases and not [c for c in cases if "nobias" in c.options]


def test_the_time_major_variants_feed_time_first(request, monkeypatch):
    """The -tm layers build time_major=True and are fed x as (T, B, D): a layer built so but fed batch-first
    (B != T) does not run (Paddle checks the batch axis against the initial states)."""
    paddle = _require(request)
    o = ORACLES["paddle-rnn-layer-tm"]
    case = ci_case(o.name)
    assert case.B != case.T and run_case(case, o).ok
    real = paddle.nn.SimpleRNN
    monkeypatch.setattr(paddle.nn, "SimpleRNN", lambda *args, **kw: real(*args, **dict(kw, time_major=True)))
    batch_first = dataclasses.replace(o, runner=paddle_oracles.layer_runner(paddle_oracles.RNN, time_major=False))
    with pytest.raises(ValueError, match="batch size"):
        run_case(case, batch_first)


def test_the_projection_with_lengths_is_declined_with_the_reason():
    """Under proj_size Paddle's layer runs its loop, whose outputs past a row's length are the cell's, not 0."""
    o = ORACLES["paddle-lstm-layer"]
    assert o.offers(("proj",)) and o.offers(("proj", "bi", "L2")) and o.offers(("len",))
    assert "Python loop" in o.declined(("proj", "len")) and o.declined(("proj", "len", "bi", "L2"))
    assert not [c for c in grid("ci", FAMILIES["lstm"], [o.name]) if "proj" in c.options and "len" in c.options]


def test_cells_offer_no_bias_and_the_ci_grid_runs_it():
    for name in [n for n in PADDLE if n.endswith("-cell")]:
        o = ORACLES[name]
        assert o.offers(("nobias",))
        assert {c.dtype for c in grid("ci", FAMILIES[o.family], [name]) if "nobias" in c.options} == {"f32", "f64"}


@pytest.mark.parametrize("name", [n for n in PADDLE if "-layer" in n])
def test_the_bidirectional_lengths_deviation_is_the_reverse_initial_state(name, request):
    """The entry's cause: with h0_r = 0 (what Paddle's backward pass takes in a short row) every quantity of a
    len+bi case matches the reference, and with the drawn h0_r the gradients differ and the outputs do not."""
    _require(request)
    o = ORACLES[name]
    case = Case(name, 3, 7, 4, 5, "f64", 0, "std", ("len", "bi"))
    entry = next(d for d in deviations.DEVIATIONS if d.oracle == name)
    assert entry.applies(case)
    record = under(case, family_of(o))
    quantities = o.observing(record)
    for zeroed in (False, True):
        inputs = case_inputs(case, family_of(o))
        if zeroed:
            inputs["h0_r"][:] = 0
        expected, got = record.run(**inputs), o.run(inputs, case.options, quantities)
        differ = {q for q in quantities
                  if not np.allclose(got[q], contract_value(expected, q, record.quantities), rtol=1e-10, atol=1e-12)}
        if zeroed:
            assert not differ, differ
        else:
            assert "dU_r" in differ and differ <= set(entry.quantities), differ


# --- the import order -----------------------------------------------------------------------------------------


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})


def test_paddle_after_tensorflow_is_refused_not_a_crash(request):
    """``import paddle`` after tensorflow ends the process (a segmentation fault in libpaddle's load); the
    framework entry refuses it with the reason, and import_keras imports paddle first, where both then run."""
    _require(request)
    _require(request, "keras")
    refused = _python("import tensorflow\nfrom gatecheck.engines import frameworks as fw\n"
                      "try:\n    fw.import_paddle()\nexcept fw.Unavailable as exc:\n    print('refused:', exc)\n")
    assert refused.returncode == 0 and "refused: paddle cannot be imported" in refused.stdout, refused.stderr[-2000:]
    keras_first = _python("from gatecheck.engines import frameworks as fw\nfw.import_keras()\n"
                          "paddle = fw.import_paddle()\nprint(float(paddle.to_tensor([2.0]).sum()))\n")
    assert keras_first.returncode == 0 and keras_first.stdout.strip() == "2.0", keras_first.stderr[-2000:]


def test_importing_paddle_leaves_the_root_logger_as_it_was(request):
    """``import paddle`` sets the root logger to INFO with a handler on stderr; through gatecheck it does not, so
    no library's INFO records (jax's 'Unable to initialize backend 'tpu'', ...) reach a report."""
    _require(request)
    code = ("import logging\nfrom gatecheck.engines import frameworks as fw\nfw.import_paddle()\n"
            "root = logging.getLogger()\nprint(root.level, len(root.handlers))\n"
            "logging.getLogger('some.library').info('an INFO record')\n")
    out = _python(code)
    assert out.returncode == 0 and out.stdout.split() == ["30", "0"], (out.stdout, out.stderr[-2000:])
    assert "an INFO record" not in out.stderr


def test_paddle_missing_is_said_to_be_missing_even_after_tensorflow(monkeypatch):
    """Where paddle is not installed, the reason says so, also in a process that imported tensorflow (there the
    import order's reason would send a user after the wrong cause)."""
    import importlib.util

    from gatecheck.engines import frameworks

    real = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, "paddle", raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or object())
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "paddle" else real(name, *a))
    with pytest.raises(frameworks.Unavailable, match="paddle is not installed"):
        frameworks.import_paddle()
