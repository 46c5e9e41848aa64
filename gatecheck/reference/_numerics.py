"""How accurate the references' elementary functions are taken to be, in one place.

Frameworks' float32 tanh and sigmoid are accurate to a few ulps, not to half an ulp
(measured here against float64 on [-6, 6]: TensorFlow's float32 tanh up to 4.8 ulps,
NumPy's 1.4, torch's 0.6). Where units saturate, 1 - tanh^2 cancels, and one ulp of tanh
becomes a large relative error of the derivative, which rounding the inputs cannot
reproduce (a saturated unit rounds the same for nearby inputs). The battery's yardstick
(gatecheck.run.battery) therefore includes float32 runs of the reference whose activations
are moved by a few ulps (the references' ``ulps`` argument).
"""

import numpy as np


def jitter(a, ulps=0):
    """Move every activation in ``a`` by ``ulps`` ulps, alternately up and down (in place;
    the pattern of signs flips with the sign of ``ulps``); ``ulps=0`` leaves ``a`` as it is.
    The references take ``ulps`` as an argument, so nothing here holds state."""
    if ulps:
        signs = np.where(np.arange(a.size).reshape(a.shape) % 2, 1, -1).astype(a.dtype)
        a += ulps * np.abs(np.spacing(a)) * signs
    return a
