"""A maskable LSTM (Keras-style masking: a masked step outputs the state it holds) whose masked step
resets h and c to the initial state instead of holding them: the update is written
``h = m * h_new + (1 - m) * h0`` where ``(1 - m) * h`` was meant. Its backward pass is the exact
derivative of that forward pass, so the gradient of every masked step flows into dh0 and dc0.

    lstm_forward(x, mask, h0, c0, params) -> out (N, T, H), cs (N, T, H), cache
    lstm_backward(dout, dc_last, cache) -> grads {"dx", "dh", "dc", "dh0", "dc0", "dW_i", "dU_i", "db_i", ...}

x (N, T, D), mask (N, T) of 1.0 (valid) and 0.0 (masked); per gate W_k (D, H), U_k (H, H), b_k (H,).
"""

import numpy as np

GATES = ("i", "f", "g", "o")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def cell(x_t, h, c, p):
    i = sigmoid(x_t @ p["W_i"] + h @ p["U_i"] + p["b_i"])
    f = sigmoid(x_t @ p["W_f"] + h @ p["U_f"] + p["b_f"])
    g = np.tanh(x_t @ p["W_g"] + h @ p["U_g"] + p["b_g"])
    o = sigmoid(x_t @ p["W_o"] + h @ p["U_o"] + p["b_o"])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new, (i, f, g, o)


def lstm_forward(x, mask, h0, c0, params):
    N, T, _ = x.shape
    out, cs = np.zeros((N, T, h0.shape[1]), x.dtype), np.zeros((N, T, h0.shape[1]), x.dtype)
    h, c = h0, c0
    steps = []
    for t in range(T):
        m = mask[:, t, None]
        h_new, c_new, gates = cell(x[:, t], h, c, params)
        steps.append((h, c, gates, c_new))
        h = m * h_new + (1 - m) * h0  # a masked step: back to the initial state
        c = m * c_new + (1 - m) * c0
        out[:, t], cs[:, t] = h, c
    return out, cs, (x, mask, h0, c0, params, steps)


def lstm_backward(dout, dc_last, cache):
    x, mask, h0, c0, p, steps = cache
    N, T, H = dout.shape
    grads = {"dx": np.zeros_like(x), "dh": np.zeros_like(dout), "dc": np.zeros_like(dout)}
    for k in GATES:
        grads["dW_" + k], grads["dU_" + k], grads["db_" + k] = (np.zeros_like(p["W_" + k]),
                                                               np.zeros_like(p["U_" + k]), np.zeros_like(p["b_" + k]))
    dh_next, dc_next = np.zeros((N, H), dout.dtype), dc_last
    dh0, dc0 = np.zeros_like(h0), np.zeros_like(c0)
    for t in reversed(range(T)):
        m = mask[:, t, None]
        h_prev, c_prev, (i, f, g, o), c_new = steps[t]
        dh_state = dout[:, t] + dh_next
        dh0 += (1 - m) * dh_state
        dc0 += (1 - m) * dc_next
        dh = m * dh_state
        tanh_c = np.tanh(c_new)
        dc = m * dc_next + dh * o * (1 - tanh_c ** 2)
        grads["dh"][:, t], grads["dc"][:, t] = dh, dc
        dz = {"i": dc * g * i * (1 - i), "f": dc * c_prev * f * (1 - f), "g": dc * i * (1 - g ** 2),
              "o": dh * tanh_c * o * (1 - o)}
        dh_next = 0
        for k, d in dz.items():
            grads["dW_" + k] += x[:, t].T @ d
            grads["dU_" + k] += h_prev.T @ d
            grads["db_" + k] += d.sum(axis=0)
            grads["dx"][:, t] += d @ p["W_" + k].T
            dh_next = dh_next + d @ p["U_" + k].T
        dc_next = dc * f
    grads["dh0"], grads["dc0"] = dh0 + dh_next, dc0 + dc_next
    return grads


# --- adapter to the canonical contract ---------------------------------------------


def run(x, h0, c0, W, U, b, gh, gc, mask, masked_output="carry"):
    params = {}
    for n, k in enumerate(GATES):
        params["W_" + k], params["U_" + k], params["b_" + k] = W[n], U[n], b[n]
    out, cs, cache = lstm_forward(x, mask, h0, c0, params)
    grads = lstm_backward(gh, gc, cache)
    return dict(h=out, c=cs, out=out, dh=grads["dh"], dc=grads["dc"], dx=grads["dx"], dh0=grads["dh0"],
                dc0=grads["dc0"], dW=np.stack([grads["dW_" + k] for k in GATES]),
                dU=np.stack([grads["dU_" + k] for k in GATES]), db=np.stack([grads["db_" + k] for k in GATES]))


run.options = {"mask"}
