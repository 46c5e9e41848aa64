"""The course-style LSTM (examples/course.py) trained through its own softmax head: the
cross-entropy of each step's ``yt_pred`` against a target distribution, backpropagated by
hand (dlogits_t = yt_pred - y_t, da_t = Wy^T dlogits_t + what flows back from t+1).

``run`` adapts it to gatecheck's ``lstm-head`` contract: the head's Wy (K, H) and by (K, 1)
are V^T and cb. Like the course style, it returns only dc_prev = dL/dc_t * f_t, so
dL/dc_t is declared unobservable.
"""

import numpy as np

from examples import course


def run(x, h0, c0, W, U, b, V, cb, y):
    B, T, _ = x.shape
    p = course.to_style(W, U, b, Wy=np.ascontiguousarray(V.T), by=cb[:, None].copy())
    a_next, c_next = h0.T, c0.T
    caches, hs, cs, ps = [], [], [], []
    for t in range(T):
        a_next, c_next, yt_pred, cache = course.lstm_cell_forward(x[:, t].T, a_next, c_next, p)
        hs.append(a_next.T)
        cs.append(c_next.T)
        ps.append(yt_pred.T)
        caches.append(cache)
    H = h0.shape[1]
    dh, dx = np.empty((B, T, H), x.dtype), np.empty_like(x)
    dWy, dby = np.zeros_like(p["Wy"]), np.zeros_like(p["by"])
    total = {k: 0 for k in ("dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo")}
    da_prev, dc_prev = np.zeros_like(h0.T), np.zeros_like(c0.T)
    for t in reversed(range(T)):
        dlogits = ps[t].T - y[:, t].T  # (K, m): softmax followed by cross-entropy
        dWy += dlogits @ hs[t]
        dby += dlogits.sum(axis=1, keepdims=True)
        da = p["Wy"].T @ dlogits + da_prev
        dh[:, t] = da.T
        step = course.lstm_cell_backward(da, dc_prev, caches[t])
        dx[:, t] = step["dxt"].T
        da_prev, dc_prev = step["da_prev"], step["dc_prev"]
        for k in total:
            total[k] = total[k] + step[k]
    dW, dU, db = course.from_style(total)
    return dict(h=np.stack(hs, 1), c=np.stack(cs, 1), p=np.stack(ps, 1), dh=dh, dx=dx, dh0=da_prev.T,
                dc0=dc_prev.T, dW=dW, dU=dU, db=db, dV=np.ascontiguousarray(dWy.T), dcb=dby[:, 0])


run.cannot_observe = {
    "dc": "lstm_cell_backward folds da_next into the cell gradient internally and returns "
          "only dc_prev = dL/dc_t * f_t",
}
