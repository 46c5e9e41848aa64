"""Pure NumPy remaps between the canonical LSTM layout and Keras'.

Canonical (see ``reference.lstm``): W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o.

Keras ``LSTMCell`` / ``LSTM``: kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,),
gate blocks i, f, c, o along the last axis (Keras calls the candidate gate "c").

Every function here takes and returns NumPy arrays only and imports no framework.
"""


from gatecheck.engines import gates

CANONICAL_GATES = gates.LSTM.canonical
KERAS_GATES = ("i", "f", "c", "o")
_fuse, _unfuse = gates.LSTM.fuse, gates.LSTM.unfuse


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


def grads_from_keras(grads):
    """Gradients of {'kernel', 'recurrent_kernel', 'bias'} -> canonical {'dW', 'dU', 'db'}
    (the Keras remap is a permutation, so gradients map back like weights)."""
    w = from_keras(grads)
    return {"d" + k: v for k, v in w.items()}
