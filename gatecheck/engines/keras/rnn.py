"""Vanilla-RNN oracles of Keras (PyTorch's: gatecheck.engines.torch.rnn); tanh, or relu under the ``relu``
option (``activation="relu"``).

keras-rnn-cell   Keras' own ``keras.layers.SimpleRNNCell`` driven by ``keras.layers.RNN`` (the
                 backend's loop; gradients: gatecheck.engines.keras.backends), with a zero
                 probe added to each step's h_t, its output and new state: the gradient of
                 the loss with respect to the probe is the total delta dL/dh_t.
keras-rnn-layer  ``keras.layers.SimpleRNN(return_sequences=True)`` from ``initial_state=[h0]``.

Each runner takes the canonical inputs (x, h0, W, U, b, gh) and returns canonical-layout
arrays in the inputs' dtype (remaps: ``gatecheck.engines.keras.rnn_layout``).
"""

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_keras
from gatecheck.engines.keras import backends as keras_backends
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import rnn_layout
from gatecheck.model import options as opts

# --- Keras ---------------------------------------------------------------------------

def _keras_assign(cell, inputs):
    keras_common.assign(cell, inputs, rnn_layout.to_keras)


def _keras_grads(grads, cell):
    return keras_common.weight_grads(grads, cell, rnn_layout.grads_from_keras)


def _probed_keras_cell(keras, ops):
    return keras_common.probed_one_state_cell(keras.layers.SimpleRNNCell)


def activation(options):
    """Keras' ``activation`` argument of a case's options (gatecheck.model.options)."""
    return opts.activation(options) or "tanh"


def _build_keras_cell(D, H, dtype, bias=True, backwards=False, activation="tanh"):
    _, keras = import_keras()
    cell = _probed_keras_cell(keras, None)(H, activation=activation, dtype=dtype, use_bias=bias)
    rnn = keras.layers.RNN(cell, return_sequences=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + H))
    return cell, keras_common.one_state_cell_fn(cell, rnn, dtype, D, H, backwards)


def run_keras_cell(inputs, options=()):
    x = inputs["x"]
    cell, fn = keras_common.built(_build_keras_cell, x.shape[2], inputs["h0"].shape[1], x.dtype.name,
                                  keras_common.use_bias(options), keras_common.go_backwards(options),
                                  activation(options))
    _keras_assign(cell, inputs)
    (seq,), grads, (dx, dh, dh0) = fn(x, keras_common.zero_probes(x, inputs["h0"].shape[1]), inputs["h0"], inputs["gh"])
    params, _ = _keras_grads(grads, cell)
    out = dict(h=seq, dh=dh, dx=dx, dh0=dh0)
    out.update(params)
    return out


def _build_keras_layer(D, H, dtype, bias=True, backwards=False, activation="tanh"):
    _, keras = import_keras()
    layer = keras.layers.SimpleRNN(H, activation=activation, return_sequences=True, go_backwards=backwards, dtype=dtype,
                                   use_bias=bias)
    layer.build((None, None, D))
    return layer, keras_common.one_state_layer_fn(layer, dtype, D, H, backwards)


def run_keras_layer(inputs, options=()):
    x = inputs["x"]
    layer, fn = keras_common.built(_build_keras_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name,
                                   keras_common.use_bias(options), keras_common.go_backwards(options),
                                   activation(options))
    _keras_assign(layer.cell, inputs)
    (seq,), grads, (dx, dh0) = fn(x, inputs["h0"], inputs["gh"])
    params, _ = _keras_grads(grads, layer.cell)
    out = dict(h=seq, dx=dx, dh0=dh0)
    out.update(params)
    return out


# --- PyTorch -------------------------------------------------------------------------


# --- the module's oracles ------------------------------------------------------------------------

_PARAMS = ("dW", "dU", "db")

# The RNN's structure (bidirectional, two layers: gatecheck.engines.structured); its one state has no
# upstream of its own (h_T is the output's last step).
KERAS_MODEL = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS, keras_layer="SimpleRNN",
                               keras_kwargs=dict(activation="tanh"), keras_assign=_keras_assign,
                               keras_grads=_keras_grads)
KERAS_MODEL = KERAS_MODEL._replace(own={"relu": KERAS_MODEL._replace(keras_kwargs=dict(activation="relu"))})

KERAS_RNN_CELL = Oracle(
    name="keras-rnn-cell",
    family="rnn",
    framework="keras",
    description="keras.layers.SimpleRNNCell with a zero probe on h_t, in keras.layers.RNN (gradients: keras_backends)",
    observes=("h", "dh", "dx", "dh0") + _PARAMS,
    runner=keras_common.probed_runner(KERAS_MODEL, _probed_keras_cell, run_keras_cell),
    trace_ms=210,
    declines_dtype=keras_backends.dtype_declines(),
    options=frozenset({"nobias", "rev", "relu"}) | keras_common.STRUCTURES,
    observes_structured=keras_common.observed_cell(KERAS_MODEL),
)

KERAS_RNN_LAYER = Oracle(
    name="keras-rnn-layer",
    family="rnn",
    framework="keras",
    description="keras.layers.SimpleRNN whole sequence (return_sequences, initial_state=[h0])",
    observes=("h", "dx", "dh0") + _PARAMS,
    cannot_observe={
        "dh": "dL/dh_t includes the path into step t+1, inside the layer's while loop; "
              "only the upstream part is an input",
    },
    runner=keras_common.keras_runner(KERAS_MODEL, run_keras_layer),
    trace_ms=160,
    declines_dtype=keras_backends.dtype_declines(),
    options=frozenset({"nobias", "rev", "relu"}) | keras_common.STRUCTURES | keras_common.MASKED,
    observes_structured=keras_common.observed_layer(KERAS_MODEL),
    declines=keras_common.declines_keras,
)


ORACLES = (KERAS_RNN_CELL, KERAS_RNN_LAYER)
