"""The Keras layer oracles' variants (gatecheck.engines.keras.common.variants): the same layers on another code path
of Keras (unroll=True, dropout at inference, stateful over two calls, a backward layer of its own), each on a
sample of its family's grid. Each variant's wiring is caught when it goes wrong: a wrong remap, dropout applied,
a second call restarted from the case's initial states, fail from their first divergence; and what the dropout
variants rest on (training=None is inference in Keras) holds on the installed Keras."""

import numpy as np
import pytest

from gatecheck.engines import ORACLES
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import gru_layout, layout, rnn_layout
from gatecheck.run.battery import run_case
from tests.engines.remaps import ci_case, wrong_remap_fails


def _keras(request):
    from conftest import require_framework

    return require_framework(request.config, "keras")


def _first_two_gates_swapped(remap):
    """``remap`` with the kernel's first two gate blocks exchanged (LSTM i and f; GRU z and r)."""
    def wrong(inputs, **kw):
        weights = dict(remap(inputs, **kw))
        k = weights["kernel"]
        H = weights["recurrent_kernel"].shape[0]
        weights["kernel"] = np.concatenate([k[:, H:2 * H], k[:, :H], k[:, 2 * H:]], axis=1)
        return weights
    return wrong


def _recurrent_transposed(remap):
    """``remap`` with the recurrent kernel transposed (the RNN has one block)."""
    def wrong(inputs, **kw):
        weights = dict(remap(inputs, **kw))
        weights["recurrent_kernel"] = np.ascontiguousarray(weights["recurrent_kernel"].T)
        return weights
    return wrong


_FAMILY = {"lstm": (layout, _first_two_gates_swapped, "gates i and f exchanged", "h"),
           "gru": (gru_layout, _first_two_gates_swapped, "gates z and r exchanged", "h"),
           "rnn": (rnn_layout, _recurrent_transposed, "U transposed", "h")}
# Each variant's ci case at B3 T7 D4 H5 and its first divergence under a wrong remap (h0 is drawn, so every
# remap shows at a direction's first step): t = 0, but under rev, whose first step is t = T - 1; under bi
# (concat) the forward direction's half of y, h, is compared first.
_VARIANTS = {"unroll": (("rev",), "{h} t=6"), "dropout": ((), "{h} t=0"), "stateful": ((), "{h} t=0"),
             "bwlayer": (("bi",), "{h} t=0")}


def _cases():
    for family in ("lstm", "gru", "rnn"):
        for kind, (options, first) in _VARIANTS.items():
            yield pytest.param(f"keras-{family}-layer-{kind}", family, options, first, id=f"keras-{family}-layer-{kind}")


@pytest.mark.parametrize("name, family, options, first", list(_cases()))
def test_a_wrong_remap_fails_each_variant_from_its_first_divergence(name, family, options, first, request,
                                                                   monkeypatch):
    _keras(request)
    module, mutate, what, h = _FAMILY[family]
    monkeypatch.setattr(keras_common, "_cache", {})  # (a model built before holds no stale weights: assigned per case)
    wrong_remap_fails(name, module, ("to_keras", mutate(module.to_keras), what, first.format(h=h)), monkeypatch,
                      options=options)


def test_dropout_applied_at_inference_fails_the_dropout_variant(request, monkeypatch):
    """Called with training=True, dropout=recurrent_dropout=0.5 drop units: the variant fails from the first step;
    with training=False (INFERENCE) it matches."""
    _keras(request)
    case = ci_case("keras-lstm-layer-dropout")
    assert run_case(case, ORACLES[case.oracle]).ok
    monkeypatch.setattr(keras_common, "_cache", {})  # the traced function reads INFERENCE when it is built
    monkeypatch.setattr(keras_common, "INFERENCE", {"training": True})
    report = run_case(case, ORACLES[case.oracle])
    assert not report.ok and report.failures[0].describe().startswith("h t=0"), report.message()


def test_a_second_call_from_the_initial_states_fails_the_stateful_variant(request, monkeypatch):
    """The second call of a stateful layer starts from the first's final states; restarted from the case's initial
    states, the output differs from the second call's first step, T1 = split(T)."""
    _keras(request)
    case = ci_case("keras-gru-layer-stateful")
    assert run_case(case, ORACLES[case.oracle]).ok
    monkeypatch.setattr(keras_common, "initial_states",
                        lambda model, inputs, suffix, start: {"initial_state": [inputs[k + suffix] for k in model.states]})
    report = run_case(case, ORACLES[case.oracle])
    assert not report.ok and report.failures[0].describe().startswith(f"h t={keras_common.split(case.T)}"), \
        report.message()


def test_training_none_is_inference_and_dropout_is_not_a_no_op(request):
    """What the dropout variants rest on: a layer called with training=None (no outer call) computes what
    training=False does (Keras 3's Layer.__call__ takes an outer call's value, else the call's default, False), and
    training=True drops units (so the variant's identity is not an argument Keras ignores)."""
    _, keras = _keras(request)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 6, 4)).astype("float32")
    for kind in ("LSTM", "GRU", "SimpleRNN"):
        layer = getattr(keras.layers, kind)(5, dropout=0.5, recurrent_dropout=0.5, return_sequences=True)
        default, inference = (np.asarray(layer(x, training=t)) for t in (None, False))
        np.testing.assert_array_equal(default, inference, err_msg=kind)
        assert not np.allclose(np.asarray(layer(x, training=True)), inference), kind


def test_the_variants_decline_what_two_calls_or_one_direction_are_not_the_model_of():
    stateful, bwlayer = ORACLES["keras-lstm-layer-stateful"], ORACLES["keras-lstm-layer-bwlayer"]
    for options, word in ((("rev",), "go_backwards"), (("bi",), "bidirectional"), (("mask",), "prev_output")):
        assert word in stateful.declined(options), options
    assert stateful.declined(("maskz", "L2")) is None and stateful.declined(("len",)) is None
    assert "backward layer" in bwlayer.declined(()) and bwlayer.declined(("bimul", "L2")) is None
    with pytest.raises(ValueError, match="cannot be split"):
        keras_common.split(1)
