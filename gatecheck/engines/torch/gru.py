"""GRU oracles of PyTorch (reset-after only).

torch-gru-cell            ``torch.nn.GRUCell`` unrolled; every h_t keeps its gradient
                          (``retain_grad``), the total delta dL/dh_t.
torch-gru-layer           ``torch.nn.GRU(batch_first=True)``: the fused kernel.

PyTorch computes the reset-after GRU only (``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
torch/nn/modules/rnn.py); it has no reset-before option, so the ``gru-reset-before`` family
has no PyTorch oracle rather than a fake one. Every runner takes the canonical inputs (x, h0, W,
U, bx, bh, gh) and returns canonical-layout arrays in the inputs' dtype (remaps:
``gatecheck.engines.torch.gru_layout``).
"""

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_torch
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch import gru_layout as torch_gru_layout

_PARAMS = ("dW", "dU", "dbx", "dbh")
_ALL = ("h", "dh", "dx", "dh0") + _PARAMS
_LAYER_BLIND = "dL/dh_t includes the path into step t+1, inside the layer's loop; only the upstream part is an input"


def _torch_load(module, inputs, suffix):
    torch_common.load(module, inputs, suffix, torch_gru_layout.to_torch)


def _torch_param_grads(module, suffix):
    return torch_common.param_grads(module, suffix, torch_gru_layout.grads_from_torch)


def run_torch_cell(inputs, options=()):
    torch = import_torch()
    _, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    cell = torch.nn.GRUCell(D, H, dtype=getattr(torch, inputs["x"].dtype.name), bias=torch_common.bias(options))
    _torch_load(cell, inputs, "")
    t = torch_common.leaves(torch, inputs, states=("h0",), upstream=("gh",))
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
                         bias=torch_common.bias(options))
    _torch_load(layer, inputs, "_l0")
    t = torch_common.leaves(torch, inputs, states=("h0",), upstream=("gh",))
    seq, _ = layer(t["x"], t["h0"][None])
    (t["gh"] * seq).sum().backward()
    out = dict(h=seq.detach().numpy(), dx=t["x"].grad.numpy(), dh0=t["h0"].grad.numpy())
    out.update(_torch_param_grads(layer, "_l0"))
    return out


TORCH_MODEL = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS, torch_module="GRU",
                               torch_load=_torch_load, torch_grads=_torch_param_grads)


ORACLES = (
    Oracle("torch-gru-cell", "gru", "torch", "torch.nn.GRUCell unrolled with retain_grad on every h_t "
           "(reset-after: PyTorch has no reset-before GRU)", _ALL, runner=run_torch_cell, options=frozenset({"nobias"})),
    Oracle("torch-gru-layer", "gru", "torch", "torch.nn.GRU whole sequence (batch_first; reset-after: PyTorch has "
           "no reset-before GRU)", tuple(q for q in _ALL if q != "dh"),
           cannot_observe={"dh": _LAYER_BLIND.replace("the layer's loop", "the fused kernel")},
           runner=torch_common.torch_runner(TORCH_MODEL, run_torch_layer), options=frozenset({"nobias"}) | torch_common.STRUCTURES,
           observes_structured=lambda options: structured.observed(TORCH_MODEL, options, merged_apart=True)),
)
