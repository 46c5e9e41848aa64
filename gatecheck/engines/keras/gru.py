"""GRU oracles, both reset conventions, one section per engine.

keras-gru-cell[-before]   Keras' own ``keras.layers.GRUCell`` (``reset_after=True``, or
                          ``False`` for the reset-before family) driven by
                          ``keras.layers.RNN`` (the backend's loop; gradients:
                          gatecheck.engines.keras.backends), with a zero probe added to each
                          step's h_t, its output and new state: the gradient of the loss
                          with respect to the probe is the total delta dL/dh_t. Built once
                          per (D, H, dtype, options).
keras-gru-layer[-before]  ``keras.layers.GRU(return_sequences=True)`` from ``initial_state=[h0]``.
torch-gru-cell            ``torch.nn.GRUCell`` unrolled; every h_t keeps its gradient
                          (``retain_grad``), the total delta dL/dh_t.
torch-gru-layer           ``torch.nn.GRU(batch_first=True)``: the fused kernel.

PyTorch computes the reset-after GRU only (``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
torch/nn/modules/rnn.py); it has no reset-before option, so the ``gru-reset-before`` family
has no PyTorch oracle rather than a fake one. The activations are stated, not left to a
version's defaults (gatecheck/engines/keras/versions.py records Keras' GRU defaults). Every
runner takes the canonical inputs (x, h0, W, U, bx, bh, gh) and returns canonical-layout
arrays in the inputs' dtype (remaps: ``gatecheck.engines.keras.gru_layout``). The references
themselves are registered here too (framework "numpy"): the truth ``verify`` and the
diagnosis use.
"""

import functools

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_keras
from gatecheck.engines.keras import backends as keras_backends
from gatecheck.engines.keras import common as keras_common
from gatecheck.engines.keras import gru_layout

_ACTIVATIONS = dict(activation="tanh", recurrent_activation="sigmoid")

# --- Keras ---------------------------------------------------------------------------


def _assign(cell, inputs, reset_after):
    keras_common.assign(cell, inputs, functools.partial(gru_layout.to_keras, reset_after=reset_after))


def _grads(grads, cell):
    return keras_common.weight_grads(grads, cell, gru_layout.grads_from_keras)


def _probed_keras_cell(keras, ops):
    return keras_common.probed_one_state_cell(keras.layers.GRUCell)


def _build_keras_cell(D, H, dtype, reset_after, bias=True, backwards=False, activation="tanh",
                      recurrent_activation="sigmoid"):
    _, keras = import_keras()
    cell = _probed_keras_cell(keras, None)(H, reset_after=reset_after, dtype=dtype, use_bias=bias,
                                           activation=activation, recurrent_activation=recurrent_activation)
    rnn = keras.layers.RNN(cell, return_sequences=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + H))
    return cell, keras_common.one_state_cell_fn(cell, rnn, dtype, D, H, backwards)


def _run_keras_cell(inputs, reset_after, options=()):
    x = inputs["x"]
    cell, fn = keras_common.built(_build_keras_cell, x.shape[2], inputs["h0"].shape[1], x.dtype.name, reset_after,
                                  keras_common.use_bias(options), keras_common.go_backwards(options),
                                  *keras_common.activation_kwargs(options).values())
    _assign(cell, inputs, reset_after)
    (seq,), grads, (dx, dh, dh0) = fn(x, keras_common.zero_probes(x, inputs["h0"].shape[1]), inputs["h0"], inputs["gh"])
    params, _ = _grads(grads, cell)
    out = dict(h=seq, dh=dh, dx=dx, dh0=dh0)
    out.update(params)
    return out


def _build_keras_layer(D, H, dtype, reset_after, bias=True, backwards=False, activation="tanh",
                       recurrent_activation="sigmoid"):
    _, keras = import_keras()
    layer = keras.layers.GRU(H, reset_after=reset_after, return_sequences=True, go_backwards=backwards, dtype=dtype,
                             use_bias=bias, activation=activation, recurrent_activation=recurrent_activation,
                             **keras_backends.layer_kwargs(keras))
    layer.build((None, None, D))
    return layer, keras_common.one_state_layer_fn(layer, dtype, D, H, backwards)


def _run_keras_layer(inputs, reset_after, options=()):
    x = inputs["x"]
    layer, fn = keras_common.built(_build_keras_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name, reset_after,
                                   keras_common.use_bias(options), keras_common.go_backwards(options),
                                   *keras_common.activation_kwargs(options).values())
    _assign(layer.cell, inputs, reset_after)
    (seq,), grads, (dx, dh0) = fn(x, inputs["h0"], inputs["gh"])
    params, _ = _grads(grads, layer.cell)
    out = dict(h=seq, dx=dx, dh0=dh0)
    out.update(params)
    return out


# --- PyTorch (reset-after only) --------------------------------------------------------


# --- the module's oracles ------------------------------------------------------------------------

_PARAMS = ("dW", "dU", "dbx", "dbh")
_ALL = ("h", "dh", "dx", "dh0") + _PARAMS
_LAYER_BLIND = "dL/dh_t includes the path into step t+1, inside the layer's loop; only the upstream part is an input"
_MERGED = "; its single bias is bx + bh (dbx = dbh = its gradient)"


def _keras_model(reset_after):
    """The GRU's structure in Keras (gatecheck.engines.structured): one state, no upstream of its own."""
    model = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS, keras_layer="GRU",
                             keras_kwargs=dict(reset_after=reset_after, **_ACTIVATIONS),
                             keras_assign=functools.partial(_assign, reset_after=reset_after), keras_grads=_grads)
    return model._replace(own=keras_common.own_activations(model))


KERAS_MODELS = {True: _keras_model(True), False: _keras_model(False)}


def _keras(name, family, kind, reset_after):
    whole = kind == "layer"
    what = ("keras.layers.GRU whole sequence (return_sequences, initial_state=[h0])" if whole else
            "keras.layers.GRUCell with a zero probe on h_t, in keras.layers.RNN (gradients: keras_backends)")
    run = _run_keras_layer if whole else _run_keras_cell
    model = KERAS_MODELS[reset_after]
    base = lambda inputs, options=(): run(inputs, reset_after, options)  # noqa: E731
    return Oracle(name, family, "keras", f"{what}, reset_after={reset_after}" + ("" if reset_after else _MERGED),
                  observes=tuple(q for q in _ALL if not (whole and q == "dh")),
                  cannot_observe={"dh": _LAYER_BLIND} if whole else {},
                  runner=keras_common.keras_runner(model, base) if whole
                  else keras_common.probed_runner(model, _probed_keras_cell, base),
                  trace_ms=300 if whole else 350,  # benchmarks/trace_cost.py: 290-310 and 350-355 ms
                  options=frozenset({"nobias", "rev", *model.own}) | keras_common.STRUCTURES
                  | (keras_common.MASKED if whole else frozenset()),
                  observes_structured=(keras_common.observed_layer if whole else keras_common.observed_cell)(model),
                  declines=keras_common.declines_keras if whole else keras_common.declines_activation,
                  # reset-after GRU layers run a backend's own loop, the others a GRUCell's call per step
                  declines_dtype=keras_backends.dtype_declines(
                      steps_a_cell=not (whole and reset_after),
                      layer=functools.partial(keras_backends.declines_layer_dtype, gru=True) if whole and reset_after
                      else None))


ORACLES = (
    _keras("keras-gru-cell", "gru", "cell", True),
    _keras("keras-gru-layer", "gru", "layer", True),
    _keras("keras-gru-cell-before", "gru-reset-before", "cell", False),
    _keras("keras-gru-layer-before", "gru-reset-before", "layer", False),
)
