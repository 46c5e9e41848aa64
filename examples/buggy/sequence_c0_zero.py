"""Assignment-style sequence API that starts from c = 0 and has no gradient of C_T.

    forward(x, h0, Wx, Wh, b) -> h (N, T, H), cache
    backward(dh, cache) -> dx, dh0, dWx, dWh, db

Gate blocks i, f, o, g along the last axis of Wx (D, 4H), Wh (H, 4H), b (4H,).

What is wrong under the canonical contract: the sequence functions have no c0 argument
(the cell state starts from zero) and no incoming gradient of the final cell state, so the
adapter cannot pass c0 or gc. It agrees with the canonical LSTM only when c0 = 0 and
gc = 0 (the "zero" regime).
"""

import numpy as np

GATES = ("i", "f", "g", "o")  # the canonical order the adapter converts to
STYLE_GATES = ("i", "f", "o", "g")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H), x.dtype)
    prev_h, prev_c = h0, np.zeros_like(h0)
    cache = []
    for t in range(T):
        a = x[:, t] @ Wx + prev_h @ Wh + b
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
        o, g = sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
        next_c = f * prev_c + i * g
        next_h = o * np.tanh(next_c)
        cache.append((x[:, t], prev_h, prev_c, i, f, o, g, next_c))
        h[:, t] = next_h
        prev_h, prev_c = next_h, next_c
    return h, (cache, Wx, Wh)


def backward(dh, cache):
    cache, Wx, Wh = cache
    N, T, H = dh.shape
    dx = np.zeros((N, T, Wx.shape[0]), dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H, dh.dtype)
    dprev_h = np.zeros((N, H), dh.dtype)
    dprev_c = np.zeros((N, H), dh.dtype)
    for t in reversed(range(T)):
        x_t, prev_h, prev_c, i, f, o, g, next_c = cache[t]
        dnext_h = dh[:, t] + dprev_h
        tanh_c = np.tanh(next_c)
        dc = dprev_c + dnext_h * o * (1 - tanh_c ** 2)
        da = np.hstack([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                        dnext_h * tanh_c * o * (1 - o), dc * i * (1 - g ** 2)])
        dx[:, t] = da @ Wx.T
        dWx += x_t.T @ da
        dWh += prev_h.T @ da
        db += da.sum(axis=0)
        dprev_h = da @ Wh.T
        dprev_c = dc * f
    return dx, dprev_h, dWx, dWh, db


# --- adapter to the canonical contract ---------------------------------------------

_ORDER = [GATES.index(name) for name in STYLE_GATES]


def _fuse(a):
    return np.concatenate(list(a[_ORDER]), axis=-1)


def _split(a):
    parts = np.split(a, 4, axis=-1)
    out = [None] * 4
    for part, k in zip(parts, _ORDER):
        out[k] = part
    return np.stack(out)


def run(x, h0, c0, W, U, b, gh, gc):
    """The sequence API under the canonical contract: h0 and gh are passed; c0 and gc
    have nowhere to go."""
    h, cache = forward(x, h0, _fuse(W), _fuse(U), _fuse(b))
    c = np.stack([step[-1] for step in cache[0]], axis=1)
    dx, dh0, dWx, dWh, db = backward(gh, cache)
    return dict(h=h, c=c, dx=dx, dh0=dh0, dW=_split(dWx), dU=_split(dWh), db=_split(db))


run.cannot_observe = {
    "dh": "backward returns only dh0, not dL/dh_t per step",
    "dc": "backward returns no cell-state gradient",
    "dc0": "the sequence starts from c = 0: there is no dc0",
}
