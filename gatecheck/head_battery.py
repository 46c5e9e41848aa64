"""The battery for the LSTM under the softmax / cross-entropy head (reference/head.py):
the reference head against the Keras and PyTorch head oracles, under the same
tolerance policy as the LSTM battery."""

import functools
import zlib

import numpy as np

from gatecheck.battery import reference_view
from gatecheck.cases import make_inputs
from gatecheck.compare import HEAD_QUANTITIES, compare
from reference import head

CLASSES = 3  # K, the head's width


def make_head_inputs(case, K=CLASSES):
    """The case's LSTM inputs (gh, gc dropped: the head sets them) plus V, cb and
    per-step target distributions y."""
    inputs = {k: v for k, v in make_inputs(case).items() if k not in ("gh", "gc")}
    key = f"head-{case.B}-{case.T}-{case.D}-{case.H}-{K}-{case.seed}-{case.regime}"
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    inputs["V"] = rng.standard_normal((case.H, K)) / np.sqrt(case.H)
    inputs["cb"] = 0.5 * rng.standard_normal(K)
    scores = rng.standard_normal((case.B, case.T, K))
    inputs["y"] = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    return inputs


@functools.lru_cache(maxsize=32)
def head_view(case):
    """(inputs in the case's dtype, truth, yardstick) of a head case."""
    return reference_view(make_head_inputs(case._replace(oracle="-")), case.np_dtype, head.run, HEAD_QUANTITIES)


def run_head_case(case, oracle):
    """The reference head vs a head oracle on ``case``: a ``Report``."""
    inputs, truth, yard = head_view(case)
    expected = oracle.run({k: v.copy() for k, v in inputs.items()})
    actual = head.run(**{k: v.copy() for k, v in inputs.items()})
    names = [q for q in oracle.observes if q in truth]
    return compare(case.id, {q: actual[HEAD_QUANTITIES[q].source] for q in names}, expected, truth, yard,
                   names, case.np_dtype, case.B, case.T, actual_name="reference head",
                   expected_name=oracle.name, table=HEAD_QUANTITIES)
