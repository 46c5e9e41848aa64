"""The LiteRT oracles (gatecheck.engines.litert.oracles): a wrong remap of each family is seen through the
conversion at h t=0; the converted model's time axis is dynamic and its batch the case's; what carries the
recurrence is read from the interpreter and is what EMITTED records, and a changed record stops the oracle;
the model is unquantised float32; the float64 decline and the choice of interpreter still hold;
go_backwards' processing order survives the conversion; the oracles observe the forward pass only."""

import warnings

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import gru_layout, layout, rnn_layout
from gatecheck.engines.litert import oracles as litert
from gatecheck.families import FAMILIES
from gatecheck.model.options import STRUCTURAL, under
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.truth.views import case_inputs

pytestmark = pytest.mark.litert

NAMES = {"lstm": "litert-lstm", "gru": "litert-gru", "gru-reset-before": "litert-gru-before", "rnn": "litert-rnn"}


def _frameworks(request):
    from conftest import require_framework

    return require_framework(request.config, "litert")


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


# family -> (module, remap name, the wrong remap made from the right one): the remap mutants
WRONG_REMAPS = {
    "lstm": (layout, "to_keras", lambda right: lambda p: right(_gates_swapped(p, ("W", "U", "b"), 0, 1))),
    "gru": (gru_layout, "to_keras",
            lambda right: lambda p, reset_after=True: right(_gates_swapped(p, ("W", "U", "bx", "bh"), 0, 1),
                                                            reset_after=reset_after)),
    "rnn": (rnn_layout, "to_keras",
            lambda right: lambda p: dict(right(p), recurrent_kernel=right(p)["recurrent_kernel"].T.copy())),
}
WRONG_REMAPS["gru-reset-before"] = WRONG_REMAPS["gru"]


@pytest.mark.parametrize("family", sorted(NAMES))
def test_a_wrong_remap_is_seen_through_the_conversion_at_the_first_step(family, request, monkeypatch):
    """The remap mutants (LSTM gates i and f exchanged, GRU gates r and z exchanged, the SimpleRNN's recurrent
    kernel transposed) reach the converted model and fail the case at h t=0."""
    _frameworks(request)
    oracle, case = ORACLES[NAMES[family]], _ci_case(family)
    assert run_case(case, oracle).ok
    module, name, wrong = WRONG_REMAPS[family]
    monkeypatch.setattr(module, name, wrong(getattr(module, name)))
    report = run_case(case, oracle)
    assert not report.ok and report.failures[0].describe().startswith("h t=0"), report.message()


def _converted(family, options, B=3, D=4, H=5):
    cells, fn = keras_common.built(litert.build, family, B, D, H, "float32", tuple(options))
    return litert.interpreter(litert.convert(fn))


@pytest.mark.parametrize("family,options", [("lstm", ()), ("gru", ("maskz",)), ("rnn", ("bi",))])
def test_the_time_axis_is_dynamic_and_the_batch_the_cases(family, options, request):
    """x is (B, -1, D) in the converted model's shape signature (the mask (B, -1)); a case of a T the
    conversion never saw matches the reference."""
    _frameworks(request)
    interp = _converted(family, options)
    shapes = {d["name"]: d["shape_signature"].tolist() for d in interp.get_input_details()}
    assert shapes["x"] == [3, -1, 4] and shapes["h0"] == [3, 5], shapes
    if "maskz" in options:
        assert shapes["mask"] == [3, -1]
    for T in (1, 9):
        report = run_case(Case(NAMES[family], 3, T, 4, 5, "f32", 1, "std", options), ORACLES[NAMES[family]])
        assert report.ok, report.message()


# --- what the converter emits ----------------------------------------------------------------------------

@pytest.mark.parametrize("options", [(), ("rev",), ("bi", "L2"), ("len",), ("maskz", "binone")],
                         ids=lambda o: ",".join(o) or "none")
@pytest.mark.parametrize("family", sorted(NAMES))
def test_the_converter_emits_the_recorded_recurrence(family, options, request):
    """Read from the interpreter's ops: one WHILE per layer and direction, no fused sequence op."""
    _frameworks(request)
    ops = litert.ops_of(_converted(family, options))
    merge = any(o.startswith("bi") for o in options)
    assert litert.recurrence(ops) == ("WHILE", (2 if "L2" in options else 1) * (2 if merge else 1)), ops
    assert litert.recurrence(ops) == litert.expected(family, options), litert.READ_AT
    assert not set(ops) & set(litert.FUSED)


def test_the_recurrence_is_read_from_the_ops():
    assert litert.recurrence(["TRANSPOSE", "WHILE", "WHILE"]) == ("WHILE", 2)
    assert litert.recurrence(["UNIDIRECTIONAL_SEQUENCE_LSTM", "WHILE"]) == ("UNIDIRECTIONAL_SEQUENCE_LSTM", 1)
    assert litert.recurrence(["FULLY_CONNECTED", "LOGISTIC"]) == ("unrolled", 0)


def test_a_converter_that_emits_something_else_stops_the_oracle(request, monkeypatch):
    _frameworks(request)
    monkeypatch.setitem(litert.EMITTED, "lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM")
    with pytest.raises(RuntimeError, match=r"emitted 1 WHILE for lstm under options \[\]; EMITTED records 1 "
                                           r"UNIDIRECTIONAL_SEQUENCE_LSTM \(read at tensorflow 2.21.0\)"):
        run_case(_ci_case("lstm"), ORACLES["litert-lstm"])


def test_the_converted_model_is_unquantised_float32(request):
    """No optimisation: every float tensor of the model (the frozen weights included) is float32, none an
    integer type a quantiser writes; the converter's settings are those recorded."""
    tf, _, _ = _frameworks(request)
    interp = _converted("lstm", ())
    types = {d["dtype"] for d in interp.get_tensor_details()}
    assert np.float32 in types and not types & {np.int8, np.uint8, np.int16, np.float16}, types
    fn = tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec((1,), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    assert litert.settings(converter) == litert.CONVERTER_SETTINGS


def test_a_changed_converter_default_stops_the_oracle(request, monkeypatch):
    _frameworks(request)
    monkeypatch.setitem(litert.CONVERTER_SETTINGS, "optimizations", {"DEFAULT"})
    with pytest.raises(RuntimeError, match="no quantisation, builtin ops only"):
        _converted("gru", ())


# --- declines --------------------------------------------------------------------------------------------

def test_the_float64_decline_still_holds(request):
    """The converter refuses a float64 Keras layer (TFLite's builtins have no float64 kernels for it), and the
    oracle says why before converting."""
    _frameworks(request)
    _, fn = keras_common.built(litert.build, "rnn", 2, 2, 3, "float64", ())
    with pytest.raises(Exception, match="Some ops are not supported by the native TFLite runtime"):
        litert.convert(fn)
    case = _ci_case("rnn")._replace(dtype="f64")
    with pytest.raises(ValueError, match=r"does not run f64 under options \[\]: TFLite's builtin kernels have no "
                                         r"float64"):
        ORACLES["litert-rnn"].run(case_inputs(case, FAMILIES["rnn"]))


@pytest.mark.parametrize("family", sorted(NAMES))
def test_what_is_declined_says_why(family):
    oracle = ORACLES[NAMES[family]]
    assert "proj" not in oracle.options  # Keras has no projection (gatecheck.model.options)
    for s in [(), ("nobias",), ("rev",)] + list(STRUCTURAL):
        assert "TF Select" in oracle.declines_dtype(s, "f64") and oracle.declines_dtype(s, "f32") is None
    assert "zero_output_for_mask=True" in oracle.declines(("mask", "bi"))


def test_the_interpreter_is_litert_s_own(request):
    """Why ai_edge_litert's Interpreter: TensorFlow's tf.lite.Interpreter warns that it is deprecated."""
    tf, _, interpreter_module = _frameworks(request)
    interp = _converted("rnn", ())
    assert type(interp) is interpreter_module.Interpreter
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tf.lite.Interpreter(model_content=litert.convert(keras_common.built(litert.build, "rnn", 3, 4, 5, "float32",
                                                                            ())[1]))
    assert any("deprecated" in str(w.message) for w in caught), [str(w.message) for w in caught]


# --- go_backwards ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_the_converted_model_keeps_keras_processing_order(family, request, monkeypatch):
    """With the flip back (litert.in_time_order) a reverse case matches the reference; without it the first
    step it computes (t = T-1) differs: the converted model returns Keras' processing order (tensorflow#40345)."""
    _frameworks(request)
    oracle = ORACLES[NAMES[family]]
    case = Case(oracle.name, 3, 7, 4, 5, "f32", 0, "std", ("rev",))
    assert run_case(case, oracle).ok
    monkeypatch.setattr(litert, "in_time_order", lambda seq, backwards: seq)
    report = run_case(case, oracle)
    assert not report.ok and report.failures[0].describe().startswith(f"h t={case.T - 1}"), report.message()


def test_the_oracles_observe_the_forward_pass_only():
    for family, name in NAMES.items():
        oracle = ORACLES[name]
        assert set(oracle.observes) <= {"h", "cT"}
        assert all("inference graph" in why or "WHILE" in why for why in oracle.cannot_observe.values())
        for s in list(STRUCTURAL) + [("rev",)]:
            table = under(FAMILIES[family], s).quantities
            assert all(table[q].phase == 0 for q in oracle.returns(s)), s
