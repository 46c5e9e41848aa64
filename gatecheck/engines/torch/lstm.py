"""PyTorch oracles.

torch-lstm-layer  ``torch.nn.LSTM(batch_first=True)``: the fused whole-sequence kernel.
torch-lstm-cell   ``torch.nn.LSTMCell`` unrolled step by step; every h_t and c_t keeps its
             gradient (``retain_grad``), which is the total delta dL/dh_t, dL/dc_t
             (the cell computes h_t from the c_t it returns, so dL/dc_t includes the
             path through h_t).

Bias: canonical b is split as bias_ih = bias_hh = b / 2 (see ``gatecheck.engines.keras.layout``).
"""

import contextlib

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_torch
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.engines.torch import proj as torch_proj


def run_layer(inputs, options=()):
    """``torch.nn.LSTM`` over the sequence; under the projection option with ``proj_size=P`` (h0's
    width; c0's is H) and the projection's remaps (``gatecheck.engines.torch.proj``)."""
    torch = import_torch()
    D, H, P = inputs["x"].shape[2], inputs["c0"].shape[1], inputs["h0"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    projected = "proj" in options
    lstm = torch.nn.LSTM(D, H, num_layers=1, batch_first=True, dtype=dtype, bias=torch_common.bias(options),
                         **({"proj_size": P} if projected else {}))
    torch_common.load(lstm, inputs, "_l0", torch_proj.to_torch if projected else torch_layout.to_torch)
    t = torch_common.leaves(torch, inputs)
    with torch_proj.quiet() if projected else contextlib.nullcontext():
        seq, (_, c_n) = lstm(t["x"], (t["h0"][None], t["c0"][None]))
    loss = (t["gh"] * seq).sum() + (t["gc"] * c_n[0]).sum()
    loss.backward()
    out = dict(
        h=seq.detach().numpy(),
        cT=c_n[0].detach().numpy(),
        dx=t["x"].grad.numpy(),
        dh0=t["h0"].grad.numpy(),
        dc0=t["c0"].grad.numpy(),
    )
    out.update(torch_common.param_grads(lstm, "_l0", torch_proj.grads_from_torch if projected else torch_layout.grads_from_torch))
    return out


def run_cell(inputs, options=()):
    torch = import_torch()
    _, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    cell = torch.nn.LSTMCell(D, H, dtype=dtype, bias=torch_common.bias(options))
    torch_common.load(cell, inputs, "")
    t = torch_common.leaves(torch, inputs)
    hs, cs = _unroll(cell, t, T)
    loss = (t["gh"] * torch.stack(hs, 1)).sum() + (t["gc"] * cs[-1]).sum()
    loss.backward()
    return _cell_outputs(torch, cell, t, hs, cs)


def _unroll(cell, t, T):
    """Every step's h_t and c_t, each keeping its gradient (the total delta)."""
    h, c = t["h0"], t["c0"]
    hs, cs = [], []
    for step in range(T):
        h, c = cell(t["x"][:, step], (h, c))
        h.retain_grad()
        c.retain_grad()
        hs.append(h)
        cs.append(c)
    return hs, cs


def _cell_outputs(torch, cell, t, hs, cs):
    out = dict(
        h=torch.stack(hs, 1).detach().numpy(),
        c=torch.stack(cs, 1).detach().numpy(),
        dh=torch.stack([v.grad for v in hs], 1).numpy(),
        dc=torch.stack([v.grad for v in cs], 1).numpy(),
        dx=t["x"].grad.numpy(),
        dh0=t["h0"].grad.numpy(),
        dc0=t["c0"].grad.numpy(),
    )
    out.update(torch_common.param_grads(cell, ""))
    return out


_PARAMS = ("dW", "dU", "db", "db_ih", "db_hh")

# The LSTM's structure (bidirectional, two layers: gatecheck.engines.structured); c_n is its second state.
# Under proj: nn.LSTM(H, proj_size=P) with H c0's width and P h0's, weight_hr_l{k}[_reverse] of every layer
# and direction through the projection's remaps (looked up when called), and dWr of each.
_PLAIN = structured.Model(states=("h0", "c0"), finals={"cT": (1, "gc")}, observes=("cT", "dh0", "dc0") + _PARAMS,
                          torch_module="LSTM", torch_load=torch_common.load, torch_grads=torch_common.param_grads)
MODEL = _PLAIN._replace(own={"proj": _PLAIN._replace(
    observes=_PLAIN.observes + ("dWr",), width="c0", torch_args=lambda inputs: {"proj_size": inputs["h0"].shape[1]},
    torch_load=lambda module, inputs, suffix: torch_common.load(module, inputs, suffix, torch_proj.to_torch),
    torch_grads=lambda module, suffix: torch_common.param_grads(module, suffix, torch_proj.grads_from_torch),
    torch_context=torch_proj.quiet)})

TORCH_LAYER = Oracle(
    name="torch-lstm-layer",
    family="lstm",
    framework="torch",
    description="torch.nn.LSTM whole sequence (batch_first)",
    observes=("h", "cT", "dx", "dh0", "dc0") + _PARAMS + ("dWr",),
    cannot_observe={
        "c": "only c_n (C_T) is returned; c_t for t < T stays inside the fused kernel",
        "dh": "dL/dh_t includes paths inside the fused kernel; only the upstream part is an input",
        "dc": "c_t for t < T is not an output of nn.LSTM, so dL/dc_t cannot be taken",
    },
    runner=torch_common.torch_runner(MODEL, run_layer),
    options=frozenset({"nobias", "proj"}) | torch_common.STRUCTURES,
    observes_structured=lambda options: structured.observed(MODEL, options, merged_apart=True),
)

TORCH_CELL = Oracle(
    name="torch-lstm-cell",
    family="lstm",
    framework="torch",
    description="torch.nn.LSTMCell unrolled with retain_grad on every h_t, c_t",
    observes=("h", "c", "dh", "dc", "dx", "dh0", "dc0") + _PARAMS,
    runner=run_cell,
    options=frozenset({"nobias"}),
)


# --- the softmax / cross-entropy head (gatecheck/reference/head.py) ---------------------------


def run_cell_head(inputs):
    torch = import_torch()
    _, T, D = inputs["x"].shape
    H, K = inputs["h0"].shape[1], inputs["V"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    cell = torch.nn.LSTMCell(D, H, dtype=dtype)
    torch_common.load(cell, inputs, "")
    dense = torch.nn.Linear(H, K, dtype=dtype)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(inputs["V"].T.copy()))
        dense.bias.copy_(torch.from_numpy(inputs["cb"]))
    t = {k: torch.from_numpy(inputs[k].copy()).requires_grad_(k in ("x", "h0", "c0")) for k in ("x", "h0", "c0", "y")}
    hs, cs = _unroll(cell, t, T)
    log_p = torch.log_softmax(dense(torch.stack(hs, 1)), dim=-1)
    loss = -(t["y"] * log_p).sum()
    loss.backward()
    out = _cell_outputs(torch, cell, t, hs, cs)
    out.update(
        p=log_p.exp().detach().numpy(),
        dV=dense.weight.grad.numpy().T.copy(),
        dcb=dense.bias.grad.numpy(),
        loss=loss.detach().numpy(),
    )
    return out


TORCH_CELL_HEAD = Oracle(
    name="torch-lstm-head-cell",
    family="lstm-head",
    framework="torch",
    description="torch.nn.LSTMCell + nn.Linear + log_softmax cross-entropy per step, retain_grad on h_t, c_t",
    observes=("h", "c", "p", "dh", "dc", "dx", "dh0", "dc0", "dV", "dcb") + _PARAMS,
    runner=run_cell_head,
)

ORACLES = (TORCH_CELL, TORCH_LAYER, TORCH_CELL_HEAD)
