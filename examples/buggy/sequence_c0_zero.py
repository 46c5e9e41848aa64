"""The assignment style's sequence API (examples/assignment.py) adapted to the canonical
contract as if it took every input:

    forward(x, h0, Wx, Wh, b) -> h (N, T, H), cache
    backward(dh, cache) -> dx, dh0, dWx, dWh, db

What is wrong under the canonical contract: the sequence functions have no c0 argument
(the cell state starts from zero) and no incoming gradient of the final cell state, so the
adapter cannot pass c0 or gc. It agrees with the canonical LSTM only when c0 = 0 and
gc = 0 (the "zero" regime).
"""

import numpy as np

from examples import assignment


def run(x, h0, c0, W, U, b, gh, gc):
    """The style's sequence API under the canonical contract: h0 and gh are passed; c0 and
    gc have nowhere to go."""
    Wx, Wh, bs = assignment.to_style(W, U, b)
    h, cache = assignment.forward(x, h0, Wx, Wh, bs)
    c = np.stack([step[-1] for step in cache], axis=1)  # each step's cache ends with next_c
    dx, dh0, dWx, dWh, db = assignment.backward(gh, cache)
    dW, dU, dbc = assignment.from_style(dWx, dWh, db)
    return dict(h=h, c=c, dx=dx, dh0=dh0, dW=dW, dU=dU, db=dbc)


run.cannot_observe = {
    "dh": "backward returns only dh0, not dL/dh_t per step",
    "dc": "backward returns no cell-state gradient",
    "dc0": "the sequence starts from c = 0: there is no dc0",
}
