"""Pure NumPy remaps between the canonical GRU layout and each framework's.

Canonical (see ``reference.gru``): W (3, D, H), U (3, H, H), bx (3, H), bh (3, H), gates
r, z, n; bx is added with x_t W[k], bh with h_{t-1} U[k] (inside r_t for n in the
reset-after convention).

Keras ``GRUCell`` / ``GRU`` (keras/src/layers/rnn/gru.py, Keras 2.15 and 3.x alike):
kernel (D, 3H) and recurrent_kernel (H, 3H) with gate blocks z, r, h along the last axis
(Keras calls the candidate gate "h"; ``x_z, x_r, x_h = split(matrix_x, 3)``). The bias
depends on the convention:

- ``reset_after=True``: bias (2, 3H) = [input bias, recurrent bias], each z, r, h; the
  step adds ``input_bias`` to x @ kernel and ``recurrent_bias`` to h @ recurrent_kernel,
  and multiplies the h block of the latter by r. bias[0] is bx and bias[1] is bh, exactly.
- ``reset_after=False``: one bias (3H,), added to x @ kernel only; the candidate is
  ``tanh(x_h + (r * h) @ recurrent_kernel_h)``. The two canonical biases merge:
  bias = bx + bh. Gradients map back by the chain rule: L depends on bx and bh only
  through their sum (in the reset-before convention every gate adds both outside r_t),
  so dbx = dbh = d(bias), each the whole of it (not half).

PyTorch ``nn.GRU`` / ``nn.GRUCell`` (torch/nn/modules/rnn.py docs): weight_ih (3H, D),
weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,), gate blocks r, z, n along the first axis;
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``: the reset-after convention only, with
bias_ih = bx and bias_hh = bh exactly (no split needed). PyTorch has no reset-before GRU.

Every function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np

CANONICAL_GATES = ("r", "z", "n")
KERAS_GATES = ("z", "r", "h")
TORCH_GATES = ("r", "z", "n")
# A framework's gate name -> the canonical gate it computes.
_SAME_GATE = {"r": "r", "z": "z", "n": "n", "h": "n"}


def _order(framework_gates):
    return [CANONICAL_GATES.index(_SAME_GATE[name]) for name in framework_gates]


def _fuse(blocks, framework_gates, axis):
    """(3, ...) canonical blocks -> one array with the framework's gate blocks along ``axis``."""
    return np.concatenate([blocks[k] for k in _order(framework_gates)], axis=axis)


def _unfuse(fused, framework_gates, axis):
    """Inverse of ``_fuse``: framework array -> (3, ...) canonical blocks."""
    parts = np.split(fused, 3, axis=axis)
    blocks = [None] * 3
    for part, k in zip(parts, _order(framework_gates)):
        blocks[k] = part
    return np.stack(blocks)


def to_keras(params, reset_after=True):
    """{'W', 'U', 'bx', 'bh'} -> {'kernel', 'recurrent_kernel', 'bias'} for a Keras GRU
    with ``reset_after``; without it the two biases merge (bias = bx + bh). Without 'bx'
    and 'bh' (no bias), no 'bias'."""
    out = {
        "kernel": _fuse(params["W"], KERAS_GATES, axis=1),
        "recurrent_kernel": _fuse(params["U"], KERAS_GATES, axis=1),
    }
    if "bx" in params:
        bx, bh = _fuse(params["bx"], KERAS_GATES, axis=0), _fuse(params["bh"], KERAS_GATES, axis=0)
        out["bias"] = np.stack([bx, bh]) if reset_after else bx + bh
    return out


def from_keras(weights):
    """{'kernel', 'recurrent_kernel', 'bias'} -> {'W', 'U', 'bx', 'bh'} for *weights*; a
    merged bias (3H,) comes back as bx = bias, bh = 0 (what the step adds is the same)."""
    bias = weights["bias"]
    bx, bh = (bias[0], bias[1]) if bias.ndim == 2 else (bias, np.zeros_like(bias))
    return {
        "W": _unfuse(weights["kernel"], KERAS_GATES, axis=1),
        "U": _unfuse(weights["recurrent_kernel"], KERAS_GATES, axis=1),
        "bx": _unfuse(bx, KERAS_GATES, axis=0),
        "bh": _unfuse(bh, KERAS_GATES, axis=0),
    }


def grads_from_keras(grads):
    """Gradients of {'kernel', 'recurrent_kernel', 'bias'} -> canonical {'dW', 'dU', 'dbx',
    'dbh'}: a permutation; with a merged bias (3H,) both dbx and dbh are d(bias); without
    'bias' (no bias) 'dW' and 'dU' only."""
    out = {
        "dW": _unfuse(grads["kernel"], KERAS_GATES, axis=1),
        "dU": _unfuse(grads["recurrent_kernel"], KERAS_GATES, axis=1),
    }
    if "bias" in grads:
        dbias = grads["bias"]
        d_in, d_rec = (dbias[0], dbias[1]) if dbias.ndim == 2 else (dbias, dbias)
        out.update(dbx=_unfuse(d_in, KERAS_GATES, axis=0), dbh=_unfuse(d_rec, KERAS_GATES, axis=0))
    return out


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
