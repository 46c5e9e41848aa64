"""Pure NumPy remaps between the canonical GRU layout and PyTorch's.

Canonical (see ``reference.gru``): W (3, D, H), U (3, H, H), bx (3, H), bh (3, H), gates
r, z, n; bx is added with x_t W[k], bh with h_{t-1} U[k] (inside r_t for n in the
reset-after convention).

PyTorch ``nn.GRU`` / ``nn.GRUCell`` (torch/nn/modules/rnn.py docs): weight_ih (3H, D),
weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,), gate blocks r, z, n along the first axis;
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``: the reset-after convention only, with
bias_ih = bx and bias_hh = bh exactly (no split needed). PyTorch has no reset-before GRU.

Every function here takes and returns NumPy arrays only and imports no framework.
"""


from gatecheck.engines import gates

CANONICAL_GATES = gates.GRU.canonical
TORCH_GATES = ("r", "z", "n")
_fuse, _unfuse = gates.GRU.fuse, gates.GRU.unfuse


def to_torch(params):
    """{'W', 'U', 'bx', 'bh'} -> {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'}; without
    'bx', 'bh' (no bias) no bias_ih, bias_hh."""
    out = {
        "weight_ih": _fuse(params["W"].transpose(0, 2, 1), TORCH_GATES, axis=0),
        "weight_hh": _fuse(params["U"].transpose(0, 2, 1), TORCH_GATES, axis=0),
    }
    if "bx" in params:
        out.update(bias_ih=_fuse(params["bx"], TORCH_GATES, axis=0), bias_hh=_fuse(params["bh"], TORCH_GATES, axis=0))
    return out


def from_torch(weights):
    """{'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'} -> {'W', 'U', 'bx', 'bh'}; without the
    biases (no bias) 'W' and 'U' only."""
    out = {
        "W": _unfuse(weights["weight_ih"], TORCH_GATES, axis=0).transpose(0, 2, 1),
        "U": _unfuse(weights["weight_hh"], TORCH_GATES, axis=0).transpose(0, 2, 1),
    }
    if "bias_ih" in weights:
        out.update(bx=_unfuse(weights["bias_ih"], TORCH_GATES, axis=0), bh=_unfuse(weights["bias_hh"], TORCH_GATES, axis=0))
    return out


def grads_from_torch(grads):
    """Gradients of the torch parameters -> canonical {'dW', 'dU', 'dbx', 'dbh'} (the remap
    is a permutation and a transpose, so gradients map back like weights)."""
    w = from_torch(grads)
    return {"d" + k: v for k, v in w.items()}
