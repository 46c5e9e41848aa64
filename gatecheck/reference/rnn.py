"""NumPy reference vanilla (Elman) RNN: forward pass and backpropagation through time.

Canonical layout (batch-major)::

    x (B, T, D)   h0 (B, H)   W (D, H)   U (H, H)   b (H,)
    gh (B, T, H)  upstream gradient of the loss

    z_t = x_t @ W + h_{t-1} @ U + b
    h_t = tanh(z_t)          (or another activation: ``activation``, gatecheck.reference.activations;
                              ONNX's ``clip``: h_t = tanh(clip(z_t)), z_t clipped to [-clip, clip])
    L = sum(gh * h)

``run`` is the candidate contract every implementation under test follows. It returns

    h, dh  (B, T, H)  state after every step and total dL/dh_t
    dW (D, H), dU (H, H), db (H,), dx (B, T, D), dh0 (B, H)

and, beyond the contract, ``dz`` (B, T, H) (dL/dz_t, the pre-activation deltas).
Arithmetic stays in the dtype of the inputs (float32 or float64; float64 is the
canonical reference).
"""

import numpy as np

from gatecheck.reference import _numerics, activations
from gatecheck.reference import _validate as v

CONTRACT_KEYS = ("h", "dh", "dW", "dU", "db", "dx", "dh0")


def loss(h, gh):
    """The scalar loss all gradients refer to."""
    return np.sum(gh * h)


def batch_major(a):
    """Time-major (T, B, ...) -> batch-major (B, T, ...), as a view."""
    return np.swapaxes(a, 0, 1)


def validate(x, h0, W, U, b, gh):
    """Check every argument of ``run``; return (B, T, D, H)."""
    args = dict(x=x, h0=h0, W=W, U=U, b=b, gh=gh)
    ndims = dict(x=3, h0=2, W=2, U=2, b=1, gh=3)
    B, T, D = v.sequence_arguments(args, ndims)
    H = W.shape[1]
    if H == 0:
        raise ValueError(f"W: expected H >= 1, got shape {W.shape}")
    v.check_shape("W", W, (D, H), "(D, H)")
    v.check_shape("U", U, (H, H), "(H, H)")
    v.check_shape("b", b, (H,), "(H,)")
    v.check_shape("h0", h0, (B, H), "(B, H)")
    v.check_shape("gh", gh, (B, T, H), "(B, T, H)")
    for name, value in args.items():
        v.check_finite(name, value)
    return B, T, D, H


def input_projection(x, W, b):
    """x_t @ W + b for every step at once, time-major: (B, T, D) -> (T, B, H)."""
    B, T, D = x.shape
    x_tm = np.ascontiguousarray(batch_major(x)).reshape(T * B, D)
    xw = (x_tm @ W).reshape(T, B, -1)
    xw += b
    return xw


def forward_tm(x, h0, W, U, b, ulps=0, activation="tanh", clip=None):
    """Unchecked forward pass, time-major: h (T, B, H)."""
    act = activations.clipped(activation, clip)
    h = input_projection(x, W, b)  # x_t @ W + b for every step, made z_t then h_t in place
    h_t = h0
    for t in range(len(h)):
        h[t] += h_t @ U
        h[t] = act(h[t])
        h_t = _numerics.jitter(h[t], ulps)
    return h


def forward(x, h0, W, U, b, ulps=0, activation="tanh", clip=None):
    """Unchecked forward pass: h (B, T, H)."""
    return dict(h=batch_major(forward_tm(x, h0, W, U, b, ulps, activation, clip)))


def backward(h, x, h0, W, U, gh, b=None, activation="tanh", clip=None):
    """Unchecked BPTT from the time-major h of ``forward_tm``; batch-major results. The activation's
    derivative at each step's pre-activation z_t (recomputed from x, h_{t-1} and b, as the forward pass
    made it; tanh's is written from h_t alone: 1 - h_t^2; under a clip, 0 where it holds z_t)."""
    T, B, H = h.shape
    D = x.shape[2]
    act = activations.clipped(activation, clip)
    h_prev = np.concatenate([h0[None], h[:-1]])
    gh = batch_major(gh)
    dh = np.empty_like(h)
    dz = np.empty_like(h)
    if act.name == "tanh":
        slope = 1 - h * h
    else:
        z = input_projection(x, W, b)
        z += h_prev @ U
        slope = act.derivative(z, h)
    # The delta flows back through time along the recurrence only: dh_t is the upstream
    # gh_t plus dz_{t+1} @ U^T (h_t fed step t+1); dz_t = dh_t * f'(z_t).
    dh_from_next = np.zeros((B, H), x.dtype)
    for t in reversed(range(T)):
        dh_t = np.add(gh[t], dh_from_next, out=dh[t])
        np.multiply(dh_t, slope[t], out=dz[t])
        dh_from_next = dz[t] @ U.T
    dz_flat = dz.reshape(T * B, H)
    x_tm = batch_major(x).reshape(T * B, D)
    return dict(
        dh=batch_major(dh), dz=batch_major(dz),
        dx=batch_major((dz_flat @ W.T).reshape(T, B, D)),
        dW=x_tm.T @ dz_flat, dU=h_prev.reshape(T * B, H).T @ dz_flat, db=dz_flat.sum(axis=0),
        dh0=dh_from_next,
    )


def run(x, h0, W, U, b, gh, *, ulps=0, activation="tanh", clip=None):
    """Forward and backward pass under the candidate contract (see the module docstring);
    ``ulps`` moves every activation by that many ulps (see ``reference._numerics``); ``activation``:
    a name of gatecheck.reference.activations (the keyword a candidate is called with under an
    activation option); ``clip``: ONNX's clip threshold on the activation's input (None: no clip)."""
    validate(x, h0, W, U, b, gh)
    h = forward_tm(x, h0, W, U, b, ulps, activation, clip)
    return {"h": batch_major(h), **backward(h, x, h0, W, U, gh, b, activation, clip)}


def no_bias(W):
    """The bias a no-bias RNN stands for: b = 0 (H,) in W's dtype (z_t = x_t W + h_{t-1} U)."""
    return {"b": np.zeros(W.shape[1], W.dtype)}


def run_nobias(x, h0, W, U, gh, *, ulps=0, activation="tanh", clip=None):
    """The contract under the no-bias option (Keras use_bias=False, PyTorch bias=False): no
    ``b`` in, no ``db`` out. The model is the RNN at b = 0, exactly."""
    out = run(x, h0, W, U, **no_bias(W), gh=gh, ulps=ulps, activation=activation, clip=clip)
    del out["db"]
    return out


# The outputs of ``run`` without a time axis (gradients of the parameters and initial states):
# every other output is per step, time on axis 1.
TIMELESS = ("dW", "dU", "db", "dh0")


def run_rev(x, h0, W, U, b, gh, *, reverse=True, ulps=0, activation="tanh", clip=None):
    """The contract under the reverse option (Keras go_backwards=True): the layer consumes
    x[:, T-1] first and x[:, 0] last. Inputs and outputs are those of ``run``, every per-step
    array indexed by the original t (h[:, t] is the state after x[:, t]). One loop: ``run`` on
    the time-flipped sequence, its per-step outputs flipped back.
    ``reverse``: the keyword every candidate is called with under the option (always True).
    """
    if not reverse:
        raise ValueError("run_rev is the reverse model: reverse must be True (the forward one is run)")
    out = run(x[:, ::-1], h0, W, U, b, gh[:, ::-1], ulps=ulps, activation=activation, clip=clip)
    return {k: v if k in TIMELESS else v[:, ::-1] for k, v in out.items()}
