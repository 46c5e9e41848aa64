"""Assignment-style step functions whose bias gradient of the forget gate is the input
gate's: the four blocks of db are written out by hand and one line was copied.

    step_forward(x, prev_h, prev_c, Wx, Wh, b) -> next_h, next_c, cache
    step_backward(dnext_h, dnext_c, cache) -> dx, dprev_h, dprev_c, dWx, dWh, db

Gate blocks i, f, o, g along the last axis of Wx (D, 4H), Wh (H, 4H), b (4H,).
"""

import numpy as np

from examples.assignment import adapter, step_forward


def step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    di = dc * g * i * (1 - i)
    df = dc * prev_c * f * (1 - f)
    do = dnext_h * tanh_c * o * (1 - o)
    dg = dc * i * (1 - g ** 2)
    da = np.concatenate([di, df, do, dg], axis=1)
    db = np.concatenate([di.sum(axis=0), di.sum(axis=0), do.sum(axis=0), dg.sum(axis=0)])
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, db


# The style's forward and adapter, with the backward above.
run = adapter(step_forward, step_backward)
