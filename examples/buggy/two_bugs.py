"""Assignment-style step functions with two bugs at once: the forget gate's sigmoid
derivative is taken as (1 - f) instead of f (1 - f), and the bias gradient is averaged over
the batch instead of summed. Neither known bug shape explains the numbers alone.

    step_forward(x, prev_h, prev_c, Wx, Wh, b) -> next_h, next_c, cache
    step_backward(dnext_h, dnext_c, cache) -> dx, dprev_h, dprev_c, dWx, dWh, db

Gate blocks i, f, o, g along the last axis of Wx (D, 4H), Wh (H, 4H), b (4H,).
"""

import numpy as np

from examples.assignment import adapter, step_forward


def step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    N = x.shape[0]
    tanh_c = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * (1 - f), dnext_h * tanh_c * o * (1 - o),
                         dc * i * (1 - g ** 2)], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0) / N


# The style's forward and adapter, with the backward above.
run = adapter(step_forward, step_backward)
