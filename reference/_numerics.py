"""How accurate the references' elementary functions are taken to be, in one place.

Frameworks' float32 tanh and sigmoid are accurate to a few ulps, not to half an ulp
(measured here against float64 on [-6, 6]: TensorFlow's float32 tanh up to 4.8 ulps,
NumPy's 1.4, torch's 0.6). Where units saturate, 1 - tanh^2 cancels, and one ulp of tanh
becomes a large relative error of the derivative, which rounding the inputs cannot
reproduce (a saturated unit rounds the same for nearby inputs). The battery's yardstick
(gatecheck.battery) therefore includes float32 runs of the reference whose activations
are moved by a few ulps inside ``activation_jitter``; outside it ``jitter`` does nothing.
"""

import contextlib

import numpy as np

_ulps = 0


def jitter(a):
    """Move every activation by the current number of ulps, alternately up and down (in
    place); the identity outside ``activation_jitter``."""
    if _ulps:
        signs = np.where(np.arange(a.size).reshape(a.shape) % 2, 1, -1).astype(a.dtype)
        a += _ulps * np.abs(np.spacing(a)) * signs
    return a


@contextlib.contextmanager
def activation_jitter(ulps):
    """Within the block, the references' tanh and sigmoid are off by ``ulps`` (signed: the
    pattern of signs flips with it)."""
    global _ulps
    previous, _ulps = _ulps, ulps
    try:
        yield
    finally:
        _ulps = previous
