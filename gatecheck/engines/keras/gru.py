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

from gatecheck.engines.keras import gru_layout, backends as keras_backends, lstm as keras_oracle
from gatecheck.engines.reference import oracles as reference_oracle
from gatecheck.engines import structured
from gatecheck.engines.torch import lstm as torch_oracle
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_keras, import_torch
from gatecheck.reference import gru

_ACTIVATIONS = dict(activation="tanh", recurrent_activation="sigmoid")

# --- Keras ---------------------------------------------------------------------------


def _assign(cell, inputs, reset_after):
    keras_oracle.assign(cell, inputs, functools.partial(gru_layout.to_keras, reset_after=reset_after))


def _grads(grads, cell):
    return keras_oracle.weight_grads(grads, cell, gru_layout.grads_from_keras)


def _probed_keras_cell(keras, ops):
    return keras_oracle.probed_one_state_cell(keras.layers.GRUCell)


def _build_keras_cell(D, H, dtype, reset_after, bias=True, backwards=False):
    _, keras = import_keras()
    cell = _probed_keras_cell(keras, None)(H, reset_after=reset_after, dtype=dtype, use_bias=bias, **_ACTIVATIONS)
    rnn = keras.layers.RNN(cell, return_sequences=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + H))
    return cell, keras_oracle.one_state_cell_fn(cell, rnn, dtype, D, H, backwards)


def _run_keras_cell(inputs, reset_after, options=()):
    x = inputs["x"]
    cell, fn = keras_oracle.built(_build_keras_cell, x.shape[2], inputs["h0"].shape[1], x.dtype.name, reset_after,
                                  keras_oracle.use_bias(options), keras_oracle.go_backwards(options))
    _assign(cell, inputs, reset_after)
    (seq,), grads, (dx, dh, dh0) = fn(x, keras_oracle.zero_probes(x, inputs["h0"].shape[1]), inputs["h0"], inputs["gh"])
    params, _ = _grads(grads, cell)
    out = dict(h=seq, dh=dh, dx=dx, dh0=dh0)
    out.update(params)
    return out


def _build_keras_layer(D, H, dtype, reset_after, bias=True, backwards=False):
    _, keras = import_keras()
    layer = keras.layers.GRU(H, reset_after=reset_after, return_sequences=True, go_backwards=backwards, dtype=dtype,
                             use_bias=bias, **_ACTIVATIONS, **keras_backends.layer_kwargs(keras))
    layer.build((None, None, D))
    return layer, keras_oracle.one_state_layer_fn(layer, dtype, D, H, backwards)


def _run_keras_layer(inputs, reset_after, options=()):
    x = inputs["x"]
    layer, fn = keras_oracle.built(_build_keras_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name, reset_after,
                                   keras_oracle.use_bias(options), keras_oracle.go_backwards(options))
    _assign(layer.cell, inputs, reset_after)
    (seq,), grads, (dx, dh0) = fn(x, inputs["h0"], inputs["gh"])
    params, _ = _grads(grads, layer.cell)
    out = dict(h=seq, dx=dx, dh0=dh0)
    out.update(params)
    return out


# --- PyTorch (reset-after only) --------------------------------------------------------


def _torch_load(module, inputs, suffix):
    torch_oracle.load(module, inputs, suffix, gru_layout.to_torch)


def _torch_param_grads(module, suffix):
    return torch_oracle.param_grads(module, suffix, gru_layout.grads_from_torch)


def run_torch_cell(inputs, options=()):
    torch = import_torch()
    _, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    cell = torch.nn.GRUCell(D, H, dtype=getattr(torch, inputs["x"].dtype.name), bias=torch_oracle.bias(options))
    _torch_load(cell, inputs, "")
    t = torch_oracle.leaves(torch, inputs, states=("h0",), upstream=("gh",))
    h = t["h0"]
    hs = []
    for step in range(T):
        h = cell(t["x"][:, step], h)
        h.retain_grad()
        hs.append(h)
    seq = torch.stack(hs, 1)
    (t["gh"] * seq).sum().backward()
    out = dict(h=seq.detach().numpy(), dh=torch.stack([v.grad for v in hs], 1).numpy(),
               dx=t["x"].grad.numpy(), dh0=t["h0"].grad.numpy())
    out.update(_torch_param_grads(cell, ""))
    return out


def run_torch_layer(inputs, options=()):
    torch = import_torch()
    D, H = inputs["x"].shape[2], inputs["h0"].shape[1]
    layer = torch.nn.GRU(D, H, num_layers=1, batch_first=True, dtype=getattr(torch, inputs["x"].dtype.name),
                         bias=torch_oracle.bias(options))
    _torch_load(layer, inputs, "_l0")
    t = torch_oracle.leaves(torch, inputs, states=("h0",), upstream=("gh",))
    seq, _ = layer(t["x"], t["h0"][None])
    (t["gh"] * seq).sum().backward()
    out = dict(h=seq.detach().numpy(), dx=t["x"].grad.numpy(), dh0=t["h0"].grad.numpy())
    out.update(_torch_param_grads(layer, "_l0"))
    return out


# --- the module's oracles ------------------------------------------------------------------------

_PARAMS = ("dW", "dU", "dbx", "dbh")
_ALL = ("h", "dh", "dx", "dh0") + _PARAMS
_LAYER_BLIND = "dL/dh_t includes the path into step t+1, inside the layer's loop; only the upstream part is an input"
_MERGED = "; its single bias is bx + bh (dbx = dbh = its gradient)"


def _reference(name, family, reset):
    def run(**inputs):
        return gru.run(**inputs, reset=reset)

    return Oracle(name, family, "numpy", f"the NumPy reference GRU (gatecheck.reference.gru.run(reset={reset!r}))",
                  _ALL,
                  runner=reference_oracle.with_options(run, family),
                  battery=False, options=reference_oracle.OFFERED,
                  observes_structured=reference_oracle.contract_quantities(family))


def _keras_model(reset_after):
    """The GRU's structure in Keras (gatecheck.engines.structured): one state, no upstream of its own."""
    return structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS, keras_layer="GRU",
                            keras_kwargs=dict(reset_after=reset_after, **_ACTIVATIONS),
                            keras_assign=functools.partial(_assign, reset_after=reset_after), keras_grads=_grads)


KERAS_MODELS = {True: _keras_model(True), False: _keras_model(False)}
TORCH_MODEL = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS, torch_module="GRU",
                               torch_load=_torch_load, torch_grads=_torch_param_grads)


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
                  runner=structured.keras_runner(model, base) if whole
                  else keras_oracle.probed_runner(model, _probed_keras_cell, base),
                  trace_ms=300 if whole else 350,  # benchmarks/trace_cost.py: 290-310 and 350-355 ms
                  options=frozenset({"nobias", "rev"}) | keras_oracle.STRUCTURES | (keras_oracle.MASKED if whole else frozenset()),
                  observes_structured=(keras_oracle.observed_layer if whole else keras_oracle.observed_cell)(model),
                  declines=structured.declines_keras if whole else None,
                  # reset-after GRU layers run a backend's own loop, the others a GRUCell's call per step
                  declines_dtype=keras_backends.dtype_declines(
                      steps_a_cell=not (whole and reset_after),
                      layer=functools.partial(keras_backends.declines_layer_dtype, gru=True) if whole and reset_after
                      else None))


ORACLES = (
    _reference("reference-gru", "gru", "after"),
    _reference("reference-gru-before", "gru-reset-before", "before"),
    _keras("keras-gru-cell", "gru", "cell", True),
    _keras("keras-gru-layer", "gru", "layer", True),
    Oracle("torch-gru-cell", "gru", "torch", "torch.nn.GRUCell unrolled with retain_grad on every h_t "
           "(reset-after: PyTorch has no reset-before GRU)", _ALL, runner=run_torch_cell, options=frozenset({"nobias"})),
    Oracle("torch-gru-layer", "gru", "torch", "torch.nn.GRU whole sequence (batch_first; reset-after: PyTorch has "
           "no reset-before GRU)", tuple(q for q in _ALL if q != "dh"),
           cannot_observe={"dh": _LAYER_BLIND.replace("the layer's loop", "the fused kernel")},
           runner=structured.torch_runner(TORCH_MODEL, run_torch_layer), options=frozenset({"nobias"}) | torch_oracle.STRUCTURES,
           observes_structured=lambda options: structured.observed(TORCH_MODEL, options, merged_apart=True)),
    _keras("keras-gru-cell-before", "gru-reset-before", "cell", False),
    _keras("keras-gru-layer-before", "gru-reset-before", "layer", False),
)
