"""Keras oracles, on whichever Keras 3 backend the process runs (TensorFlow, JAX or PyTorch).

keras-lstm-cell   Keras' own ``keras.layers.LSTMCell`` driven by ``keras.layers.RNN`` (the backend's
             loop), with zero probes added to each step's c_t and h_t (``probed_lstm_cell``): the
             gradients of the loss with respect to the probes, fed as extra per-step inputs, are the
             total deltas dL/dh_t and dL/dc_t.
keras-lstm-layer  ``keras.layers.LSTM(return_sequences=True, return_state=True)``: the
             whole-sequence layer (the code path of ``keras_backends.layer_kwargs``).

The models and their losses are written once with ``keras.ops``; compiling them and taking the
gradients (tf.function and GradientTape, jax.jit and jax.value_and_grad, torch's backward) is
``gatecheck.engines.keras.backends``' part, which also takes and returns NumPy arrays.

Under the reverse option (gatecheck.model.options) each is built with ``go_backwards=True`` and its
output sequence is flipped back to the original t (``in_time_order``). Under the structural
options the layer is built by gatecheck.engines.structured, and the probed cells of this module,
of rnn_oracles and of gru_oracles by ``probed_runner``: ``keras.layers.Bidirectional`` and layers in
sequence around their ``keras.layers.RNN`` loops, so every layer's and direction's per-step states
and deltas leave (``direction_in_time_order``: how the reverse direction's are indexed by t).

Each is built (and on TensorFlow traced) once per (D, H, dtype, options) and reused; TensorFlow's
trace serves every batch size and number of steps, jax.jit compiles once per shape.
"""

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_keras
from gatecheck.engines.keras import backends as keras_backends
from gatecheck.engines.keras import common as keras_common

# The canonical LSTM's activations, stated rather than left to a version's defaults (Keras
# before 2.3 defaulted recurrent_activation to hard_sigmoid; see gatecheck/engines/keras/versions.py).
_ACTIVATIONS = dict(activation="tanh", recurrent_activation="sigmoid")


def _signature(dtype, D, H, width):
    """x, its zero probes (``width`` per step), h0, c0 (the differentiated inputs), gh, gc."""
    return [((None, None, D), dtype), ((None, None, width), dtype), ((None, H), dtype), ((None, H), dtype),
            ((None, None, H), dtype), ((None, H), dtype)]


def probed_lstm_cell(keras, ops):
    """``keras.layers.LSTMCell`` with zero "probes" added to each step's c_t and h_t.

    The step's inputs are [x_t, e_h, e_c]; the cell is Keras' own, except that the c_t its
    fused step returns becomes c_t + e_c before h_t = o_t * tanh(c_t) is taken from it, and
    the h_t it returns becomes h_t + e_h. With the probes zero nothing changes, and the
    gradient of the loss with respect to e_c (e_h) at step t is the total dL/dc_t (dL/dh_t),
    every path included. The output is [h_t, c_t], so one ``keras.layers.RNN`` loop (traced
    once, whatever T) gives the states and, through its inputs, the per-step deltas.

    Where several cells read one input (the two directions of a ``Bidirectional``), it is
    [x_t, probes of slot 0, probes of slot 1, ...] and each cell reads ``slot`` of ``slots``.
    """
    class ProbedLSTMCell(keras.layers.LSTMCell):
        def __init__(self, units, slot=0, slots=1, **kwargs):
            super().__init__(units, **kwargs)
            self.output_size = 2 * units
            self.slot, self.slots = slot, slots
            self._probe_c = None

        def build(self, input_shape):
            super().build((input_shape[0], input_shape[-1] - 2 * self.units * self.slots))

        def call(self, inputs, states, training=False):
            H = self.units
            D = inputs.shape[-1] - 2 * H * self.slots
            e = D + 2 * H * self.slot
            x, e_h, self._probe_c = inputs[:, :D], inputs[:, e:e + H], inputs[:, e + H:e + 2 * H]
            h, (_, c) = super().call(x, states, training=training)
            h = h + e_h
            return ops.concatenate([h, c], axis=-1), [h, c]

        def _compute_carry_and_output_fused(self, z, c_tm1):
            c, o = super()._compute_carry_and_output_fused(z, c_tm1)
            return c + self._probe_c, o

        def get_config(self):  # Bidirectional rebuilds its forward layer from the config
            return dict(super().get_config(), slot=self.slot, slots=self.slots)

    return ProbedLSTMCell


# --- models with one state h (SimpleRNN, GRU): the same probe and the same functions ---------


def _probed_lstm(D, H, dtype, bias=True, backwards=False, activation="tanh", recurrent_activation="sigmoid"):
    """A probed LSTMCell in a ``keras.layers.RNN`` loop, built for inputs [x, e_h, e_c]."""
    _, keras = import_keras()
    ops = keras_backends.ops()
    cell = probed_lstm_cell(keras, ops)(H, dtype=dtype, use_bias=bias, activation=activation,
                                        recurrent_activation=recurrent_activation)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + 2 * H))
    return ops, keras, cell, rnn


def _build_cell(D, H, dtype, bias=True, backwards=False, activation="tanh", recurrent_activation="sigmoid"):
    ops, _, cell, rnn = _probed_lstm(D, H, dtype, bias, backwards, activation, recurrent_activation)

    def forward(x, probes, h0, c0, gh, gc):
        seq, _, c_last = rnn(ops.concatenate([x, probes], -1), initial_state=[h0, c0])
        seq = keras_common.in_time_order(ops, seq, backwards)
        h, c = seq[..., :H], seq[..., H:]
        return ops.sum(gh * h) + ops.sum(gc * c_last), [h, c]

    return cell, keras_backends.gradient_function(forward, keras_common.weights(cell), _signature(dtype, D, H, 2 * H), 4)


def run_cell(inputs, options=()):
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cell, fn = keras_common.built(_build_cell, x.shape[2], H, x.dtype.name, keras_common.use_bias(options),
                                  keras_common.go_backwards(options), *keras_common.activation_kwargs(options).values())
    keras_common.assign(cell, inputs)
    (h, c), grads, (dx, dprobes, dh0, dc0) = fn(x, keras_common.zero_probes(x, 2 * H), inputs["h0"], inputs["c0"], inputs["gh"],
                                                inputs["gc"])
    params, _ = keras_common.weight_grads(grads, cell)
    out = dict(h=h, c=c, dh=dprobes[..., :H], dc=dprobes[..., H:], dx=dx, dh0=dh0, dc0=dc0)
    out.update(params)
    return out


def _build_layer(D, H, dtype, bias=True, backwards=False, activation="tanh", recurrent_activation="sigmoid"):
    _, keras = import_keras()
    ops = keras_backends.ops()
    layer = keras.layers.LSTM(
        H, return_sequences=True, return_state=True, go_backwards=backwards, dtype=dtype, use_bias=bias,
        activation=activation, recurrent_activation=recurrent_activation, **keras_backends.layer_kwargs(keras)
    )
    layer.build((None, None, D))

    def forward(x, h0, c0, gh, gc):
        seq, _, c_last = layer(x, initial_state=[h0, c0])
        seq = keras_common.in_time_order(ops, seq, backwards)
        return ops.sum(gh * seq) + ops.sum(gc * c_last), [seq, c_last]

    specs = [spec for n, spec in enumerate(_signature(dtype, D, H, H)) if n != 1]  # no probes
    return layer, keras_backends.gradient_function(forward, keras_common.weights(layer.cell), specs, 3)


def run_layer(inputs, options=()):
    x = inputs["x"]
    layer, fn = keras_common.built(_build_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name, keras_common.use_bias(options),
                      keras_common.go_backwards(options), *keras_common.activation_kwargs(options).values())
    keras_common.assign(layer.cell, inputs)
    (seq, c_last), grads, (dx, dh0, dc0) = fn(x, inputs["h0"], inputs["c0"], inputs["gh"], inputs["gc"])
    params, _ = keras_common.weight_grads(grads, layer.cell)
    out = dict(h=seq, cT=c_last, dx=dx, dh0=dh0, dc0=dc0)
    out.update(params)
    return out


_WHOLE_SEQUENCE_BLIND = {
    "c": "only C_T is returned (return_state); c_t for t < T stays inside the layer's loop",
    "dh": "dL/dh_t includes paths inside the layer's loop; only the upstream part is an input",
    "dc": "c_t for t < T is not an output of the layer, so dL/dc_t cannot be taken",
}

# The LSTM's structure (Bidirectional with every merge mode, two layers: gatecheck.engines.structured).
MODEL = structured.Model(states=("h0", "c0"), finals={"cT": (1, "gc")},
                         observes=("cT", "dh0", "dc0", "dW", "dU", "db"), keras_layer="LSTM",
                         keras_kwargs=_ACTIVATIONS, keras_assign=keras_common.assign, keras_grads=keras_common.weight_grads)
MODEL = MODEL._replace(own=keras_common.own_activations(MODEL))


# --- the probed cells in layers: Bidirectional (every merge mode) and two layers in sequence ----------


KERAS_CELL = Oracle(
    name="keras-lstm-cell",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTMCell with zero probes on c_t and h_t, in keras.layers.RNN (gradients: keras_backends)",
    observes=("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db"),
    runner=keras_common.probed_runner(MODEL, probed_lstm_cell, run_cell),
    trace_ms=330,
    declines_dtype=keras_backends.dtype_declines(),
    options=frozenset({"nobias", "rev", *MODEL.own}) | keras_common.STRUCTURES,
    observes_structured=keras_common.observed_cell(MODEL),
    declines=keras_common.declines_activation,
)

KERAS_LAYER = Oracle(
    name="keras-lstm-layer",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTM whole sequence (return_sequences, return_state)",
    observes=("h", "cT", "dx", "dh0", "dc0", "dW", "dU", "db"),
    cannot_observe=dict(_WHOLE_SEQUENCE_BLIND),
    runner=keras_common.keras_runner(MODEL, run_layer),
    trace_ms=240,
    options=frozenset({"nobias", "rev", *MODEL.own}) | keras_common.STRUCTURES | keras_common.MASKED,
    observes_structured=keras_common.observed_layer(MODEL),
    declines=keras_common.declines_keras,
    # the backend's own loop, but under a mask a cell's call per step:
    declines_dtype=keras_backends.dtype_declines(steps_a_cell=False, layer=keras_backends.declines_layer_dtype),
)


# --- the softmax / cross-entropy head (gatecheck/reference/head.py) ---------------------------


def _build_cell_head(D, H, K, dtype):
    ops, keras, cell, rnn = _probed_lstm(D, H, dtype)
    dense = keras.layers.Dense(K, dtype=dtype)
    dense.build((None, H))
    specs = _signature(dtype, D, H, 2 * H)[:4] + [((None, None, K), dtype)]

    def forward(x, probes, h0, c0, y):
        seq, _, _ = rnn(ops.concatenate([x, probes], -1), initial_state=[h0, c0])
        h, c = seq[..., :H], seq[..., H:]
        logits = dense(h)
        loss = ops.sum(ops.categorical_crossentropy(y, logits, from_logits=True))
        return loss, [h, c, ops.softmax(logits, axis=-1), loss]

    variables = [cell.kernel, cell.recurrent_kernel, cell.bias, dense.kernel, dense.bias]
    return cell, dense, keras_backends.gradient_function(forward, variables, specs, 4)


def run_cell_head(inputs):
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cell, dense, fn = keras_common.built(_build_cell_head, x.shape[2], H, inputs["V"].shape[1], x.dtype.name)
    keras_common.assign(cell, inputs)
    dense.kernel.assign(inputs["V"])
    dense.bias.assign(inputs["cb"])
    (h, c, p, loss), (dk, drk, dbias, dV, dcb), (dx, dprobes, dh0, dc0) = fn(x, keras_common.zero_probes(x, 2 * H), inputs["h0"],
                                                                          inputs["c0"], inputs["y"])
    out = dict(h=h, c=c, p=p, dh=dprobes[..., :H], dc=dprobes[..., H:], dx=dx, dh0=dh0, dc0=dc0, dV=dV, dcb=dcb,
               loss=loss)
    out.update(keras_common.grads_to_canonical(dk, drk, dbias))
    return out


KERAS_CELL_HEAD = Oracle(
    name="keras-lstm-head-cell",
    family="lstm-head",
    framework="keras",
    description="keras.layers.LSTMCell (probed, in keras.layers.RNN) + Dense + softmax cross-entropy per step",
    observes=("h", "c", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
    runner=run_cell_head,
    trace_ms=360,
    declines_dtype=keras_backends.dtype_declines(),
)

ORACLES = (KERAS_CELL, KERAS_LAYER, KERAS_CELL_HEAD)
