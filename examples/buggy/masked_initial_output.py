"""A masked GRU written the way variational and masked GRUs often are: the state is held through
masked steps (``h = m * h_new + (1 - m) * h``) and the output is the state at every step. Before a
row's first valid step the state is the initial state, so the layer outputs h0 there (Keras, and the
``mask`` contract, output 0), and the upstream gradient of those leading steps flows into dh0.

    GRU(W, U, bx, bh).forward(x, mask, h0) -> out (N, T, H)
    GRU.backward(dout) -> dx, dh (N, T, H), dh0; fills .grads {"W", "U", "bx", "bh"}

Weights in one stack per kind, gates r, z, n along the first axis (reset after, PyTorch's GRU):
W (3, D, H), U (3, H, H), bx, bh (3, H).
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class GRU:
    def __init__(self, W, U, bx, bh):
        self.W, self.U, self.bx, self.bh = W, U, bx, bh

    def forward(self, x, mask, h0):
        N, T, _ = x.shape
        out = np.zeros((N, T, h0.shape[1]), x.dtype)
        self.steps = []
        h = h0
        for t in range(T):
            xt = x[:, t]
            r = sigmoid(xt @ self.W[0] + self.bx[0] + h @ self.U[0] + self.bh[0])
            z = sigmoid(xt @ self.W[1] + self.bx[1] + h @ self.U[1] + self.bh[1])
            hn = h @ self.U[2] + self.bh[2]
            n = np.tanh(xt @ self.W[2] + self.bx[2] + r * hn)
            m = mask[:, t, None]
            self.steps.append((xt, h, r, z, n, hn, m))
            h = m * ((1 - z) * n + z * h) + (1 - m) * h
            out[:, t] = h
        return out

    def backward(self, dout):
        N, T, H = dout.shape
        self.grads = {k: np.zeros_like(v) for k, v in (("W", self.W), ("U", self.U), ("bx", self.bx),
                                                       ("bh", self.bh))}
        dx = np.zeros((N, T, self.W.shape[1]), dout.dtype)
        dh_all = np.zeros_like(dout)
        dh_next = np.zeros((N, H), dout.dtype)
        for t in reversed(range(T)):
            xt, h_prev, r, z, n, hn, m = self.steps[t]
            dh = dout[:, t] + dh_next
            dh_all[:, t] = dh
            dstep = m * dh
            dan = dstep * (1 - z) * (1 - n ** 2)
            daz = dstep * (h_prev - n) * z * (1 - z)
            dar = dan * hn * r * (1 - r)
            dzx = np.stack([dar, daz, dan])
            dzh = np.stack([dar, daz, dan * r])
            for k in range(3):
                self.grads["W"][k] += xt.T @ dzx[k]
                self.grads["U"][k] += h_prev.T @ dzh[k]
                self.grads["bx"][k] += dzx[k].sum(axis=0)
                self.grads["bh"][k] += dzh[k].sum(axis=0)
                dx[:, t] += dzx[k] @ self.W[k].T
            dh_next = (1 - m) * dh + dstep * z + sum(dzh[k] @ self.U[k].T for k in range(3))
        return dx, dh_all, dh_next


def run(x, h0, W, U, bx, bh, gh, mask, masked_output="carry"):
    layer = GRU(W, U, bx, bh)
    out = layer.forward(x, mask, h0)
    dx, dh, dh0 = layer.backward(gh)
    g = layer.grads
    return dict(h=out, out=out, dh=dh, dx=dx, dh0=dh0, dW=g["W"], dU=g["U"], dbx=g["bx"], dbh=g["bh"])


run.options = {"mask"}
