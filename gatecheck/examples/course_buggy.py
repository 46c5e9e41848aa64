"""The course-style LSTM (course.py) with a slip in its backward pass: the derivative of the
candidate gate c~_t = tanh(z) is written 1 - c~_t, where it is 1 - c~_t**2 (tanh' = 1 - tanh^2
written from memory). The forward pass is right; every gradient that flows through c~ is off.

    python -m gatecheck check gatecheck.examples.course_buggy:run --family lstm
"""

import numpy as np

from gatecheck.examples.course import adapter


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p = cache
    H = a_prev.shape[0]
    concat = np.concatenate([a_prev, xt], axis=0)
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * ot * (1 - tanh_c**2)
    dot = da_next * tanh_c * ot * (1 - ot)
    dcct = dc * it * (1 - cct)
    dit = dc * cct * it * (1 - it)
    dft = dc * c_prev * ft * (1 - ft)
    grads = {}
    dconcat = 0
    for name, d in (("f", dft), ("i", dit), ("c", dcct), ("o", dot)):
        grads["dW" + name] = d @ concat.T
        grads["db" + name] = d.sum(axis=1, keepdims=True)
        dconcat = dconcat + p["W" + name].T @ d
    grads["da_prev"], grads["dxt"] = dconcat[:H], dconcat[H:]
    grads["dc_prev"] = dc * ft
    return grads


# The course style's forward pass and adapter, with the backward above.
run = adapter(lstm_cell_backward)
