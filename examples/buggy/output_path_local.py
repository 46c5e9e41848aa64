"""Course-style LSTM (batch on the last axis, per-gate matrices on [a_prev; x_t]) with a
backward loop that goes wrong at one step: the last step is unrolled before the loop, and
the loop reads each step's output gate and tanh(c_t) one pass ahead (loaded at the end of
the pass before). The unrolled block does not load them for step T-2, so at t = T-2 the
output path, dc_t = dc_{t+1} f_{t+1} + da_t * o_t * (1 - tanh^2 c_t) and dz_o, uses step
T-1's o and tanh(c): the wrong step's values, at that one step.

    lstm_forward(x, a0, c0, parameters) -> a (H, m, T), c (H, m, T), caches
    lstm_backward(da, dc_last, caches) -> {"dx", "da", "dc", "da0", "dc0", "dWf", "dbf", ...}

x (D, m, T); Wf, Wi, Wc, Wo (H, H + D); bf, bi, bc, bo (H, 1).
"""

import numpy as np

GATES = ("i", "f", "g", "o")
STYLE_GATES = {"f": "f", "i": "i", "c": "g", "o": "o"}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_forward(x, a0, c0, p):
    D, m, T = x.shape
    H = a0.shape[0]
    a, c = np.zeros((H, m, T), x.dtype), np.zeros((H, m, T), x.dtype)
    gates = {name: np.zeros((H, m, T), x.dtype) for name in "fico"}
    a_prev, c_prev = a0, c0
    for t in range(T):
        concat = np.concatenate([a_prev, x[:, :, t]], axis=0)
        ft = sigmoid(p["Wf"] @ concat + p["bf"])
        it = sigmoid(p["Wi"] @ concat + p["bi"])
        cct = np.tanh(p["Wc"] @ concat + p["bc"])
        ot = sigmoid(p["Wo"] @ concat + p["bo"])
        c_prev = ft * c_prev + it * cct
        a_prev = ot * np.tanh(c_prev)
        a[:, :, t], c[:, :, t] = a_prev, c_prev
        for name, value in zip("fico", (ft, it, cct, ot)):
            gates[name][:, :, t] = value
    return a, c, (x, a0, c0, a, c, gates, p)


def _step_grads(grads, t, dc, dot, gates, step_inputs, p):
    """Gate deltas of step t from dc_t and dz_o; accumulates dW, db; returns d[a_prev; x_t]."""
    concat, c_prev = step_inputs
    it, ft, cct = gates["i"][:, :, t], gates["f"][:, :, t], gates["c"][:, :, t]
    dz = {"f": dc * c_prev * ft * (1 - ft), "i": dc * cct * it * (1 - it), "c": dc * it * (1 - cct ** 2), "o": dot}
    dconcat = 0
    for name, d in dz.items():
        grads["dW" + name] += d @ concat.T
        grads["db" + name] += d.sum(axis=1, keepdims=True)
        dconcat = dconcat + p["W" + name].T @ d
    return dconcat


def lstm_backward(da, dc_last, caches):
    x, a0, c0, a, c, gates, p = caches
    H, m, T = da.shape
    D = x.shape[0]
    grads = {"dx": np.zeros((D, m, T), da.dtype), "da": np.zeros((H, m, T), da.dtype),
             "dc": np.zeros((H, m, T), da.dtype)}
    for name in "fico":
        grads["dW" + name] = np.zeros((H, H + D), da.dtype)
        grads["db" + name] = np.zeros((H, 1), da.dtype)

    def inputs_of(t):
        a_prev = a[:, :, t - 1] if t > 0 else a0
        c_prev = c[:, :, t - 1] if t > 0 else c0
        return np.concatenate([a_prev, x[:, :, t]], axis=0), c_prev

    # The last step, unrolled: its cell gradient starts from dc_last.
    t = T - 1
    ot, tanh_c = gates["o"][:, :, t], np.tanh(c[:, :, t])
    da_t = da[:, :, t]
    dc = dc_last + da_t * ot * (1 - tanh_c ** 2)
    dconcat = _step_grads(grads, t, dc, da_t * tanh_c * ot * (1 - ot), gates, inputs_of(t), p)
    grads["da"][:, :, t], grads["dc"][:, :, t], grads["dx"][:, :, t] = da_t, dc, dconcat[H:]
    da_next, dc_next = dconcat[:H], dc * gates["f"][:, :, t]

    for t in reversed(range(T - 1)):
        da_t = da[:, :, t] + da_next
        dc = dc_next + da_t * ot * (1 - tanh_c ** 2)
        dconcat = _step_grads(grads, t, dc, da_t * tanh_c * ot * (1 - ot), gates, inputs_of(t), p)
        grads["da"][:, :, t], grads["dc"][:, :, t], grads["dx"][:, :, t] = da_t, dc, dconcat[H:]
        da_next, dc_next = dconcat[:H], dc * gates["f"][:, :, t]
        if t > 0:  # load the next pass's output gate and tanh(c)
            ot, tanh_c = gates["o"][:, :, t - 1], np.tanh(c[:, :, t - 1])
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

    def batch_major(v):  # (H, m, T) -> (m, T, H)
        return v.transpose(1, 2, 0)

    return dict(h=batch_major(a), c=batch_major(c), dh=batch_major(grads["da"]), dc=batch_major(grads["dc"]),
                dx=batch_major(grads["dx"]), dh0=grads["da0"].T, dc0=grads["dc0"].T,
                dW=np.stack(dW), dU=np.stack(dU), db=np.stack(db))
