"""Pure NumPy remaps between the canonical layouts and the inputs of the ExecuTorch step programs.

Canonical (``gatecheck.reference``): the LSTM's W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o;
the GRU's W (3, D, H), U (3, H, H), bx (3, H), bh (3, H), gates r, z, n; the RNN's W (D, H), U (H, H),
b (H,). Each gate block is oriented ``x_t @ W[k]``.

A step program is ``torch.nn.LSTMCell`` / ``GRUCell`` / ``RNNCell`` exported with its parameters as inputs
of the program (``torch.func.functional_call``), in the cell's parameter order ``PARAMETERS``: weight_ih,
weight_hh, bias_ih, bias_hh (no biases under ``bias=False``). Their layout is PyTorch's, so the remaps are
the PyTorch engine's (``gatecheck.engines.torch.layout``, ``gru_layout``, ``rnn_layout``): the LSTM's and
the RNN's one canonical bias split as bias_ih = bias_hh = b / 2 (both slots exercised), the GRU's bx and bh
exactly (reset after: PyTorch has no other GRU). Every function here takes and returns NumPy arrays only
and imports no framework.
"""

import numpy as np

from gatecheck.engines.torch import gru_layout as torch_gru_layout
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout

PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # the cells' named_parameters(), in order


def ordered(weights):
    """A cell's weights ({name: array}) as the program's weight inputs: ``PARAMETERS`` order, contiguous; the
    biases both present or both absent."""
    unknown = sorted(set(weights) - set(PARAMETERS))
    if unknown or not {"weight_ih", "weight_hh"} <= set(weights) or ("bias_ih" in weights) != ("bias_hh" in weights):
        raise ValueError(f"weights: expected weight_ih, weight_hh and optionally both of bias_ih, bias_hh; got "
                         f"{sorted(weights)}")
    return [np.ascontiguousarray(weights[k]) for k in PARAMETERS if k in weights]


def named(arrays):
    """The program's weight inputs (a list in ``PARAMETERS`` order, 2 or 4 of them) back as {name: array}."""
    if len(arrays) not in (2, 4):
        raise ValueError(f"arrays: expected 2 (no bias) or 4 weight inputs, got {len(arrays)}")
    return dict(zip(PARAMETERS, arrays))


def _back(from_torch, arrays, bias):
    """The PyTorch engine's ``from_torch`` of the program's weight inputs; without biases (two arrays) given zero
    biases of ``bias``'s first-axis length and its canonical bias ``bias`` dropped."""
    weights = named(arrays)
    if "bias_ih" in weights:
        return from_torch(weights)
    zeros = np.zeros(weights["weight_ih"].shape[0], weights["weight_ih"].dtype)
    found = from_torch(dict(weights, bias_ih=zeros, bias_hh=zeros))
    return {k: v for k, v in found.items() if k != bias}


def to_lstm_step(params):
    """{'W', 'U', 'b'} -> [weight_ih (4H, D), weight_hh (4H, H), bias_ih, bias_hh (b / 2 each)]; without 'b'
    the two weights."""
    return ordered(torch_layout.to_torch(params))


def from_lstm_step(arrays):
    """The LSTM program's weight inputs -> {'W', 'U', 'b'} (b = bias_ih + bias_hh; no 'b' without biases)."""
    return _back(torch_layout.from_torch, arrays, "b")


def to_gru_step(params):
    """{'W', 'U', 'bx', 'bh'} -> [weight_ih (3H, D), weight_hh (3H, H), bias_ih = bx, bias_hh = bh], gates r, z,
    n; without 'bx', 'bh' the two weights."""
    return ordered(torch_gru_layout.to_torch(params))


def from_gru_step(arrays):
    """The GRU program's weight inputs -> {'W', 'U', 'bx', 'bh'}."""
    return torch_gru_layout.from_torch(named(arrays))


def to_rnn_step(params):
    """{'W', 'U', 'b'} -> [weight_ih (H, D), weight_hh (H, H), bias_ih, bias_hh (b / 2 each)]; without 'b' the
    two weights."""
    return ordered(torch_rnn_layout.to_torch(params))


def from_rnn_step(arrays):
    """The RNN program's weight inputs -> {'W', 'U', 'b'} (b = bias_ih + bias_hh; no 'b' without biases)."""
    return _back(torch_rnn_layout.from_torch, arrays, "b")
