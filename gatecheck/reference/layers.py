"""Layers built from one recurrent model, as the frameworks build them: the reverse direction,
a bidirectional layer (two directions with their own weights, outputs merged), and a stack of
two layers (the second consumes the first's output sequence).

Each is a pure composition of a model's ``run`` (any family's reference, or a candidate under
test: the same code), so every formula here is stated once for every family. A model's run
takes keyword inputs, among them ``x`` (B, T, D) and the upstream gradient of its output
sequence (``gh``, (B, T, H)), and returns its contract: per-step arrays with time on axis 1,
the rest ("timeless": parameter and initial-state gradients) without a time axis.

Naming: the reverse direction's inputs and outputs carry the suffix ``_r`` (``W_r``, ``h0_r``,
``dW_r``, ``h_r``), the second layer's ``_l1`` (``W_l1``, ``h_l1``; ``W_r_l1`` for its reverse
direction). ``dx`` is the gradient of the layer's (the stack's) input, once.
"""

import numpy as np

MERGES = ("concat", "sum", "mul", "ave", "none")
REVERSE = "_r"
LAYER = "_l1"


def suffixes(bidirectional, depth):
    """The suffix of every (layer, direction) of a structure, layer-major (PyTorch's order):
    "", "_r", "_l1", "_r_l1"."""
    return [(REVERSE if d else "") + (LAYER if k else "") for k in range(depth) for d in range(2 if bidirectional else 1)]


def reversed_run(run, timeless, sequences=("x", "gh")):
    """The model run from t = T-1 down to t = 0: ``run`` on the time-flipped ``sequences``, every
    per-step output flipped back, so that index t is the state after x[:, t] (``timeless``:
    the output keys without a time axis)."""
    def run_reverse(ulps=0, **inputs):
        out = run(**{k: v[:, ::-1] if k in sequences else v for k, v in inputs.items()}, ulps=ulps)
        return {k: v if k in timeless else v[:, ::-1] for k, v in out.items()}

    return run_reverse


def merged(merge, y_f, y_r):
    """A bidirectional layer's output from its two directions' output sequences (Keras
    ``merge_mode``; PyTorch always concatenates): "concat" and "none" (Keras' pair of outputs,
    stacked here on the last axis) [y_f, y_r], "sum" y_f + y_r, "mul" y_f * y_r, "ave" (y_f + y_r) / 2."""
    if merge in ("concat", "none"):
        return np.concatenate([y_f, y_r], axis=-1)
    if merge == "sum":
        return y_f + y_r
    if merge == "mul":
        return y_f * y_r
    if merge == "ave":
        return (y_f + y_r) / 2
    raise ValueError(f"merge: expected one of {list(MERGES)}, got {merge!r}")


def split_upstream(merge, gy, y_f=None, y_r=None):
    """The upstream gradients of the two directions' outputs from that of the merged output
    (``y_f``, ``y_r``: the directions' outputs, needed by "mul" only)."""
    if merge in ("concat", "none"):
        H = gy.shape[-1] // 2
        return gy[..., :H], gy[..., H:]
    if merge == "sum":
        return gy, gy
    if merge == "mul":
        return gy * y_r, gy * y_f
    if merge == "ave":
        return gy / 2, gy / 2
    raise ValueError(f"merge: expected one of {list(MERGES)}, got {merge!r}")


def directions(inputs, layer_inputs):
    """(forward direction's inputs, reverse direction's inputs) of a bidirectional layer: x is
    shared, each ``layer_inputs`` key has its ``_r`` twin (the upstream gradient is added later)."""
    forward = {k: inputs[k] for k in ("x",) + tuple(layer_inputs)}
    reverse = {"x": inputs["x"], **{k: inputs[k + REVERSE] for k in layer_inputs}}
    return forward, reverse


def bidirectional(run_f, run_r, merge, layer_inputs, contract, output="h", upstream="gh", initial=()):
    """The run of a bidirectional layer: ``run_f`` forwards and ``run_r`` (the reverse
    direction, each with its own weights and initial states: ``layer_inputs`` and their ``_r``
    twins) on the same x; the merged output ``y``'s upstream gradient is the input ``upstream``
    and is split between the directions (``split_upstream``: under "mul" each direction's share
    is scaled by the other's output). Returns the forward direction's ``contract``, the reverse
    one's with the suffix ``_r``, dx (both directions' sum) and the merged output ``y``."""
    def run(ulps=0, **inputs):
        forward, reverse = directions(inputs, layer_inputs)
        gy = inputs[upstream]
        y_f = y_r = None
        if merge == "mul":  # each share needs the other direction's outputs: a forward pass first
            zeros = np.zeros(gy.shape, gy.dtype)
            y_f = run_f(**forward, **{upstream: zeros}, ulps=ulps)[output]
            y_r = run_r(**reverse, **{upstream: zeros}, ulps=ulps)[output]
        g_f, g_r = split_upstream(merge, gy, y_f, y_r)
        out_f = run_f(**forward, **{upstream: g_f}, ulps=ulps)
        out_r = run_r(**reverse, **{upstream: g_r}, ulps=ulps)
        out = {k: out_f[k] for k in contract}
        out.update({k + REVERSE: out_r[k] for k in contract if k != "dx"})
        out["dx"] = out_f["dx"] + out_r["dx"]
        out["y"] = merged(merge, out_f[output], out_r[output])
        return out

    return run


def layers(inputs, layer_inputs):
    """(first layer's inputs, second layer's inputs but x) of a stack: each ``layer_inputs``
    key has its ``_l1`` twin."""
    first = {k: inputs[k] for k in ("x",) + tuple(layer_inputs)}
    second = {k: inputs[k + LAYER] for k in layer_inputs}
    return first, second


def stacked(run, layer_inputs, contract, output="h", upstream="gh", initial=()):
    """The run of two stacked layers of one model (``run``, its own weights and initial states
    per layer: ``layer_inputs`` and their ``_l1`` twins): the second consumes the first's output
    sequence, and the gradient of that input (its dx) is the first layer's upstream gradient.
    Returns the first layer's ``contract``, the second's with the suffix ``_l1`` (its dx is
    internal, not returned) and dx. ``initial``: the initial-state inputs among ``layer_inputs``."""
    def run_stack(ulps=0, **inputs):
        first, second = layers(inputs, layer_inputs)
        gy = inputs[upstream]  # both layers are one model with one H: the first's output is as wide
        y0 = run(**first, **{upstream: np.zeros(gy.shape, gy.dtype)}, ulps=ulps)[output]
        out1 = run(x=y0, **second, **{upstream: gy}, ulps=ulps)
        out0 = run(**first, **{upstream: out1["dx"]}, ulps=ulps)
        out = {k: out0[k] for k in contract}
        out.update({k + LAYER: out1[k] for k in contract if k != "dx"})
        return out

    return run_stack

