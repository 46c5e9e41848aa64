"""Column-major per-gate GRU, "course style".

Layout: batch on the last axis. x_t (D, m), hidden state h (H, m); three matrices Wr, Wz,
Wn, each (H, H + D), acting on the concatenation [h_prev; x_t] (hidden first), one bias per
gate br, bz, bn (H, 1)::

    r = sigmoid(Wr [h_prev; x_t] + br)
    z = sigmoid(Wz [h_prev; x_t] + bz)
    n = tanh(Wn [r * h_prev; x_t] + bn)                                    reset before (Cho et al. v3)
    n = tanh(Wn[:, H:] x_t + bn + r * (Wn[:, :H] h_prev + bhn))            reset after (PyTorch, cuDNN)
    h_next = z * h_prev + (1 - z) * n

The reset-after variant needs a second bias for n, bhn (H, 1), inside r.

    gru_cell_forward(xt, h_prev, parameters, reset_after) -> h_next, cache
    gru_cell_backward(dh_next, cache) -> {"dxt", "dh_prev", "dWr", "dbr", "dWz", "dbz", "dWn", "dbn"[, "dbhn"]}

``run`` adapts the cell functions to gatecheck's ``gru`` contract (reset after),
``run_before`` to ``gru-reset-before``. One bias per gate stands for the contract's two:
br = bx[r] + bh[r] (both are added outside any gate), so d bx[r] = d bh[r] = dbr.
"""

import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def gru_cell_forward(xt, h_prev, parameters, reset_after=False):
    p = parameters
    H = h_prev.shape[0]
    concat = np.concatenate([h_prev, xt], axis=0)
    r = sigmoid(p["Wr"] @ concat + p["br"])
    z = sigmoid(p["Wz"] @ concat + p["bz"])
    if reset_after:
        hn = p["Wn"][:, :H] @ h_prev + p["bhn"]
        n = np.tanh(p["Wn"][:, H:] @ xt + p["bn"] + r * hn)
    else:
        hn = None
        n = np.tanh(p["Wn"] @ np.concatenate([r * h_prev, xt], axis=0) + p["bn"])
    h_next = z * h_prev + (1 - z) * n
    return h_next, (h_prev, xt, r, z, n, hn, parameters, reset_after)


def gru_cell_backward(dh_next, cache):
    h_prev, xt, r, z, n, hn, p, reset_after = cache
    H = h_prev.shape[0]
    concat = np.concatenate([h_prev, xt], axis=0)
    dan = dh_next * (1 - z) * (1 - n ** 2)
    daz = dh_next * (h_prev - n) * z * (1 - z)
    dh_prev = dh_next * z
    Wn_h, Wn_x = p["Wn"][:, :H], p["Wn"][:, H:]
    grads = {}
    if reset_after:
        dhn = dan * r
        dar = dan * hn * r * (1 - r)
        dWn = np.concatenate([dhn @ h_prev.T, dan @ xt.T], axis=1)
        grads["dbhn"] = dhn.sum(axis=1, keepdims=True)
        dh_prev = dh_prev + Wn_h.T @ dhn
    else:
        drh = Wn_h.T @ dan
        dar = drh * h_prev * r * (1 - r)
        dWn = dan @ np.concatenate([r * h_prev, xt], axis=0).T
        dh_prev = dh_prev + drh * r
    dxt = Wn_x.T @ dan
    for da, W in ((dar, p["Wr"]), (daz, p["Wz"])):
        dconcat = W.T @ da
        dh_prev = dh_prev + dconcat[:H]
        dxt = dxt + dconcat[H:]
    grads.update(dxt=dxt, dh_prev=dh_prev, dWr=dar @ concat.T, dbr=dar.sum(axis=1, keepdims=True),
                 dWz=daz @ concat.T, dbz=daz.sum(axis=1, keepdims=True), dWn=dWn,
                 dbn=dan.sum(axis=1, keepdims=True))
    return grads


# --- the adapter to gatecheck's contract (gates r, z, n on the first axis, row-major) ----


def to_style(W, U, bx, bh, reset_after):
    """Canonical W (3, D, H), U (3, H, H), bx, bh (3, H) -> the style's parameters."""
    p = {}
    for k, name in enumerate("rzn"):
        p["W" + name] = np.concatenate([U[k].T, W[k].T], axis=1)
    p["br"] = (bx[0] + bh[0])[:, None]
    p["bz"] = (bx[1] + bh[1])[:, None]
    if reset_after:
        p["bn"], p["bhn"] = bx[2][:, None], bh[2][:, None]
    else:
        p["bn"] = (bx[2] + bh[2])[:, None]
    return p


def from_style(grads, H, reset_after):
    """The style's summed gradients -> canonical dW, dU, dbx, dbh."""
    dW = np.stack([grads["dW" + name][:, H:].T for name in "rzn"])
    dU = np.stack([grads["dW" + name][:, :H].T for name in "rzn"])
    dbx = np.stack([grads["db" + name][:, 0] for name in "rzn"])
    dbh = dbx.copy()
    if reset_after:
        dbh[2] = grads["dbhn"][:, 0]
    return dW, dU, dbx, dbh


def _run(x, h0, W, U, bx, bh, gh, reset_after):
    B, T, D = x.shape
    H = h0.shape[1]
    p = to_style(W, U, bx, bh, reset_after)
    h_next = h0.T
    caches, hs = [], []
    for t in range(T):
        h_next, cache = gru_cell_forward(x[:, t].T, h_next, p, reset_after)
        hs.append(h_next.T)
        caches.append(cache)
    dh, dx = np.empty((B, T, H), x.dtype), np.empty_like(x)
    total = {}
    dh_prev = np.zeros_like(h0.T)
    for t in reversed(range(T)):
        dh[:, t] = gh[:, t] + dh_prev.T
        step = gru_cell_backward(dh[:, t].T, caches[t])
        dx[:, t] = step["dxt"].T
        dh_prev = step["dh_prev"]
        for k, v in step.items():
            if k.startswith("dW") or k.startswith("db"):
                total[k] = total.get(k, 0) + v
    dW, dU, dbx, dbh = from_style(total, H, reset_after)
    return dict(h=np.stack(hs, 1), dh=dh, dx=dx, dh0=dh_prev.T, dW=dW, dU=dU, dbx=dbx, dbh=dbh)


def run(x, h0, W, U, bx, bh, gh):
    """The cell functions, reset after (gatecheck's ``gru`` family)."""
    return _run(x, h0, W, U, bx, bh, gh, reset_after=True)


def run_before(x, h0, W, U, bx, bh, gh):
    """The cell functions, reset before (gatecheck's ``gru-reset-before`` family)."""
    return _run(x, h0, W, U, bx, bh, gh, reset_after=False)
