"""Column-major per-gate LSTM, "course style".

Layout: batch on the last axis. x_t (D, m), hidden state a (H, m), cell state c (H, m);
four matrices Wf, Wi, Wc, Wo, each (H, H + D), acting on the concatenation
[a_prev; x_t] (hidden first), biases bf, bi, bc, bo (H, 1); an output head
y_t = softmax(Wy a_t + by) with Wy (V, H), by (V, 1) (softmax over each column).

    lstm_cell_forward(xt, a_prev, c_prev, parameters) -> a_next, c_next, yt_pred, cache
    lstm_cell_backward(da_next, dc_next, cache) -> {"dxt", "da_prev", "dc_prev",
                                                    "dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo"}
    lstm_forward(x, a0, parameters) -> a (H, m, T), y (V, m, T), c (H, m, T), caches   (c0 = 0)
    lstm_backward(da, caches) -> {"dx" (D, m, T), "da0", "dWf", "dbf", ...}

``lstm_backward`` takes the upstream gradient of every a_t, da (H, m, T); the output head
is not differentiated there. ``run`` adapts the cell functions to the canonical contract
(``adapter`` builds it from a cell backward: course_buggy.py has one with a slip); like the
assignment style, this style returns only dc_prev = dL/dc_t * f_t, so dL/dc_t itself is
declared unobservable.

It ships in the package so that ``python -m gatecheck demo`` runs after a plain install; the
repository's examples/course.py is this module under its old name.
"""

import numpy as np

# The adapter's target: gatecheck's canonical gate order (docs/guide/contracts.md).
GATES = ("i", "f", "g", "o")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))

# The style's gate letters -> canonical gate names.
STYLE_GATES = {"f": "f", "i": "i", "c": "g", "o": "o"}


def softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    p = parameters
    concat = np.concatenate([a_prev, xt], axis=0)
    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(p["Wy"] @ a_next + p["by"])
    return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p)


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p = cache
    H = a_prev.shape[0]
    concat = np.concatenate([a_prev, xt], axis=0)
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * ot * (1 - tanh_c**2)
    dot = da_next * tanh_c * ot * (1 - ot)
    dcct = dc * it * (1 - cct**2)
    dit = dc * cct * it * (1 - it)
    dft = dc * c_prev * ft * (1 - ft)
    grads = {}
    dconcat = 0
    for name, d in (("f", dft), ("i", dit), ("c", dcct), ("o", dot)):
        grads["dW" + name] = d @ concat.T
        grads["db" + name] = d.sum(axis=1, keepdims=True)
        dconcat = dconcat + p["W" + name].T @ d
    grads["da_prev"], grads["dxt"] = dconcat[:H], dconcat[H:]
    grads["dc_prev"] = dc * ft
    return grads


def lstm_forward(x, a0, parameters):
    (_, m, T), H, V = x.shape, a0.shape[0], parameters["Wy"].shape[0]
    a, c = np.zeros((H, m, T), x.dtype), np.zeros((H, m, T), x.dtype)
    y = np.zeros((V, m, T), x.dtype)
    a_next, c_next = a0, np.zeros_like(a0)
    caches = []
    for t in range(T):
        a_next, c_next, y[:, :, t], cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t] = a_next, c_next
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_backward(da, caches):
    caches, x = caches
    (H, m, T), D = da.shape, x.shape[0]
    grads = {"dx": np.zeros((D, m, T), da.dtype)}
    for name in ("f", "i", "c", "o"):
        grads["dW" + name] = np.zeros((H, H + D), da.dtype)
        grads["db" + name] = np.zeros((H, 1), da.dtype)
    da_prev, dc_prev = np.zeros((H, m), da.dtype), np.zeros((H, m), da.dtype)
    for t in reversed(range(T)):
        step = lstm_cell_backward(da[:, :, t] + da_prev, dc_prev, caches[t])
        grads["dx"][:, :, t] = step["dxt"]
        da_prev, dc_prev = step["da_prev"], step["dc_prev"]
        for name in ("f", "i", "c", "o"):
            grads["dW" + name] += step["dW" + name]
            grads["db" + name] += step["db" + name]
    grads["da0"] = da_prev
    return grads


# --- adapter to the canonical contract ---------------------------------------------


def to_style(W, U, b, Wy=None, by=None):
    """Canonical W (4, D, H), U (4, H, H), b (4, H) -> the parameters dict. The head
    (Wy, by) does not enter the LSTM contract; by default a zero head of width 1."""
    H = U.shape[1]
    p = {}
    for letter, gate in STYLE_GATES.items():
        k = GATES.index(gate)
        p["W" + letter] = np.concatenate([U[k].T, W[k].T], axis=1)
        p["b" + letter] = b[k][:, None].copy()
    p["Wy"] = np.zeros((1, H), W.dtype) if Wy is None else Wy
    p["by"] = np.zeros((p["Wy"].shape[0], 1), W.dtype) if by is None else by
    return p


def from_style(grads):
    """{"dWf", "dbf", ...} -> canonical dW (4, D, H), dU (4, H, H), db (4, H)."""
    H = grads["dWf"].shape[0]
    dW, dU, db = [None] * 4, [None] * 4, [None] * 4
    for letter, gate in STYLE_GATES.items():
        k = GATES.index(gate)
        w = grads["dW" + letter]
        dU[k], dW[k], db[k] = w[:, :H].T, w[:, H:].T, grads["db" + letter][:, 0]
    return np.stack(dW), np.stack(dU), np.stack(db)


def adapter(cell_backward):
    """``run``, the cell functions under the canonical contract (any c0, gc), with
    ``cell_backward`` as the cell's backward pass."""

    def run(x, h0, c0, W, U, b, gh, gc):
        B, T, D = x.shape
        p = to_style(W, U, b)
        a_next, c_next = h0.T, c0.T
        caches, hs, cs = [], [], []
        for t in range(T):
            a_next, c_next, _, cache = lstm_cell_forward(x[:, t].T, a_next, c_next, p)
            hs.append(a_next.T)
            cs.append(c_next.T)
            caches.append(cache)
        dh, dx = np.empty((B, T, h0.shape[1]), x.dtype), np.empty_like(x)
        total = {k: 0 for k in ("dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo")}
        da_prev, dc_prev = np.zeros_like(h0.T), gc.T
        for t in reversed(range(T)):
            dh[:, t] = gh[:, t] + da_prev.T
            step = cell_backward(dh[:, t].T, dc_prev, caches[t])
            dx[:, t] = step["dxt"].T
            da_prev, dc_prev = step["da_prev"], step["dc_prev"]
            for k in total:
                total[k] = total[k] + step[k]
        dW, dU, db = from_style(total)
        return dict(h=np.stack(hs, 1), c=np.stack(cs, 1), dh=dh, dx=dx, dh0=da_prev.T, dc0=dc_prev.T,
                    dW=dW, dU=dU, db=db)

    run.cannot_observe = {
        "dc": "lstm_cell_backward folds da_next into the cell gradient internally and returns "
              "only dc_prev = dL/dc_t * f_t",
    }
    return run


run = adapter(lstm_cell_backward)
