"""Course-style LSTM (batch on the last axis, per-gate matrices on [a_prev; x_t]) whose
backward pass uses only the last step's upstream gradient: written for a many-to-one loss,
it starts from da[:, :, T-1] and never adds da[:, :, t] for the earlier steps.

    lstm_forward(x, a0, c0, parameters) -> a (H, m, T), c (H, m, T), caches
    lstm_backward(da, dc_last, caches) -> {"dx", "da", "da0", "dc0", "dWf", "dbf", ...}

x (D, m, T); Wf, Wi, Wc, Wo (H, H + D); bf, bi, bc, bo (H, 1).
"""

import numpy as np

GATES = ("i", "f", "g", "o")
STYLE_GATES = {"f": "f", "i": "i", "c": "g", "o": "o"}  # the style's letters -> canonical gates


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_cell_forward(xt, a_prev, c_prev, p):
    concat = np.concatenate([a_prev, xt], axis=0)
    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    a_next = ot * np.tanh(c_next)
    return a_next, c_next, (a_prev, c_prev, xt, ft, it, cct, ot, c_next)


def lstm_forward(x, a0, c0, parameters):
    D, m, T = x.shape
    H = a0.shape[0]
    a, c = np.zeros((H, m, T), x.dtype), np.zeros((H, m, T), x.dtype)
    a_next, c_next = a0, c0
    caches = []
    for t in range(T):
        a_next, c_next, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t] = a_next, c_next
        caches.append(cache)
    return a, c, (caches, parameters)


def lstm_backward(da, dc_last, caches):
    caches, p = caches
    H, m, T = da.shape
    D = caches[0][2].shape[0]
    grads = {"dx": np.zeros((D, m, T), da.dtype), "da": np.zeros((H, m, T), da.dtype)}
    for name in "fico":
        grads["dW" + name] = np.zeros((H, H + D), da.dtype)
        grads["db" + name] = np.zeros((H, 1), da.dtype)
    da_next, dc_next = da[:, :, T - 1], dc_last
    for t in reversed(range(T)):
        a_prev, c_prev, xt, ft, it, cct, ot, c_t = caches[t]
        grads["da"][:, :, t] = da_next
        tanh_c = np.tanh(c_t)
        dc = dc_next + da_next * ot * (1 - tanh_c ** 2)
        dz = {"o": da_next * tanh_c * ot * (1 - ot), "c": dc * it * (1 - cct ** 2),
              "i": dc * cct * it * (1 - it), "f": dc * c_prev * ft * (1 - ft)}
        concat = np.concatenate([a_prev, xt], axis=0)
        dconcat = 0
        for name, d in dz.items():
            grads["dW" + name] += d @ concat.T
            grads["db" + name] += d.sum(axis=1, keepdims=True)
            dconcat = dconcat + p["W" + name].T @ d
        da_next, grads["dx"][:, :, t] = dconcat[:H], dconcat[H:]
        dc_next = dc * ft
    grads["da0"], grads["dc0"] = da_next, dc_next
    return grads


# --- adapter to the canonical contract ---------------------------------------------


def run(x, h0, c0, W, U, b, gh, gc):
    p = {}
    for letter, gate in STYLE_GATES.items():
        k = GATES.index(gate)
        p["W" + letter] = np.concatenate([U[k].T, W[k].T], axis=1)
        p["b" + letter] = b[k][:, None]
    H = h0.shape[1]
    a, c, caches = lstm_forward(x.transpose(2, 0, 1), h0.T, c0.T, p)
    grads = lstm_backward(gh.transpose(2, 0, 1), gc.T, caches)
    dW, dU, db = [None] * 4, [None] * 4, [None] * 4
    for letter, gate in STYLE_GATES.items():
        k = GATES.index(gate)
        dU[k], dW[k] = grads["dW" + letter][:, :H].T, grads["dW" + letter][:, H:].T
        db[k] = grads["db" + letter][:, 0]
    return dict(h=a.transpose(1, 2, 0), c=c.transpose(1, 2, 0), dh=grads["da"].transpose(1, 2, 0),
                dx=grads["dx"].transpose(1, 2, 0), dh0=grads["da0"].T, dc0=grads["dc0"].T,
                dW=np.stack(dW), dU=np.stack(dU), db=np.stack(db))


run.cannot_observe = {"dc": "lstm_backward keeps dL/dc_t internal"}
