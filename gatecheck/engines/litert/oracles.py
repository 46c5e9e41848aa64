"""Keras layers converted by TensorFlow's LiteRT (TFLite) converter and run in the LiteRT interpreter:
forward-only oracles.

litert-lstm        ``keras.layers.LSTM``
litert-gru         ``keras.layers.GRU(reset_after=True)``
litert-gru-before  ``keras.layers.GRU(reset_after=False)``
litert-rnn         ``keras.layers.SimpleRNN``

Each is the Keras layer oracle's layer, built with the same arguments (``use_bias``, ``go_backwards``,
``keras.layers.Bidirectional`` and layers in sequence for bi* and L2, ``mask=`` and ``zero_output_for_mask``
for len, mask and maskz; cuDNN off), given a case's canonical weights through the Keras remaps
(``layout.to_keras``, ``gru_layout.to_keras``, ``rnn_layout.to_keras``: ``REMAPS`` looks them up at each
call) and called from its initial states (h0, c0 are inputs of the converted model) in a ``tf.function``.
``tf.lite.TFLiteConverter.from_concrete_functions`` converts it with the weights frozen into the model as
constants, as in any deployed ``.tflite`` file, so each case is converted (0.3 to 1 s). The converter runs
as constructed: no ``optimizations`` (the default, an empty set: no quantisation, float weights and
activations, ``CONVERTER_SETTINGS`` checks it at each conversion) and ``TFLITE_BUILTINS`` only (no TF Select
kernels). The interpreter is ``ai_edge_litert.interpreter.Interpreter`` (frameworks.import_litert: TensorFlow's
own ``tf.lite.Interpreter`` is deprecated) with its default op resolver, the XNNPACK delegate included, and
``threads()`` threads.

The batch axis of the converted model is the case's B: the converter lowers Keras' loop to a ``WHILE`` whose
TensorList needs a static element shape (with a ``None`` batch it fails: "'tf.TensorListReserve' op requires
element_shape to be static during TF Lite transformation pass"). The time axis stays ``None`` (-1 in the
model's shape signature): the interpreter is resized to the case's T, which the conversion never saw.

What the converter emitted is read from the interpreter (``recurrence``: the ops of the main subgraph,
``Interpreter._get_ops_details``) and checked against ``EMITTED`` at every conversion: Keras 3's layers carry
none of the ``api_implements`` annotations of tf.keras' LSTM that TFLite's fused-LSTM pass matches, so every
family and option set becomes one ``WHILE`` per layer and direction, never a fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` / ``BIDIRECTIONAL_SEQUENCE_LSTM`` (tf.keras 2.15's LSTM fused; Keras 3's
does not: tensorflow#126061, tflite-micro#3674). A converter that fuses stops the oracle with the difference
named.

float64 is declined (``declines_dtype``): TFLite's builtin kernels have no float64 MatMul, BiasAdd, Sigmoid,
Tanh, Transpose, Fill, ..., and the converter refuses the model ("Some ops are not supported by the native
TFLite runtime, you can enable TF kernels fallback using TF Select"); TF Select would run TensorFlow's kernels,
not LiteRT's.

Forward only: a LiteRT model is an inference graph (no gradients), so every gradient and delta is in
``cannot_observe``; what the oracles compare is the output sequence (``h``; ``out`` under a mask; ``y`` and
the directions apart under ``bi``/``binone``) and the final states the layer returns (the LSTM's C_T; h_T and
C_T under a mask) of every layer and direction. Under ``go_backwards`` the converted model returns Keras'
processing order (tensorflow#40345), flipped back here as the Keras oracles do.
"""

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_litert, quiet_stderr, threads
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import families as keras_families
from gatecheck.families import GRU, GRU_RESET_BEFORE, LSTM, RNN
from gatecheck.model import options as opts
from gatecheck.reference import layers

# The versions EMITTED was read at.
READ_AT = {"tensorflow": "2.21.0", "keras": "3.15.1", "ai-edge-litert": "2.3.0"}

# Each family's Keras model and remap: the Keras layer oracles' own (gatecheck.engines.keras.families).
MODELS, REMAPS = keras_families.MODELS, keras_families.REMAPS

# The LiteRT builtin ops that can carry a recurrence: the fused sequence ops, and a loop.
FUSED = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN",
         "BIDIRECTIONAL_SEQUENCE_RNN")
LOOP = "WHILE"

# What carries each family's recurrence in the converted model's main subgraph (``recurrence``), one per
# layer and direction, read at READ_AT from the oracles' own conversions of every option set of both grids
# (tests/engines/litert/test_litert.py reads it afresh). The fused-LSTM pass matches tf.keras 2's annotated
# LSTM function, which Keras 3 no longer writes (tensorflow#126061, tflite-micro#3674).
EMITTED = {"lstm": LOOP, "gru": LOOP, "gru-reset-before": LOOP, "rnn": LOOP}

# The converter's settings the oracles run with, as constructed (checked at each conversion): no
# optimisation (so no quantisation of weights or activations) and TFLite's builtin ops only.
CONVERTER_SETTINGS = {"optimizations": set(), "supported_ops": {"TFLITE_BUILTINS"}, "supported_types": set()}

_FLOAT64 = ("TFLite's builtin kernels have no float64 MatMul, BiasAdd, Sigmoid, Tanh, Transpose, Fill (tensorflow "
            "{tf}): the converter refuses a float64 model ('Some ops are not supported by the native TFLite runtime, "
            "you can enable TF kernels fallback using TF Select'), and TF Select would run TensorFlow's kernels, "
            "not LiteRT's")


def recurrence(ops):
    """What carries the recurrence among a converted model's main-subgraph op names (``ops``): (op, count)
    of the fused sequence op or the ``WHILE`` loop (("unrolled", 0): neither, one copy of the step per
    time step)."""
    for op in FUSED + (LOOP,):
        if op in ops:
            return op, ops.count(op)
    return "unrolled", 0


def ops_of(interpreter):
    """The op names of an interpreter's main subgraph (subgraph 0; a ``WHILE``'s body and condition are
    subgraphs of their own), in execution order."""
    return [op["op_name"] for op in interpreter._get_ops_details()]


def expected(family, options):
    """(op, count) ``recurrence`` should find for a family under options: EMITTED's op once per layer and
    direction."""
    merge, depth = structured.structure(options)
    return EMITTED[family], depth * (2 if merge else 1)


def declines_dtype(options, dtype):
    """Why an oracle does not run a dtype under options (None: it runs it): every option set alike."""
    if dtype == "f64":
        return _FLOAT64.format(tf=READ_AT["tensorflow"])
    return None


def settings(converter):
    """The converter settings CONVERTER_SETTINGS names, read from a converter."""
    return {"optimizations": set(converter.optimizations),
            "supported_ops": {o.name for o in converter.target_spec.supported_ops},
            "supported_types": set(converter.target_spec.supported_types)}


def convert(fn):
    """The LiteRT model (flatbuffer bytes) of a tf.function with an input signature, converted with the
    settings the converter is constructed with (checked against CONVERTER_SETTINGS)."""
    tf, _, _ = import_litert()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    found = settings(converter)
    if found != CONVERTER_SETTINGS:
        raise RuntimeError(f"tf.lite.TFLiteConverter is constructed with {found}; the oracles are recorded with "
                           f"{CONVERTER_SETTINGS} (no quantisation, builtin ops only)")
    with quiet_stderr():  # MLIR's pass diagnostics; a failed conversion still raises
        return converter.convert()


def interpreter(model):
    """The LiteRT interpreter of a converted model (default op resolver, ``threads()`` threads)."""
    _, _, litert = import_litert()
    with quiet_stderr():  # the runtime's start-up notices
        return litert.Interpreter(model_content=model, num_threads=threads())


def checked(found, family, options):
    """``found`` (``recurrence`` of a converted model), if it is what EMITTED records; a clear error otherwise."""
    want = expected(family, options)
    if found != want:
        raise RuntimeError(f"the TFLite converter (tensorflow {import_litert()[0].__version__}) emitted {found[1]} "
                           f"{found[0]} for {family} under options {list(options)}; EMITTED records {want[1]} "
                           f"{want[0]} (read at tensorflow {READ_AT['tensorflow']}): the converter changed; update "
                           f"EMITTED")
    return found


def build(family, B, D, H, dtype, options):
    """The Keras layers of a family under ``options`` (every layer's and direction's cell, layer-major) and
    the tf.function that calls them: x (B, None, D), the initial states, the mask under a masking option."""
    tf, keras, _ = import_litert()
    model = MODELS[family]
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    stack, cells, _ = keras_common.keras_stack(keras, model, D, H, dtype, merge, depth, masking and masking[0],
                                             use_bias=keras_common.use_bias(options),
                                             go_backwards=keras_common.go_backwards(options))
    names = structured.suffixes(options)
    spec = [tf.TensorSpec((B, None, D), dtype, name="x")]
    spec += [tf.TensorSpec((B, H), dtype, name=k + s) for s in names for k in model.states]
    if masking:
        spec.append(tf.TensorSpec((B, None), tf.bool, name=layers.MASK))
    per_layer = len(model.states) * (2 if merge else 1)

    @tf.function(input_signature=spec)
    def fn(*args):
        x, initial = args[0], list(args[1:1 + per_layer * depth])
        given = dict(mask=args[-1]) if masking else {}
        seq, finals = x, []
        for k, layer in enumerate(stack):
            result = layer(seq, initial_state=initial[k * per_layer:(k + 1) * per_layer], **given)
            n = 2 if merge == "none" else 1  # the pair of outputs, then the states
            top = list(result[:n])
            finals += list(result[n:])  # [forward states, backward states] per layer
            seq = tf.concat(top, -1) if n == 2 else top[0]
        return top + finals

    return cells, fn


def cell_weights(cell, weights):
    """A cell's remapped weights in ``keras_common.weights`` order; a bias where the cell has none (or none
    where it has one) is an oracle bug."""
    if cell.use_bias != ("bias" in weights):
        raise RuntimeError(f"Keras cell use_bias={cell.use_bias}, but the remapped weights "
                           f"{'have' if 'bias' in weights else 'lack'} a bias")
    return [weights[w] for w in ("kernel", "recurrent_kernel", "bias")[:len(keras_common.weights(cell))]]


def _output_index(name):
    """The position of a converted model's output among the tf.function's outputs ("Identity_2" -> 2)."""
    head, _, tail = name.partition("_")
    if head != "Identity" or not (tail == "" or tail.isdigit()):
        raise RuntimeError(f"converted model output {name!r}: expected Identity or Identity_<n>")
    return int(tail or 0)


def invoke(interp, feeds):
    """Run an interpreter on named inputs (resized to their shapes); the outputs in the tf.function's order."""
    for detail in interp.get_input_details():
        interp.resize_tensor_input(detail["index"], feeds[detail["name"]].shape, strict=True)
    with quiet_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", once a process
        interp.allocate_tensors()
    for detail in interp.get_input_details():
        interp.set_tensor(detail["index"], feeds[detail["name"]])
    interp.invoke()
    found = {_output_index(d["name"]): interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    return [found[i] for i in range(len(found))]


def run(family, inputs, options=()):
    """The converted layer's forward quantities on a case's canonical inputs (see ``observed``)."""
    model = MODELS[family]
    x = inputs["x"]
    B, _, D = x.shape
    H = inputs["h0"].shape[1]
    options = tuple(options)
    cells, fn = keras_common.built(build, family, B, D, H, x.dtype.name, options)
    names = structured.suffixes(options)
    for cell, s in zip(cells, names):
        weights = REMAPS[family](structured.part(inputs, s))
        for variable, value in zip(keras_common.weights(cell), cell_weights(cell, weights)):
            variable.assign(value)
    interp = interpreter(convert(fn))
    checked(recurrence(ops_of(interp)), family, options)
    feeds = {"x": x, **{k + s: inputs[k + s] for s in names for k in model.states}}
    if opts.masking(options):
        feeds[layers.MASK] = layers.valid(inputs[layers.MASK])
    return outputs(model, options, invoke(interp, feeds))


def in_time_order(seq, backwards):
    """The converted layer's output sequence indexed by the original t: under go_backwards it is in
    processing order, index 0 the state after x[:, T-1], as Keras returns it (tensorflow#40345)."""
    return seq[:, ::-1] if backwards else seq


def outputs(model, options, results):
    """Canonical quantities from the converted model's outputs [top output(s), every layer's and direction's
    final states]."""
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    n = 2 if merge == "none" else 1
    top, finals = results[:n], results[n:]
    seq = in_time_order(np.concatenate(top, -1) if n == 2 else top[0], keras_common.go_backwards(options))
    out = {}
    returned = structured.final_states(model, options)
    for i, s in enumerate(structured.suffixes(options)):
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
        returned = structured.observed(model, options, merged_apart=opts.merge(options) in ("concat", "none"))
        return tuple(q for q in returned if q in table and table[q].phase == 0)  # under nobias: no dbx

    return names


_FORWARD_ONLY = "a LiteRT model is an inference graph: the interpreter computes the forward pass only, no gradient"
_C_INSIDE = "only C_T leaves the converted layer (return_state); c_t for t < T stays inside its WHILE loop"


def _declines(options):
    return keras_common.declines_keras(options)  # what the Keras layer itself does not run


def _oracle(name, record, what):
    family = record.name
    contract = record.contract
    return Oracle(
        name=name, family=family, framework="litert",
        description=f"{what} converted by tf.lite.TFLiteConverter (no optimizations: float, unquantised), run in "
                    f"ai_edge_litert's Interpreter (forward only)",
        observes=("h", "cT") if "c" in contract else ("h",),
        cannot_observe={k: _C_INSIDE if k == "c" else _FORWARD_ONLY for k in contract if k != "h"},
        runner=lambda inputs, options=(): run(family, inputs, options),
        trace_ms=TRACE_MS[family],
        options=frozenset({"nobias", "rev"}) | keras_common.STRUCTURES | keras_common.MASKED,
        observes_structured=observed(record), declines=_declines, declines_dtype=declines_dtype)


# The one-off cost of a group, in ms on one core: the Keras layers and their tf.function built (once per B, D, H,
# dtype, options) and traced by the first conversion (measured on a shared two-core machine: 530 to 670 ms for one
# layer, 1.3 s for bi+L2). Each case then converts again, 0.3 to 1 s, which the shard cost model
# (gatecheck.run.grid.cost) does not count.
TRACE_MS = {"lstm": 600, "gru": 550, "gru-reset-before": 650, "rnn": 530}

ORACLES = (
    _oracle("litert-lstm", LSTM, "keras.layers.LSTM"),
    _oracle("litert-gru", GRU, "keras.layers.GRU(reset_after=True)"),
    _oracle("litert-gru-before", GRU_RESET_BEFORE, "keras.layers.GRU(reset_after=False)"),
    _oracle("litert-rnn", RNN, "keras.layers.SimpleRNN"),
)
