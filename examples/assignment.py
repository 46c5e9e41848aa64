"""Row-major fused LSTM, "assignment style".

Layout: x (N, T, D), h (N, H); one input matrix Wx (D, 4H), one recurrent matrix
Wh (H, 4H) and one bias b (4H,), the gate blocks ordered **i, f, o, g** along the last
axis. The sequence functions start from c0 = 0 and take the upstream gradient of every
hidden state, dh (N, T, H); the step functions take any previous cell state and any
incoming cell gradient.

    step_forward(x, prev_h, prev_c, Wx, Wh, b) -> next_h, next_c, cache
    step_backward(dnext_h, dnext_c, cache) -> dx, dprev_h, dprev_c, dWx, dWh, db
    forward(x, h0, Wx, Wh, b) -> h, cache
    backward(dh, cache) -> dx, dh0, dWx, dWh, db

``run`` adapts the step functions to the canonical contract. Its ``cannot_observe``
names the one contract quantity this style does not expose: step_backward folds
dnext_h into the cell gradient internally and returns only dprev_c = dL/dc_t * f_t.
"""

import numpy as np

# The adapter's target: gatecheck's canonical gate order (its README, "Contracts").
GATES = ("i", "f", "g", "o")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))

STYLE_GATES = ("i", "f", "o", "g")


def step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    da = np.concatenate(
        [dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tanh_c * o * (1 - o), dc * i * (1 - g**2)],
        axis=1,
    )
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]), x.dtype)
    prev_h, prev_c = h0, np.zeros_like(h0)
    cache = []
    for t in range(T):
        prev_h, prev_c, step_cache = step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        cache.append(step_cache)
    return h, cache


def backward(dh, cache):
    N, T, H = dh.shape
    x0, _, _, Wx, Wh = cache[0][:5]
    dx = np.empty((N, T, x0.shape[1]), dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(4 * H, dh.dtype)
    dprev_h, dprev_c = np.zeros((N, H), dh.dtype), np.zeros((N, H), dh.dtype)
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


# --- adapter to the canonical contract ---------------------------------------------

_ORDER = [GATES.index(name) for name in STYLE_GATES]


def to_style(W, U, b):
    """Canonical (4, D, H), (4, H, H), (4, H) -> Wx (D, 4H), Wh (H, 4H), b (4H,)."""
    return (np.concatenate(W[_ORDER], axis=1), np.concatenate(U[_ORDER], axis=1),
            np.concatenate(b[_ORDER]))


def from_style(dWx, dWh, db):
    """Style gradients -> canonical per-gate (4, D, H), (4, H, H), (4, H)."""
    def blocks(a):
        parts = np.split(a, 4, axis=-1)
        out = [None] * 4
        for part, k in zip(parts, _ORDER, strict=True):
            out[k] = part
        return np.stack(out)
    return blocks(dWx), blocks(dWh), blocks(db)


def adapter(step_forward, step_backward):
    """``run`` for a pair of step functions of this style (any c0, gc)."""
    def run(x, h0, c0, W, U, b, gh, gc):
        return _run(step_forward, step_backward, x, h0, c0, W, U, b, gh, gc)
    run.cannot_observe = dict(CANNOT_OBSERVE)
    return run


CANNOT_OBSERVE = {
    "dc": "step_backward folds dnext_h into the cell gradient internally and returns only "
          "dprev_c = dL/dc_t * f_t",
}


def _run(step_forward, step_backward, x, h0, c0, W, U, b, gh, gc):
    Wx, Wh, bs = to_style(W, U, b)
    N, T, _ = x.shape
    hs, cs, caches = [], [], []
    h, c = h0, c0
    for t in range(T):
        h, c, cache = step_forward(x[:, t], h, c, Wx, Wh, bs)
        hs.append(h)
        cs.append(c)
        caches.append(cache)
    dh = np.empty((N, T, h0.shape[1]), x.dtype)
    dx = np.empty_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(bs)
    dprev_h, dprev_c = np.zeros_like(h0), gc
    for t in reversed(range(T)):
        dh[:, t] = gh[:, t] + dprev_h
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_backward(dh[:, t], dprev_c, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dW, dU, dbc = from_style(dWx, dWh, db)
    return dict(h=np.stack(hs, 1), c=np.stack(cs, 1), dh=dh, dx=dx, dh0=dprev_h, dc0=dprev_c,
                dW=dW, dU=dU, db=dbc)


# The step functions under the canonical contract.
run = adapter(step_forward, step_backward)
