"""Known engine deviations, as data: where an engine computes other numbers than the reference
for a reason of the engine's own (a bug, an undocumented difference), never a loosened tolerance.

Each entry names the oracle, which of its cases (a predicate on the ``Case`` and the same in
words), the quantities that differ, the distribution and the version range it was seen in, the
cause and the upstream issue. What follows from an entry:

- The battery on the reference (``tests/battery/test_battery.py``) expects exactly those cases to fail,
  on those quantities only, and reports them as expected failures with the cause and the issue.
  A case that then matches fails ("did not reproduce": the engine was fixed, or the entry is too
  wide: bound its version range), and a mismatch on any other quantity fails as usual.
- A candidate is not judged on those quantities against that oracle (the oracle is wrong there;
  the other oracles judge them): a candidate's case passes when it fails only there, and every
  report says what was left out and why.
- Where the entry gives its model (``explained_by``: the inputs on which the engine computes what
  the reference does), the battery also compares the oracle with the reference on those inputs in
  every case the entry covers: the deviation must explain the whole difference, and a wrong remap
  of that oracle is still caught on those cases.
- Outside its version range, or where its condition does not hold (``when``: the Keras backend,
  say), an entry does not apply: the case must match.

An engine that cannot run a case at all (an export that raises, a converter that refuses a
layer) is not a deviation: its oracle declines that set of options with the reason
(``Oracle.declines``).
"""

import functools
import re
from typing import Callable, NamedTuple, Optional

from gatecheck.core.compare import compare, contract_value, undefined_entries
from gatecheck.engines import ORACLES
from gatecheck.engines.flax import oracles as flax_oracles
from gatecheck.engines.frameworks import installed_versions, keras_backend
from gatecheck.families.lstm import peep as lstm_peep
from gatecheck.families.lstm import record as lstm_record
from gatecheck.model import options as opts
from gatecheck.model.structures import draw_mask
from gatecheck.truth.views import family_of, under, view


class Deviation(NamedTuple):
    oracle: str  # the oracle's registry name
    applies: Callable  # (Case) -> bool: which of its cases
    cases: str  # the same in words, for reports
    quantities: tuple  # the quantities that differ; every other quantity must match
    dist: str  # the distribution whose version bounds it (as in frameworks.installed_versions)
    since: str  # first version seen with it ("0": every version before the one it was found in)
    until: Optional[str]  # first version without it (None: not fixed in any version seen)
    cause: str  # what the engine does differently, as found
    upstream: str  # the upstream issue ("project#N"), or "none found" with what was searched
    when: Optional[Callable] = None  # () -> bool: a condition on the process (None: always)
    when_text: str = ""  # the condition in words
    # (inputs) -> the inputs on which the engine computes what the reference computes: the entry's model
    # of the deviation (nnx.GRUCell: bh[n] = 0). With it, the battery checks every case the entry covers
    # there too (gatecheck.run.battery.explained), so a deviating oracle's cases still judge its remap.
    explained_by: Optional[Callable] = None
    # (a case's options) -> the options whose model the engine computes instead, where it ignores an option (an
    # activation): with explained_by, the model is the reference under those options on those inputs.
    computes: Optional[Callable] = None
    # (Case) -> bool: the cases the model (explained_by, computes) is of, where an entry joins a modelled deviation
    # with another of the same oracle on other cases (``_joined``); None: every case the entry covers.
    modelled: Optional[Callable] = None
    # (the family record) -> the record of the model the engine computes in its place, where the engine computes
    # an option otherwise (relu on a float32 subnormal cell state: gatecheck.families.lstm.record.LSTM_FLUSHED)
    model: Optional[Callable] = None


def _full_lengths(inputs):
    """The inputs with every row valid at every step: what an engine that ignores the lengths runs."""
    return dict(inputs, mask=inputs["mask"] * 0 + 1)


def _ignores_sequence_lens(oracle, node_outputs):
    """onnx.reference's LSTM, GRU and RNN take sequence_lens and never read it: under ``len`` a row
    runs through its padding (its output there is not 0, its final states are the last step's, the
    reverse direction starts at T-1), so every output of every layer and direction can differ."""
    names = tuple(q + s + layer for layer in ("", "_l1") for s in ("", "_r") for q in node_outputs)
    return Deviation(
        oracle=oracle,
        applies=lambda case: "len" in case.options and case.T > 1,
        cases="every len case with T > 1 (each such right-padded batch has a row shorter than T)",
        quantities=names + ("y", "y_l1"),
        explained_by=_full_lengths,
        dist="onnx",
        since="0",
        until=None,
        cause=_LENS_CAUSE,
        upstream=_LENS_UPSTREAM,
    )


_LENS_CAUSE = ("onnx.reference.ReferenceEvaluator's LSTM, GRU and RNN ignore the sequence_lens input "
               "(onnx/reference/ops/op_lstm.py, op_gru.py, op_rnn.py: the argument is unused, '# noqa: ARG002'): "
               "the padded steps are run like valid ones")
_LENS_UPSTREAM = ("none found: searched the onnx/onnx issues for the evaluator's sequence_lens (onnx/onnx#7935, which "
                  "implemented direction and fixed layout in the same evaluator, leaves sequence_lens unread)")
# The activation options onnx.reference's LSTM and GRU run as their defaults (gatecheck.model.options), clip, which
# its LSTM, GRU and RNN never read, and the LSTM's coupled (input_forget), which its LSTM never reads.
_IGNORED_ACTIVATIONS = ("relu", "hardsig", "clip", "coupled")


def _without_activations(options):
    """A case's options less the activation options: the model onnx.reference's LSTM and GRU compute."""
    return tuple(o for o in options if o not in _IGNORED_ACTIVATIONS)


def _full_lengths_where_masked(inputs):
    """_full_lengths for a case with lengths; the inputs themselves for one without."""
    return _full_lengths(inputs) if "mask" in inputs else inputs


def _ignores_activations_and_lens(oracle, state_outputs, node_outputs, lstm=False):
    """onnx.reference's LSTM and GRU: sequence_lens unread (``_ignores_sequence_lens``), and the activations
    attribute unread too: sigmoid and tanh are fixed in the evaluator, so under relu or hardsig the node computes
    the family's default model. One entry per oracle (gatecheck.truth.deviations.key): both, with one model, the
    reference without the activation option (``computes``) on the inputs with full lengths."""
    names = tuple(q + s + layer for layer in ("", "_l1") for s in ("", "_r") for q in node_outputs + state_outputs)
    return Deviation(
        oracle=oracle,
        applies=lambda case: ("len" in case.options and case.T > 1 or bool({"relu", "hardsig"} & set(case.options))
                              or clip_shows(case) or coupled_shows(case)),
        cases="every len case with T > 1 (each such right-padded batch has a row shorter than T), every case "
              "of an activation option (relu, hardsig), every clip case where the clip moves a quantity beyond "
              "the allowance (gatecheck.truth.deviations.clip_shows), and every LSTM coupled case where the "
              "coupling does (coupled_shows)",
        quantities=tuple(dict.fromkeys(names + ("y", "y_l1"))),
        explained_by=_full_lengths_where_masked,
        computes=_without_activations,
        dist="onnx",
        since="0",
        until=None,
        cause=_LENS_CAUSE + "; and the activations, activation_alpha and activation_beta attributes are never read: "
              "op_lstm.py and op_gru.py (onnx 1.23) apply a sigmoid to the gates and tanh elsewhere whatever the "
              "node states, so a node with Relu or HardSigmoid computes the default LSTM or GRU (its numbers are "
              "the reference's without the option, checked on each such case); " + _CLIP_UNREAD
              + ("; " + _INPUT_FORGET_UNREAD if lstm else ""),
        upstream=_LENS_UPSTREAM + "; for the activations: none found, searched the onnx/onnx issues for the "
                 "ReferenceEvaluator's LSTM and GRU activations (onnx/onnx#7935 implemented direction only; "
                 "sonos/tract#2751 reports the same attributes ignored by another runtime); " + _CLIP_UNREAD_UPSTREAM
                 + ("; " + _INPUT_FORGET_UNREAD_UPSTREAM if lstm else ""),
    )


_CLIP_UNREAD = ("the clip attribute is never read either (op_lstm.py, op_gru.py, op_rnn.py: 'clip=None,  # noqa: "
                "ARG002'), so under clip the node computes the unclipped model (the reference's without clip, checked "
                "on each such case)")
_CLIP_UNREAD_UPSTREAM = ("for clip: none found, searched the onnx/onnx issues for the ReferenceEvaluator's LSTM, GRU "
                         "and RNN clip")
_INPUT_FORGET_UNREAD = ("the LSTM's input_forget attribute is never read either (op_lstm.py: 'input_forget=None,  # "
                        "noqa: ARG002'; f = sigmoid(z_f + P_f c) always), so under coupled the node computes the "
                        "uncoupled LSTM (the reference's without coupled, checked on each such case; its peepholes P "
                        "it applies as the spec says)")
_INPUT_FORGET_UNREAD_UPSTREAM = ("for input_forget: none found, searched the onnx/onnx issues for the "
                                 "ReferenceEvaluator's LSTM input_forget")


def _rnn_ignores_clip_and_lens(oracle, node_outputs):
    """onnx.reference's RNN: sequence_lens unread (``_ignores_sequence_lens``) and clip unread (its activations it
    reads: Tanh and Affine only, the others declined by the oracle). One entry, one model: the reference without
    clip on the inputs with full lengths."""
    lens = _ignores_sequence_lens(oracle, node_outputs)
    return lens._replace(
        applies=lambda case: lens.applies(case) or clip_shows(case),
        cases=lens.cases + ", and every clip case where the clip moves a quantity beyond the allowance "
                           "(gatecheck.truth.deviations.clip_shows)",
        quantities=tuple(dict.fromkeys(lens.quantities + tuple(q + s + layer for layer in ("", "_l1")
                                                                for s in ("", "_r") for q in ("h",)))),
        explained_by=_full_lengths_where_masked,
        computes=_without_activations,
        cause=_LENS_CAUSE + "; and " + _CLIP_UNREAD,
        upstream=_LENS_UPSTREAM + "; " + _CLIP_UNREAD_UPSTREAM,
    )


# --- the LSTM's clip where onnxruntime and OpenVINO read it otherwise than the spec's text -------------------

# The states an LSTM record's reference returns per step (every layer and direction).
_CELL_STATES = tuple("c" + s + layer for layer in ("", "_l1") for s in ("", "_r"))


@functools.lru_cache(maxsize=None)
def clip_output_shows(case):
    """Whether clipping c_t before the output's tanh shows on an LSTM clip case: the engines' reading
    (``LSTM_GATES_CLIPPED``, c_t unclipped there) judged against the reference as the battery judges the
    oracle. Only where |c_t| exceeds the clip at some step, layer or direction can the two differ."""
    if "clip" not in case.options:
        return False
    return _model_shows(case, ORACLES[case.oracle], lambda record: under(case, lstm_record.LSTM_GATES_CLIPPED).run)


_CLIP_OUTPUT_CASES = ("every LSTM clip case where clipping c_t before the output's tanh moves a quantity beyond the "
                      "allowance: its cell state exceeds the clip (1) at some step, layer or direction "
                      "(gatecheck.truth.deviations.clip_output_shows)")
_CLIP_OUTPUT_CAUSE = (
    "the ONNX spec (LSTM, opset 7 to 22) says clip 'is applied to the input of activations', and h_t = o_t (.) "
    "h(C_t) applies the activation h to C_t; the spec does not say otherwise, and the reference follows its text: "
    "h_t = o_t * tanh(clip(c_t)). {engine} clips the pre-activations of i, o, f and c only, not C_t before h: "
    "{where}. So where |c_t| exceeds the clip, h_t (and every later state) differs; where it does not, the "
    "case matches. The spec is ambiguous there ('cell clip' may mean the gates' pre-activations only, as these "
    "engines read it); the model of this reading is the reference with c_t unclipped before tanh "
    "(LSTM_GATES_CLIPPED in gatecheck.families.lstm.record; the lstm mutant 'clip-not-on-output' is the same "
    "reading as a candidate's bug), which these oracles match on each such case (checked on each, but under "
    "openvino-onnx-lstm's lengths entry)")
_ORT_WHERE = ("onnxruntime/core/providers/cpu/rnn/uni_directional_lstm.cc, GateComputations: clip_with_bias_ptr_ "
              "(clip_add_bias) on each gate's pre-activation; activation_h_.func(pC_cur, pC_prev_clipped, ...) is "
              "tanh_m in rnn_helpers.cc, which ignores ps1_c (the clipped buffer, ORT_UNUSED_PARAMETER) and applies "
              "tanh to C_t unclipped")
_OV_WHERE = ("OpenVINO's LSTMCell / LSTMSequence clip, 'applied before activations' to the gates (the CPU plugin "
             "and its cell decomposition, transformations' LSTMCellDecomposition, clip the gates' sum only), as "
             "measured on the plugin: its numbers equal onnxruntime's")
_CLIP_OUTPUT_UPSTREAM = ("none found: searched the microsoft/onnxruntime and openvinotoolkit/openvino issues for LSTM "
                         "clip and the cell state before the output activation, and the onnx/onnx issues for the "
                         "clip attribute's meaning")


def _clip_not_on_output(oracle, dist, where, outputs, since="0", checked=True):
    """onnxruntime's and OpenVINO's LSTM: c_t is not clipped before the output activation (the spec's text clips
    every activation's input). ``checked``: the model (LSTM_GATES_CLIPPED) checked on each case; False where the
    entry is joined to one with a model of its own (``_joined``: one model per entry)."""
    names = tuple(q + s + layer for layer in ("", "_l1") for s in ("", "_r") for q in outputs)
    return Deviation(
        oracle=oracle,
        applies=clip_output_shows,
        cases=_CLIP_OUTPUT_CASES,
        quantities=names + ("y", "y_l1"),
        explained_by=(lambda inputs: inputs) if checked else None,
        model=(lambda family: lstm_record.LSTM_GATES_CLIPPED) if checked else None,
        dist=dist,
        since=since,
        until=None,
        cause=_CLIP_OUTPUT_CAUSE.format(engine={"onnxruntime": "onnxruntime's CPU LSTM", "openvino": "OpenVINO's CPU "
                                                "plugin"}[dist], where=where),
        upstream=_CLIP_OUTPUT_UPSTREAM,
    )


def _joined(first, second):
    """One entry per oracle: two deviations of one oracle on disjoint cases, as one entry (their cases, quantities,
    causes and issues joined). The first's model, if it has one, stays the model of its own cases (``modelled``);
    the second may have none."""
    if second.explained_by or second.computes or second.model or first.modelled:
        raise ValueError(f"{first.oracle}: only the first of two joined entries may carry a model")
    if first.dist != second.dist or first.oracle != second.oracle:
        raise ValueError(f"{first.oracle}: joined entries must be of one oracle and distribution")
    return first._replace(
        applies=lambda case: first.applies(case) or second.applies(case),
        modelled=first.applies if first.explained_by else None,
        cases=f"{first.cases}; and {second.cases}",
        quantities=tuple(dict.fromkeys(first.quantities + second.quantities)),
        cause=f"{first.cause}. And: {second.cause}",
        upstream=f"{first.upstream}; {second.upstream}",
    )


# --- OpenVINO's ONNX frontend drops the LSTM's input_forget and P -------------------------------------------

_OV_DROPS = ("OpenVINO's ONNX frontend reads the LSTM node's input_forget attribute and its peepholes P (converted from "
             "i, o, f to its own f, i, o order) and then builds a v5::LSTMSequence, which has neither (src/frontends/"
             "onnx/frontend/src/op/lstm.cpp, opset_1::lstm: the LSTMSequence is made of X, the states, the lengths, "
             "W, R, B and the activations and clip only): under coupled the model computes the uncoupled LSTM (f = "
             "sigmoid(z_f), the reference's without coupled, checked on each such case), and a constant P is "
             "dropped: the model computes the LSTM at P = 0 (checked on each such case; with P a graph input the "
             "read model has no input P, and openvino-onnx-lstm-fed declines peep)")
_OV_DROPS_UPSTREAM = ("none found: searched the openvinotoolkit/openvino issues for the ONNX LSTM's input_forget and "
                      "peepholes (P) in the ONNX frontend; the frontend has built v5::LSTMSequence (no peepholes) since "
                      "openvinotoolkit/openvino#2511 (its LSTMSequence v0 took P)")


def _without_coupled(options):
    """A case's options less coupled: the model an engine that never applies input_forget computes."""
    return tuple(o for o in options if o != "coupled")


def _without_peepholes_at_full_lengths(inputs):
    """The inputs with P = 0 (every direction's and layer's, where they have one) and, where they have a mask,
    every row at full length: what openvino-onnx-lstm computes."""
    return lstm_peep.with_zero_peepholes(_full_lengths_where_masked(inputs))


def _drops_input_forget_and_peepholes(lens, clip):
    """openvino-onnx-lstm: the lengths unapplied by the fused node (``lens``, _fused_rnn_ignores_lengths), and
    input_forget and P dropped by the ONNX frontend (a coupled or peep case runs as the plain LSTM, fused too, so
    under len its lengths go unapplied as well), one model: the reference without coupled on the inputs with P = 0
    and full lengths; joined with the clip entry (``clip``, no model of its own here)."""
    names = tuple(q + s + layer for layer in ("", "_l1") for s in ("", "_r") for q in ("h",))
    first = lens._replace(
        applies=lambda case: lens.applies(case) or coupled_shows(case) or peep_shows(case),
        cases=lens.cases + "; every coupled case where the coupling moves a quantity beyond the allowance "
                           "(gatecheck.truth.deviations.coupled_shows), and every peep case where the peepholes do "
                           "(peep_shows)",
        quantities=tuple(dict.fromkeys(lens.quantities + names)),
        explained_by=_without_peepholes_at_full_lengths,
        computes=_without_coupled,
        cause=lens.cause + ". And: " + _OV_DROPS,
        upstream=lens.upstream + "; " + _OV_DROPS_UPSTREAM,
    )
    return _joined(first, clip)


def _drops_input_forget(clip):
    """openvino-onnx-lstm-fed: the clip's reading (``clip``: LSTM_GATES_CLIPPED, its model) and input_forget dropped
    (the reference without coupled), one model: the LSTM_GATES_CLIPPED record under the case's options less coupled."""
    return clip._replace(
        applies=lambda case: clip.applies(case) or coupled_shows(case),
        cases=clip.cases + "; and every coupled case where the coupling moves a quantity beyond the allowance "
                           "(gatecheck.truth.deviations.coupled_shows)",
        computes=_without_coupled,
        cause=clip.cause + ". And: " + _OV_DROPS,
        upstream=clip.upstream + "; " + _OV_DROPS_UPSTREAM,
    )


# --- Keras 3 on the JAX and PyTorch backends (KERAS_BACKEND: one per process) -------------------------------

def _fused_rnn_ignores_lengths(oracle, node_outputs, fused=frozenset()):
    """OpenVINO's CPU plugin runs a sequence op whose weights are constants as its own fused RNN node, which
    runs every row through all T steps: under ``len`` each row runs through its padding (as
    ``_ignores_sequence_lens``), every output of every layer and direction can differ. ``fused``: the
    activation options under which the plugin still fuses the op (oneDNN's vanilla RNN takes relu; its
    LSTM and GRU have fixed activations, so under an activation option those ops run as cells)."""
    names = tuple(q + s + layer for layer in ("", "_l1") for s in ("", "_r") for q in node_outputs)
    activation_options = {o for o in opts.OPTIONS
                          if opts.activation((o,)) or opts.recurrent_activation((o,)) or opts.clip((o,))}
    return Deviation(
        oracle=oracle,
        applies=lambda case: ("len" in case.options and case.T > 1
                              and set(case.options) & activation_options <= fused),
        cases="every len case with T > 1 (each such right-padded batch has a row shorter than T)"
              + (f", the activation options {sorted(fused)} included" if fused else
                 ", without an activation option (under one the plugin runs the op as cells, and the lengths apply)"),
        quantities=names + ("y", "y_l1"),
        explained_by=_full_lengths,
        dist="openvino",
        since="0",
        until=None,
        cause="OpenVINO's CPU plugin runs an LSTMSequence, GRUSequence or RNNSequence whose weights are constants as "
              "one fused RNN node (runtime layer RNNSeq, oneDNN's RNN primitive, which has no sequence lengths) and "
              "does not apply the op's sequence_lengths: the padded steps run like valid ones (every output matches "
              "the reference with every row at full length). Under dynamic shapes the plugin keeps the sequence op "
              "rather than decomposing it into a TensorIterator of cells (openvinotoolkit/openvino#10710); with the "
              "weights graph inputs it does decompose it, and the lengths are applied (openvino-onnx-*-fed match). "
              "Under relu an LSTMSequence or GRUSequence is not fused either (oneDNN's LSTM and GRU "
              "primitives have fixed activations): their relu+len cases match, while an RNNSequence under relu stays "
              "fused (oneDNN's vanilla RNN takes relu) and ignores the lengths. Under clip no op is fused (oneDNN's "
              "RNN primitives have no clip): the clip+len cases of all three match",
        upstream="none found: searched the openvinotoolkit/openvino issues for LSTMSequence / RNNSeq sequence lengths "
                 "ignored on the CPU (openvinotoolkit/openvino#10710 disabled the decomposition for dynamic shapes)",
    )


def _on_keras_backend(name):
    """A process condition: the Keras oracles run on the ``name`` backend."""
    def holds():
        return keras_backend() == name

    return holds


def _h0_before_the_first_valid_step(case):
    """A case whose output differs by the JAX loop's masked output: Keras masking that carries the output
    (``mask``), an initial state that is not zero, and a row masked at t = 0."""
    return "mask" in case.options and case.regime != "zero" and case.T > 1 and draw_mask(case, "any")[:, 0].min() == 0


def _jax_masked_output_is_the_state(oracle):
    return Deviation(
        oracle=oracle,
        applies=_h0_before_the_first_valid_step,
        cases="every mask case (zero_output_for_mask=False) with a row masked at t = 0 and an initial state not zero "
              "(in float32: these oracles decline float64 on JAX)",
        quantities=("out", "dh0", "out_l1", "dh0_l1"),
        dist="keras",
        since="0",
        until=None,
        cause="the JAX backend's rnn() (keras/src/backend/jax/rnn.py) outputs at a masked step the previous state "
              "states[0] ('Assume the first state is the previous output'), where TensorFlow's and PyTorch's output "
              "the previous output, zeros before a row's first valid step: before its first valid step a row outputs "
              "h0, not 0, and h0 takes those steps' upstream gradient (the top layer's output and dh0 differ)",
        upstream="none found: searched keras-team/keras issues for the JAX loop's masked output (states[0]) and "
                 "zero_output_for_mask; keras-team/keras#7185 is the Keras 2 convention it keeps ('when using masking, "
                 "the first state should be the previous output')",
        when=_on_keras_backend("jax"),
        when_text="on KERAS_BACKEND=jax",
    )


_KERAS_BACKENDS = tuple(_jax_masked_output_is_the_state(o) for o in ("keras-lstm-layer", "keras-rnn-layer",
                                                                    "keras-gru-layer", "keras-gru-layer-before"))

# The cases (B, T, D, H, seed, regime, options) in float32 where a gate's sigmoid is tiny and multiplies what
# is compared: ONNX Runtime's is accurate to about 2^-24 absolutely, not relatively. Its CPU LSTM kernel runs
# ort-lstm's node, the node both PyTorch exporters emit (torch-onnx-lstm, torch-dynamo-lstm) and the one tf2onnx
# makes of Keras' LSTM (keras-onnx-lstm).
_TINY_GATE = {(1, 1, 1, 1, 2, "sat", ()), (1, 1, 1, 1, 4, "sat", ()), (1, 2, 2, 1, 2, "sat", ())}

def _model_shows(case, oracle, model_run, model_inputs=None):
    """Whether a deviation's model differs from the reference beyond the allowance on what ``oracle`` observes of
    ``case``, judged as the battery judges the oracle: the reference on the case's inputs against ``model_run``
    (the case's record -> the model's run; its inputs ``model_inputs`` of the case's, default the same). Where
    the model moves nothing beyond the allowance on a case, an engine computing it matches there."""
    family = family_of(oracle)
    record = under(case, family)
    inputs, truth, yard = view(case, family)
    quantities = oracle.observing(record)
    own = {k: v.copy() for k, v in inputs.items()}
    modelled = model_inputs(own) if model_inputs else {k: v.copy() for k, v in inputs.items()}
    actual, expected = ({q: contract_value(out, q, record.quantities) for q in quantities}
                        for out in (record.run(**own), model_run(record)(**modelled)))
    report = compare(case.id, actual, expected, truth, yard, quantities, case.np_dtype, case.B, case.T, record,
                     undefined=undefined_entries(record, inputs, quantities))
    return not report.ok


@functools.lru_cache(maxsize=None)
def missing_hidden_bias_shows(case):
    """Whether nnx.GRUCell's missing b_hn (google/flax#5594) shows on a case of flax-gru: the reference
    with bh[n] = 0 (the cell's model: tests/engines/jax/test_jax.py) judged against the reference as the battery
    judges the cell. Where r_t stays near 0 or z_t near 1 (saturated gates, one unit) bh[n] may move
    nothing beyond the allowance, and the case matches."""
    return _model_shows(case, ORACLES["flax-gru"], lambda record: record.run,
                        lambda inputs: flax_oracles.without_hidden_n_bias(inputs))


@functools.lru_cache(maxsize=None)
def flushed_relu_shows(case):
    """Whether flushing float32 subnormals shows on an LSTM relu case (``LSTM_FLUSHED``, the model): the
    reference under that model judged against the reference as the battery judges the oracle. Only a float32
    case whose cell state decays below float32's smallest normal number on a unit can differ, and only in
    the deltas (relu's slope there)."""
    oracle = ORACLES[case.oracle]
    if case.dtype != "f32" or "relu" not in case.options or family_of(oracle) is not lstm_record.LSTM:
        return False
    return _model_shows(case, oracle, lambda record: under(case, lstm_record.LSTM_FLUSHED).run)


@functools.lru_cache(maxsize=None)
def clip_shows(case):
    """Whether the clip option moves what the case's oracle observes beyond the allowance: the reference
    without clip (what an engine that never reads the attribute computes) judged against the reference. A case
    whose pre-activations all stay inside the clip (small weights, h0 = 0, one step) is the same either way."""
    if "clip" not in case.options:
        return False
    oracle = ORACLES[case.oracle]
    unclipped = case._replace(options=tuple(o for o in case.options if o != "clip"))
    return _model_shows(case, oracle, lambda record: under(unclipped, family_of(oracle)).run)


@functools.lru_cache(maxsize=None)
def coupled_shows(case):
    """Whether the coupled option (input_forget) moves what the case's oracle observes beyond the allowance: the
    reference without it (what an engine that never applies the attribute computes) judged against the reference."""
    if "coupled" not in case.options:
        return False
    oracle = ORACLES[case.oracle]
    uncoupled = case._replace(options=_without_coupled(case.options))
    return _model_shows(case, oracle, lambda record: under(uncoupled, family_of(oracle)).run)


@functools.lru_cache(maxsize=None)
def peep_shows(case):
    """Whether the peepholes move what the case's oracle observes beyond the allowance: the reference at P = 0
    (what an engine that drops P computes) judged against the reference."""
    if "peep" not in case.options:
        return False
    return _model_shows(case, ORACLES[case.oracle], lambda record: record.run, lstm_peep.with_zero_peepholes)


def _flushes_subnormals(oracle, dist, since, how):
    """An engine whose float32 arithmetic flushes subnormal numbers to zero, met at relu's kink (LSTM_FLUSHED)."""
    deltas = ("dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db")
    return Deviation(
        oracle=oracle,
        applies=flushed_relu_shows,
        cases="float32 LSTM relu cases where a unit's cell state decays below float32's smallest normal number "
              "(1.18e-38) and that changes a delta beyond the allowance (gatecheck.truth.deviations.flushed_relu_shows)",
        quantities=tuple(q + layer for layer in ("", "_l1") for q in deltas),
        explained_by=lambda inputs: inputs,
        model=lambda family: lstm_record.LSTM_FLUSHED,
        dist=dist,
        since=since,
        until=None,
        cause=f"{how} float32 subnormal results to zero (FTZ/DAZ), so a cell state that decays below "
              "1.18e-38 (forget gate and g near 0 for steps) is 0, exactly at relu's kink in h_t = o_t relu(c_t), "
              "where its slope is 0, while the reference's c_t is a positive subnormal (slope 1): dc_t is o_t dh_t "
              "too large there, and the deltas before it follow. Every quantity matches the reference with relu's kink "
              "moved to 1.18e-38 (thresholded_relu, alpha = float32's smallest normal number: the model). Not a bug "
              "of the engine's LSTM: its arithmetic's; its forward values differ by less than 1.2e-38",
        upstream="none: flushing subnormals is the engine's documented arithmetic, not a defect of its layer",
    )


def _tiny_gate(oracle):
    """The deviation of the CPU LSTM kernel's sigmoid (_TINY_GATE) for one oracle running that kernel."""
    return Deviation(
        oracle=oracle,
        applies=lambda case: case.dtype == "f32" and (case.B, case.T, case.D, case.H, case.seed, case.regime,
                                                      case.options) in _TINY_GATE,
        cases="three nightly sat cases of one row and one unit (B1-T1-D1-H1 seeds 2 and 4, B1-T2-D2-H1 seed 2), "
              "float32, where an output or input gate's pre-activation is below -10 (its sigmoid below 5e-5)",
        quantities=("h", "cT"),
        dist="onnxruntime",
        since="0",
        until=None,
        cause="the CPU LSTM computes sigmoid with MLAS' logistic, 0.5 plus a rational approximation: its error is "
              "about 2^-24 absolute (sigmoid(-15.47) = 2.086e-7 for 1.917e-7, 9 % off; onnxruntime's Sigmoid node "
              "gives the same), so h = o * tanh(c) with o that small, or c fed by an input gate that small, is "
              "off by far more than float32 rounding of the model (the reference's float32 sigmoid is accurate "
              "relatively); a single-unit slice has no larger entry to set its allowance",
        upstream="microsoft/onnxruntime#22557 (sigmoid(-18) = -5.96e-8: the same absolute-error logistic), "
                 "microsoft/onnxruntime#26281 (the logistic losing precision on large negative inputs)",
    )


def _reverse_previous_state_under_lengths(oracle, gradients):
    """Paddle's fused rnn kernel, bidirectional with sequence_length: the reverse direction's backward pass
    takes 0 for the state before its first step in a row shorter than T (where the forward pass takes h0_r)."""
    names = ("dx",) + tuple(q + s + layer for layer in ("", "_l1") for s in ("", "_r") for q in gradients)
    return Deviation(
        oracle=oracle,
        applies=lambda case: "len" in case.options and "bi" in case.options and case.T > 1 and case.regime != "zero",
        cases="every len case of a bidirectional layer with T > 1 (each such right-padded batch has a row shorter "
              "than T) and initial states that are not zero (not the zero regime)",
        quantities=names,
        dist="paddlepaddle",
        since="0",
        until=None,
        cause="paddle.nn's fused rnn kernel on the CPU (RNNBase._cudnn_impl, _C_ops.rnn), direction='bidirect' "
              "with sequence_length: the forward pass is right (every output and final state matches), but in the "
              "backward pass the reverse direction's first step of a row shorter than T (t = length - 1) is "
              "differentiated with 0 as its previous state instead of h0_r (with h0_r = 0 every quantity "
              "matches; the LSTM's c0_r is taken right: its dW_r, db_r match). So dU_r differs, and, in the GRU, "
              "whose update gate multiplies h_{t-1} itself, the z gate's gradients, dh0_r and dx; under L2 the "
              "second layer's wrong input gradient reaches every gradient of the first",
        upstream="none found: searched the PaddlePaddle/Paddle issues for the rnn kernel's gradient with "
                 "sequence_length and direction='bidirect'",
    )


_PADDLE_LENGTHS = tuple(
    _reverse_previous_state_under_lengths(f"paddle-{family}-layer{variant}", gradients)
    for family, gradients in (("lstm", ("dh0", "dc0", "dW", "dU", "db", "db_ih", "db_hh")),
                              ("rnn", ("dh0", "dW", "dU", "db", "db_ih", "db_hh")),
                              ("gru", ("dh0", "dW", "dU", "dbx", "dbh")))
    for variant in ("", "-tm"))


DEVIATIONS = (
    _joined(_clip_not_on_output("ort-lstm", "onnxruntime", _ORT_WHERE, ("h", "cT", "out", "hT")), _tiny_gate("ort-lstm")),
    _tiny_gate("torch-onnx-lstm"),
    _tiny_gate("torch-dynamo-lstm"),
    _tiny_gate("keras-onnx-lstm"),  # tf2onnx converts Keras' LSTM into the same ONNX LSTM node
    _ignores_activations_and_lens("onnx-reference-lstm", ("h", "cT"), ("out", "hT", "cT"), lstm=True),
    _rnn_ignores_clip_and_lens("onnx-reference-rnn", ("out", "hT")),
    _ignores_activations_and_lens("onnx-reference-gru", ("h",), ("out", "hT")),
    _ignores_activations_and_lens("onnx-reference-gru-before", ("h",), ("out", "hT")),
    # the converted nn.LSTM holds its weights as constants, and OpenVINO's PyTorch frontend turns
    # pack_padded_sequence's lengths into the LSTMSequence's sequence_lengths
    _drops_input_forget_and_peepholes(
        _fused_rnn_ignores_lengths("openvino-onnx-lstm", ("out", "hT", "cT")),
        _clip_not_on_output("openvino-onnx-lstm", "openvino", _OV_WHERE, ("h", "cT", "out", "hT"), checked=False)),
    _drops_input_forget(_clip_not_on_output("openvino-onnx-lstm-fed", "openvino", _OV_WHERE, ("h", "cT", "out", "hT"))),
    _fused_rnn_ignores_lengths("openvino-onnx-rnn", ("out", "hT"), fused=frozenset({"relu"})),
    _fused_rnn_ignores_lengths("openvino-onnx-gru", ("out", "hT")),
    _fused_rnn_ignores_lengths("openvino-onnx-gru-before", ("out", "hT")),
    _fused_rnn_ignores_lengths("openvino-torch-lstm", ("out", "hT", "cT")),
    _flushes_subnormals("keras-lstm-cell", "keras", "0", "TensorFlow's CPU kernels (keras.layers.LSTMCell run eagerly, "
                        "one step a call) flush"),
    _flushes_subnormals("flax-lstm", "jax", "0", "XLA's CPU code (jax.jit) flushes"),
    _flushes_subnormals("flax-lstm-opt", "jax", "0", "XLA's CPU code (jax.jit) flushes"),
    Deviation(
        oracle="flax-gru", applies=missing_hidden_bias_shows,
        cases="every case where bh[n] moves a quantity beyond the allowance (the canonical bh[n] is never 0; "
              "saturated gates can hide it: gatecheck.truth.deviations.missing_hidden_bias_shows)",
        quantities=("h", "dh", "dx", "dh0", "dW", "dU", "dbx"), dist="flax", since="0.10.0", until=None,
        explained_by=flax_oracles.without_hidden_n_bias,
        cause="nnx.GRUCell has no hidden-side bias b_hn: its dense_h is built with use_bias=False and __call__ "
              "computes n = tanh(W_in x + b_in + r * (W_hn h)), while its docstring, flax.linen.GRUCell, PyTorch and "
              "the reference add b_hn inside r_t; the canonical bh[n] has no parameter to go to, so n_t and "
              "everything after it differ (every quantity matches with bh[n] = 0, checked on each such case); as in every "
              "release since the cell first shipped (flax 0.10.0)",
        upstream="google/flax#5594 (fix proposed in google/flax#5595)"),
) + _KERAS_BACKENDS + _PADDLE_LENGTHS


def _version(text):
    parts = []
    for piece in str(text).split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts + [0] * (3 - len(parts)))


def in_range(deviation, version):
    """Whether an installed version (a string; None or "not installed": no) is in the entry's range."""
    if version in (None, "not installed"):
        return False
    v = _version(version)
    return _version(deviation.since) <= v and (deviation.until is None or v < _version(deviation.until))


def check_table(table=None):
    """Every entry well formed and its oracle registered; raises ValueError naming the entry."""
    for n, d in enumerate(DEVIATIONS if table is None else table):
        where = f"deviation #{n + 1} ({d.oracle}, {d.upstream})"
        if d.oracle not in ORACLES:
            raise ValueError(f"{where}: oracle {d.oracle!r} is not registered")
        if not d.quantities or not all(isinstance(q, str) and q for q in d.quantities):
            raise ValueError(f"{where}: quantities: expected a non-empty tuple of quantity names, got {d.quantities!r}")
        for text, what in ((d.cause, "cause"), (d.upstream, "upstream"), (d.cases, "cases"), (d.since, "since")):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{where}: {what}: expected a sentence, got {text!r}")
        if d.explained_by is not None and not callable(d.explained_by):
            raise ValueError(f"{where}: explained_by: expected a function of the inputs, got {d.explained_by!r}")
        if d.when is not None and not d.when_text:
            raise ValueError(f"{where}: a condition (when) needs its words (when_text)")
    keys = [key(d) for d in (DEVIATIONS if table is None else table)]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"deviations {twice}: more than one entry for an oracle; expected one entry per oracle "
                         "(its key in the baselines: gatecheck.truth.deviations.key)")


def for_case(case, versions=None, table=None):
    """The entry that applies to a case under the installed versions (``versions``: the
    mapping of ``frameworks.installed_versions``), or None. Two entries for one case are an
    error in the table."""
    table = DEVIATIONS if table is None else table
    candidates = [d for d in table if d.oracle == case.oracle and d.applies(case)]
    if not candidates:
        return None
    if versions is None:
        versions = installed_versions()
    found = [d for d in candidates if in_range(d, versions.get(d.dist)) and (d.when is None or d.when())]
    if len(found) > 1:
        raise ValueError(f"{case.id}: {len(found)} deviations apply ({[d.upstream for d in found]}); expected one")
    return found[0] if found else None


# An entry's key: its oracle's name (one entry per oracle: check_table). Baselines name a case's deviation by it
# (gatecheck.tools.baseline_file), so that a change of an entry's words changes no baseline.
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_DESCRIBED = re.compile(r"known deviation of (\S+) on ")


def key(deviation):
    """The entry's key, as baselines name it: its oracle."""
    return deviation.oracle


def key_of(description):
    """The key of the entry a ``describe`` line is of (None: not such a line)."""
    found = _DESCRIBED.match(description) if isinstance(description, str) else None
    return found[1] if found and KEY.match(found[1]) else None


def describe(deviation):
    """One line: the oracle, the quantities, the cause, the versions and the issue."""
    until = f"before {deviation.dist} {deviation.until}" if deviation.until else "not fixed yet"
    cond = f"; {deviation.when_text}" if deviation.when_text else ""
    return (f"known deviation of {deviation.oracle} on {', '.join(deviation.quantities)} ({deviation.cases}; "
            f"{deviation.dist} {deviation.since} and later, {until}{cond}): {deviation.cause} [{deviation.upstream}]")


def judged(report):
    """The slice results a candidate is judged on: all, but those of the quantities of the oracle's
    known deviation on the case (``report.deviation``)."""
    left_out = set(report.deviation.quantities) if report.deviation else set()
    return [r for r in report.results if r.quantity not in left_out]


def outcome(report, deviation):
    """How a comparison with a deviating oracle came out: "as recorded" (it failed on the
    entry's quantities only), "not reproduced" (it matched) or "beyond" (it failed elsewhere,
    or a quantity's shape or dtype was wrong)."""
    if report.problems:
        return "beyond"
    failed = {r.quantity for r in report.failures}
    if not failed:
        return "not reproduced"
    return "as recorded" if failed <= set(deviation.quantities) else "beyond"
