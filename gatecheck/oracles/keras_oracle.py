"""Keras (TensorFlow backend) oracles.

keras-cell   Keras' own ``keras.layers.LSTMCell`` driven by ``keras.layers.RNN`` (a symbolic
             loop) under ``GradientTape``, with zero probes added to each step's c_t and h_t
             (``probed_lstm_cell``): the gradients of the loss with respect to the probes,
             fed as extra per-step inputs, are the total deltas dL/dh_t and dL/dc_t.
keras-layer  ``keras.layers.LSTM(return_sequences=True, return_state=True)``: the
             whole-sequence layer (the backend's while-loop RNN; cuDNN is off).

Under the reverse option (gatecheck.options) each is built with ``go_backwards=True`` and its
output sequence is flipped back to the original t (``in_time_order``).

Each is traced once per (D, H, dtype, options), whatever the batch and the number of steps, and reused.
"""

from gatecheck.oracles import layout, structured
from gatecheck.oracles.frameworks import import_keras
from gatecheck.oracles.base import Oracle

_cache = {}


def built(build, *args):
    """``build(*args)`` (a model and its traced function), built once per process and reused:
    every Keras oracle is traced once per set of build arguments (its D, H, K and dtype)."""
    key = (build, *args)
    if key not in _cache:
        _cache[key] = build(*args)
    return _cache[key]
# The canonical LSTM's activations, stated rather than left to a version's defaults (Keras
# before 2.3 defaulted recurrent_activation to hard_sigmoid; see gatecheck/oracles/versions.py).
_ACTIVATIONS = dict(activation="tanh", recurrent_activation="sigmoid")


def assign(cell, inputs, remap=layout.to_keras):
    """Canonical weights into a Keras cell (``remap``: the model's canonical -> Keras map). A
    cell built with ``use_bias=False`` has no bias, and the remap of inputs without biases
    gives none: any other pairing is an oracle bug (a bias slot left stale or filled)."""
    weights = remap(inputs)
    if cell.use_bias != ("bias" in weights):
        raise RuntimeError(f"Keras cell use_bias={cell.use_bias}, but the remapped weights "
                           f"{'have' if 'bias' in weights else 'lack'} a bias")
    cell.kernel.assign(weights["kernel"])
    cell.recurrent_kernel.assign(weights["recurrent_kernel"])
    if cell.use_bias:
        cell.bias.assign(weights["bias"])


def grads_to_canonical(dk, drk, dbias, back=layout.grads_from_keras):
    """Keras weight gradients -> canonical (``dbias`` None: no bias)."""
    grads = {"kernel": dk.numpy(), "recurrent_kernel": drk.numpy()}
    if dbias is not None:
        grads["bias"] = dbias.numpy()
    return back(grads)


def weights(cell):
    """The cell's weights in remap order: kernel, recurrent_kernel, and bias unless ``use_bias=False``."""
    return [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if cell.use_bias else [])


def weight_grads(grads, cell, back=layout.grads_from_keras):
    """(canonical weight gradients, the rest) of a ``tape.gradient`` list that starts with
    ``weights(cell)``."""
    n = 3 if cell.use_bias else 2
    return grads_to_canonical(grads[0], grads[1], grads[2] if n == 3 else None, back), list(grads[n:])


def use_bias(options):
    """The Keras ``use_bias`` of a case's options (gatecheck.options)."""
    return "nobias" not in options


def go_backwards(options):
    """The Keras ``go_backwards`` of a case's options (gatecheck.options)."""
    return "rev" in options


def in_time_order(tf, seq, backwards):
    """A layer's output sequence indexed by the original t. Under go_backwards Keras returns it
    in processing order, index 0 the state after x[:, T-1] (tensorflow#40345): flipped back here.
    Its inputs' gradients (dx, and the probes' dL/dh_t, dL/dc_t: the probes are inputs beside
    x) are already indexed by the original t, and its final state is the one after x[:, 0]."""
    return tf.reverse(seq, axis=[1]) if backwards else seq


def _signature(tf, dtype, T, D, H):
    return [
        tf.TensorSpec((None, T, D), dtype),  # x
        tf.TensorSpec((None, H), dtype),  # h0
        tf.TensorSpec((None, H), dtype),  # c0
        tf.TensorSpec((None, T, H), dtype),  # gh
        tf.TensorSpec((None, H), dtype),  # gc
    ]


def probed_lstm_cell(keras, tf):
    """``keras.layers.LSTMCell`` with zero "probes" added to each step's c_t and h_t.

    The step's inputs are [x_t, e_h, e_c]; the cell is Keras' own, except that the c_t its
    fused step returns becomes c_t + e_c before h_t = o_t * tanh(c_t) is taken from it, and
    the h_t it returns becomes h_t + e_h. With the probes zero nothing changes, and the
    gradient of the loss with respect to e_c (e_h) at step t is the total dL/dc_t (dL/dh_t),
    every path included. The output is [h_t, c_t], so one ``keras.layers.RNN`` loop (traced
    once, whatever T) gives the states and, through its inputs, the per-step deltas.
    """
    class ProbedLSTMCell(keras.layers.LSTMCell):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)
            self.output_size = 2 * units
            self._probe_c = None

        def build(self, input_shape):
            super().build((input_shape[0], input_shape[-1] - 2 * self.units))

        def call(self, inputs, states, training=False):
            H = self.units
            D = inputs.shape[-1] - 2 * H
            x, e_h, self._probe_c = inputs[:, :D], inputs[:, D:D + H], inputs[:, D + H:]
            h, (_, c) = super().call(x, states, training=training)
            h = h + e_h
            return tf.concat([h, c], axis=-1), [h, c]

        def _compute_carry_and_output_fused(self, z, c_tm1):
            c, o = super()._compute_carry_and_output_fused(z, c_tm1)
            return c + self._probe_c, o

    return ProbedLSTMCell


def zero_probes(tf, x, width):
    """Zeros (B, T, width) beside x: the probes, fed as extra per-step inputs."""
    return tf.zeros(tf.concat([tf.shape(x)[:2], [width]], 0), x.dtype)


# --- models with one state h (SimpleRNN, GRU): the same probe and the same traced functions ---


def one_state_signature(tf, dtype, D, H):
    return [
        tf.TensorSpec((None, None, D), dtype),  # x
        tf.TensorSpec((None, H), dtype),  # h0
        tf.TensorSpec((None, None, H), dtype),  # gh
    ]


def probed_one_state_cell(base):
    """``base`` (a Keras cell class whose only state is h: SimpleRNNCell, GRUCell) with a zero
    probe added to each step's h_t, its output and new state: the gradient of the loss with
    respect to the probe, fed as an extra per-step input, is the total dL/dh_t (see
    ``probed_lstm_cell``)."""
    class Probed(base):
        def build(self, input_shape):
            super().build((input_shape[0], input_shape[-1] - self.units))

        def call(self, inputs, states, training=False):
            D = inputs.shape[-1] - self.units
            h, _ = super().call(inputs[:, :D], states, training=training)
            h = h + inputs[:, D:]
            return h, [h]

    Probed.__name__ = f"Probed{base.__name__}"
    return Probed


def one_state_cell_fn(tf, cell, rnn, dtype, D, H, backwards):
    """The traced (x, h0, gh) -> (h, [weight grads, dx, dh0], dh) of a probed one-state cell
    (``probed_one_state_cell``) in the ``keras.layers.RNN`` loop ``rnn``."""
    @tf.function(input_signature=one_state_signature(tf, dtype, D, H))
    def fn(x, h0, gh):
        probes = zero_probes(tf, x, H)
        with tf.GradientTape() as tape:
            tape.watch([x, h0, probes])
            seq = in_time_order(tf, rnn(tf.concat([x, probes], -1), initial_state=[h0]), backwards)
            loss = tf.reduce_sum(gh * seq)
        grads = tape.gradient(loss, weights(cell) + [x, h0, probes])
        return seq, grads[:-1], grads[-1]

    return fn


def one_state_layer_fn(tf, layer, dtype, D, H, backwards):
    """The traced (x, h0, gh) -> (h, [weight grads, dx, dh0]) of a whole-sequence one-state layer."""
    @tf.function(input_signature=one_state_signature(tf, dtype, D, H))
    def fn(x, h0, gh):
        with tf.GradientTape() as tape:
            tape.watch([x, h0])
            seq = in_time_order(tf, layer(x, initial_state=[h0]), backwards)
            loss = tf.reduce_sum(gh * seq)
        return seq, tape.gradient(loss, weights(layer.cell) + [x, h0])

    return fn


def _probed_lstm(D, H, dtype, bias=True, backwards=False):
    """A probed LSTMCell in a ``keras.layers.RNN`` loop, built for inputs [x, e_h, e_c]."""
    tf, keras = import_keras()
    cell = probed_lstm_cell(keras, tf)(H, dtype=dtype, use_bias=bias, **_ACTIVATIONS)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + 2 * H))
    return tf, keras, cell, rnn


def _build_cell(D, H, dtype, bias=True, backwards=False):
    tf, _, cell, rnn = _probed_lstm(D, H, dtype, bias, backwards)

    @tf.function(input_signature=_signature(tf, dtype, None, D, H))
    def fn(x, h0, c0, gh, gc):
        probes = zero_probes(tf, x, 2 * H)
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0, probes])
            seq, _, c_last = rnn(tf.concat([x, probes], -1), initial_state=[h0, c0])
            seq = in_time_order(tf, seq, backwards)
            h, c = seq[..., :H], seq[..., H:]
            loss = tf.reduce_sum(gh * h) + tf.reduce_sum(gc * c_last)
        grads = tape.gradient(loss, weights(cell) + [x, h0, c0, probes])
        return h, c, grads[:-1], grads[-1][..., :H], grads[-1][..., H:]

    return cell, fn


def run_cell(inputs, options=()):
    x = inputs["x"]
    cell, fn = built(_build_cell, x.shape[2], inputs["h0"].shape[1], x.dtype.name, use_bias(options),
                     go_backwards(options))
    assign(cell, inputs)
    h, c, grads, dh, dc = fn(x, inputs["h0"], inputs["c0"], inputs["gh"], inputs["gc"])
    params, (dx, dh0, dc0) = weight_grads(grads, cell)
    out = dict(h=h.numpy(), c=c.numpy(), dh=dh.numpy(), dc=dc.numpy())
    out.update(dx=dx.numpy(), dh0=dh0.numpy(), dc0=dc0.numpy())
    out.update(params)
    return out


def no_cudnn(keras):
    """The layer argument that keeps cuDNN off: Keras 3 picks cuDNN only on a GPU and says so
    with use_cudnn; Keras 2 has no such argument."""
    return {"use_cudnn": False} if int(keras.__version__.split(".")[0]) >= 3 else {}


def _build_layer(D, H, dtype, bias=True, backwards=False):
    tf, keras = import_keras()
    layer = keras.layers.LSTM(
        H, return_sequences=True, return_state=True, go_backwards=backwards, dtype=dtype, use_bias=bias,
        **_ACTIVATIONS, **no_cudnn(keras)
    )
    layer.build((None, None, D))

    @tf.function(input_signature=_signature(tf, dtype, None, D, H))
    def fn(x, h0, c0, gh, gc):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            seq, _, c_last = layer(x, initial_state=[h0, c0])
            seq = in_time_order(tf, seq, backwards)
            loss = tf.reduce_sum(gh * seq) + tf.reduce_sum(gc * c_last)
        cell = layer.cell
        grads = tape.gradient(loss, weights(cell) + [x, h0, c0])
        return seq, c_last, grads

    return layer, fn


def run_layer(inputs, options=()):
    x = inputs["x"]
    layer, fn = built(_build_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name, use_bias(options),
                      go_backwards(options))
    assign(layer.cell, inputs)
    seq, c_last, grads = fn(x, inputs["h0"], inputs["c0"], inputs["gh"], inputs["gc"])
    params, (dx, dh0, dc0) = weight_grads(grads, layer.cell)
    out = dict(h=seq.numpy(), cT=c_last.numpy(), dx=dx.numpy(), dh0=dh0.numpy(), dc0=dc0.numpy())
    out.update(params)
    return out


_WHOLE_SEQUENCE_BLIND = {
    "c": "only C_T is returned (return_state); c_t for t < T stays inside the layer's loop",
    "dh": "dL/dh_t includes paths inside the layer's loop; only the upstream part is an input",
    "dc": "c_t for t < T is not an output of the layer, so dL/dc_t cannot be taken",
}

# The LSTM's structure (Bidirectional with every merge mode, two layers: gatecheck.oracles.structured).
MODEL = structured.Model(states=("h0", "c0"), finals={"cT": (1, "gc")},
                         observes=("cT", "dh0", "dc0", "dW", "dU", "db"), keras_layer="LSTM",
                         keras_kwargs=_ACTIVATIONS, keras_assign=assign, keras_grads=weight_grads)
STRUCTURES = frozenset({"bi", "bisum", "bimul", "biave", "binone", "L2", "len", "mask", "maskz"})


def observed_layer(model):
    """What a Keras layer oracle returns under structural options: the directions apart only where
    Bidirectional returns them apart (concat, and merge_mode=None's pair)."""
    from gatecheck.options import merge

    return lambda options: structured.observed(model, options, merged_apart=merge(options) in ("concat", "none"))


KERAS_CELL = Oracle(
    name="keras-cell",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTMCell with zero probes on c_t and h_t, in keras.layers.RNN under tf.GradientTape",
    observes=("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db"),
    runner=run_cell,
    trace_ms=330,
    options=frozenset({"nobias", "rev"}),
)

KERAS_LAYER = Oracle(
    name="keras-layer",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTM whole sequence (return_sequences, return_state)",
    observes=("h", "cT", "dx", "dh0", "dc0", "dW", "dU", "db"),
    cannot_observe=dict(_WHOLE_SEQUENCE_BLIND),
    runner=structured.keras_runner(MODEL, run_layer),
    trace_ms=240,
    options=frozenset({"nobias", "rev"}) | STRUCTURES,
    observes_structured=observed_layer(MODEL),
    declines=structured.declines_keras,
)


# --- the softmax / cross-entropy head (gatecheck/reference/head.py) ---------------------------


def _build_cell_head(D, H, K, dtype):
    tf, keras, cell, rnn = _probed_lstm(D, H, dtype)
    dense = keras.layers.Dense(K, dtype=dtype)
    dense.build((None, H))
    spec = _signature(tf, dtype, None, D, H)[:3] + [tf.TensorSpec((None, None, K), dtype)]

    @tf.function(input_signature=spec)
    def fn(x, h0, c0, y):
        probes = zero_probes(tf, x, 2 * H)
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0, probes])
            seq, _, _ = rnn(tf.concat([x, probes], -1), initial_state=[h0, c0])
            h, c = seq[..., :H], seq[..., H:]
            logits = dense(h)
            loss = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=logits))
        grads = tape.gradient(loss, [cell.kernel, cell.recurrent_kernel, cell.bias, dense.kernel, dense.bias, x, h0,
                                     c0, probes])
        return h, c, tf.nn.softmax(logits), loss, grads[:-1], grads[-1][..., :H], grads[-1][..., H:]

    return cell, dense, fn


def run_cell_head(inputs):
    x = inputs["x"]
    cell, dense, fn = built(_build_cell_head, x.shape[2], inputs["h0"].shape[1], inputs["V"].shape[1], x.dtype.name)
    assign(cell, inputs)
    dense.kernel.assign(inputs["V"])
    dense.bias.assign(inputs["cb"])
    h, c, p, loss, (dk, drk, dbias, dV, dcb, dx, dh0, dc0), dh, dc = fn(x, inputs["h0"], inputs["c0"], inputs["y"])
    out = {k: t.numpy() for k, t in dict(h=h, c=c, p=p, dh=dh, dc=dc, dx=dx, dh0=dh0, dc0=dc0, dV=dV, dcb=dcb).items()}
    out["loss"] = loss.numpy()
    out.update(grads_to_canonical(dk, drk, dbias))
    return out


KERAS_CELL_HEAD = Oracle(
    name="keras-cell-head",
    family="lstm-head",
    framework="keras",
    description="keras.layers.LSTMCell (probed, in keras.layers.RNN) + Dense + softmax cross-entropy per step",
    observes=("h", "c", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
    runner=run_cell_head,
    trace_ms=360,
)

ORACLES = (KERAS_CELL, KERAS_LAYER, KERAS_CELL_HEAD)
