"""A dense + softmax + cross-entropy head on every step's hidden state.

    logits_t = h_t @ V + cb          V (H, K), cb (K,)
    p_t      = softmax(logits_t)     over the K classes
    L        = -sum_{b,t,k} y[b,t,k] * log p[b,t,k]     y (B, T, K): per-step target
                                                         distributions (rows sum to 1)

so dL/dlogits_t = p_t * sum_k y_t - y_t (= p_t - y_t for a distribution; the exact form
keeps the gradient exact when y's rows sum to 1 only to the dtype's precision) and the
LSTM receives gh_t = dL/dlogits_t @ V^T, gc = 0.
``run`` returns the LSTM contract of ``gatecheck.reference.lstm.run`` for that loss, plus
"dV" (H, K), "dcb" (K,), "p" (B, T, K) and "loss".
"""

import numpy as np

from gatecheck.reference import _validate as v
from gatecheck.reference import lstm

CONTRACT_KEYS = lstm.CONTRACT_KEYS + ("p", "dV", "dcb")


def log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def validate(V, cb, y, h_shape, dtype):
    B, T, H = h_shape
    for name, value, ndim in (("V", V, 2), ("cb", cb, 1), ("y", y, 3)):
        v.as_checked_array(name, value, ndim)
        v.check_finite(name, value)
        if value.dtype != dtype:
            raise TypeError(f"mixed dtypes: expected one dtype for all arguments, got x={dtype}, {name}={value.dtype}")
    K = y.shape[2]  # the targets define the classes
    v.check_shape("y", y, (B, T, K), "(B, T, K)")
    v.check_shape("V", V, (H, K), "(H, K)")
    v.check_shape("cb", cb, (K,), "(K,)")
    # A distribution rounded to float32 sums to 1 within a few float32 ulps.
    sums = y.sum(axis=-1)
    if np.any(y < 0) or not np.allclose(sums, 1, rtol=0, atol=8 * K * np.finfo(np.float32).eps):
        raise ValueError("y: expected per-step target distributions (non-negative, each row summing to 1)")


def run(x, h0, c0, W, U, b, V, cb, y, *, ulps=0):
    """The LSTM under the head's cross-entropy loss; see the module docstring (``ulps``:
    see ``gatecheck.reference.lstm.run``)."""
    B, T, D = x.shape
    H = h0.shape[1]
    zeros_gh, zeros_gc = np.zeros((B, T, H), x.dtype), np.zeros((B, H), x.dtype)
    lstm.validate(x, h0, c0, W, U, b, zeros_gh, zeros_gc)
    validate(V, cb, y, (B, T, H), x.dtype)
    fwd = lstm.forward_tm(x, h0, c0, W, U, b, ulps=ulps)
    h = np.swapaxes(fwd["h"], 0, 1)
    log_p = log_softmax(h @ V + cb)
    p = np.exp(log_p)
    d_logits = p * y.sum(axis=-1, keepdims=True) - y
    gh = d_logits @ V.T
    out = {k: np.swapaxes(val, 0, 1) for k, val in fwd.items()}
    out.update(lstm.backward(fwd, x, h0, c0, W, U, gh, zeros_gc, ulps=ulps))
    out.update(
        dV=h.reshape(B * T, H).T @ d_logits.reshape(B * T, -1),
        dcb=d_logits.sum(axis=(0, 1)),
        p=p,
        loss=-np.sum(y * log_p),
    )
    return out
