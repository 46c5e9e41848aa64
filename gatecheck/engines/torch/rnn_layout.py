"""Pure NumPy remaps between the canonical vanilla-RNN layout and PyTorch's.

Canonical (see ``reference.rnn``): W (D, H), U (H, H), b (H,); z_t = x_t @ W + h_{t-1} @ U + b.

PyTorch ``nn.RNN`` / ``nn.RNNCell``: weight_ih (H, D), weight_hh (H, H), bias_ih (H,),
bias_hh (H,); the step computes ``x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh``.

Bias split for PyTorch, as in ``gatecheck.engines.torch.layout``: bias_ih = bias_hh = b / 2 (exact in
binary floating point, and both biases are exercised). By the chain rule the canonical
gradient is db = (d bias_ih + d bias_hh) / 2; each of the two is also reported on its
own (``db_ih``, ``db_hh``), since each must equal db.

Every function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np


def to_torch(params):
    """{'W', 'U', 'b'} -> {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'}; without 'b' (no
    bias) no bias_ih, bias_hh."""
    out = {"weight_ih": np.ascontiguousarray(params["W"].T), "weight_hh": np.ascontiguousarray(params["U"].T)}
    if "b" in params:
        half = params["b"] / 2
        out.update(bias_ih=half, bias_hh=half.copy())
    return out


def from_torch(weights):
    """{'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'} -> {'W', 'U', 'b'} for *weights*:
    b = bias_ih + bias_hh (what the step adds)."""
    return {
        "W": np.ascontiguousarray(weights["weight_ih"].T),
        "U": np.ascontiguousarray(weights["weight_hh"].T),
        "b": weights["bias_ih"] + weights["bias_hh"],
    }


def grads_from_torch(grads):
    """Gradients of {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'} -> canonical
    {'dW', 'dU', 'db', 'db_ih', 'db_hh'} under the half split of ``to_torch``."""
    out = {"dW": np.ascontiguousarray(grads["weight_ih"].T), "dU": np.ascontiguousarray(grads["weight_hh"].T)}
    if "bias_ih" in grads:  # absent under no bias
        d_ih, d_hh = grads["bias_ih"].copy(), grads["bias_hh"].copy()
        out.update(db=(d_ih + d_hh) / 2, db_ih=d_ih, db_hh=d_hh)
    return out
