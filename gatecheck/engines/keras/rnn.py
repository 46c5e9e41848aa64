"""Vanilla-RNN (tanh) oracles, one section per framework.

keras-rnn-cell   Keras' own ``keras.layers.SimpleRNNCell`` driven by ``keras.layers.RNN`` (the
                 backend's loop; gradients: gatecheck.engines.keras.backends), with a zero
                 probe added to each step's h_t, its output and new state: the gradient of
                 the loss with respect to the probe is the total delta dL/dh_t.
keras-rnn-layer  ``keras.layers.SimpleRNN(return_sequences=True)`` from ``initial_state=[h0]``.
torch-rnn-cell   ``torch.nn.RNNCell(nonlinearity="tanh")`` unrolled; every h_t keeps its
                 gradient (``retain_grad``), which is the total delta dL/dh_t.
torch-rnn-layer  ``torch.nn.RNN(batch_first=True, nonlinearity="tanh")``: the fused kernel.

Each runner takes the canonical inputs (x, h0, W, U, b, gh) and returns canonical-layout
arrays in the inputs' dtype. Bias: canonical b is split as bias_ih = bias_hh = b / 2 for
PyTorch (see ``gatecheck.engines.keras.rnn_layout``).
"""

from gatecheck.engines.keras import backends as keras_backends, lstm as keras_oracle, rnn_layout
from gatecheck.engines import structured
from gatecheck.engines.torch import lstm as torch_oracle
from gatecheck.engines.frameworks import import_keras, import_torch
from gatecheck.engines.base import Oracle

# --- Keras ---------------------------------------------------------------------------

def _keras_assign(cell, inputs):
    keras_oracle.assign(cell, inputs, rnn_layout.to_keras)


def _keras_grads(grads, cell):
    return keras_oracle.weight_grads(grads, cell, rnn_layout.grads_from_keras)


def _probed_keras_cell(keras, ops):
    return keras_oracle.probed_one_state_cell(keras.layers.SimpleRNNCell)


def _build_keras_cell(D, H, dtype, bias=True, backwards=False):
    _, keras = import_keras()
    cell = _probed_keras_cell(keras, None)(H, activation="tanh", dtype=dtype, use_bias=bias)
    rnn = keras.layers.RNN(cell, return_sequences=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + H))
    return cell, keras_oracle.one_state_cell_fn(cell, rnn, dtype, D, H, backwards)


def run_keras_cell(inputs, options=()):
    x = inputs["x"]
    cell, fn = keras_oracle.built(_build_keras_cell, x.shape[2], inputs["h0"].shape[1], x.dtype.name,
                                  keras_oracle.use_bias(options), keras_oracle.go_backwards(options))
    _keras_assign(cell, inputs)
    (seq,), grads, (dx, dh, dh0) = fn(x, keras_oracle.zero_probes(x, inputs["h0"].shape[1]), inputs["h0"], inputs["gh"])
    params, _ = _keras_grads(grads, cell)
    out = dict(h=seq, dh=dh, dx=dx, dh0=dh0)
    out.update(params)
    return out


def _build_keras_layer(D, H, dtype, bias=True, backwards=False):
    _, keras = import_keras()
    layer = keras.layers.SimpleRNN(H, activation="tanh", return_sequences=True, go_backwards=backwards, dtype=dtype,
                                   use_bias=bias)
    layer.build((None, None, D))
    return layer, keras_oracle.one_state_layer_fn(layer, dtype, D, H, backwards)


def run_keras_layer(inputs, options=()):
    x = inputs["x"]
    layer, fn = keras_oracle.built(_build_keras_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name,
                                   keras_oracle.use_bias(options), keras_oracle.go_backwards(options))
    _keras_assign(layer.cell, inputs)
    (seq,), grads, (dx, dh0) = fn(x, inputs["h0"], inputs["gh"])
    params, _ = _keras_grads(grads, layer.cell)
    out = dict(h=seq, dx=dx, dh0=dh0)
    out.update(params)
    return out


# --- PyTorch -------------------------------------------------------------------------


def _torch_load(module, inputs, suffix):
    torch_oracle.load(module, inputs, suffix, rnn_layout.to_torch)


def _torch_param_grads(module, suffix):
    return torch_oracle.param_grads(module, suffix, rnn_layout.grads_from_torch)


def _torch_leaves(torch, inputs):
    return torch_oracle.leaves(torch, inputs, states=("h0",), upstream=("gh",))


def run_torch_cell(inputs, options=()):
    torch = import_torch()
    _, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    cell = torch.nn.RNNCell(D, H, nonlinearity="tanh", dtype=dtype, bias=torch_oracle.bias(options))
    _torch_load(cell, inputs, "")
    t = _torch_leaves(torch, inputs)
    h = t["h0"]
    hs = []
    for step in range(T):
        h = cell(t["x"][:, step], h)
        h.retain_grad()
        hs.append(h)
    seq = torch.stack(hs, 1)
    (t["gh"] * seq).sum().backward()
    out = dict(
        h=seq.detach().numpy(),
        dh=torch.stack([v.grad for v in hs], 1).numpy(),
        dx=t["x"].grad.numpy(),
        dh0=t["h0"].grad.numpy(),
    )
    out.update(_torch_param_grads(cell, ""))
    return out


def run_torch_layer(inputs, options=()):
    torch = import_torch()
    D, H = inputs["x"].shape[2], inputs["h0"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    rnn = torch.nn.RNN(D, H, num_layers=1, nonlinearity="tanh", batch_first=True, dtype=dtype,
                       bias=torch_oracle.bias(options))
    _torch_load(rnn, inputs, "_l0")
    t = _torch_leaves(torch, inputs)
    seq, _ = rnn(t["x"], t["h0"][None])
    (t["gh"] * seq).sum().backward()
    out = dict(h=seq.detach().numpy(), dx=t["x"].grad.numpy(), dh0=t["h0"].grad.numpy())
    out.update(_torch_param_grads(rnn, "_l0"))
    return out


# --- the module's oracles ------------------------------------------------------------------------

_PARAMS = ("dW", "dU", "db")
_TORCH_BIASES = ("db_ih", "db_hh")

# The RNN's structure (bidirectional, two layers: gatecheck.engines.structured); its one state has no
# upstream of its own (h_T is the output's last step).
KERAS_MODEL = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS, keras_layer="SimpleRNN",
                               keras_kwargs=dict(activation="tanh"), keras_assign=_keras_assign,
                               keras_grads=_keras_grads)
TORCH_MODEL = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS + _TORCH_BIASES,
                               torch_module="RNN", torch_kwargs=dict(nonlinearity="tanh"), torch_load=_torch_load,
                               torch_grads=_torch_param_grads)

KERAS_RNN_CELL = Oracle(
    name="keras-rnn-cell",
    family="rnn",
    framework="keras",
    description="keras.layers.SimpleRNNCell with a zero probe on h_t, in keras.layers.RNN (gradients: keras_backends)",
    observes=("h", "dh", "dx", "dh0") + _PARAMS,
    runner=keras_oracle.probed_runner(KERAS_MODEL, _probed_keras_cell, run_keras_cell),
    trace_ms=210,
    declines_dtype=keras_backends.dtype_declines(),
    options=frozenset({"nobias", "rev"}) | keras_oracle.STRUCTURES,
    observes_structured=keras_oracle.observed_cell(KERAS_MODEL),
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
    runner=structured.keras_runner(KERAS_MODEL, run_keras_layer),
    trace_ms=160,
    declines_dtype=keras_backends.dtype_declines(),
    options=frozenset({"nobias", "rev"}) | keras_oracle.STRUCTURES | keras_oracle.MASKED,
    observes_structured=keras_oracle.observed_layer(KERAS_MODEL),
    declines=structured.declines_keras,
)

TORCH_RNN_CELL = Oracle(
    name="torch-rnn-cell",
    family="rnn",
    framework="torch",
    description="torch.nn.RNNCell(tanh) unrolled with retain_grad on every h_t",
    observes=("h", "dh", "dx", "dh0") + _PARAMS + _TORCH_BIASES,
    runner=run_torch_cell,
    options=frozenset({"nobias"}),
)

TORCH_RNN_LAYER = Oracle(
    name="torch-rnn-layer",
    family="rnn",
    framework="torch",
    description="torch.nn.RNN(tanh) whole sequence (batch_first)",
    observes=("h", "dx", "dh0") + _PARAMS + _TORCH_BIASES,
    cannot_observe={
        "dh": "dL/dh_t includes the path into step t+1, inside the fused kernel; "
              "only the upstream part is an input",
    },
    runner=structured.torch_runner(TORCH_MODEL, run_torch_layer),
    options=frozenset({"nobias"}) | torch_oracle.STRUCTURES,
    observes_structured=lambda options: structured.observed(TORCH_MODEL, options, merged_apart=True),
)

ORACLES = (KERAS_RNN_CELL, KERAS_RNN_LAYER, TORCH_RNN_CELL, TORCH_RNN_LAYER)
