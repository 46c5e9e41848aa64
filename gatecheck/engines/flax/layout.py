"""Pure NumPy remaps between the canonical layouts and the parameters of flax.nnx's recurrent
cells (flax/nnx/nn/recurrent.py, flax 0.12), as the nested dicts of
``nnx.state(cell, nnx.Param).to_pure_dict()``. Every cell keeps one bias per gate ("input and
recurrent layers are summed so only one needs a bias"); which side holds it differs.

``nnx.LSTMCell``: eight ``nnx.Linear`` layers, one per gate and side: ``ii``, ``if_``, ``ig``,
``io`` (x_t -> gate, kernel (D, H), no bias) and ``hi``, ``hf``, ``hg``, ``ho`` (h_{t-1} -> gate,
kernel (H, H), bias (H,)). Canonical W[k] -> i<k>.kernel, U[k] -> h<k>.kernel and b[k] ->
h<k>.bias (the hidden side): exact.

``nnx.OptimizedLSTMCell``: ``dense_i`` kernel (D, 4H), no bias; ``dense_h`` kernel (H, 4H) and bias
(4H,) (the hidden side); gate blocks i, f, g, o along the last axis (``jnp.split(y, 4)``). W ->
dense_i.kernel, U -> dense_h.kernel, b -> dense_h.bias: exact.

``nnx.SimpleCell``: ``dense_i`` kernel (D, H) and bias (H,) (the input side), ``dense_h`` kernel
(H, H), no bias. W, b -> dense_i, U -> dense_h: exact.

``nnx.GRUCell``: ``dense_i`` kernel (D, 3H) and bias (3H,) (the input side), ``dense_h`` kernel
(H, 3H), no bias; gate blocks r, z, n; it computes ``n = tanh(x W_n + b_n + r * (h U_n))``, the
reset-after GRU without a hidden-side bias. The canonical biases map as: bias[r] = bx[r] + bh[r]
and bias[z] = bx[z] + bh[z] (both are added outside the gates' nonlinearity, so the sum is exact),
bias[n] = bx[n]; bh[n], which the canonical model (and PyTorch, and flax.linen.GRUCell, and the
cell's own docstring) adds inside r_t, has no parameter to go to and is dropped (google/flax#5594).
Back: dbx = d bias for every gate (bias depends on bx with slope 1); dbh cannot be read (its r and z
blocks would be the same d bias, its n block has no parameter).

Without a bias no cell has an option to drop it (no ``use_bias`` argument), so there is no
no-bias remap. Every function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np

from gatecheck.engines.jax.layout import (  # the same gate blocks on the last axis
    fuse,
    unfuse,
)

LSTM_CANONICAL = ("i", "f", "g", "o")
# nnx.LSTMCell's attribute per canonical gate: input side, hidden side.
LSTM_LAYERS = {"i": ("ii", "hi"), "f": ("if_", "hf"), "g": ("ig", "hg"), "o": ("io", "ho")}
OPTIMIZED_LSTM_GATES = ("i", "f", "g", "o")
GRU_CANONICAL = ("r", "z", "n")
GRU_GATES = ("r", "z", "n")


def to_lstm(params):
    """{'W', 'U', 'b'} -> nnx.LSTMCell's parameters."""
    out = {}
    for k, gate in enumerate(LSTM_CANONICAL):
        x_side, h_side = LSTM_LAYERS[gate]
        out[x_side] = {"kernel": params["W"][k].copy()}
        out[h_side] = {"kernel": params["U"][k].copy(), "bias": params["b"][k].copy()}
    return out


def from_lstm(weights):
    """nnx.LSTMCell's parameters (or their gradients) -> {'W', 'U', 'b'}."""
    x_side = [weights[LSTM_LAYERS[g][0]] for g in LSTM_CANONICAL]
    h_side = [weights[LSTM_LAYERS[g][1]] for g in LSTM_CANONICAL]
    return {"W": np.stack([w["kernel"] for w in x_side]), "U": np.stack([w["kernel"] for w in h_side]),
            "b": np.stack([w["bias"] for w in h_side])}


def to_optimized_lstm(params):
    """{'W', 'U', 'b'} -> nnx.OptimizedLSTMCell's parameters."""
    return {"dense_i": {"kernel": fuse(params["W"], LSTM_CANONICAL, OPTIMIZED_LSTM_GATES)},
            "dense_h": {"kernel": fuse(params["U"], LSTM_CANONICAL, OPTIMIZED_LSTM_GATES),
                        "bias": fuse(params["b"], LSTM_CANONICAL, OPTIMIZED_LSTM_GATES)}}


def from_optimized_lstm(weights):
    """nnx.OptimizedLSTMCell's parameters (or their gradients) -> {'W', 'U', 'b'}."""
    return {"W": unfuse(weights["dense_i"]["kernel"], LSTM_CANONICAL, OPTIMIZED_LSTM_GATES),
            "U": unfuse(weights["dense_h"]["kernel"], LSTM_CANONICAL, OPTIMIZED_LSTM_GATES),
            "b": unfuse(weights["dense_h"]["bias"], LSTM_CANONICAL, OPTIMIZED_LSTM_GATES)}


def to_simple(params):
    """{'W', 'U', 'b'} -> nnx.SimpleCell's parameters."""
    return {"dense_i": {"kernel": params["W"].copy(), "bias": params["b"].copy()},
            "dense_h": {"kernel": params["U"].copy()}}


def from_simple(weights):
    """nnx.SimpleCell's parameters (or their gradients) -> {'W', 'U', 'b'}."""
    return {"W": weights["dense_i"]["kernel"].copy(), "U": weights["dense_h"]["kernel"].copy(),
            "b": weights["dense_i"]["bias"].copy()}


def gru_bias(bx, bh):
    """nnx.GRUCell's one bias (3, H) by canonical gate from bx, bh (3, H): bx + bh for r and z, bx for
    n (bh[n] has no parameter: dropped)."""
    bias = bx + bh
    bias[GRU_CANONICAL.index("n")] = bx[GRU_CANONICAL.index("n")]
    return bias


def to_gru(params):
    """{'W', 'U', 'bx', 'bh'} -> nnx.GRUCell's parameters (bh[n] dropped: see the module's docstring)."""
    return {"dense_i": {"kernel": fuse(params["W"], GRU_CANONICAL, GRU_GATES),
                        "bias": fuse(gru_bias(params["bx"], params["bh"]), GRU_CANONICAL, GRU_GATES)},
            "dense_h": {"kernel": fuse(params["U"], GRU_CANONICAL, GRU_GATES)}}


def from_gru(weights):
    """nnx.GRUCell's parameters -> {'W', 'U', 'bias'}: 'bias' (3, H) by canonical gate, the cell's one bias."""
    return {"W": unfuse(weights["dense_i"]["kernel"], GRU_CANONICAL, GRU_GATES),
            "U": unfuse(weights["dense_h"]["kernel"], GRU_CANONICAL, GRU_GATES),
            "bias": unfuse(weights["dense_i"]["bias"], GRU_CANONICAL, GRU_GATES)}


def grads_from_lstm(grads):
    return {"d" + k: v for k, v in from_lstm(grads).items()}


def grads_from_optimized_lstm(grads):
    return {"d" + k: v for k, v in from_optimized_lstm(grads).items()}


def grads_from_simple(grads):
    return {"d" + k: v for k, v in from_simple(grads).items()}


def grads_from_gru(grads):
    """Gradients of nnx.GRUCell's parameters -> {'dW', 'dU', 'dbx'} (dbh cannot be read)."""
    found = from_gru(grads)
    return {"dW": found["W"], "dU": found["U"], "dbx": found["bias"]}
