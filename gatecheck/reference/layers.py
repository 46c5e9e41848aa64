"""Layers built from one recurrent model, as the frameworks build them: the reverse direction,
a bidirectional layer (two directions with their own weights, outputs merged), and a stack of
two layers (the second consumes the first's output sequence).

Each is a pure composition of a model's ``run`` (any family's reference, or a candidate under
test: the same code), so every formula here is stated once for every family. A model's run
takes keyword inputs, among them ``x`` (B, T, D) and the upstream gradient of its output
sequence (``gh``, (B, T, H)), and returns its contract: per-step arrays with time on axis 1,
the rest ("timeless": parameter and initial-state gradients) without a time axis.

Under a mask (B, T) (``masked``), each batch row's model consumes only its valid steps. The
mask is an input every direction and layer shares (``shared``): flipped with x for the reverse
direction, handed unchanged to the second layer.

Naming: the reverse direction's inputs and outputs carry the suffix ``_r`` (``W_r``, ``h0_r``,
``dW_r``, ``h_r``), the second layer's ``_l1`` (``W_l1``, ``h_l1``; ``W_r_l1`` for its reverse
direction). ``dx`` is the gradient of the layer's (the stack's) input, once.
"""

import numpy as np

MERGES = ("concat", "sum", "mul", "ave", "none")
# What a masked step outputs: "zero" (PyTorch's packed sequences padded back, Keras'
# zero_output_for_mask=True) or "carry" (Keras' default: the previous step's output, 0 before any).
MASKED_OUTPUTS = ("zero", "carry")
MASK = "mask"  # the input every direction and layer shares, flipped with x by ``reversed_run``
REVERSE = "_r"
LAYER = "_l1"


def suffixes(bidirectional, depth):
    """The suffix of every (layer, direction) of a structure, layer-major (PyTorch's order):
    "", "_r", "_l1", "_r_l1"."""
    return [(REVERSE if d else "") + (LAYER if k else "") for k in range(depth) for d in range(2 if bidirectional else 1)]


def reversed_run(run, timeless, sequences=("x", "gh")):
    """The model run from t = T-1 down to t = 0: ``run`` on the time-flipped ``sequences`` (and
    mask, where there is one), every per-step output flipped back, so that index t is the state
    after x[:, t] (``timeless``: the output keys without a time axis)."""
    flipped = tuple(sequences) + (MASK,)

    def run_reverse(ulps=0, **inputs):
        out = run(**{k: v[:, ::-1] if k in flipped else v for k, v in inputs.items()}, ulps=ulps)
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


def directions(inputs, layer_inputs, shared=()):
    """(forward direction's inputs, reverse direction's inputs) of a bidirectional layer: x and
    the ``shared`` inputs (a mask) are both's, each ``layer_inputs`` key has its ``_r`` twin (the
    upstream gradient is added later)."""
    forward = {k: inputs[k] for k in ("x",) + tuple(layer_inputs)}
    reverse = {"x": inputs["x"], **{k: inputs[k + REVERSE] for k in layer_inputs}}
    common = {k: inputs[k] for k in shared if k in inputs}
    return {**forward, **common}, {**reverse, **common}


def bidirectional(run_f, run_r, merge, layer_inputs, contract, output="h", upstream="gh", initial=(), shared=()):
    """The run of a bidirectional layer: ``run_f`` forwards and ``run_r`` (the reverse
    direction, each with its own weights and initial states: ``layer_inputs`` and their ``_r``
    twins) on the same x; the merged output ``y``'s upstream gradient is the input ``upstream``
    and is split between the directions (``split_upstream``: under "mul" each direction's share
    is scaled by the other's output). Returns the forward direction's ``contract``, the reverse
    one's with the suffix ``_r``, dx (both directions' sum) and the merged output ``y``."""
    def run(ulps=0, **inputs):
        forward, reverse = directions(inputs, layer_inputs, shared)
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


def layers(inputs, layer_inputs, shared=()):
    """(first layer's inputs, second layer's inputs but x) of a stack: each ``layer_inputs``
    key has its ``_l1`` twin; the ``shared`` inputs (a mask) are both's."""
    first = {k: inputs[k] for k in ("x",) + tuple(layer_inputs) + tuple(shared)}
    second = {k: inputs[k + LAYER] for k in layer_inputs}
    second.update({k: inputs[k] for k in shared})
    return first, second


def stacked(run, layer_inputs, contract, output="h", upstream="gh", initial=(), shared=()):
    """The run of two stacked layers of one model (``run``, its own weights and initial states
    per layer: ``layer_inputs`` and their ``_l1`` twins): the second consumes the first's output
    sequence, and the gradient of that input (its dx) is the first layer's upstream gradient.
    Returns the first layer's ``contract``, the second's with the suffix ``_l1`` (its dx is
    internal, not returned) and dx. ``initial``: the initial-state inputs among ``layer_inputs``."""
    def run_stack(ulps=0, **inputs):
        first, second = layers(inputs, layer_inputs, shared)
        gy = inputs[upstream]  # both layers are one model with one H: the first's output is as wide
        y0 = run(**first, **{upstream: np.zeros(gy.shape, gy.dtype)}, ulps=ulps)[output]
        out1 = run(x=y0, **second, **{upstream: gy}, ulps=ulps)
        out0 = run(**first, **{upstream: out1["dx"]}, ulps=ulps)
        out = {k: out0[k] for k in contract}
        out.update({k + LAYER: out1[k] for k in contract if k != "dx"})
        return out

    return run_stack



def valid(mask):
    """The steps a mask keeps (B, T): mask > 1/2 (a mask holds 1.0, valid, or 0.0, masked)."""
    return np.asarray(mask) > 0.5


def carried(keep):
    """(B, T) index of the last valid step at or before each step within its row's valid steps
    (0 for the first valid step), -1 before a row's first valid step."""
    return np.cumsum(keep, axis=1) - 1


def masked(run, outputs, rows, per_row, timeless, states, contract, output="h", upstream="gh"):
    """The run of a model under a mask (input ``mask``, (B, T)): each batch row's model consumes
    its valid steps only, in order, and nothing else; a masked step keeps the state (before a
    row's first valid step: the initial state), and outputs 0 (``outputs`` "zero") or the
    previous step's output ("carry": the kept state, 0 before the first valid step).

    The loss is sum(upstream * masked output) + the model's final-state terms, so a valid step's
    output gradient is its own upstream plus, under "carry", that of the masked steps copying it.
    Returned: the model's ``contract`` and its masked output (key "out"): ``states`` (state ->
    its initial-state input) kept through masked steps; every other per-step key (the states'
    deltas, dx) 0 at a masked step (it computes nothing: no state, no use of x_t); ``timeless``
    keys summed over the rows, but those in ``per_row`` (initial-state gradients) row by row.
    ``rows``: the inputs with a batch axis (x, the upstream gradient, initial states, final
    states' upstreams). Every row needs a valid step.
    """
    if outputs not in MASKED_OUTPUTS:
        raise ValueError(f"outputs: expected one of {list(MASKED_OUTPUTS)}, got {outputs!r}")

    def run_masked(ulps=0, masked_output=outputs, **inputs):
        if masked_output != outputs:
            raise ValueError(f"masked_output: this model's masked steps output {outputs!r}, got {masked_output!r}")
        keep = valid(inputs.pop(MASK, np.ones(inputs["x"].shape[:2])))
        if not keep.any(axis=1).all():
            raise ValueError(f"mask: every row needs a valid step; rows {np.flatnonzero(~keep.any(axis=1)).tolist()} "
                             f"have none")
        gy, last = inputs[upstream], carried(keep)
        parts, kept = [], []
        for b in range(keep.shape[0]):
            steps = np.flatnonzero(keep[b])  # the steps row b's model consumes
            g = gy[b:b + 1, steps]
            if outputs == "carry":  # a masked step's output copies the last valid one's: its gradient goes there
                g = np.zeros_like(g)
                np.add.at(g[0], last[b][last[b] >= 0], gy[b][last[b] >= 0])
            row = {k: inputs[k][b:b + 1] for k in rows}
            row.update(x=inputs["x"][b:b + 1, steps], **{upstream: g})
            parts.append(run(**{**inputs, **row}, ulps=ulps))
            kept.append(steps)
        held = held_steps(keep)
        out = {}
        for k in contract + ("out",):
            source = output if k == "out" else k
            if k in timeless:
                values = [p[k] for p in parts]
                out[k] = np.concatenate(values) if k in per_row else np.sum(values, axis=0)
                continue
            found = np.zeros(keep.shape + parts[0][source].shape[2:], parts[0][source].dtype)
            for b, (p, steps) in enumerate(zip(parts, kept)):
                found[b, steps] = p[source][0]
                if k in states or k == "out" and outputs == "carry":  # held through the masked steps
                    after, before = ~keep[b] & (held[b] >= 0), held[b] < 0
                    found[b, after] = found[b, held[b][after]]
                    found[b, before] = inputs[states[k]][b] if k in states else 0
            out[k] = found
        return out

    return run_masked


def held_steps(keep):
    """(B, T): the step (original t) of the last valid step at or before each step, -1 before a
    row's first valid step."""
    t = np.broadcast_to(np.arange(keep.shape[1]), keep.shape)
    return np.maximum.accumulate(np.where(keep, t, -1), axis=1)
