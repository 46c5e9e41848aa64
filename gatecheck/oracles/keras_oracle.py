"""Keras (TensorFlow backend) oracles.

keras-cell   ``keras.layers.LSTMCell`` unrolled step by step inside one ``tf.function``
             under ``GradientTape``; the per-step states h_t, c_t are the cell's own
             output tensors and the tape differentiates the loss with respect to them,
             which gives the total deltas dL/dh_t and dL/dc_t.
keras-layer  ``keras.layers.LSTM(return_sequences=True, return_state=True)``: the
             whole-sequence layer (the backend's while-loop RNN; cuDNN is off).

Each is traced once per (shape, dtype) and reused.
"""

from gatecheck.oracles import layout
from gatecheck.oracles.frameworks import import_keras
from gatecheck.oracles.base import Oracle

_cache = {}
# The canonical LSTM's activations, stated rather than left to a version's defaults (Keras
# before 2.3 defaulted recurrent_activation to hard_sigmoid; see gatecheck/oracles/versions.py).
_ACTIVATIONS = dict(activation="tanh", recurrent_activation="sigmoid")


def assign(cell, inputs, remap=layout.to_keras):
    """Canonical weights into a Keras cell (``remap``: the model's canonical -> Keras map)."""
    weights = remap(inputs)
    cell.kernel.assign(weights["kernel"])
    cell.recurrent_kernel.assign(weights["recurrent_kernel"])
    cell.bias.assign(weights["bias"])


def grads_to_canonical(dk, drk, dbias, back=layout.grads_from_keras):
    return back(
        {"kernel": dk.numpy(), "recurrent_kernel": drk.numpy(), "bias": dbias.numpy()}
    )


def _signature(tf, dtype, T, D, H):
    return [
        tf.TensorSpec((None, T, D), dtype),  # x
        tf.TensorSpec((None, H), dtype),  # h0
        tf.TensorSpec((None, H), dtype),  # c0
        tf.TensorSpec((None, T, H), dtype),  # gh
        tf.TensorSpec((None, H), dtype),  # gc
    ]


def _build_cell(T, D, H, dtype):
    tf, keras = import_keras()
    cell = keras.layers.LSTMCell(H, dtype=dtype, **_ACTIVATIONS)
    cell.build((None, D))

    @tf.function(input_signature=_signature(tf, dtype, T, D, H))
    def fn(x, h0, c0, gh, gc):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            h, c = h0, c0
            hs, cs = [], []
            for t in range(T):
                _, (h, c) = cell(x[:, t], [h, c])
                hs.append(h)
                cs.append(c)
            loss = tf.reduce_sum(gh * tf.stack(hs, axis=1)) + tf.reduce_sum(gc * cs[-1])
        wrt = [cell.kernel, cell.recurrent_kernel, cell.bias, x, h0, c0]
        grads = tape.gradient(loss, wrt + hs + cs)
        n = len(wrt)
        dh, dc = tf.stack(grads[n : n + T], 1), tf.stack(grads[n + T :], 1)
        return tf.stack(hs, 1), tf.stack(cs, 1), grads[:n], dh, dc

    return cell, fn


def run_cell(inputs):
    x = inputs["x"]
    (_, T, D), H = x.shape, inputs["h0"].shape[1]
    key = ("cell", T, D, H, x.dtype.name)
    if key not in _cache:
        _cache[key] = _build_cell(T, D, H, x.dtype.name)
    cell, fn = _cache[key]
    assign(cell, inputs)
    h, c, (dk, drk, dbias, dx, dh0, dc0), dh, dc = fn(
        x, inputs["h0"], inputs["c0"], inputs["gh"], inputs["gc"]
    )
    out = dict(h=h.numpy(), c=c.numpy(), dh=dh.numpy(), dc=dc.numpy())
    out.update(dx=dx.numpy(), dh0=dh0.numpy(), dc0=dc0.numpy())
    out.update(grads_to_canonical(dk, drk, dbias))
    return out


def _build_layer(D, H, dtype):
    tf, keras = import_keras()
    # Keras 3 picks cuDNN only on a GPU and says so with use_cudnn; Keras 2 has no such argument.
    no_cudnn = {"use_cudnn": False} if int(keras.__version__.split(".")[0]) >= 3 else {}
    layer = keras.layers.LSTM(
        H, return_sequences=True, return_state=True, dtype=dtype, **_ACTIVATIONS, **no_cudnn
    )
    layer.build((None, None, D))

    @tf.function(input_signature=_signature(tf, dtype, None, D, H))
    def fn(x, h0, c0, gh, gc):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            seq, _, c_last = layer(x, initial_state=[h0, c0])
            loss = tf.reduce_sum(gh * seq) + tf.reduce_sum(gc * c_last)
        cell = layer.cell
        grads = tape.gradient(loss, [cell.kernel, cell.recurrent_kernel, cell.bias, x, h0, c0])
        return seq, c_last, grads

    return layer, fn


def run_layer(inputs):
    x = inputs["x"]
    D, H = x.shape[2], inputs["h0"].shape[1]
    key = ("layer", D, H, x.dtype.name)
    if key not in _cache:
        _cache[key] = _build_layer(D, H, x.dtype.name)
    layer, fn = _cache[key]
    assign(layer.cell, inputs)
    seq, c_last, (dk, drk, dbias, dx, dh0, dc0) = fn(
        x, inputs["h0"], inputs["c0"], inputs["gh"], inputs["gc"]
    )
    out = dict(h=seq.numpy(), cT=c_last.numpy(), dx=dx.numpy(), dh0=dh0.numpy(), dc0=dc0.numpy())
    out.update(grads_to_canonical(dk, drk, dbias))
    return out


_WHOLE_SEQUENCE_BLIND = {
    "c": "only C_T is returned (return_state); c_t for t < T stays inside the layer's loop",
    "dh": "dL/dh_t includes paths inside the layer's loop; only the upstream part is an input",
    "dc": "c_t for t < T is not an output of the layer, so dL/dc_t cannot be taken",
}

KERAS_CELL = Oracle(
    name="keras-cell",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTMCell unrolled under tf.GradientTape (tf.function)",
    observes=("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db"),
    runner=run_cell,
    trace_ms_per_step=130,  # measured on the nightly profile (benchmarks/README.md)
)

KERAS_LAYER = Oracle(
    name="keras-layer",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTM whole sequence (return_sequences, return_state)",
    observes=("h", "cT", "dx", "dh0", "dc0", "dW", "dU", "db"),
    cannot_observe=dict(_WHOLE_SEQUENCE_BLIND),
    runner=run_layer,
)


# --- the softmax / cross-entropy head (gatecheck/reference/head.py) ---------------------------


def _build_cell_head(T, D, H, K, dtype):
    tf, keras = import_keras()
    cell = keras.layers.LSTMCell(H, dtype=dtype, **_ACTIVATIONS)
    cell.build((None, D))
    dense = keras.layers.Dense(K, dtype=dtype)
    dense.build((None, H))
    spec = _signature(tf, dtype, T, D, H)[:3] + [tf.TensorSpec((None, T, K), dtype)]

    @tf.function(input_signature=spec)
    def fn(x, h0, c0, y):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            h, c = h0, c0
            hs, cs, ps, losses = [], [], [], []
            for t in range(T):
                _, (h, c) = cell(x[:, t], [h, c])
                hs.append(h)
                cs.append(c)
                logits = dense(h)
                ps.append(tf.nn.softmax(logits))
                losses.append(tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(labels=y[:, t], logits=logits)))
            loss = tf.add_n(losses)
        wrt = [cell.kernel, cell.recurrent_kernel, cell.bias, dense.kernel, dense.bias, x, h0, c0]
        grads = tape.gradient(loss, wrt + hs + cs)
        n = len(wrt)
        return (tf.stack(hs, 1), tf.stack(cs, 1), tf.stack(ps, 1), loss, grads[:n],
                tf.stack(grads[n : n + T], 1), tf.stack(grads[n + T :], 1))

    return cell, dense, fn


def run_cell_head(inputs):
    x = inputs["x"]
    (_, T, D), H, K = x.shape, inputs["h0"].shape[1], inputs["V"].shape[1]
    key = ("cell-head", T, D, H, K, x.dtype.name)
    if key not in _cache:
        _cache[key] = _build_cell_head(T, D, H, K, x.dtype.name)
    cell, dense, fn = _cache[key]
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
    description="keras.layers.LSTMCell + Dense + softmax cross-entropy per step, unrolled under tf.GradientTape",
    observes=("h", "c", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
    runner=run_cell_head,
    trace_ms_per_step=130,  # unrolled like keras-cell; not measured on its own
)

ORACLES = (KERAS_CELL, KERAS_LAYER, KERAS_CELL_HEAD)
