"""Pure NumPy remaps between the canonical vanilla-RNN layout and Keras'.

Canonical (see ``reference.rnn``): W (D, H), U (H, H), b (H,); z_t = x_t @ W + h_{t-1} @ U + b.

Keras ``SimpleRNNCell`` / ``SimpleRNN``: kernel (D, H), recurrent_kernel (H, H), bias (H,);
the cell computes ``x @ kernel + bias + h @ recurrent_kernel``, the canonical layout itself.

Every function here takes and returns NumPy arrays only and imports no framework.
"""



def to_keras(params):
    """{'W', 'U', 'b'} -> {'kernel', 'recurrent_kernel', 'bias'}; without 'b' (no bias) no 'bias'."""
    out = {"kernel": params["W"].copy(), "recurrent_kernel": params["U"].copy()}
    if "b" in params:
        out["bias"] = params["b"].copy()
    return out


def from_keras(weights):
    """{'kernel', 'recurrent_kernel', 'bias'} (weights or their gradients) -> {'W', 'U', 'b'};
    without 'bias' (no bias) no 'b'."""
    out = {"W": weights["kernel"].copy(), "U": weights["recurrent_kernel"].copy()}
    if "bias" in weights:
        out["b"] = weights["bias"].copy()
    return out


def grads_from_keras(grads):
    """Gradients of {'kernel', 'recurrent_kernel', 'bias'} -> canonical {'dW', 'dU', 'db'}."""
    w = from_keras(grads)
    return {"d" + k: v for k, v in w.items()}
