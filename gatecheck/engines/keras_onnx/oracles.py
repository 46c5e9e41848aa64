"""Keras layers converted to ONNX by tf2onnx and run in ONNX Runtime: forward-only oracles.

keras-onnx-lstm        ``keras.layers.LSTM``
keras-onnx-gru         ``keras.layers.GRU(reset_after=True)``
keras-onnx-gru-before  ``keras.layers.GRU(reset_after=False)``
keras-onnx-rnn         ``keras.layers.SimpleRNN``

Each is the Keras layer oracle's layer, built with the same arguments (``use_bias``, ``go_backwards``,
``keras.layers.Bidirectional`` and layers in sequence for bi* and L2, ``mask=`` and
``zero_output_for_mask`` for len, mask and maskz; cuDNN off), given a case's canonical weights through the
Keras remaps (``layout.to_keras``, ``gru_layout.to_keras``, ``rnn_layout.to_keras``: ``REMAPS`` looks
them up at each call) and called from its initial states (``initial_state``: h0, c0 are inputs of the
converted model) in a ``tf.function`` whose input signature leaves the batch and time axes ``None``.
``tf2onnx.convert.from_function`` converts it at the converter's default opset (what Keras 3's own
``Model.export(format="onnx")`` calls on the TensorFlow backend; ``CONVERTERS`` says how the other paths
fare) and ONNX Runtime (``frameworks.ort_session``) runs it at the case's B and T, which the conversion
never saw: a dimension frozen at conversion would show as an error or a wrong number.

The weights reach the converted model in one of two ways:

- frozen (the LSTM without a mask): assigned to the layer's variables and frozen into the graph as
  constants, as in any saved model. tf2onnx's LSTM rewriter fuses Keras' loop into one ONNX ``LSTM`` node
  only when the kernels are constants (it reads and reorders them at conversion; with the weights as
  inputs it logs "must be Const" and leaves a ``Loop``), so these cases are converted one by one (about
  0.2 s each: ``python benchmarks/trace_cost.py --oracles keras-onnx-lstm``, its "again" column).
- as inputs (every graph the converter leaves a ``Loop``): ``Layer.stateless_call`` with the weights as
  inputs of the function, so one conversion and one ONNX Runtime session serve every case of a (D, H,
  dtype, options). The converted graph has the same recurrent ops as with frozen weights and the same
  numbers (``tests/engines/keras_onnx/test_keras_onnx.py``).

What the converter emitted per family and option set is data (``EMITTED``, read at ``READ_AT``), checked at
every conversion: a converter that emits anything else stops the oracle with the difference named (its
float64 declines and its frozen/input split rest on it). ONNX Runtime's CPU ``LSTM`` kernel declares
tensor(double) but runs float only ("LSTM operator does not support double yet", onnxruntime#28339), so
the sets whose graph holds an ONNX ``LSTM`` node are declined in float64 (``declines_dtype``).

Under ``go_backwards`` tf2onnx emits a ``ReverseSequence`` before a forward node (or loop) and leaves the
output in Keras' processing order (tensorflow#40345), which is flipped back to the original t here, as the
Keras oracles do; an ONNX node with direction="reverse", whose output is in time order (the mismatch of
onnx#2881 and onnxruntime#4187), never appears. A bidirectional LSTM becomes one node with
direction="bidirectional", whose reverse output ONNX gives in time order, as Keras' ``Bidirectional`` does.

Forward only: the converted model is an inference graph, so every gradient and delta is in
``cannot_observe``; what the oracles compare is the output sequence (``h``; ``out`` under a mask; ``y``
and the directions apart under ``bi``/``binone``) and the final states the layer returns (the LSTM's C_T;
h_T and C_T under a mask) of every layer and direction.
"""

import contextlib
import logging
from typing import NamedTuple

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_keras_onnx, onnx_nodes, ort_session
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import families as keras_families
from gatecheck.families import GRU, GRU_RESET_BEFORE, LSTM, RNN
from gatecheck.model import options as opts
from gatecheck.reference import layers

# The versions EMITTED and CONVERTERS were read at (and the opset tf2onnx 1.17 converts to by default).
READ_AT = {"tf2onnx": "1.17.0", "tensorflow": "2.21.0", "keras": "3.15.1", "onnx": "1.23.2",
           "onnxruntime": "1.32.0", "opset": 15}

# Each family's Keras model and remap: the Keras layer oracles' own (gatecheck.engines.keras.families).
MODELS, REMAPS = keras_families.MODELS, keras_families.REMAPS

# The ONNX nodes that say how a recurrence was converted: a fused node (with its direction), a loop, and
# the reversal of a sequence.
RECURRENT_OPS = ("LSTM", "GRU", "RNN", "Loop", "Scan", "ReverseSequence")
FUSED = ("LSTM", "GRU", "RNN")

_L, _RS = "Loop", "ReverseSequence"
_F, _B = "LSTM:forward", "LSTM:bidirectional"


def _each(sets, ops):
    return {tuple(s): ops for s in sets}


# The recurrent ops tf2onnx emits (``recurrent_ops``: the graph and its subgraphs, sorted) per family and
# option set, read at READ_AT from the oracles' own conversions. The GRUs and the SimpleRNN become a Loop per
# layer and direction, with ReverseSequence nodes for the reverse direction (its input and its output; under a
# mask the mask's too): tf2onnx's Keras GRU pattern, written for Keras 2's graph (tensorflow-onnx#1684, #1692),
# does not match Keras 3's, and it has none for SimpleRNN. So does the LSTM under a mask (its rewriter does
# not match Keras' masked step); without one, each layer is one fused ONNX LSTM node (bidirectional: one
# node with direction="bidirectional"), go_backwards a ReverseSequence before a forward node. Frozen or as
# inputs, the weights give the same ops wherever the record holds no fused node (tests/engines/keras_onnx/test_keras_onnx.py).
_LOOPS = {
    **_each([(), ("nobias",), ("len",), ("mask",), ("maskz",), ("nobias", "mask")], (_L,)),
    ("rev",): (_L, _RS),
    **_each([("bi",), ("bisum",), ("bimul",), ("biave",), ("binone",)], (_L, _L, _RS, _RS)),
    **_each([("L2",), ("mask", "L2"), ("len", "L2")], (_L, _L)),
    **_each([("bi", "L2"), ("nobias", "bi", "L2")], (_L,) * 4 + (_RS,) * 4),
    **_each([("len", "bi"), ("maskz", "bi"), ("maskz", "bisum"), ("maskz", "bimul"), ("maskz", "biave"),
             ("maskz", "binone"), ("nobias", "len", "bi")], (_L, _L, _RS, _RS, _RS)),
    **_each([("len", "bi", "L2"), ("maskz", "bi", "L2")], (_L,) * 4 + (_RS,) * 5),
}
_LSTM_EMITTED = {**_LOOPS,
                 **_each([(), ("nobias",)], (_F,)),
                 ("rev",): (_F, _RS),
                 **_each([("bi",), ("bisum",), ("bimul",), ("biave",), ("binone",)], (_B,)),
                 ("L2",): (_F, _F),
                 **_each([("bi", "L2"), ("nobias", "bi", "L2")], (_B, _B))}


def _under(option, emitted):
    """The records of ``emitted`` with an activation option added (the sets of no bias and reverse left out:
    the grids do not combine them with an activation)."""
    return {opts.canonical((option,) + k): v for k, v in emitted.items() if "nobias" not in k and "rev" not in k}


EMITTED = {
    # relu (LSTM(activation="relu")): fused as under tanh, the node's activations [Sigmoid, Relu, Relu] per
    # direction (the rewriter carries the activation: read at READ_AT); hardsig (recurrent_activation=
    # "hard_sigmoid", Keras 3's relu6(x + 3) / 6) is not matched by the LSTM rewriter: a Loop, as under a mask.
    "lstm": {**_LSTM_EMITTED, **_under("relu", _LSTM_EMITTED), **_under("hardsig", _LOOPS)},
    # relu and hardsig: the same Loops as the defaults
    "gru": {**_LOOPS, **_under("relu", _LOOPS), **_under("hardsig", _LOOPS)},
    "gru-reset-before": {**_LOOPS, **_under("relu", _LOOPS), **_under("hardsig", _LOOPS)},
    # relu (SimpleRNN(activation="relu")): the same Loops as tanh
    "rnn": {**_LOOPS, **_under("relu", _LOOPS)},
}

# How each conversion path fares with a Keras 3 model at READ_AT (tests/engines/keras_onnx/test_keras_onnx.py checks each).
CONVERTERS = {
    "tf2onnx.convert.from_function": "converts a tf.function calling the layer (used here)",
    "keras.Model.export(format='onnx')": "converts (it calls tf2onnx.convert.from_function after patching tf2onnx "
                                         "for NumPy 2); the same recurrent ops",
    "tf2onnx.convert.from_keras": "converts a functional keras.Model; a keras.Sequential fails with KeyError "
                                  "'keras_tensor_N' (Keras 3 output names: tensorflow-onnx#2448)",
}

_ORT_DOUBLE = ("ONNX Runtime {ort}'s CPU LSTM kernel runs float32 only: a float64 ONNX LSTM node fails with "
               "'LSTM operator does not support double yet' (onnxruntime#28339), and tf2onnx {t2o} converts this "
               "Keras LSTM into one")


def recurrent_ops(model):
    """The recurrent ops of an ONNX model, its subgraphs (a Loop's body) included, sorted: a fused node as
    ``LSTM:forward`` (its op and direction), the others by their op."""
    import onnx

    found = []
    for node in onnx_nodes(model):
        if node.op_type in RECURRENT_OPS:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            direction = attrs.get("direction", b"forward")
            found.append(f"{node.op_type}:{direction.decode()}" if node.op_type in FUSED else node.op_type)
    return tuple(sorted(found))


def emitted(family, options):
    """The recurrent ops recorded for a family and option set (None: not recorded)."""
    return EMITTED[family].get(tuple(options))


def frozen(family, options):
    """Whether the weights are frozen into the graph (the converter fuses a node only from constant
    kernels): where the record holds a fused node."""
    return any(op.split(":")[0] in FUSED for op in emitted(family, options) or ())


def declines(family):
    """Why an oracle does not run a set of options it offers one by one (None: it runs it)."""
    def why(options):
        keras = keras_common.declines_keras(options)  # what the Keras layer itself does not run
        if keras or emitted(family, options) is not None:
            return keras
        return (f"what tf2onnx emits for options {list(options)} is not recorded (EMITTED, read at tf2onnx "
                f"{READ_AT['tf2onnx']})")

    return why


def declines_dtype(family):
    """Why an oracle does not run a dtype under a set of options (None: it runs it)."""
    def why(options, dtype):
        if dtype == "f64" and any(op.startswith("LSTM:") for op in emitted(family, options) or ()):
            return _ORT_DOUBLE.format(ort=READ_AT["onnxruntime"], t2o=READ_AT["tf2onnx"])
        return None

    return why


@contextlib.contextmanager
def _quiet_converter():
    """tf2onnx logs each rewriter that does not match (the LSTM rewriter on weights that are inputs:
    "must be Const") at ERROR on its own logger, and on the root logger, at WARNING, that its Gemm rewriter
    leaves float64 alone: noise in every report, silenced while it converts; its exceptions still surface."""
    logger = logging.getLogger("tf2onnx")
    level, disabled = logger.level, logging.root.manager.disable
    logger.setLevel(logging.CRITICAL + 1)
    logging.disable(max(disabled, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(disabled)
        logger.setLevel(level)


def convert(fn, spec):
    """The ONNX model of a tf.function (tf2onnx.convert.from_function at the converter's default opset)."""
    _, _, tf2onnx, _ = import_keras_onnx()
    with _quiet_converter():
        model, _ = tf2onnx.convert.from_function(fn, input_signature=spec)
    return model


class Built(NamedTuple):
    cells: list  # every layer's and direction's Keras cell, layer-major (structured.suffixes)
    fn: object  # the tf.function
    spec: list  # its input signature: x, the initial states, the mask, the weights (when inputs)
    frozen: bool  # the weights frozen into the graph (converted per case) or inputs (converted here, once)
    session: object = None  # the ONNX Runtime session of the converted graph (weights as inputs)
    model: object = None  # that graph (onnx.ModelProto)


def weight_names(cell):
    """The Keras cell's weights in ``keras_common.weights`` order, as the remaps name them."""
    return ("kernel", "recurrent_kernel", "bias")[:len(keras_common.weights(cell))]


def build(family, D, H, dtype, options, as_inputs=None):
    """The Keras layers of a family under ``options``, the tf.function that calls them and, with the
    weights as inputs (``as_inputs``, by default where the record holds no fused node), its ONNX Runtime
    session."""
    tf, keras, _, _ = import_keras_onnx()
    model = structured.with_own(MODELS[family], options)  # an option of the model's own: its Keras arguments
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    stack, cells, _ = keras_common.keras_stack(keras, model, D, H, dtype, merge, depth, masking and masking[0],
                                             use_bias=keras_common.use_bias(options),
                                             go_backwards=keras_common.go_backwards(options))
    as_inputs = not frozen(family, options) if as_inputs is None else as_inputs
    names = structured.suffixes(options)
    spec = [tf.TensorSpec((None, None, D), dtype, name="x")]
    spec += [tf.TensorSpec((None, H), dtype, name=k + s) for s in names for k in model.states]
    if masking:
        spec.append(tf.TensorSpec((None, None), tf.bool, name=layers.MASK))
    variables = [v for cell in cells for v in keras_common.weights(cell)] if as_inputs else []
    spec += [tf.TensorSpec(v.shape, dtype, name=w + s) for cell, s in zip(cells, names)
             for v, w in zip(keras_common.weights(cell), weight_names(cell))] if as_inputs else []
    per_layer = len(model.states) * (2 if merge else 1)
    n_states = per_layer * depth

    @tf.function(input_signature=spec)
    def fn(*args):
        x, initial = args[0], list(args[1:1 + n_states])
        rest = list(args[1 + n_states:])
        given = dict(mask=rest.pop(0)) if masking else {}
        values = {id(v): t for v, t in zip(variables, rest)}
        seq, finals = x, []
        for k, layer in enumerate(stack):
            states = initial[k * per_layer:(k + 1) * per_layer]
            if as_inputs:
                result, _ = layer.stateless_call([values[id(v)] for v in layer.trainable_variables],
                                                 [v.value for v in layer.non_trainable_variables], seq,
                                                 initial_state=states, **given)
            else:
                result = layer(seq, initial_state=states, **given)
            n = 2 if merge == "none" else 1  # the pair of outputs, then the states
            top = list(result[:n])
            finals += list(result[n:])  # [forward states, backward states] per layer
            seq = tf.concat(top, -1) if n == 2 else top[0]
        return top + finals

    if not as_inputs:
        return Built(cells, fn, spec, True)
    converted = checked(convert(fn, spec), family, options)
    return Built(cells, fn, spec, False, ort_session(converted), converted)


def checked(model, family, options):
    """``model``, if its recurrent ops are those recorded; a clear error otherwise."""
    got, want = recurrent_ops(model), emitted(family, options)
    if got != want:
        _, _, tf2onnx, _ = import_keras_onnx()
        raise RuntimeError(f"tf2onnx {tf2onnx.__version__} emitted {list(got)} for {family} under options "
                           f"{list(options)}; EMITTED records {list(want)} (read at tf2onnx {READ_AT['tf2onnx']}): "
                           f"the converter changed; update EMITTED and what rests on it (frozen, declines_dtype)")
    return model


def cell_weights(cell, weights):
    """A cell's remapped weights in ``weight_names`` order; a bias where the cell has none (or none where
    it has one) is an oracle bug."""
    if cell.use_bias != ("bias" in weights):
        raise RuntimeError(f"Keras cell use_bias={cell.use_bias}, but the remapped weights "
                           f"{'have' if 'bias' in weights else 'lack'} a bias")
    return [weights[w] for w in weight_names(cell)]


def run(family, inputs, options=(), as_inputs=None):
    """The converted layer's forward quantities on a case's canonical inputs (see ``observed``); the
    weights frozen or as inputs as ``build`` decides (``as_inputs``: either way, for the tests)."""
    model = MODELS[family]
    x = inputs["x"]
    D, H = x.shape[2], inputs["h0"].shape[1]
    built = keras_common.built(build, family, D, H, x.dtype.name, tuple(options), as_inputs)
    names = structured.suffixes(options)
    weights = [REMAPS[family](structured.part(inputs, s)) for s in names]
    feeds = {"x": x, **{k + s: inputs[k + s] for s in names for k in model.states}}
    if opts.masking(options):
        feeds[layers.MASK] = layers.valid(inputs[layers.MASK])
    if built.frozen:
        for cell, w in zip(built.cells, weights):
            for variable, value in zip(keras_common.weights(cell), cell_weights(cell, w)):
                variable.assign(value)
        session = ort_session(checked(convert(built.fn, built.spec), family, options))
    else:
        for cell, s, w in zip(built.cells, names, weights):
            feeds.update({name + s: value for name, value in zip(weight_names(cell), cell_weights(cell, w))})
        session = built.session
    results = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
    return outputs(model, options, results, H)


def in_time_order(seq, backwards):
    """The converted layer's output sequence indexed by the original t: under go_backwards the converted
    model returns it in processing order, index 0 the state after x[:, T-1], as Keras does (tensorflow#40345;
    tf2onnx keeps Keras' order): flipped back here."""
    return seq[:, ::-1] if backwards else seq


def outputs(model, options, results, H):
    """Canonical quantities from the converted model's outputs [top output(s), every layer's and direction's
    final states]: the sequence flipped back to the original t under go_backwards (tensorflow#40345)."""
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    n = 2 if merge == "none" else 1
    top, finals = results[:n], results[n:]
    seq = in_time_order(np.concatenate(top, -1) if n == 2 else top[0], keras_common.go_backwards(options))
    out = {}
    names = structured.suffixes(options)
    returned = structured.final_states(model, options)
    for i, s in enumerate(names):
        for q, (index, _) in returned.items():
            out[q + s] = finals[i * len(model.states) + index]
    out.update(structured.top_outputs(seq, merge, depth, masking))
    return out


def observed(record):
    """What an oracle of a family (its ``record``) returns under options: the forward quantities (phase 0)
    the Keras layer oracle returns, that is the top output and every final state the layer returns."""
    model = MODELS[record.name]

    def names(options):
        table = opts.under(record, tuple(options)).quantities
        merge = opts.merge(options)
        returned = structured.observed(model, options, merged_apart=merge in ("concat", "none"))
        return tuple(q for q in returned if q in table and table[q].phase == 0)  # under nobias: no dbx

    return names


_FORWARD_ONLY = ("the converted model computes the forward pass only (tf2onnx converts an inference graph; "
                 "ONNX Runtime's inference session has no gradients)")
_C_INSIDE = "only C_T leaves the converted layer (return_state); c_t for t < T stays inside its ONNX node or Loop"


def _oracle(name, record, what):
    family = record.name
    contract = record.contract
    observes = ("h", "cT") if "c" in contract else ("h",)
    blind = {k: _C_INSIDE if k == "c" else _FORWARD_ONLY for k in contract if k != "h"}
    return Oracle(
        name=name, family=family, framework="keras-onnx",
        description=f"{what} converted by tf2onnx.convert.from_function, run in onnxruntime (forward only)",
        observes=observes, cannot_observe=blind,
        runner=lambda inputs, options=(): run(family, inputs, options),
        trace_ms=TRACE_MS[family],
        options=frozenset({"nobias", "rev"}) | keras_common.STRUCTURES | keras_common.MASKED | frozenset(MODELS[family].own),
        observes_structured=observed(record), declines=declines(family), declines_dtype=declines_dtype(family))


# One conversion (and session) per (D, H, dtype, options) where the weights are inputs, in ms on one core
# (benchmarks/trace_cost.py: 460, 540 and 470 ms for the GRUs and the SimpleRNN; the LSTM's masked sets
# alike). The LSTM's other sets convert per case instead, about 210 ms each (the "again" column there),
# which the shard cost model (gatecheck.run.grid.cost) does not count.
TRACE_MS = {"lstm": 500, "gru": 460, "gru-reset-before": 540, "rnn": 470}

ORACLES = (
    _oracle("keras-onnx-lstm", LSTM, "keras.layers.LSTM"),
    _oracle("keras-onnx-gru", GRU, "keras.layers.GRU(reset_after=True)"),
    _oracle("keras-onnx-gru-before", GRU_RESET_BEFORE, "keras.layers.GRU(reset_after=False)"),
    _oracle("keras-onnx-rnn", RNN, "keras.layers.SimpleRNN"),
)
