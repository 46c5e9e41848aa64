"""Pure NumPy remaps between the canonical GRU layout and Keras'.

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

Every function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np

from gatecheck.engines import gates

CANONICAL_GATES = gates.GRU.canonical
KERAS_GATES = ("z", "r", "h")
_fuse, _unfuse = gates.GRU.fuse, gates.GRU.unfuse


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
