"""Argument checks shared by the reference implementations.

Every check raises at the boundary, naming the argument and what was expected, so
that a bad call never reaches the arithmetic (where NumPy would broadcast or cast
silently).
"""

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_checked_array(name, value, ndim):
    """Return ``value`` as an ndarray after checking its type, dtype and ndim."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name}: expected a numpy.ndarray of float32 or float64, "
            f"got {type(value).__name__}"
        )
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected dtype float32 or float64, got {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(
            f"{name}: expected {ndim} dimensions, got {value.ndim} (shape {value.shape})"
        )
    return value


def check_finite(name, value):
    if not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))[0]
        raise ValueError(
            f"{name}: expected finite values, found {value[tuple(bad)]} at index {tuple(int(i) for i in bad)}"
        )


def check_shape(name, value, expected, meaning):
    """``expected`` is a tuple of ints; ``meaning`` names its axes, e.g. '(B, H)'."""
    if value.shape != tuple(expected):
        raise ValueError(
            f"{name}: expected shape {meaning} = {tuple(expected)}, got {value.shape}"
        )


def common_dtype(arrays):
    """All named arrays must share one dtype; return it."""
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) != 1:
        listing = ", ".join(f"{n}={d}" for n, d in dtypes.items())
        raise TypeError(f"mixed dtypes: expected one dtype for all arguments, got {listing}")
    return next(iter(dtypes.values()))


def sequence_arguments(args, ndims):
    """Check types, dtypes and ndims of a recurrent model's arguments (``args`` and
    ``ndims`` keyed by argument name, ``x`` among them); return x's (B, T, D)."""
    for name, value in args.items():
        as_checked_array(name, value, ndims[name])
    common_dtype(args)
    B, T, D = args["x"].shape
    if T == 0:
        raise ValueError(f"x: expected at least one time step (T >= 1), got shape {args['x'].shape}")
    if B == 0 or D == 0:
        raise ValueError(f"x: expected B >= 1 and D >= 1, got shape {args['x'].shape}")
    return B, T, D
