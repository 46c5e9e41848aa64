"""Assignment-style step functions whose bias gradient of the forget gate is the input
gate's: the four blocks of db are written out by hand and one line was copied.

    step_forward(x, prev_h, prev_c, Wx, Wh, b) -> next_h, next_c, cache
    step_backward(dnext_h, dnext_c, cache) -> dx, dprev_h, dprev_c, dWx, dWh, db

Gate blocks i, f, o, g along the last axis of Wx (D, 4H), Wh (H, 4H), b (4H,).
"""

import numpy as np

GATES = ("i", "f", "g", "o")
STYLE_GATES = ("i", "f", "o", "g")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    di = dc * g * i * (1 - i)
    df = dc * prev_c * f * (1 - f)
    do = dnext_h * tanh_c * o * (1 - o)
    dg = dc * i * (1 - g ** 2)
    da = np.concatenate([di, df, do, dg], axis=1)
    db = np.concatenate([di.sum(axis=0), di.sum(axis=0), do.sum(axis=0), dg.sum(axis=0)])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, db


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
    Wx, Wh, bs = _fuse(W), _fuse(U), _fuse(b)
    N, T, _ = x.shape
    hs, cs, caches = [], [], []
    h, c = h0, c0
    for t in range(T):
        h, c, cache = step_forward(x[:, t], h, c, Wx, Wh, bs)
        hs.append(h)
        cs.append(c)
        caches.append(cache)
    dh = np.zeros((N, T, h0.shape[1]), x.dtype)
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(bs)
    dprev_h, dprev_c = np.zeros_like(h0), gc
    for t in reversed(range(T)):
        dh[:, t] = gh[:, t] + dprev_h
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_backward(dh[:, t], dprev_c, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dict(h=np.stack(hs, 1), c=np.stack(cs, 1), dh=dh, dx=dx, dh0=dprev_h, dc0=dprev_c,
                dW=_split(dWx), dU=_split(dWh), db=_split(db))


run.cannot_observe = {"dc": "step_backward returns only dprev_c = dL/dc_t * f_t"}
