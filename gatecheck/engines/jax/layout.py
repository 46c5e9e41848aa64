"""Pure NumPy remaps between the canonical layouts and the JAX models of ``gatecheck.engines.jax.oracles``.

The JAX models are written the way JAX code commonly is: one fused kernel per model, its gate
blocks side by side on the last axis, split with ``jnp.split`` in the step.

LSTM (canonical W (4, D, H), U (4, H, H), b (4, H), gates i, f, g, o): one ``kernel`` (D + H, 4H)
applied to ``concat([x_t, h_{t-1}])`` (rows 0..D-1 are W, rows D.. are U) and a ``bias`` (4H,),
gate blocks **i, g, f, o** along the last axis (the split ``i, g, f, o = jnp.split(z, 4, -1)`` of
dm-haiku's LSTM). The bias carries no built-in forget offset.

RNN (canonical W (D, H), U (H, H), b (H,)): one ``kernel`` (D + H, H) on ``concat([x_t, h_{t-1}])``
and a ``bias`` (H,).

GRU, both reset conventions (canonical W (3, D, H), U (3, H, H), bx, bh (3, H), gates r, z, n):
``kernel`` (D, 3H) and ``recurrent_kernel`` (H, 3H) (the recurrent side stays apart: r_t scales
it for n), ``input_bias`` and ``recurrent_bias`` (3H,), gate blocks **r, z, n** along the last
axis. input_bias is bx and recurrent_bias is bh, exactly.

Every remap is a concatenation and a permutation of blocks, so gradients map back like weights.
Without the canonical bias (the no-bias option) there is no bias entry. Every function here takes
and returns NumPy arrays only and imports no framework.
"""

import numpy as np

LSTM_CANONICAL = ("i", "f", "g", "o")
LSTM_GATES = ("i", "g", "f", "o")
GRU_CANONICAL = ("r", "z", "n")
GRU_GATES = ("r", "z", "n")


def fuse(blocks, canonical, gates):
    """(G, ..., H) canonical gate blocks -> (..., G*H) with the blocks in the order ``gates``."""
    return np.concatenate([blocks[canonical.index(g)] for g in gates], axis=-1)


def unfuse(fused, canonical, gates):
    """Inverse of ``fuse``: (..., G*H) in the order ``gates`` -> (G, ..., H) canonical blocks."""
    parts = np.split(fused, len(gates), axis=-1)
    return np.stack([parts[gates.index(g)] for g in canonical])


def to_jax_lstm(params):
    """{'W', 'U', 'b'} -> {'kernel' (D + H, 4H), 'bias' (4H,)}; without 'b' no 'bias'."""
    out = {"kernel": np.concatenate([fuse(params["W"], LSTM_CANONICAL, LSTM_GATES),
                                     fuse(params["U"], LSTM_CANONICAL, LSTM_GATES)], axis=0)}
    if "b" in params:
        out["bias"] = fuse(params["b"], LSTM_CANONICAL, LSTM_GATES)
    return out


def from_jax_lstm(weights, D):
    """{'kernel', 'bias'} (weights or their gradients) -> {'W', 'U', 'b'}; ``D`` is the input width
    (the kernel's first D rows act on x_t)."""
    kernel = weights["kernel"]
    out = {"W": unfuse(kernel[:D], LSTM_CANONICAL, LSTM_GATES), "U": unfuse(kernel[D:], LSTM_CANONICAL, LSTM_GATES)}
    if "bias" in weights:
        out["b"] = unfuse(weights["bias"], LSTM_CANONICAL, LSTM_GATES)
    return out


def grads_from_jax_lstm(grads, D):
    """Gradients of {'kernel', 'bias'} -> canonical {'dW', 'dU', 'db'}."""
    return {"d" + k: v for k, v in from_jax_lstm(grads, D).items()}


def to_jax_rnn(params):
    """{'W', 'U', 'b'} -> {'kernel' (D + H, H), 'bias' (H,)}; without 'b' no 'bias'."""
    out = {"kernel": np.concatenate([params["W"], params["U"]], axis=0)}
    if "b" in params:
        out["bias"] = params["b"].copy()
    return out


def from_jax_rnn(weights, D):
    """{'kernel', 'bias'} (weights or their gradients) -> {'W', 'U', 'b'}."""
    out = {"W": weights["kernel"][:D].copy(), "U": weights["kernel"][D:].copy()}
    if "bias" in weights:
        out["b"] = weights["bias"].copy()
    return out


def grads_from_jax_rnn(grads, D):
    """Gradients of {'kernel', 'bias'} -> canonical {'dW', 'dU', 'db'}."""
    return {"d" + k: v for k, v in from_jax_rnn(grads, D).items()}


# The GRU's canonical arrays and the JAX model's, one to one (each fused along the last axis).
GRU_NAMES = (("W", "kernel"), ("U", "recurrent_kernel"), ("bx", "input_bias"), ("bh", "recurrent_bias"))


def to_jax_gru(params):
    """{'W', 'U', 'bx', 'bh'} -> {'kernel' (D, 3H), 'recurrent_kernel' (H, 3H), 'input_bias',
    'recurrent_bias' (3H,)}; without 'bx', 'bh' no biases."""
    return {j: fuse(params[c], GRU_CANONICAL, GRU_GATES) for c, j in GRU_NAMES if c in params}


def from_jax_gru(weights, D=None):
    """{'kernel', 'recurrent_kernel', 'input_bias', 'recurrent_bias'} (weights or their gradients)
    -> {'W', 'U', 'bx', 'bh'} (``D`` unused: the kernels are apart)."""
    return {c: unfuse(weights[j], GRU_CANONICAL, GRU_GATES) for c, j in GRU_NAMES if j in weights}


def grads_from_jax_gru(grads, D=None):
    """Gradients of the GRU's arrays -> canonical {'dW', 'dU', 'dbx', 'dbh'}."""
    return {"d" + k: v for k, v in from_jax_gru(grads).items()}
