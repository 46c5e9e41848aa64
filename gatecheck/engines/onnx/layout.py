"""Pure NumPy remaps between the canonical layouts and the ONNX recurrent operators' (``LSTM``,
``GRU``, ``RNN``; onnx/docs/Operators.md, opset 14, the first with ``layout``).

Weights, one direction (a bidirectional node stacks the forward then the reverse direction on a
leading axis, ``num_directions``):

    W (G*H, D)   the gates' input kernels, one (H, D) block per gate: block k is W[gate].T
    R (G*H, H)   the recurrent kernels, block k is U[gate].T
    B (2*G*H,)   [Wb, Rb]: an input bias then a recurrent bias, G*H each; the node adds both

Gate order along G (``GATES``, canonical gate index of each ONNX block):

    LSTM  ONNX i, o, f, c    canonical i, f, g, o  (c is the cell candidate g)
    GRU   ONNX z, r, h       canonical r, z, n     (h is the candidate n)
    RNN   one block

Peepholes (the LSTM's optional P, one direction): P (3*H,), blocks i, o, f; the canonical P (3, H) has rows i, f, o
(gatecheck.families.lstm.peep), so ONNX block k is canonical row ``PEEPHOLES[k]``.

Biases: the GRU has two canonical biases and ONNX two slots, bx -> Wb and bh -> Rb exactly
(``linear_before_reset=1`` puts Rb[h] inside the reset, as the canonical ``gru`` puts bh[n];
``linear_before_reset=0`` adds both outside, as ``gru-reset-before``). The LSTM and the RNN have
one canonical b for two slots: it is split Wb = Rb = b / 2 (exact in binary floating point, and
both slots are exercised: a node that dropped either would be off by b / 2), as the PyTorch
remaps split it; b = Wb + Rb back.

Sequences and states, ``layout`` 0 (time-major) or 1 (batch-major):

    X                   (T, B, D)            (B, T, D)
    initial_h, Y_h,     (dirs, B, H)         (B, dirs, H)
    initial_c, Y_c
    Y                   (T, dirs, B, H)      (B, T, dirs, H)

The canonical sequences are (B, T, .) and states (B, H). Y of a reverse direction is indexed by
the original t (Y[t] is the state after x[t], having consumed x[t+1:]), as the canonical reverse
contract indexes it, so it is read as it comes.

Every function here takes and returns NumPy arrays only and imports no framework.
"""

import numpy as np

# The canonical gate (index along the canonical gate axis) of each ONNX block, in ONNX order.
GATES = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}
# The canonical bias inputs of each kind: one split over both slots, or one per slot.
BIASES = {"lstm": ("b",), "rnn": ("b",), "gru": ("bx", "bh")}
# The canonical peephole row (i, f, o) of each ONNX block of the LSTM's P, in ONNX order (i, o, f).
PEEPHOLES = (0, 2, 1)
LAYOUTS = (0, 1)


def _kind(kind):
    if kind not in GATES:
        raise ValueError(f"kind: expected one of {sorted(GATES)}, got {kind!r}")
    return GATES[kind]


def _gated(kind, a):
    """A canonical kernel or bias with its gate axis first (the RNN's has none: one gate)."""
    return a[None] if kind == "rnn" else a


def _blocks(kind, a):
    """(G, ...) canonical blocks in ONNX order, each transposed to ONNX's (H, in) and stacked: (G*H, in)."""
    gated = _gated(kind, a)
    return np.concatenate([gated[g].T for g in _kind(kind)], axis=0)


def _unblocks(kind, a, H):
    """Inverse of ``_blocks``: (G*H, in) -> the canonical (G, in, H) (the RNN's (in, H))."""
    order = _kind(kind)
    found = [None] * len(order)
    for k, g in enumerate(order):
        found[g] = a[k * H:(k + 1) * H].T
    out = np.stack(found)
    return out[0] if kind == "rnn" else out


def _bias_blocks(kind, b):
    gated = _gated(kind, b)
    return np.concatenate([gated[g] for g in _kind(kind)])


def _bias_unblocks(kind, b, H):
    order = _kind(kind)
    found = [None] * len(order)
    for k, g in enumerate(order):
        found[g] = b[k * H:(k + 1) * H]
    out = np.stack(found)
    return out[0] if kind == "rnn" else out


def peepholes_to_onnx(P):
    """The canonical peepholes (3, H), rows i, f, o -> ONNX's P of one direction (3*H,), blocks i, o, f."""
    if P.ndim != 2 or P.shape[0] != 3:
        raise ValueError(f"P: expected the canonical peepholes (3, H) (rows i, f, o), got shape {P.shape}")
    return np.concatenate([P[k] for k in PEEPHOLES])


def peepholes_from_onnx(P):
    """Inverse of ``peepholes_to_onnx``: ONNX's (3*H,) blocks i, o, f -> (3, H) rows i, f, o."""
    if P.ndim != 1 or P.shape[0] % 3:
        raise ValueError(f"P: expected one direction's ONNX peepholes (3*H,), got shape {P.shape}")
    blocks = np.split(P, 3)
    found = [None] * 3
    for k, row in enumerate(PEEPHOLES):
        found[row] = blocks[k]
    return np.stack(found)


def to_onnx(kind, params):
    """One direction's canonical {'W', 'U', bias..., 'P'} -> {'W' (G*H, D), 'R' (G*H, H), 'B' (2*G*H,),
    'P' (3*H,)}; without the canonical biases (no bias) no 'B'; without peepholes (the LSTM's P) no 'P'."""
    out = {"W": _blocks(kind, params["W"]), "R": _blocks(kind, params["U"])}
    if "P" in params:
        if kind != "lstm":
            raise ValueError(f"{kind}: peepholes P are the LSTM's only")
        out["P"] = peepholes_to_onnx(params["P"])
    names = BIASES[kind]
    present = [n in params for n in names]
    if any(present) and not all(present):
        raise ValueError(f"{kind}: biases {list(names)} come together; got {[n for n in names if n in params]}")
    if all(present):
        if kind == "gru":
            wb, rb = _bias_blocks(kind, params["bx"]), _bias_blocks(kind, params["bh"])
        else:
            wb = _bias_blocks(kind, params["b"] / 2)
            rb = wb.copy()
        out["B"] = np.concatenate([wb, rb])
    return out


def from_onnx(kind, weights):
    """{'W', 'R', 'B', 'P'} of one direction -> canonical {'W', 'U', bias..., 'P'}: the GRU's Wb -> bx, Rb -> bh;
    the LSTM's and RNN's b = Wb + Rb (what the node adds); without 'B' no bias; the LSTM's P reordered."""
    G = len(_kind(kind))
    H = weights["R"].shape[1]
    if weights["W"].shape[0] != G * H or weights["R"].shape[0] != G * H:
        raise ValueError(f"{kind}: W and R need {G}*H rows, got {weights['W'].shape} and {weights['R'].shape}")
    out = {"W": _unblocks(kind, weights["W"], H), "U": _unblocks(kind, weights["R"], H)}
    if "B" in weights:
        wb, rb = (_bias_unblocks(kind, part, H) for part in np.split(weights["B"], 2))
        out.update(dict(bx=wb, bh=rb) if kind == "gru" else dict(b=wb + rb))
    if "P" in weights:
        out["P"] = peepholes_from_onnx(weights["P"])
    return out


def stack_directions(per_direction):
    """One {'W', 'R', 'B'} per direction (forward first) -> the node's inputs, each with the
    num_directions axis first."""
    keys = per_direction[0].keys()
    if any(d.keys() != keys for d in per_direction):
        raise ValueError("every direction has the same weights (a bias in each, or in none)")
    return {k: np.stack([d[k] for d in per_direction]) for k in keys}


def split_directions(weights):
    """Inverse of ``stack_directions``."""
    n = next(iter(weights.values())).shape[0]
    return [{k: v[d] for k, v in weights.items()} for d in range(n)]


def _layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    return layout


def sequence_to_onnx(x, layout):
    """A canonical sequence (B, T, .) -> ONNX's X: (T, B, .) for layout 0, (B, T, .) for layout 1."""
    return np.ascontiguousarray(x.transpose(1, 0, 2) if _layout(layout) == 0 else x)


def sequence_from_onnx(x, layout):
    """Inverse of ``sequence_to_onnx`` (also a merged output of a layer, in its input's layout)."""
    return np.ascontiguousarray(x.transpose(1, 0, 2) if _layout(layout) == 0 else x)


def states_to_onnx(states, layout):
    """One canonical state (B, H) per direction -> initial_h / initial_c: (dirs, B, H) or (B, dirs, H)."""
    return np.ascontiguousarray(np.stack(states, axis=0 if _layout(layout) == 0 else 1))


def states_from_onnx(states, layout):
    """Y_h / Y_c -> one canonical state (B, H) per direction."""
    axis = 0 if _layout(layout) == 0 else 1
    return [np.ascontiguousarray(np.take(states, d, axis=axis)) for d in range(states.shape[axis])]


def outputs_from_onnx(Y, layout):
    """Y -> one canonical sequence (B, T, H) per direction (the reverse direction's already by the
    original t)."""
    if _layout(layout) == 0:  # (T, dirs, B, H)
        return [np.ascontiguousarray(Y[:, d].transpose(1, 0, 2)) for d in range(Y.shape[1])]
    return [np.ascontiguousarray(Y[:, :, d]) for d in range(Y.shape[2])]  # (B, T, dirs, H)


def outputs_to_onnx(sequences, layout):
    """Inverse of ``outputs_from_onnx`` (for tests: one (B, T, H) per direction -> Y)."""
    if _layout(layout) == 0:
        return np.ascontiguousarray(np.stack([s.transpose(1, 0, 2) for s in sequences], axis=1))
    return np.ascontiguousarray(np.stack(sequences, axis=2))
