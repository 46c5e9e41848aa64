"""What a case is judged against: the family's reference in float64 on the case's exact inputs
(the truth) and the float32 error of that reference (the yardstick), shared by every oracle of a case."""

import functools

import numpy as np

from gatecheck.core.cases import Case, rounded
from gatecheck.core.compare import contract_value
from gatecheck.families import get
from gatecheck.model import options

# The yardstick is the largest of several float32 errors of the reference: on the inputs
# rounded to float32 and nudged by 0, +1 and -1 ulp (one sample alone can be near zero by
# luck on a small slice, a single element of dh0, say), and with the activations moved by
# +-ACTIVATION_ULPS ulps (frameworks' tanh and sigmoid are that far off; with saturated
# units input nudges do not show it: see gatecheck/reference/_numerics.py).
YARD_SAMPLES = 3
ACTIVATION_ULPS = 4


def _nudged(inputs32, k):
    if k == 0:
        return inputs32
    target = np.float32(np.inf if k % 2 else -np.inf)
    return {name: np.nextafter(v, target) for name, v in inputs32.items()}


def yardstick(inputs64, family):
    """Per quantity, the largest |ref_f32 - ref_f64| over the float32 samples (see
    YARD_SAMPLES). It depends on the float64 inputs only, not on the dtype of a case."""
    table = family.quantities
    in32 = rounded(inputs64, np.float32)
    samples = [(_nudged(in32, k), 0) for k in range(YARD_SAMPLES)]
    samples += [(in32, ulps) for ulps in (ACTIVATION_ULPS, -ACTIVATION_ULPS)]
    yard = {}
    for sample, ulps in samples:
        r32 = family.run(**sample, ulps=ulps)
        r64 = family.run(**rounded(sample, np.float64))
        for q in table:
            if table[q].source not in r64:
                continue
            err = np.abs(contract_value(r32, q, table).astype(np.float64) - contract_value(r64, q, table))
            yard[q] = err if q not in yard else np.maximum(yard[q], err, out=yard[q])
    return yard


def reference_view(inputs64, dtype, family, yard=None):
    """(inputs in ``dtype``, truth, yardstick) for a family's model: truth is the family's
    reference in float64 on the exact values the case's dtype holds; ``yard`` (computed
    here when not given) is ``yardstick(inputs64, family)``."""
    table = family.quantities
    inputs = rounded(inputs64, np.dtype(dtype))
    truth = family.run(**rounded(inputs, np.float64))
    truth_q = {q: contract_value(truth, q, table) for q in table if table[q].source in truth}
    return inputs, truth_q, yard if yard is not None else yardstick(inputs64, family)


# Every oracle of a case shares its view, and both dtypes of a coordinate share the inputs
# and the yardstick; the grid visits a case's oracles far apart, so the caches hold every
# coordinate of a profile (a few hundred, mostly small arrays).
@functools.lru_cache(maxsize=1024)
def coordinates(family, B, T, D, H, seed, regime):
    inputs64 = family.make_inputs(Case("-", B, T, D, H, "f64", seed, regime))
    return inputs64, yardstick(inputs64, family)


@functools.lru_cache(maxsize=1024)
def _view(family, B, T, D, H, seed, regime, dtype_name):
    inputs64, yard = coordinates(family, B, T, D, H, seed, regime)
    return reference_view(inputs64, dtype_name, family, yard)


def under(case, family):
    """The family record of a case: the family under the case's layer options (gatecheck.model.options)."""
    return options.under(family, case.options)


def view(case, family):
    """The family's ``reference_view`` for a case (under its options), shared by every oracle of the case."""
    return _view(under(case, family), case.B, case.T, case.D, case.H, case.seed, case.regime, case.np_dtype.name)


def case_inputs(case, family):
    """A fresh copy of a case's inputs in its dtype."""
    return {k: v.copy() for k, v in view(case, family)[0].items()}


def family_of(oracle):
    return get(oracle.family)


