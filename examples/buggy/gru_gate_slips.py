"""A hand-written GRU (reset after, the PyTorch convention) whose backward pass has several slips in
the local derivatives of the reset and update gates, made while deriving them by hand:

- z: the difference taken as n_t - h_{t-1} (as for h = z n + (1 - z) h_prev, not this forward's
  h = (1 - z) n + z h_prev), and the sigmoid's derivative written (1 - z) instead of z (1 - z);
- r: multiplied by h_{t-1} U_n, the recurrent bias b_hn left out of what r_t scales.

    gru_forward(x, h0, p) -> hs (N, T, H), cache
    gru_backward(dhs, cache) -> dx, dhs_total, dh0, grads {"W_r", "U_r", "bx_r", "bh_r", ...}

x (N, T, D); per gate W_k (D, H), U_k (H, H), bx_k, bh_k (H,), k in r, z, n.
"""

import numpy as np

GATES = ("r", "z", "n")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def gru_forward(x, h0, p):
    N, T, _ = x.shape
    hs = np.zeros((N, T, h0.shape[1]), x.dtype)
    cache = []
    h = h0
    for t in range(T):
        xt = x[:, t]
        r = sigmoid(xt @ p["W_r"] + p["bx_r"] + h @ p["U_r"] + p["bh_r"])
        z = sigmoid(xt @ p["W_z"] + p["bx_z"] + h @ p["U_z"] + p["bh_z"])
        hn = h @ p["U_n"] + p["bh_n"]
        n = np.tanh(xt @ p["W_n"] + p["bx_n"] + r * hn)
        cache.append((xt, h, r, z, n))
        h = (1 - z) * n + z * h
        hs[:, t] = h
    return hs, (cache, p)


def gru_backward(dhs, cache):
    cache, p = cache
    N, T, H = dhs.shape
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    dx = np.zeros((N, T, p["W_r"].shape[0]), dhs.dtype)
    dh_total = np.zeros_like(dhs)
    dh_next = np.zeros((N, H), dhs.dtype)
    for t in reversed(range(T)):
        xt, h_prev, r, z, n = cache[t]
        dh = dhs[:, t] + dh_next
        dh_total[:, t] = dh
        da_n = dh * (1 - z) * (1 - n ** 2)
        da_z = dh * (n - h_prev) * (1 - z)
        da_r = da_n * (h_prev @ p["U_n"]) * r * (1 - r)
        dh_prev = dh * z
        for k, da_x, da_h in (("r", da_r, da_r), ("z", da_z, da_z), ("n", da_n, da_n * r)):
            grads["W_" + k] += xt.T @ da_x
            grads["bx_" + k] += da_x.sum(axis=0)
            grads["U_" + k] += h_prev.T @ da_h
            grads["bh_" + k] += da_h.sum(axis=0)
            dx[:, t] += da_x @ p["W_" + k].T
            dh_prev = dh_prev + da_h @ p["U_" + k].T
        dh_next = dh_prev
    return dx, dh_total, dh_next, grads


def run(x, h0, W, U, bx, bh, gh):
    p = {}
    for n, k in enumerate(GATES):
        p["W_" + k], p["U_" + k], p["bx_" + k], p["bh_" + k] = W[n], U[n], bx[n], bh[n]
    hs, cache = gru_forward(x, h0, p)
    dx, dh, dh0, g = gru_backward(gh, cache)
    return dict(h=hs, dh=dh, dx=dx, dh0=dh0, **{name: np.stack([g[name[1:] + "_" + k] for k in GATES])
                                               for name in ("dW", "dU", "dbx", "dbh")})
