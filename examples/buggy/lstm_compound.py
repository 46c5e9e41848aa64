"""An LSTM layer with fused weights (one matrix over [x_t, h_{t-1}], PyTorch-like gate blocks
i, f, g, o) and two bugs at once, as a layer that grew by patches shows them:

- the output tanh was added to the forward pass (h_t = o_t * tanh(c_t), it used to be o_t * c_t),
  but the backward still sends dh_t * o_t into the cell, without the tanh's derivative;
- the bias gradient is averaged over the batch (``/ batch``), the weight gradients are summed.

    net = FusedLSTM(Wcat, bias)          # Wcat (D + H, 4H), bias (4H,)
    hs, cs = net.forward(xs, h0, c0)
    dxs, dhs, dcs, dh0, dc0 = net.backward(dhs_out, dc_last)   # fills net.dWcat, net.dbias
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class FusedLSTM:
    def __init__(self, Wcat, bias):
        self.Wcat, self.bias = Wcat, bias

    def forward(self, xs, h0, c0):
        batch, steps, _ = xs.shape
        H = h0.shape[1]
        self.tape = []
        hs = np.zeros((batch, steps, H), xs.dtype)
        cs = np.zeros((batch, steps, H), xs.dtype)
        h, c = h0, c0
        for t in range(steps):
            xh = np.concatenate([xs[:, t], h], axis=1)
            a = xh @ self.Wcat + self.bias
            i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
            g = np.tanh(a[:, 2 * H:3 * H])
            c_prev, c = c, f * c + i * g
            h = o * np.tanh(c)
            self.tape.append((xh, c_prev, i, f, g, o, c))
            hs[:, t], cs[:, t] = h, c
        return hs, cs

    def backward(self, dhs_out, dc_last):
        batch, steps, H = dhs_out.shape
        D = self.Wcat.shape[0] - H
        self.dWcat, self.dbias = np.zeros_like(self.Wcat), np.zeros_like(self.bias)
        dxs = np.zeros((batch, steps, D), dhs_out.dtype)
        dhs, dcs = np.zeros_like(dhs_out), np.zeros_like(dhs_out)
        dh_next, dc_next = np.zeros((batch, H), dhs_out.dtype), dc_last
        for t in reversed(range(steps)):
            xh, c_prev, i, f, g, o, c = self.tape[t]
            dh = dhs_out[:, t] + dh_next
            dc = dc_next + dh * o
            da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                                 dh * np.tanh(c) * o * (1 - o)], axis=1)
            self.dWcat += xh.T @ da
            self.dbias += da.sum(axis=0) / batch
            dxh = da @ self.Wcat.T
            dxs[:, t], dh_next = dxh[:, :D], dxh[:, D:]
            dhs[:, t], dcs[:, t] = dh, dc
            dc_next = dc * f
        return dxs, dhs, dcs, dh_next, dc_next


def run(x, h0, c0, W, U, b, gh, gc):
    D, H = W.shape[1], W.shape[2]
    Wcat = np.concatenate([np.concatenate(list(W), axis=1), np.concatenate(list(U), axis=1)], axis=0)
    net = FusedLSTM(Wcat, b.reshape(-1))
    hs, cs = net.forward(x, h0, c0)
    dxs, dhs, dcs, dh0, dc0 = net.backward(gh, gc)
    dW = net.dWcat[:D].reshape(D, 4, H).transpose(1, 0, 2)
    dU = net.dWcat[D:].reshape(H, 4, H).transpose(1, 0, 2)
    return dict(h=hs, c=cs, dh=dhs, dc=dcs, dx=dxs, dh0=dh0, dc0=dc0, dW=dW, dU=dU, db=net.dbias.reshape(4, H))
