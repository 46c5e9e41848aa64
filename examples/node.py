"""Node/network LSTM, "node style": one node object per time step, one example at a time.

Parameters: four matrices wg, wi, wf, wo, each (H, D + H), acting on the concatenation
xc = [x_t; h_prev] (input first), and biases bg, bi, bf, bo (H,); gate order g, i, f, o.
The cell state is called s. **This style has no output tanh: h_t = o_t * s_t.** It is
therefore a different model from the canonical LSTM (and from Keras and PyTorch); it is
verified as gatecheck's ``lstm-identity`` family (the reference with h_t = o_t * c_t) and against finite differences of its own loss.

A node's backward takes the gradient reaching its h and s from above (``top_diff_h``,
``top_diff_s``), adds its parameter gradients into the shared ``Params`` diffs, and keeps
what flows to the node below: ``bottom_diff_h``, ``bottom_diff_s``, ``bottom_diff_x``.
The network's loss is the squared error of h_t[0] against a target y_t, summed over steps.
"""

import numpy as np

# The adapter's target: gatecheck's canonical gate order (its README, "Contracts").
GATES = ("i", "f", "g", "o")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))

STYLE_GATES = ("g", "i", "f", "o")


class Params:
    def __init__(self, wg, wi, wf, wo, bg, bi, bf, bo):
        self.wg, self.wi, self.wf, self.wo = wg, wi, wf, wo
        self.bg, self.bi, self.bf, self.bo = bg, bi, bf, bo
        self.H, self.D = wg.shape[0], wg.shape[1] - wg.shape[0]
        self.clear_diffs()

    def clear_diffs(self):
        for name in ("wg", "wi", "wf", "wo", "bg", "bi", "bf", "bo"):
            setattr(self, name + "_diff", np.zeros_like(getattr(self, name)))


class Node:
    def __init__(self, params):
        self.p = params

    def forward(self, x, s_prev, h_prev):
        p = self.p
        self.xc = np.concatenate([x, h_prev])
        self.s_prev = s_prev
        self.g = np.tanh(p.wg @ self.xc + p.bg)
        self.i = sigmoid(p.wi @ self.xc + p.bi)
        self.f = sigmoid(p.wf @ self.xc + p.bf)
        self.o = sigmoid(p.wo @ self.xc + p.bo)
        self.s = self.g * self.i + s_prev * self.f
        self.h = self.s * self.o
        return self.s, self.h

    def backward(self, top_diff_h, top_diff_s):
        p = self.p
        self.ds = self.o * top_diff_h + top_diff_s  # total gradient of s, kept for inspection
        d_o = self.s * top_diff_h * self.o * (1 - self.o)
        d_i = self.g * self.ds * self.i * (1 - self.i)
        d_g = self.i * self.ds * (1 - self.g**2)
        d_f = self.s_prev * self.ds * self.f * (1 - self.f)
        for name, d in (("g", d_g), ("i", d_i), ("f", d_f), ("o", d_o)):
            getattr(p, "w" + name + "_diff")[...] += np.outer(d, self.xc)
            getattr(p, "b" + name + "_diff")[...] += d
        dxc = p.wg.T @ d_g + p.wi.T @ d_i + p.wf.T @ d_f + p.wo.T @ d_o
        self.bottom_diff_s = self.ds * self.f
        self.bottom_diff_x = dxc[: p.D]
        self.bottom_diff_h = dxc[p.D :]


class SquaredLoss:
    """(h[0] - y)^2 on the first hidden unit."""

    @staticmethod
    def loss(h, y):
        return (h[0] - y) ** 2

    @staticmethod
    def bottom_diff(h, y):
        diff = np.zeros_like(h)
        diff[0] = 2 * (h[0] - y)
        return diff


class Network:
    def __init__(self, params, s0=None, h0=None):
        self.p = params
        self.nodes = []
        self.s0 = np.zeros(params.H) if s0 is None else s0
        self.h0 = np.zeros(params.H) if h0 is None else h0

    def x_list_add(self, x):
        node = Node(self.p)
        prev = self.nodes[-1] if self.nodes else None
        node.forward(x, self.s0 if prev is None else prev.s, self.h0 if prev is None else prev.h)
        self.nodes.append(node)

    def backward(self, top_diffs_h, top_diff_s_last=None):
        """Backpropagate given the loss gradient of every step's h (and of the last s)."""
        carry_h = np.zeros(self.p.H)
        carry_s = np.zeros(self.p.H) if top_diff_s_last is None else top_diff_s_last
        for node, top_h in zip(reversed(self.nodes), reversed(top_diffs_h), strict=True):
            node.backward(top_h + carry_h, carry_s)
            carry_h, carry_s = node.bottom_diff_h, node.bottom_diff_s

    def y_list_is(self, y_list, loss=SquaredLoss):
        """Squared-error loss of every step; backpropagates it and returns the loss."""
        total = sum(loss.loss(n.h, y) for n, y in zip(self.nodes, y_list, strict=True))
        self.backward([loss.bottom_diff(n.h, y) for n, y in zip(self.nodes, y_list, strict=True)])
        return total


# --- adapter to the canonical contract (identity-output model) ----------------------


def to_style(W, U, b):
    """Canonical W (4, D, H), U (4, H, H), b (4, H) -> Params (wk = [W_k^T | U_k^T])."""
    named = {}
    for name in STYLE_GATES:
        k = GATES.index(name)
        named["w" + name] = np.concatenate([W[k].T, U[k].T], axis=1)
        named["b" + name] = b[k].copy()
    return Params(**named)


def from_style(params):
    """Accumulated diffs -> canonical dW (4, D, H), dU (4, H, H), db (4, H)."""
    D = params.D
    dW, dU, db = (np.empty((4,) + shape, params.wg.dtype) for shape in
                  ((D, params.H), (params.H, params.H), (params.H,)))
    for name in STYLE_GATES:
        k = GATES.index(name)
        w = getattr(params, "w" + name + "_diff")
        dW[k], dU[k], db[k] = w[:, :D].T, w[:, D:].T, getattr(params, "b" + name + "_diff")
    return dW, dU, db


def run(x, h0, c0, W, U, b, gh, gc):
    """One network per batch row, every row's diffs accumulated into one Params."""
    B, T, D = x.shape
    params = to_style(W, U, b)
    out = {k: np.empty((B, T, h0.shape[1]), x.dtype) for k in ("h", "c", "dh", "dc")}
    out["dx"] = np.empty_like(x)
    out["dh0"], out["dc0"] = np.empty_like(h0), np.empty_like(c0)
    for row in range(B):
        net = Network(params, s0=c0[row], h0=h0[row])
        for t in range(T):
            net.x_list_add(x[row, t])
        net.backward(list(gh[row]), gc[row])
        carry_h = np.zeros_like(h0[row])
        for t in reversed(range(T)):
            node = net.nodes[t]
            out["h"][row, t], out["c"][row, t], out["dc"][row, t] = node.h, node.s, node.ds
            out["dh"][row, t] = gh[row, t] + carry_h
            out["dx"][row, t] = node.bottom_diff_x
            carry_h = node.bottom_diff_h
        out["dh0"][row], out["dc0"][row] = net.nodes[0].bottom_diff_h, net.nodes[0].bottom_diff_s
    out["dW"], out["dU"], out["db"] = from_style(params)
    return out
