"""Pure NumPy remaps between the canonical layouts and PaddlePaddle's (``paddle.nn``).

Canonical (``gatecheck.reference``): the LSTM's W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o;
the GRU's W (3, D, H), U (3, H, H), bx (3, H), bh (3, H), gates r, z, n; the RNN's W (D, H), U (H, H),
b (H,). Each gate block is oriented ``x_t @ W[k]``.

Paddle's cells (``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``) and the cells inside its layers
(``LSTM``, ``GRU``, ``SimpleRNN``: one cell per layer and direction) hold ``weight_ih`` (G*H, D),
``weight_hh`` (G*H, H), ``bias_ih`` (G*H,) and ``bias_hh`` (G*H,), the gate blocks along the first
axis (python/paddle/nn/layer/rnn.py, the cells' forward):

- LSTM: blocks i, f, g, o (``chunk(gates, 4)`` read as i, f, cell, o); the step adds both biases, so
  the single canonical b is split in halves, bias_ih = bias_hh = b / 2 (exact in binary floating
  point; both slots exercised). By the chain rule db = (d bias_ih + d bias_hh) / 2, and each of the
  two is reported on its own (``db_ih``, ``db_hh``), since each must equal db.
- GRU: blocks r, z, c (c is the canonical n): ``c = tanh(x W_ic + b_ic + r * (h W_hc + b_hc))``, the
  reset-after convention, with bias_ih = bx and bias_hh = bh exactly; the new state is
  ``z * h + (1 - z) * c``, as the canonical one.
- SimpleRNN: one block, ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``; b split in halves as the LSTM's.

Under the LSTM's projection (``proj_size=P``) the cell also holds ``weight_ho`` (H, P), the canonical Wr exactly,
and ``weight_hh`` is (4H, P). Without a bias (the layers' and cells' ``bias_ih_attr=False, bias_hh_attr=False``) there is no bias
slot: the remaps then give and read none. Every function here takes and returns NumPy arrays only
and imports no framework.
"""

import numpy as np

from gatecheck.engines import gates

LSTM_GATES = ("i", "f", "g", "o")
GRU_GATES = ("r", "z", "c")
# Paddle's c block of the GRU is the canonical n (the candidate state)
_GRU = gates.Blocks(gates.GRU.canonical, dict(gates.GRU.same, c="n"))


def _weights(params, blocks, order):
    return {
        "weight_ih": blocks.fuse(params["W"].transpose(0, 2, 1), order, axis=0),
        "weight_hh": blocks.fuse(params["U"].transpose(0, 2, 1), order, axis=0),
    }


def _unweights(weights, blocks, order, prefix=""):
    return {
        prefix + "W": blocks.unfuse(weights["weight_ih"], order, axis=0).transpose(0, 2, 1),
        prefix + "U": blocks.unfuse(weights["weight_hh"], order, axis=0).transpose(0, 2, 1),
    }


def to_paddle_lstm(params):
    """{'W', 'U', 'b'} -> {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'} (b / 2 in each bias);
    without 'b' (no bias) the two weights only."""
    out = _weights(params, gates.LSTM, LSTM_GATES)
    if "b" in params:
        half = params["b"] / 2
        out.update(bias_ih=gates.LSTM.fuse(half, LSTM_GATES, axis=0), bias_hh=gates.LSTM.fuse(half, LSTM_GATES, axis=0))
    return out


def from_paddle_lstm(weights):
    """Paddle's LSTM arrays -> {'W', 'U', 'b'} with b = bias_ih + bias_hh (what the step adds)."""
    out = _unweights(weights, gates.LSTM, LSTM_GATES)
    if "bias_ih" in weights:
        out["b"] = gates.LSTM.unfuse(weights["bias_ih"] + weights["bias_hh"], LSTM_GATES, axis=0)
    return out


def grads_from_paddle_lstm(grads):
    """Gradients of Paddle's LSTM arrays -> {'dW', 'dU', 'db', 'db_ih', 'db_hh'} under the half split."""
    out = _unweights(grads, gates.LSTM, LSTM_GATES, "d")
    if "bias_ih" in grads:
        d_ih = gates.LSTM.unfuse(grads["bias_ih"], LSTM_GATES, axis=0)
        d_hh = gates.LSTM.unfuse(grads["bias_hh"], LSTM_GATES, axis=0)
        out.update(db=(d_ih + d_hh) / 2, db_ih=d_ih, db_hh=d_hh)
    return out


def to_paddle_lstm_proj(params):
    """The projection (the LSTM's proj option, ``proj_size=P``): ``to_paddle_lstm`` (weight_hh (4H, P): U (4, P, H)
    as without it) plus weight_ho (H, P) = Wr exactly, as ``LSTMCell.forward`` computes h = (o * tanh(c)) @ weight_ho."""
    return dict(to_paddle_lstm(params), weight_ho=params["Wr"].copy())


def from_paddle_lstm_proj(weights):
    """Paddle's projected LSTM arrays -> {'W', 'U', 'b', 'Wr'}."""
    return dict(from_paddle_lstm(weights), Wr=weights["weight_ho"].copy())


def grads_from_paddle_lstm_proj(grads):
    """Gradients of the projected LSTM's arrays -> ``grads_from_paddle_lstm``'s and dWr = d weight_ho (H, P)."""
    return dict(grads_from_paddle_lstm({k: v for k, v in grads.items() if k != "weight_ho"}),
                dWr=grads["weight_ho"].copy())


def to_paddle_gru(params):
    """{'W', 'U', 'bx', 'bh'} -> {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'}: gate blocks r, z, c,
    bias_ih = bx and bias_hh = bh; without 'bx', 'bh' the two weights only."""
    out = _weights(params, _GRU, GRU_GATES)
    if "bx" in params:
        out.update(bias_ih=_GRU.fuse(params["bx"], GRU_GATES, axis=0), bias_hh=_GRU.fuse(params["bh"], GRU_GATES, axis=0))
    return out


def from_paddle_gru(weights, prefix=""):
    """Paddle's GRU arrays (or their gradients, with ``prefix`` 'd') -> {'W', 'U', 'bx', 'bh'}."""
    out = _unweights(weights, _GRU, GRU_GATES, prefix)
    if "bias_ih" in weights:
        out.update({prefix + "bx": _GRU.unfuse(weights["bias_ih"], GRU_GATES, axis=0),
                    prefix + "bh": _GRU.unfuse(weights["bias_hh"], GRU_GATES, axis=0)})
    return out


def grads_from_paddle_gru(grads):
    """Gradients of Paddle's GRU arrays -> {'dW', 'dU', 'dbx', 'dbh'} (a permutation and a transpose:
    gradients map back like weights)."""
    return from_paddle_gru(grads, "d")


def to_paddle_rnn(params):
    """{'W', 'U', 'b'} -> {'weight_ih' (H, D), 'weight_hh' (H, H), 'bias_ih', 'bias_hh'} (b / 2 each)."""
    out = {"weight_ih": np.ascontiguousarray(params["W"].T), "weight_hh": np.ascontiguousarray(params["U"].T)}
    if "b" in params:
        half = params["b"] / 2
        out.update(bias_ih=half, bias_hh=half.copy())
    return out


def from_paddle_rnn(weights):
    """Paddle's SimpleRNN arrays -> {'W', 'U', 'b'} with b = bias_ih + bias_hh."""
    out = {"W": np.ascontiguousarray(weights["weight_ih"].T), "U": np.ascontiguousarray(weights["weight_hh"].T)}
    if "bias_ih" in weights:
        out["b"] = weights["bias_ih"] + weights["bias_hh"]
    return out


def grads_from_paddle_rnn(grads):
    """Gradients of Paddle's SimpleRNN arrays -> {'dW', 'dU', 'db', 'db_ih', 'db_hh'} under the half split."""
    out = {"dW": np.ascontiguousarray(grads["weight_ih"].T), "dU": np.ascontiguousarray(grads["weight_hh"].T)}
    if "bias_ih" in grads:
        d_ih, d_hh = grads["bias_ih"].copy(), grads["bias_hh"].copy()
        out.update(db=(d_ih + d_hh) / 2, db_ih=d_ih, db_hh=d_hh)
    return out
