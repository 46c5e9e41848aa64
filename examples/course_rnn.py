"""Column-major vanilla RNN, "course style".

Layout: the batch is the LAST axis. x_t (D, m), a_t (H, m); the sequence functions take
x (D, m, T) and return a (H, m, T). Parameters (a dict)::

    Wax (H, D)  Waa (H, H)  ba (H, 1)     hidden state
    Wya (V, H)  by (V, 1)                 output head

    a_t = tanh(Wax x_t + Waa a_{t-1} + ba)
    y_t = softmax(Wya a_t + by)            (column-wise: over V, for each example)

    rnn_cell_forward(xt, a_prev, parameters) -> a_next, yt_pred, cache
    rnn_forward(x, a0, parameters) -> a, y_pred, caches
    rnn_cell_backward(da_next, cache) -> {dxt, da_prev, dWax, dWaa, dba}
    rnn_backward(da, caches) -> {dx, da0, dWax, dWaa, dba}

``rnn_backward`` takes da (H, m, T), the upstream gradient of every a_t, and does not
differentiate the output head. ``run`` adapts the step functions to the canonical
contract of gatecheck's ``rnn`` family; ``run_sequence`` adapts the sequence functions, which
do not expose the per-step total delta (its ``cannot_observe`` says so).
"""

import numpy as np


def softmax(z):
    """Column-wise softmax of z (V, m), in the dtype of z."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def rnn_cell_forward(xt, a_prev, parameters):
    Wax, Waa, ba = parameters["Wax"], parameters["Waa"], parameters["ba"]
    a_next = np.tanh(Wax @ xt + Waa @ a_prev + ba)
    yt_pred = softmax(parameters["Wya"] @ a_next + parameters["by"])
    return a_next, yt_pred, (a_next, a_prev, xt, parameters)


def rnn_forward(x, a0, parameters):
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wya"].shape
    a = np.zeros((n_a, m, T_x), x.dtype)
    y_pred = np.zeros((n_y, m, T_x), x.dtype)
    caches = []
    a_next = a0
    for t in range(T_x):
        a_next, yt_pred, cache = rnn_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t] = a_next
        y_pred[:, :, t] = yt_pred
        caches.append(cache)
    return a, y_pred, (caches, x)


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, parameters = cache
    dtanh = (1 - a_next**2) * da_next
    return {
        "dxt": parameters["Wax"].T @ dtanh,
        "da_prev": parameters["Waa"].T @ dtanh,
        "dWax": dtanh @ xt.T,
        "dWaa": dtanh @ a_prev.T,
        "dba": np.sum(dtanh, axis=1, keepdims=True),
    }


def rnn_backward(da, caches):
    caches, x = caches
    n_a, m, T_x = da.shape
    n_x = x.shape[0]
    dx = np.zeros((n_x, m, T_x), da.dtype)
    dWax = np.zeros((n_a, n_x), da.dtype)
    dWaa = np.zeros((n_a, n_a), da.dtype)
    dba = np.zeros((n_a, 1), da.dtype)
    da_prevt = np.zeros((n_a, m), da.dtype)
    for t in reversed(range(T_x)):
        gradients = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dx[:, :, t] = gradients["dxt"]
        da_prevt = gradients["da_prev"]
        dWax += gradients["dWax"]
        dWaa += gradients["dWaa"]
        dba += gradients["dba"]
    da0 = da_prevt
    return {"dx": dx, "da0": da0, "dWax": dWax, "dWaa": dWaa, "dba": dba}


# --- adapters to the canonical contract ----------------------------------------------


def to_style(W, U, b):
    """Canonical W (D, H), U (H, H), b (H,) -> parameters; the head (Wya, by) is zero,
    since it does not touch a_t (nor any contract quantity)."""
    H = U.shape[0]
    return {
        "Wax": W.T, "Waa": U.T, "ba": b[:, None],
        "Wya": np.zeros((1, H), W.dtype), "by": np.zeros((1, 1), W.dtype),
    }


def run(x, h0, W, U, b, gh):
    """The step functions under the canonical contract; checks nothing itself."""
    parameters = to_style(W, U, b)
    B, T, _ = x.shape
    caches = []
    a_t = h0.T
    for t in range(T):
        a_t, _, cache = rnn_cell_forward(x[:, t].T, a_t, parameters)
        caches.append(cache)
    h = np.stack([cache[0].T for cache in caches], axis=1)
    dh = np.empty_like(h)
    dx = np.empty_like(x)
    dWax = np.zeros_like(parameters["Wax"])
    dWaa = np.zeros_like(parameters["Waa"])
    dba = np.zeros_like(parameters["ba"])
    da_prev = np.zeros_like(h0.T)
    for t in reversed(range(T)):
        dh[:, t] = gh[:, t] + da_prev.T
        step = rnn_cell_backward(dh[:, t].T, caches[t])
        dx[:, t] = step["dxt"].T
        da_prev = step["da_prev"]
        dWax += step["dWax"]
        dWaa += step["dWaa"]
        dba += step["dba"]
    return dict(h=h, dh=dh, dx=dx, dh0=da_prev.T, dW=dWax.T, dU=dWaa.T, db=dba[:, 0])


# Style array -> canonical layout, by contract key. A value that is not an array (a bug
# in the style, say da0 = None) passes through unchanged, for the contract check to name.
_TO_CANONICAL = {
    "h": lambda a: a.transpose(1, 2, 0),  # (H, m, T) -> (B, T, H)
    "dx": lambda a: a.transpose(1, 2, 0),  # (D, m, T) -> (B, T, D)
    "dh0": lambda a: a.T,
    "dW": lambda a: a.T,
    "dU": lambda a: a.T,
    "db": lambda a: a[:, 0],
}


def run_sequence(x, h0, W, U, b, gh):
    """rnn_forward / rnn_backward under the canonical contract, less the per-step dh."""
    a, _, caches = rnn_forward(x.transpose(2, 0, 1), h0.T, to_style(W, U, b))
    grads = rnn_backward(gh.transpose(2, 0, 1), caches)
    style = dict(h=a, dx=grads["dx"], dh0=grads["da0"], dW=grads["dWax"], dU=grads["dWaa"], db=grads["dba"])
    return {k: _TO_CANONICAL[k](v) if isinstance(v, np.ndarray) else v for k, v in style.items()}


run_sequence.cannot_observe = {
    "dh": "rnn_backward adds da_prev to each step's upstream gradient internally and "
          "returns only the gradients of x, a0 and the parameters",
}
