"""The projection option (``proj``) of the torch-layer oracle: ``torch.nn.LSTM(D, H,
proj_size=P, batch_first=True)``, whose output and fed-back state is h_t = W_hr (o_t * tanh(c_t)).

PyTorch's weight_hr_l0 is (P, H), the canonical Wr (H, P) transposed; weight_hh_l0 is (4H, P),
the canonical U (4, P, H) remapped as without the option. ``nn.LSTMCell`` has no projection,
so torch-cell does not offer the option. The remaps are pure NumPy (``to_torch``,
``grads_from_torch``); torch is imported inside ``run_layer`` only.
"""

import warnings

from gatecheck.oracles import layout

# torch (2.13, CPU) warns on every projected forward that oneDNN does not support projections and
# that it falls back to its default kernel: a note on the backend, not on the numbers.
_ONEDNN_NOTE = "LSTM with projections is not supported with oneDNN"


def to_torch(params):
    """Canonical {'W', 'U', 'b', 'Wr'} -> torch's names: ``layout.to_torch`` plus weight_hr = Wr.T."""
    return dict(layout.to_torch(params), weight_hr=params["Wr"].T.copy())


def grads_from_torch(grads):
    """Torch gradients (weight_hr's among them) -> canonical, dWr = d weight_hr.T (H, P)."""
    out = layout.grads_from_torch({k: v for k, v in grads.items() if k != "weight_hr"})
    out["dWr"] = grads["weight_hr"].T.copy()
    return out


def run_layer(inputs, options=()):
    from gatecheck.oracles import torch_oracle
    from gatecheck.oracles.frameworks import import_torch

    torch = import_torch()
    D, H, P = inputs["x"].shape[2], inputs["c0"].shape[1], inputs["h0"].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    lstm = torch.nn.LSTM(D, H, num_layers=1, batch_first=True, dtype=dtype, bias=torch_oracle.bias(options),
                         proj_size=P)
    torch_oracle.load(lstm, inputs, "_l0", remap=to_torch)
    t = torch_oracle.leaves(torch, inputs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ONEDNN_NOTE, category=UserWarning)
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
    grads = {name: getattr(lstm, name + "_l0").grad.numpy()
             for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
             if getattr(lstm, name + "_l0", None) is not None}
    out.update(grads_from_torch(grads))
    return out
