"""Pure NumPy remaps between the canonical layouts and MLX's (``mlx.nn.LSTM``, ``GRU``, ``RNN``).

Canonical (``gatecheck.reference``): the LSTM's W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o;
the GRU's W (3, D, H), U (3, H, H), bx (3, H), bh (3, H), gates r, z, n; the RNN's W (D, H), U (H, H),
b (H,). Each gate block is oriented ``x_t @ W[k]``.

MLX's layers (python/mlx/nn/layers/recurrent.py) apply ``x @ Wx.T`` and ``h @ Wh.T``:

- ``LSTM``: ``Wx`` (4H, D), ``Wh`` (4H, H), ``bias`` (4H,), blocks i, f, g, o (``mx.split(ifgo, 4)``);
  one bias, added with x: b exactly.
- ``GRU``: ``Wx`` (3H, D), ``Wh`` (3H, H), blocks r, z, n; ``b`` (3H,) added with x, and ``bhn`` (H,)
  added to the n block of ``h @ Wh.T`` inside r_t (reset after): ``n = tanh(x W_n + b_n + r * (h U_n +
  bhn))``. So b = [bx[r] + bh[r], bx[z] + bh[z], bx[n]] and bhn = bh[n]: every canonical bias has a slot,
  but r's and z's two biases only as their sum (the step adds them outside the gates). Gradients map
  back as dbx = db (every gate), dbh = [db[r], db[z], dbhn]: the same numbers the reference gives, as
  dL/dbx[k] = dL/dbh[k] for r and z.
- ``RNN``: ``Wxh`` (H, D), ``Whh`` (H, H), ``bias`` (H,).

Without a bias (``bias=False``) no bias array exists: the remaps then give and read none. Every
function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np

from gatecheck.engines import gates

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "n")


def _fused(blocks, model, order):
    return model.fuse(blocks.transpose(0, 2, 1), order, axis=0)


def _split(fused, model, order):
    return model.unfuse(fused, order, axis=0).transpose(0, 2, 1)


def to_mlx_lstm(params):
    """{'W', 'U', 'b'} -> {'Wx', 'Wh', 'bias'}; without 'b' (no bias) 'Wx', 'Wh' only."""
    out = {"Wx": _fused(params["W"], gates.LSTM, LSTM_GATES), "Wh": _fused(params["U"], gates.LSTM, LSTM_GATES)}
    if "b" in params:
        out["bias"] = gates.LSTM.fuse(params["b"], LSTM_GATES, axis=0)
    return out


def from_mlx_lstm(weights, prefix=""):
    """{'Wx', 'Wh', 'bias'} (or their gradients, ``prefix`` 'd') -> {'W', 'U', 'b'}."""
    out = {prefix + "W": _split(weights["Wx"], gates.LSTM, LSTM_GATES),
           prefix + "U": _split(weights["Wh"], gates.LSTM, LSTM_GATES)}
    if "bias" in weights:
        out[prefix + "b"] = gates.LSTM.unfuse(weights["bias"], LSTM_GATES, axis=0)
    return out


def grads_from_mlx_lstm(grads):
    """Gradients of {'Wx', 'Wh', 'bias'} -> {'dW', 'dU', 'db'}."""
    return from_mlx_lstm(grads, "d")


def to_mlx_gru(params):
    """{'W', 'U', 'bx', 'bh'} -> {'Wx', 'Wh', 'b', 'bhn'}: b = bx + bh for r and z, bx for n; bhn = bh[n]."""
    out = {"Wx": _fused(params["W"], gates.GRU, GRU_GATES), "Wh": _fused(params["U"], gates.GRU, GRU_GATES)}
    if "bx" in params:
        n = GRU_GATES.index("n")
        summed = params["bx"] + params["bh"]
        summed[n] = params["bx"][n]
        out.update(b=gates.GRU.fuse(summed, GRU_GATES, axis=0), bhn=params["bh"][n].copy())
    return out


def from_mlx_gru(weights):
    """{'Wx', 'Wh', 'b', 'bhn'} -> {'W', 'U', 'bx', 'bh'} for weights: r's and z's bias all in bx (their bh 0),
    n's bx = b[n], bh[n] = bhn (``to_mlx_gru`` of it gives the same arrays back)."""
    out = {"W": _split(weights["Wx"], gates.GRU, GRU_GATES), "U": _split(weights["Wh"], gates.GRU, GRU_GATES)}
    if "b" in weights:
        bx = gates.GRU.unfuse(weights["b"], GRU_GATES, axis=0)
        bh = np.zeros_like(bx)
        bh[GRU_GATES.index("n")] = weights["bhn"]
        out.update(bx=bx, bh=bh)
    return out


def grads_from_mlx_gru(grads):
    """Gradients of {'Wx', 'Wh', 'b', 'bhn'} -> {'dW', 'dU', 'dbx', 'dbh'}: dbx = db for every gate; dbh = db
    for r and z (bx and bh add up there), dbhn for n."""
    out = {"dW": _split(grads["Wx"], gates.GRU, GRU_GATES), "dU": _split(grads["Wh"], gates.GRU, GRU_GATES)}
    if "b" in grads:
        db = gates.GRU.unfuse(grads["b"], GRU_GATES, axis=0)
        dbh = db.copy()
        dbh[GRU_GATES.index("n")] = grads["bhn"]
        out.update(dbx=db, dbh=dbh)
    return out


def to_mlx_rnn(params):
    """{'W', 'U', 'b'} -> {'Wxh' (H, D), 'Whh' (H, H), 'bias'}; without 'b' no bias."""
    out = {"Wxh": np.ascontiguousarray(params["W"].T), "Whh": np.ascontiguousarray(params["U"].T)}
    if "b" in params:
        out["bias"] = params["b"].copy()
    return out


def from_mlx_rnn(weights, prefix=""):
    """{'Wxh', 'Whh', 'bias'} (or their gradients, ``prefix`` 'd') -> {'W', 'U', 'b'}."""
    out = {prefix + "W": np.ascontiguousarray(weights["Wxh"].T), prefix + "U": np.ascontiguousarray(weights["Whh"].T)}
    if "bias" in weights:
        out[prefix + "b"] = weights["bias"].copy()
    return out


def grads_from_mlx_rnn(grads):
    """Gradients of {'Wxh', 'Whh', 'bias'} -> {'dW', 'dU', 'db'}."""
    return from_mlx_rnn(grads, "d")
