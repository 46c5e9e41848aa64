"""The Keras -> ONNX oracles (gatecheck.engines.keras_onnx.oracles): a wrong remap of each family is seen through the
conversion at h t=0; the conversion never sees the batch and time it runs at; the weights as inputs give the
frozen graph's ops and numbers; the ops recorded in EMITTED are those the converter emits (subgraphs
included), and a changed record stops the oracle; the declines say why, and the float64 one still holds;
each conversion path fares as CONVERTERS says; go_backwards' processing order survives the conversion."""

import warnings

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import gru_layout, layout, rnn_layout
from gatecheck.engines.keras_onnx import oracles as keras_onnx
from gatecheck.families import FAMILIES
from gatecheck.model.options import STRUCTURAL, under
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.truth.views import case_inputs

pytestmark = pytest.mark.keras_onnx

NAMES = {"lstm": "keras-onnx-lstm", "gru": "keras-onnx-gru", "gru-reset-before": "keras-onnx-gru-before",
         "rnn": "keras-onnx-rnn"}


def _frameworks(request):
    from conftest import require_framework

    return require_framework(request.config, "keras-onnx")


def _ci_case(family, options=()):
    """The first float32 ci case of the family's oracle under ``options`` with B, T >= 2, H >= 2 (std)."""
    cases = grid("ci", FAMILIES[family], [NAMES[family]])
    return next(c for c in cases if c.options == options and c.dtype == "f32" and c.regime == "std"
                and min(c.B, c.T, c.H) >= 2)


def _gates_swapped(params, keys, a, b):
    """Canonical weights with gate blocks a and b exchanged in ``keys`` (those present)."""
    order = list(range(params[keys[0]].shape[0]))
    order[a], order[b] = b, a
    return dict(params, **{k: params[k][order] for k in keys if k in params})


# family -> (module, remap name, the wrong remap made from the right one, what is wrong)
WRONG_REMAPS = {
    "lstm": (layout, "to_keras", lambda right: lambda p: right(_gates_swapped(p, ("W", "U", "b"), 0, 1)),
             "gates i and f exchanged"),
    "gru": (gru_layout, "to_keras",
            lambda right: lambda p, reset_after=True: right(_gates_swapped(p, ("W", "U", "bx", "bh"), 0, 1),
                                                            reset_after=reset_after),
            "gates r and z exchanged"),
    "rnn": (rnn_layout, "to_keras",
            lambda right: lambda p: dict(right(p), recurrent_kernel=right(p)["recurrent_kernel"].T.copy()),
            "the recurrent kernel transposed"),
}
WRONG_REMAPS["gru-reset-before"] = WRONG_REMAPS["gru"]


@pytest.mark.parametrize("family", sorted(NAMES))
def test_a_wrong_remap_is_seen_through_the_conversion_at_the_first_step(family, request, monkeypatch):
    _frameworks(request)
    oracle, case = ORACLES[NAMES[family]], _ci_case(family)
    assert run_case(case, oracle).ok
    module, name, wrong, _ = WRONG_REMAPS[family]
    monkeypatch.setattr(module, name, wrong(getattr(module, name)))
    report = run_case(case, oracle)
    assert not report.ok and report.failures[0].describe().startswith("h t=0"), report.message()


def _symbolic(value_info):
    return [d.dim_param or None if not d.HasField("dim_value") else d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("family,options", [("lstm", ()), ("lstm", ("maskz",)), ("gru", ()),
                                            ("gru-reset-before", ("rev",)), ("rnn", ("bi",))])
def test_the_conversion_never_sees_the_batch_and_time_it_runs_at(family, options, request, monkeypatch):
    """Batch and time are symbolic in the converted model (its x and initial states); where the weights are
    inputs, one conversion serves cases of other B and T, each matching the reference; frozen weights are
    converted per case."""
    _frameworks(request)
    monkeypatch.setattr(keras_common, "_cache", {})
    models = []
    real = keras_onnx.convert
    monkeypatch.setattr(keras_onnx, "convert", lambda fn, spec: models.append(real(fn, spec)) or models[-1])
    oracle = ORACLES[NAMES[family]]
    cases = [Case(oracle.name, 3, 7, 4, 5, "f32", 0, "std", options), Case(oracle.name, 2, 12, 4, 5, "f32", 2, "sat",
                                                                           options)]
    for case in cases:
        report = run_case(case, oracle)
        assert report.ok, report.message()
    assert len(models) == (len(cases) if keras_onnx.frozen(family, options) else 1)
    for model in models:
        shapes = {i.name: _symbolic(i) for i in model.graph.input}
        assert shapes["x"][2] == 4 and shapes["h0"][1] == 5
        assert all(isinstance(shapes["x"][k], str) for k in (0, 1)) and isinstance(shapes["h0"][0], str), shapes


@pytest.mark.parametrize("family,options", [("gru", ()), ("gru-reset-before", ("bi",)), ("rnn", ("rev",)),
                                            ("rnn", ("mask", "L2")), ("lstm", ("maskz",)), ("lstm", ("len", "bi"))])
def test_the_weights_as_inputs_give_the_frozen_graph(family, options, request):
    """Where the converter leaves a Loop, the weights fed as inputs give the recurrent ops and the outputs
    of the same layer with its weights frozen into the graph (bit for bit)."""
    _frameworks(request)
    case = Case(NAMES[family], 3, 7, 4, 5, "f32", 0, "std", options)
    inputs = case_inputs(case, FAMILIES[family])
    fed = keras_onnx.run(family, inputs, options, as_inputs=True)
    frozen = keras_onnx.run(family, inputs, options, as_inputs=False)
    assert fed.keys() == frozen.keys()
    for k in fed:
        np.testing.assert_array_equal(fed[k], frozen[k], err_msg=k)
    built = keras_common.built(keras_onnx.build, family, 4, 5, "float32", options, False)
    assert keras_onnx.recurrent_ops(keras_onnx.convert(built.fn, built.spec)) == keras_onnx.emitted(family, options)


def test_the_lstm_is_fused_only_from_frozen_weights(request):
    """Why the LSTM's weights are frozen: fed as inputs, tf2onnx's LSTM rewriter leaves Keras' loop a Loop."""
    _frameworks(request)
    built = keras_common.built(keras_onnx.build, "lstm", 4, 5, "float32", (), False)
    assert keras_onnx.recurrent_ops(keras_onnx.convert(built.fn, built.spec)) == ("LSTM:forward",)
    assert built.frozen
    with pytest.raises(RuntimeError, match=r"emitted \['Loop'\] for lstm .* EMITTED records \['LSTM:forward'\]"):
        keras_onnx.build("lstm", 4, 5, "float32", (), as_inputs=True)


# --- the recorded ops ---------------------------------------------------------------------------------------

def test_the_recurrent_ops_include_subgraphs():
    import onnx
    from onnx import TensorProto, helper

    lstm = helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=2, direction="reverse")
    body = helper.make_graph([lstm, helper.make_node("ReverseSequence", ["y", "l"], ["z"])], "body", [], [])
    loop = helper.make_node("Loop", ["n", "c"], ["out"], body=body)
    graph = helper.make_graph([loop, helper.make_node("GRU", ["a", "b", "c"], ["d"], hidden_size=2)], "g",
                              [helper.make_tensor_value_info("n", TensorProto.INT64, [])], [])
    model = helper.make_model(graph)
    assert isinstance(model, onnx.ModelProto)
    assert keras_onnx.recurrent_ops(model) == ("GRU:forward", "LSTM:reverse", "Loop", "ReverseSequence")


@pytest.mark.parametrize("options", [(), ("rev",), ("bi", "L2"), ("len",)], ids=lambda o: ",".join(o) or "none")
@pytest.mark.parametrize("family", sorted(NAMES))
def test_the_converter_emits_the_recorded_ops(family, options, request):
    """Read from the graph the oracle converts (the oracle checks every conversion of the battery the same way)."""
    _frameworks(request)
    built = keras_common.built(keras_onnx.build, family, 3, 2, "float32", options, None)
    model = built.model if built.model is not None else keras_onnx.convert(built.fn, built.spec)
    assert keras_onnx.recurrent_ops(model) == keras_onnx.emitted(family, options), keras_onnx.READ_AT


def test_a_converter_that_emits_other_ops_stops_the_oracle(request, monkeypatch):
    _frameworks(request)
    monkeypatch.setattr(keras_common, "_cache", {})
    monkeypatch.setitem(keras_onnx.EMITTED, "gru", {**keras_onnx.EMITTED["gru"], (): ("GRU:forward",)})
    with pytest.raises(RuntimeError, match=r"emitted \['Loop'\] for gru under options \[\]; EMITTED records "
                                           r"\['GRU:forward'\] \(read at tf2onnx 1.17.0\)"):
        run_case(_ci_case("gru"), ORACLES["keras-onnx-gru"])


def test_every_option_set_of_the_grids_is_recorded():
    """Each set the oracles get in either profile has its ops in EMITTED (an unrecorded set is declined)."""
    keras_layers = {"lstm": "keras-lstm-layer", "gru": "keras-gru-layer", "gru-reset-before": "keras-gru-layer-before",
                    "rnn": "keras-rnn-layer"}
    for family, name in NAMES.items():
        sets = {c.options for profile in ("ci", "nightly")
                for c in grid(profile, FAMILIES[family], [keras_layers[family]])}
        assert sets <= set(keras_onnx.EMITTED[family]), sorted(sets - set(keras_onnx.EMITTED[family]))
        assert "not recorded" in ORACLES[name].declines(("rev", "L2"))


# --- declines --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(NAMES))
def test_what_is_declined_says_why(family):
    oracle = ORACLES[NAMES[family]]
    assert "proj" not in oracle.options  # Keras has no projection (gatecheck.model.options)
    for s in [(), ("nobias",), ("rev",)] + list(STRUCTURAL):
        fused = any(op.startswith("LSTM:") for op in keras_onnx.emitted(family, s))
        why = oracle.declines_dtype(s, "f64")
        assert bool(why) == fused and oracle.offers(s, "f32") == (not oracle.declines(s)), (s, why)
        if why:
            assert "onnxruntime#28339" in why and "does not support double" in why
    assert "zero_output_for_mask=True" in oracle.declines(("mask", "bi"))


def test_the_float64_decline_still_holds(request):
    """The reason of the LSTM's float64 decline, observed: ONNX Runtime refuses the converter's float64 LSTM
    node, and the oracle says why before converting."""
    _frameworks(request)
    built = keras_common.built(keras_onnx.build, "lstm", 2, 3, "float64", (), None)
    session = keras_onnx.ort_session(keras_onnx.convert(built.fn, built.spec))
    feeds = {"x": np.zeros((1, 2, 2)), "h0": np.zeros((1, 3)), "c0": np.zeros((1, 3))}
    with pytest.raises(Exception, match="LSTM operator does not support double yet"):
        session.run(None, feeds)
    case = _ci_case("lstm")._replace(dtype="f64")
    with pytest.raises(ValueError, match=r"does not run f64 under options \[\]: .*onnxruntime#28339"):
        ORACLES["keras-onnx-lstm"].run(case_inputs(case, FAMILIES["lstm"]))


# --- the conversion paths --------------------------------------------------------------------------------

def _functional(keras, family, D, H):
    model = keras_onnx.MODELS[family]
    x = keras.Input((None, D), name="x")
    states = [keras.Input((H,), name=k) for k in model.states]
    layer = getattr(keras.layers, model.keras_layer)(H, return_sequences=True, return_state=True,
                                                     **model.keras_kwargs)
    return keras.Model([x] + states, layer(x, initial_state=states))


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_each_conversion_path_fares_as_recorded(family, request, tmp_path):
    """CONVERTERS: from_keras converts a functional model and Model.export converts, both to the ops the
    oracle's from_function gives; from_keras fails on a Sequential model (tensorflow-onnx#2448)."""
    tf, keras, tf2onnx, _ = _frameworks(request)
    import onnx

    want = keras_onnx.emitted(family, ())
    with keras_onnx._quiet_converter():
        model, _ = tf2onnx.convert.from_keras(_functional(keras, family, 3, 2))
    assert keras_onnx.recurrent_ops(model) == want
    # Model.export patches tf2onnx for NumPy 2 for the rest of the process (keras/src/export/tf2onnx_lib.py):
    # the patched functions are put back afterwards, so that the other tests convert with tf2onnx's own.
    saved = (tf2onnx.tfonnx.rewrite_constant_fold, tf2onnx.graph.Node.get_value_attr)
    try:
        with warnings.catch_warnings(), keras_onnx._quiet_converter():
            # Keras' patch reads np.object, which NumPy 2 answers with a FutureWarning: Keras' own, harmless.
            warnings.simplefilter("ignore", FutureWarning)
            functional = _functional(keras, family, 3, 2)
            functional([np.zeros((1, 2, 3), np.float32)] + [np.zeros((1, 2), np.float32)] * len(functional.inputs[1:]))
            functional.export(str(tmp_path / "m.onnx"), format="onnx", verbose=False)  # a model that has run
    finally:
        tf2onnx.tfonnx.rewrite_constant_fold, tf2onnx.graph.Node.get_value_attr = saved
    assert keras_onnx.recurrent_ops(onnx.load(str(tmp_path / "m.onnx"))) == want
    sequential = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(2, return_sequences=True)])
    with pytest.raises(KeyError, match="keras_tensor"), keras_onnx._quiet_converter():
        tf2onnx.convert.from_keras(sequential)
    assert "tensorflow-onnx#2448" in keras_onnx.CONVERTERS["tf2onnx.convert.from_keras"]


# --- go_backwards ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_the_converted_model_keeps_keras_processing_order(family, request, monkeypatch):
    """With the flip back (keras_onnx.in_time_order) a reverse case matches the reference; without it the
    first step it computes (t = T-1) differs: the converted model returns Keras' processing order (tensorflow#40345), not the
    time order of an ONNX node with direction="reverse" (onnx#2881, onnxruntime#4187)."""
    _frameworks(request)
    oracle = ORACLES[NAMES[family]]
    case = Case(oracle.name, 3, 7, 4, 5, "f32", 0, "std", ("rev",))
    assert run_case(case, oracle).ok
    monkeypatch.setattr(keras_onnx, "in_time_order", lambda seq, backwards: seq)
    report = run_case(case, oracle)
    assert not report.ok and report.failures[0].describe().startswith(f"h t={case.T - 1}"), report.message()


def test_the_oracles_observe_the_forward_pass_only():
    for family, name in NAMES.items():
        oracle = ORACLES[name]
        assert set(oracle.observes) <= {"h", "cT"}
        for s in list(STRUCTURAL) + [("rev",)]:
            table = under(FAMILIES[family], s).quantities
            assert all(table[q].phase == 0 for q in oracle.returns(s)), s
