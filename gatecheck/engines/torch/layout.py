"""Pure NumPy remaps between the canonical LSTM layout and PyTorch's.

Canonical (see ``reference.lstm``): W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o.

PyTorch ``nn.LSTM`` / ``nn.LSTMCell``: weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,),
bias_hh (4H,), gate blocks i, f, g, o along the first axis; the step adds both biases.

Bias split for PyTorch: the canonical b is split in halves, bias_ih = bias_hh = b / 2
(exact in binary floating point, and both biases are exercised). By the chain rule the
canonical gradient is db = (d bias_ih + d bias_hh) / 2; each of the two is also reported
on its own (``db_ih``, ``db_hh``), since each must equal db.

Every function here takes and returns NumPy arrays only and imports no framework.
"""


from gatecheck.engines import gates

CANONICAL_GATES = gates.LSTM.canonical
TORCH_GATES = ("i", "f", "g", "o")
_fuse, _unfuse = gates.LSTM.fuse, gates.LSTM.unfuse


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
