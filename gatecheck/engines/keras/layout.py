"""Pure NumPy remaps between the canonical layout and each framework's layout.

Canonical (see ``reference.lstm``): W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o.

Keras ``LSTMCell`` / ``LSTM``: kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,),
gate blocks i, f, c, o along the last axis (Keras calls the candidate gate "c").

PyTorch ``nn.LSTM`` / ``nn.LSTMCell``: weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,),
bias_hh (4H,), gate blocks i, f, g, o along the first axis; the step adds both biases.

Bias split for PyTorch: the canonical b is split in halves, bias_ih = bias_hh = b / 2
(exact in binary floating point, and both biases are exercised). By the chain rule the
canonical gradient is db = (d bias_ih + d bias_hh) / 2; each of the two is also reported
on its own (``db_ih``, ``db_hh``), since each must equal db.

Every function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np

CANONICAL_GATES = ("i", "f", "g", "o")
KERAS_GATES = ("i", "f", "c", "o")
TORCH_GATES = ("i", "f", "g", "o")
# A framework's gate name -> the canonical gate it computes.
_SAME_GATE = {"i": "i", "f": "f", "g": "g", "c": "g", "o": "o"}


def _order(framework_gates):
    return [CANONICAL_GATES.index(_SAME_GATE[name]) for name in framework_gates]


def _fuse(blocks, framework_gates, axis):
    """(4, ...) canonical blocks -> one array with the framework's gate blocks along ``axis``."""
    return np.concatenate([blocks[k] for k in _order(framework_gates)], axis=axis)


def _unfuse(fused, framework_gates, axis):
    """Inverse of ``_fuse``: framework array -> (4, ...) canonical blocks."""
    parts = np.split(fused, 4, axis=axis)
    blocks = [None] * 4
    for part, k in zip(parts, _order(framework_gates)):
        blocks[k] = part
    return np.stack(blocks)


def to_keras(params):
    """{'W', 'U', 'b'} -> {'kernel', 'recurrent_kernel', 'bias'}; without 'b' (no bias) no 'bias'."""
    out = {
        "kernel": _fuse(params["W"], KERAS_GATES, axis=1),
        "recurrent_kernel": _fuse(params["U"], KERAS_GATES, axis=1),
    }
    if "b" in params:
        out["bias"] = _fuse(params["b"], KERAS_GATES, axis=0)
    return out


def from_keras(weights):
    """{'kernel', 'recurrent_kernel', 'bias'} (weights or their gradients) -> {'W', 'U', 'b'};
    without 'bias' (no bias) no 'b'."""
    out = {
        "W": _unfuse(weights["kernel"], KERAS_GATES, axis=1),
        "U": _unfuse(weights["recurrent_kernel"], KERAS_GATES, axis=1),
    }
    if "bias" in weights:
        out["b"] = _unfuse(weights["bias"], KERAS_GATES, axis=0)
    return out


def to_torch(params):
    """{'W', 'U', 'b'} -> {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'}; without 'b' (no
    bias) no bias_ih, bias_hh."""
    out = {
        "weight_ih": _fuse(params["W"].transpose(0, 2, 1), TORCH_GATES, axis=0),
        "weight_hh": _fuse(params["U"].transpose(0, 2, 1), TORCH_GATES, axis=0),
    }
    if "b" in params:
        half = params["b"] / 2
        out.update(bias_ih=_fuse(half, TORCH_GATES, axis=0), bias_hh=_fuse(half, TORCH_GATES, axis=0))
    return out


def from_torch(weights):
    """{'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'} -> {'W', 'U', 'b'} for *weights*:
    b = bias_ih + bias_hh (what the step adds)."""
    return {
        "W": _unfuse(weights["weight_ih"], TORCH_GATES, axis=0).transpose(0, 2, 1),
        "U": _unfuse(weights["weight_hh"], TORCH_GATES, axis=0).transpose(0, 2, 1),
        "b": _unfuse(weights["bias_ih"] + weights["bias_hh"], TORCH_GATES, axis=0),
    }


def grads_from_torch(grads):
    """Gradients of {'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'} -> canonical
    {'dW', 'dU', 'db', 'db_ih', 'db_hh'} under the half split of ``to_torch`` (no bias: 'dW',
    'dU' only)."""
    out = {
        "dW": _unfuse(grads["weight_ih"], TORCH_GATES, axis=0).transpose(0, 2, 1),
        "dU": _unfuse(grads["weight_hh"], TORCH_GATES, axis=0).transpose(0, 2, 1),
    }
    if "bias_ih" in grads:
        d_ih = _unfuse(grads["bias_ih"], TORCH_GATES, axis=0)
        d_hh = _unfuse(grads["bias_hh"], TORCH_GATES, axis=0)
        out.update(db=(d_ih + d_hh) / 2, db_ih=d_ih, db_hh=d_hh)
    return out


def grads_from_keras(grads):
    """Gradients of {'kernel', 'recurrent_kernel', 'bias'} -> canonical {'dW', 'dU', 'db'}
    (the Keras remap is a permutation, so gradients map back like weights)."""
    w = from_keras(grads)
    return {"d" + k: v for k, v in w.items()}
