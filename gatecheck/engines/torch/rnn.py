"""Vanilla-RNN oracles of PyTorch.

torch-rnn-cell   ``torch.nn.RNNCell(nonlinearity="tanh")`` unrolled; every h_t keeps its
                 gradient (``retain_grad``), which is the total delta dL/dh_t.
torch-rnn-layer  ``torch.nn.RNN(batch_first=True, nonlinearity="tanh")``: the fused kernel.

Under the ``relu`` option both are built with ``nonlinearity="relu"`` (PyTorch's other choice).

Each runner takes the canonical inputs (x, h0, W, U, b, gh) and returns canonical-layout
arrays in the inputs' dtype. Bias: canonical b is split as bias_ih = bias_hh = b / 2
(see ``gatecheck.engines.torch.rnn_layout``).
"""

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_torch
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout

_PARAMS = ("dW", "dU", "db")


def _torch_load(module, inputs, suffix):
    torch_common.load(module, inputs, suffix, torch_rnn_layout.to_torch)


def _torch_param_grads(module, suffix):
    return torch_common.param_grads(module, suffix, torch_rnn_layout.grads_from_torch)


def _torch_leaves(torch, inputs):
    return torch_common.leaves(torch, inputs, states=("h0",), upstream=("gh",))


def nonlinearity(options):
    """torch's ``nonlinearity`` argument of a case's options (gatecheck.model.options)."""
    return "relu" if "relu" in options else "tanh"


def run_torch_cell(inputs, options=()):
    torch = import_torch()
    _, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    cell = torch.nn.RNNCell(D, H, nonlinearity=nonlinearity(options), dtype=dtype, bias=torch_common.bias(options))
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
    rnn = torch.nn.RNN(D, H, num_layers=1, nonlinearity=nonlinearity(options), batch_first=True, dtype=dtype,
                       bias=torch_common.bias(options))
    _torch_load(rnn, inputs, "_l0")
    t = _torch_leaves(torch, inputs)
    seq, _ = rnn(t["x"], t["h0"][None])
    (t["gh"] * seq).sum().backward()
    out = dict(h=seq.detach().numpy(), dx=t["x"].grad.numpy(), dh0=t["h0"].grad.numpy())
    out.update(_torch_param_grads(rnn, "_l0"))
    return out


_TORCH_BIASES = ("db_ih", "db_hh")


TORCH_MODEL = structured.Model(states=("h0",), finals={}, observes=("dh0",) + _PARAMS + _TORCH_BIASES,
                               torch_module="RNN", torch_kwargs=dict(nonlinearity="tanh"), torch_load=_torch_load,
                               torch_grads=_torch_param_grads)
TORCH_MODEL = TORCH_MODEL._replace(own={"relu": TORCH_MODEL._replace(torch_kwargs=dict(nonlinearity="relu"))})


TORCH_RNN_CELL = Oracle(
    name="torch-rnn-cell",
    family="rnn",
    framework="torch",
    description="torch.nn.RNNCell(tanh) unrolled with retain_grad on every h_t",
    observes=("h", "dh", "dx", "dh0") + _PARAMS + _TORCH_BIASES,
    runner=run_torch_cell,
    options=frozenset({"nobias", "relu"}),
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
    runner=torch_common.torch_runner(TORCH_MODEL, run_torch_layer),
    options=frozenset({"nobias", "relu"}) | torch_common.STRUCTURES,
    observes_structured=lambda options: structured.observed(TORCH_MODEL, options, merged_apart=True),
)


ORACLES = (TORCH_RNN_CELL, TORCH_RNN_LAYER)
