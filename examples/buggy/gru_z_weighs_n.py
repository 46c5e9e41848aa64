"""A GRU written from the textbook equations where the update gate weighs the new state,

    z_t = sigmoid(W_z x_t + U_z h_{t-1} + b_z)
    r_t = sigmoid(W_r x_t + U_r h_{t-1} + b_r)
    g_t = tanh(W_h x_t + U_h (r_t * h_{t-1}) + b_h)
    h_t = (1 - z_t) * h_{t-1} + z_t * g_t

(the contract weighs h_{t-1} by z_t), with one bias per gate and the reset applied before U_h
(gatecheck's gru-reset-before), and the hidden states kept in a float32 buffer,
``np.empty(..., dtype='f')``, from which each step reads h_{t-1}. Its backward pass is right for its
own equations. Column-major: x_t (D, m), h (H, m); W_k (H, D), U_k (H, H), b_k (H, 1).

    gru_forward(x, h0, params) -> hs (H, m, T), cache
    gru_backward(dhs, cache) -> dx (D, m, T), dhs_total, dh0, grads {"dW_z", "dU_z", "db_z", ...}
"""

import numpy as np

GATES = ("r", "z", "h")  # the contract's r, z, n


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def gru_forward(x, h0, params):
    D, m, T = x.shape
    H = h0.shape[0]
    hs = np.empty((H, m, T), dtype='f')
    steps = []
    h = h0
    for t in range(T):
        xt = x[:, :, t]
        z = sigmoid(params["W_z"] @ xt + params["U_z"] @ h + params["b_z"])
        r = sigmoid(params["W_r"] @ xt + params["U_r"] @ h + params["b_r"])
        g = np.tanh(params["W_h"] @ xt + params["U_h"] @ (r * h) + params["b_h"])
        hs[:, :, t] = (1 - z) * h + z * g
        steps.append((xt, h, z, r, g))
        h = hs[:, :, t]
    return hs, (steps, params)


def gru_backward(dhs, cache):
    steps, p = cache
    H, m, T = dhs.shape
    grads = {"d" + k: np.zeros_like(v) for k, v in p.items()}
    dx = np.zeros((p["W_z"].shape[1], m, T), dhs.dtype)
    dh_total = np.zeros_like(dhs)
    dh_next = np.zeros((H, m), dhs.dtype)
    for t in reversed(range(T)):
        xt, h_prev, z, r, g = steps[t]
        dh = dhs[:, :, t] + dh_next
        dh_total[:, :, t] = dh
        dag = dh * z * (1 - g ** 2)
        daz = dh * (g - h_prev) * z * (1 - z)
        drh = p["U_h"].T @ dag
        dar = drh * h_prev * r * (1 - r)
        dh_prev = dh * (1 - z) + drh * r
        for k, da, h_in in (("z", daz, h_prev), ("r", dar, h_prev), ("h", dag, r * h_prev)):
            grads["dW_" + k] += da @ xt.T
            grads["dU_" + k] += da @ h_in.T
            grads["db_" + k] += da.sum(axis=1, keepdims=True)
            dx[:, :, t] += p["W_" + k].T @ da
            if k != "h":
                dh_prev = dh_prev + p["U_" + k].T @ da
        dh_next = dh_prev
    return dx, dh_total, dh_next, grads


def run(x, h0, W, U, bx, bh, gh):
    params = {}
    for n, k in enumerate(GATES):
        params["W_" + k], params["U_" + k], params["b_" + k] = W[n].T, U[n].T, (bx[n] + bh[n])[:, None]
    hs, cache = gru_forward(x.transpose(2, 0, 1), h0.T, params)
    dx, dh, dh0, g = gru_backward(gh.transpose(2, 0, 1), cache)
    db = np.stack([g["db_" + k][:, 0] for k in GATES])
    return dict(h=np.asarray(hs, x.dtype).transpose(1, 2, 0), dh=dh.transpose(1, 2, 0), dx=dx.transpose(1, 2, 0),
                dh0=dh0.T, dW=np.stack([g["dW_" + k].T for k in GATES]),
                dU=np.stack([g["dU_" + k].T for k in GATES]), dbx=db, dbh=db)
