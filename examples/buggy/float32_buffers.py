"""A layer class with a cache and fused weights whose hidden states and input gradients are
preallocated as float32 buffers, ``np.empty(..., dtype='f')``: in a float32 run nothing is wrong;
in a float64 run every h_t and dx_t is rounded to float32 as it is stored, and each next step reads
the rounded h_t back, so c, the deltas and the parameter gradients carry float32 rounding.

    layer = LSTMLayer(Wx, Wh, b)
    h, c = layer.forward(x, h0, c0)
    dx, dh, dc, dh0, dc0 = layer.backward(dh_out, dc_last)   # fills layer.dWx, layer.dWh, layer.db

x (N, T, D); Wx (D, 4H), Wh (H, 4H), b (4H,), gate blocks i, f, o, g along the last axis.
"""

import numpy as np

GATES = ("i", "f", "g", "o")  # the contract's order
LAYER_GATES = ("i", "f", "o", "g")  # this layer's blocks


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class LSTMLayer:
    def __init__(self, Wx, Wh, b):
        self.Wx, self.Wh, self.b = Wx, Wh, b
        self.cache = None

    def forward(self, x, h0, c0):
        N, T, _ = x.shape
        H = h0.shape[1]
        hs = np.empty((N, T, H), dtype='f')
        cs = np.empty((N, T, H), dtype=x.dtype)
        acts = np.empty((N, T, 4 * H), dtype=x.dtype)
        h, c = h0, c0
        for t in range(T):
            a = x[:, t] @ self.Wx + h @ self.Wh + self.b
            acts[:, t, :3 * H] = sigmoid(a[:, :3 * H])
            acts[:, t, 3 * H:] = np.tanh(a[:, 3 * H:])
            i, f, o, g = np.split(acts[:, t], 4, axis=1)
            c = f * c + i * g
            hs[:, t] = o * np.tanh(c)
            h = hs[:, t]
            cs[:, t] = c
        self.cache = (x, h0, c0, hs, cs, acts)
        return hs, cs

    def backward(self, dh_out, dc_last):
        x, h0, c0, hs, cs, acts = self.cache
        N, T, D = x.shape
        H = h0.shape[1]
        dx = np.empty((N, T, D), dtype='f')
        dh_all = np.zeros((N, T, H), dh_out.dtype)
        dc_all = np.zeros((N, T, H), dh_out.dtype)
        self.dWx, self.dWh, self.db = np.zeros_like(self.Wx), np.zeros_like(self.Wh), np.zeros_like(self.b)
        dh_next, dc_next = np.zeros((N, H), dh_out.dtype), dc_last
        for t in reversed(range(T)):
            i, f, o, g = np.split(acts[:, t], 4, axis=1)
            h_prev = hs[:, t - 1] if t > 0 else h0
            c_prev = cs[:, t - 1] if t > 0 else c0
            tanh_c = np.tanh(cs[:, t])
            dh = dh_out[:, t] + dh_next
            dc = dc_next + dh * o * (1 - tanh_c ** 2)
            da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * tanh_c * o * (1 - o),
                                 dc * i * (1 - g ** 2)], axis=1)
            dx[:, t] = da @ self.Wx.T
            self.dWx += x[:, t].T @ da
            self.dWh += h_prev.T @ da
            self.db += da.sum(axis=0)
            dh_all[:, t], dc_all[:, t] = dh, dc
            dh_next, dc_next = da @ self.Wh.T, dc * f
        return dx, dh_all, dc_all, dh_next, dc_next


# --- adapter to the canonical contract ---------------------------------------------


def fuse(blocks):
    """(4, A, H) in the contract's gate order -> (A, 4H) in the layer's."""
    return np.concatenate([blocks[GATES.index(name)] for name in LAYER_GATES], axis=-1)


def unfuse(fused):
    parts = np.split(fused, 4, axis=-1)
    return np.stack([parts[LAYER_GATES.index(name)] for name in GATES])


def run(x, h0, c0, W, U, b, gh, gc):
    layer = LSTMLayer(fuse(W), fuse(U), fuse(b[:, None])[0])
    h, c = layer.forward(x, h0, c0)
    dx, dh, dc, dh0, dc0 = layer.backward(gh, gc)
    return dict(h=np.asarray(h, x.dtype), c=c, dh=dh, dc=dc, dx=np.asarray(dx, x.dtype), dh0=dh0, dc0=dc0,
                dW=unfuse(layer.dWx), dU=unfuse(layer.dWh), db=unfuse(layer.db[None])[:, 0])
