"""Central finite differences of the reference's loss, used to prove its backward pass
independently of any framework (float64 only)."""

import numpy as np

from reference import lstm

# Central differences: truncation error ~ STEP^2 * |L'''| and rounding error
# ~ eps64 * |L| / STEP; STEP = 1e-6 balances both near 1e-10 relative to the loss's scale.
STEP = 1e-6
# Allowed |fd - analytic| <= RTOL * (|analytic| + |L| * STEP): four orders above the
# expected error, and still 1e-3 of the smallest effect of any real gradient bug.
RTOL = 1e-6


def loss(inputs, output="tanh"):
    fwd = lstm.forward(*(inputs[k] for k in ("x", "h0", "c0", "W", "U", "b")), output)
    return lstm.loss(fwd["h"], fwd["c"][:, -1], inputs["gh"], inputs["gc"])


def directions(case, name, shape, n=2):
    """``n`` random directions in which to differentiate with respect to ``name``: a function of
    the case's seed and the name, so every run probes the same directions."""
    rng = np.random.default_rng([case.seed, len(name), sum(map(ord, name))])
    return [rng.standard_normal(shape) for _ in range(n)]


def directional(loss_of, direction):
    """(L(+STEP * direction) - L(-STEP * direction)) / (2 STEP) for ``loss_of(offset)``."""
    return (loss_of(STEP * direction) - loss_of(-STEP * direction)) / (2 * STEP)


def wrt_input(inputs, name, direction, output="tanh"):
    """Directional derivative of the loss with respect to input/parameter ``name``."""
    def loss_of(offset):
        moved = dict(inputs)
        moved[name] = inputs[name] + offset
        return loss(moved, output)

    return directional(loss_of, direction)


def wrt_state(inputs, t, which, direction, output="tanh"):
    """Directional derivative of the loss with respect to h_t or c_t (``which``).

    The state at step t is moved and the sequence continues from there; moving c_t also
    moves h_t = o_t * tanh(c_t), so this is the total derivative dL/dc_t of the contract.
    """
    x, h0, c0, W, U, b, gh, gc = (inputs[k] for k in ("x", "h0", "c0", "W", "U", "b", "gh", "gc"))
    T = x.shape[1]
    head = lstm.forward(x[:, : t + 1], h0, c0, W, U, b, output)
    before = np.sum(gh[:, :t] * head["h"][:, :t])

    def loss_of(offset):
        h_t, c_t = head["h"][:, t], head["c"][:, t]
        if which == "h":
            h_t = h_t + offset
        else:
            c_t = c_t + offset
            h_t = lstm.hidden(head["gates"][:, t], c_t, output)
        total = before + np.sum(gh[:, t] * h_t)
        if t == T - 1:
            return total + np.sum(gc * c_t)
        tail = lstm.forward(x[:, t + 1 :], h_t, c_t, W, U, b, output)
        return total + lstm.loss(tail["h"], tail["c"][:, -1], gh[:, t + 1 :], gc)

    return directional(loss_of, direction)


def check(fd, analytic, scale_loss, what):
    """Raise AssertionError naming ``what`` unless fd and analytic agree."""
    __tracebackhide__ = True
    allowed = RTOL * (abs(analytic) + abs(scale_loss) * STEP)
    if not abs(fd - analytic) <= allowed:
        raise AssertionError(
            f"{what}: finite difference {float(fd)!r} vs backward {float(analytic)!r}: "
            f"diff {abs(fd - analytic):.3g} > allowed {allowed:.3g}"
        )
