"""NumPy reference LSTM: forward pass and backpropagation through time.

Canonical layout (batch-major, gate axis first, gates in the order i, f, g, o)::

    x (B, T, D)   h0, c0 (B, H)   W (4, D, H)   U (4, H, H)   b (4, H)
    gh (B, T, H)  gc (B, H)       upstream gradients of the loss

    z_t[k] = x_t @ W[k] + h_{t-1} @ U[k] + b[k]
    i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;          h_t = o * tanh(c_t)
    L = sum(gh * h) + sum(gc * c_T)

``run`` is the candidate contract every implementation under test follows. It returns

    h, c      (B, T, H)  state after every step
    dh, dc    (B, T, H)  total dL/dh_t and dL/dc_t (dc_t includes the path through h_t)
    dW (4, D, H), dU (4, H, H), db (4, H), dx (B, T, D), dh0, dc0 (B, H)

and, beyond the contract, ``gates`` (B, T, 4, H) (activations) and ``dz`` (B, T, 4, H)
(dL/dz_t per gate). Arithmetic stays in the dtype of the inputs (float32 or float64;
float64 is the canonical reference).

With a projection (``run_proj``, PyTorch's ``proj_size``), the state fed back and returned
is h_t = m_t @ Wr with m_t = o_t * tanh(c_t) and Wr (H, P): h0, gh, h and dh have width P,
U is (4, P, H); c stays of width H, and ``dWr`` (H, P) is returned too. The same loops
run both models (``Wr=None``: no projection).

Other activations (Keras ``activation`` / ``recurrent_activation``, ONNX ``activations``): ``activation``
replaces tanh in g and in the output (h_t = o_t * activation(c_t)), ``recurrent_activation`` replaces the
sigmoid of i, f and o; each a name of gatecheck.reference.activations or a (name, alpha, beta) tuple.
ONNX's ``clip`` (``clip``, a threshold) clips the input of every activation, as the spec's text says:
i, f, o = sigmoid(clip(z)), g = tanh(clip(z_g)) and h_t = o_t * tanh(clip(c_t)); c_t itself is carried
unclipped. At the defaults (tanh, sigmoid, no clip) the arithmetic is the canonical one, operation for
operation; otherwise the backward pass takes each derivative from the table at the recomputed
pre-activation (0 where the clip holds it).

ONNX's ``input_forget=1`` (``coupled=True``): the forget gate is coupled to the input gate, f_t = 1 - i_t, as
onnxruntime's kernel computes it (the spec says only "couple the input and forget gates"); W[f], U[f] and b[f]
then take no part in the model, so their gradients are 0, and dz_i = dc_t * (g_t - c_{t-1}) * i'(z_i).

ONNX's peepholes (``run_peep``, input ``P``): P (3, H) holds the peephole weights of i, f and o, in the family's
gate order (ONNX's P is ordered i, o, f: gatecheck.engines.onnx.layout remaps it); i and f see c_{t-1}, o sees c_t:

    z_i += P[0] * c_{t-1};  z_f += P[1] * c_{t-1};  z_o += P[2] * c_t

so dc_t (total) takes dz_o * P[2] besides the path through tanh, c_{t-1} takes dz_i * P[0] + dz_f * P[1] besides
the carry, and ``dP`` (3, H) is returned. The same loops run every model (``P=None``: no peepholes).
"""

import numpy as np

from gatecheck.reference import _numerics, activations
from gatecheck.reference import _validate as v

GATES = ("i", "f", "g", "o")
CONTRACT_KEYS = ("h", "c", "dh", "dc", "dW", "dU", "db", "dx", "dh0", "dc0")


def sigmoid(x):
    """Logistic function in the dtype of ``x`` (exp overflow for very negative x gives 0, exactly)."""
    with np.errstate(over="ignore"):
        e = np.exp(-x)
    e += 1
    return np.reciprocal(e, out=e).astype(x.dtype, copy=False)


def split_gates(z):
    """(..., 4H) -> (..., 4, H): the single place where the gate axis is cut."""
    return z.reshape(*z.shape[:-1], 4, z.shape[-1] // 4)


def join_gates(w):
    """(4, A, H) -> (A, 4H), the inverse of ``split_gates`` on the last axis."""
    return w.transpose(1, 0, 2).reshape(w.shape[1], 4 * w.shape[2])


def chosen(activation="tanh", recurrent_activation="sigmoid", clip=None, clip_output=True):
    """(gates' activation, g's activation, the output's activation on c_t) as gatecheck.reference.activations'
    Chosen (behind ``clip``'s Clipped where a clip is given: every activation's input, the output's too unless
    ``clip_output`` is False), or None at the defaults (sigmoid, tanh, no clip), whose canonical arithmetic the
    references keep. ``clip_output=False`` is the other reading of ONNX's clip, the gates' pre-activations only
    (onnxruntime's and OpenVINO's: gatecheck.truth.deviations)."""
    if activation == "tanh" and recurrent_activation == "sigmoid" and clip is None:
        return None
    act = activations.clipped(activation, clip)
    return activations.clipped(recurrent_activation, clip), act, act if clip_output else activations.choose(activation)


def activate(z, out=None, ulps=0, acts=None):
    """Pre-activations (..., 4, H) -> gate activations: sigmoid for i, f, o and tanh for g (``acts``:
    ``chosen``'s in their place). ``out`` may be ``z`` itself."""
    if acts is not None:
        gate, act = acts[:2]
        g = act(z[..., 2, :])
        y = gate(z)
        out = y if out is None else out
        out[...] = y
        out[..., 2, :] = g
        return _numerics.jitter(out, ulps)
    g = np.tanh(z[..., 2, :])
    out = np.negative(z, out=out)
    with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z gives sigmoid 0, exactly
        np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    out[..., 2, :] = g
    return _numerics.jitter(out, ulps)


def input_projection(x, W, b):
    """x_t @ W[k] + b[k] for every step at once, time-major: (B, T, D) -> (T, B, 4H)."""
    B, T, D = x.shape
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D)
    xw = (x_tm @ join_gates(W)).reshape(T, B, -1)
    xw += b.reshape(-1)
    return xw


PEEPHOLES = ("i", "f", "o")  # the rows of P: the gates that see the cell state
_PEEPED = (0, 1, 3)  # their canonical gate indices


def step(xw_t, h_prev, c_prev, U_joined, out=None, ulps=0, acts=None, peepholes=None, coupled=False):
    """One step up to the cell state: returns gates (B, 4, H) (written to ``out`` if
    given) and c_t. ``peepholes``: P (3, H) (i, f see c_{t-1}; o sees c_t); ``coupled``: f = 1 - i."""
    z = np.matmul(h_prev, U_joined, out=None if out is None else out.reshape(out.shape[0], -1))
    z += xw_t
    if peepholes is None:
        gates = activate(split_gates(z), out=out, ulps=ulps, acts=acts)
    else:
        z = split_gates(z).copy()
        z[:, 0] += peepholes[0] * c_prev
        z[:, 1] += peepholes[1] * c_prev
        gates = activate(z, out=out, ulps=ulps, acts=acts)
    if coupled:
        gates[:, 1] = 1 - gates[:, 0]
    i, f, g = gates[:, 0], gates[:, 1], gates[:, 2]
    c_t = f * c_prev + i * g
    if peepholes is not None:  # o sees the new cell state
        gates[:, 3] = gate(z[:, 3] + peepholes[2] * c_t, ulps, acts)
    return gates, c_t


def gate(z, ulps=0, acts=None):
    """The gates' activation alone: the sigmoid (``acts``: ``chosen``'s in its place)."""
    return _numerics.jitter(acts[0](z) if acts is not None else sigmoid(z), ulps)


OUTPUTS = ("tanh", "identity")


def output_activation(c, output="tanh", ulps=0, acts=None):
    """tanh(c_t) for the canonical LSTM (``acts``: its activation in place of tanh); c_t itself for the
    identity-output variant."""
    if output == "tanh" and acts is not None:
        return _numerics.jitter(acts[2](c), ulps)
    return _numerics.jitter(np.tanh(c), ulps) if output == "tanh" else c


def hidden(gates, c, output="tanh", ulps=0, acts=None):
    """h_t = o_t * tanh(c_t) (or o_t * c_t for ``output="identity"``)."""
    return gates[:, 3] * output_activation(c, output, ulps, acts)


def loss(h, c_last, gh, gc):
    """The scalar loss all gradients refer to."""
    return np.sum(gh * h) + np.sum(gc * c_last)


def batch_major(a):
    """Time-major (T, B, ...) -> batch-major (B, T, ...), as a view."""
    return np.swapaxes(a, 0, 1)


def validate(x, h0, c0, W, U, b, gh, gc, Wr=None, peepholes=None):
    """Check every argument of ``run`` (of ``run_proj`` with ``Wr``, of ``run_peep`` with ``P``); return
    (B, T, D, H)."""
    args = dict(x=x, h0=h0, c0=c0, W=W, U=U, b=b, gh=gh, gc=gc)
    ndims = dict(x=3, h0=2, c0=2, W=3, U=3, b=2, gh=3, gc=2, Wr=2, P=2)
    if Wr is not None:
        args["Wr"] = Wr
    if peepholes is not None:
        args["P"] = peepholes
    B, T, D = v.sequence_arguments(args, ndims)
    if W.shape[0] != 4:
        raise ValueError(f"W: expected the gate axis first with 4 gates (i, f, g, o), got shape {W.shape}")
    H = W.shape[2]
    if H == 0:
        raise ValueError(f"W: expected H >= 1, got shape {W.shape}")
    v.check_shape("W", W, (4, D, H), "(4, D, H)")
    P, p = H, "H"  # the width of h: H, or the projection's P
    if Wr is not None:
        P, p = Wr.shape[1], "P"
        if Wr.shape[0] != H or P == 0:
            raise ValueError(f"Wr: expected shape (H, P) = ({H}, P) with P >= 1 (H from W), got {Wr.shape}")
    v.check_shape("U", U, (4, P, H), f"(4, {p}, H)")
    v.check_shape("b", b, (4, H), "(4, H)")
    if peepholes is not None:
        v.check_shape("P", peepholes, (3, H), "(3, H) (peepholes of i, f, o)")
    v.check_shape("h0", h0, (B, P), f"(B, {p})")
    v.check_shape("c0", c0, (B, H), "(B, H)")
    v.check_shape("gh", gh, (B, T, P), f"(B, T, {p})")
    v.check_shape("gc", gc, (B, H), "(B, H)")
    for name, value in args.items():
        v.check_finite(name, value)
    return B, T, D, H


def forward_tm(x, h0, c0, W, U, b, output="tanh", ulps=0, Wr=None, acts=None, peepholes=None, coupled=False):
    """Unchecked forward pass, time-major: h (T, B, P), c (T, B, H) and gates (T, B, 4, H)
    (P = H without a projection ``Wr``; ``acts``: ``chosen``'s; ``peepholes``: the peephole weights (3, H);
    ``coupled``: f = 1 - i)."""
    B, T, _ = x.shape
    H = c0.shape[1]
    xw = input_projection(x, W, b)
    U_joined = join_gates(U)
    h = np.empty((T, B, h0.shape[1]), x.dtype)
    c = np.empty((T, B, H), x.dtype)
    gates = np.empty((T, B, 4, H), x.dtype)
    h_t, c_t = h0, c0
    for t in range(T):
        _, c_t = step(xw[t], h_t, c_t, U_joined, out=gates[t], ulps=ulps, acts=acts, peepholes=peepholes, coupled=coupled)
        h_t = hidden(gates[t], c_t, output, ulps, acts)
        if Wr is not None:
            h_t = h_t @ Wr
        h[t], c[t] = h_t, c_t
    return dict(h=h, c=c, gates=gates)


def forward(x, h0, c0, W, U, b, output="tanh", ulps=0, Wr=None, acts=None, peepholes=None, coupled=False):
    """Unchecked forward pass: h (B, T, P), c (B, T, H) and gates (B, T, 4, H)."""
    return {k: batch_major(v) for k, v in forward_tm(x, h0, c0, W, U, b, output, ulps, Wr, acts, peepholes, coupled).items()}


def backward(fwd, x, h0, c0, W, U, gh, gc, output="tanh", ulps=0, Wr=None, b=None, acts=None, peepholes=None,
             coupled=False):
    """Unchecked BPTT from the time-major output of ``forward_tm``; batch-major results
    (with a projection ``Wr``, also dWr; with ``peepholes``, also dP). Under other activations (``acts``,
    ``chosen``'s) each derivative is the table's at the pre-activation z_t, recomputed from x, h_{t-1} and ``b``
    (and the peepholes' terms). ``coupled``: f = 1 - i, so dz_f = 0 and i takes the forget gate's path."""
    B, T, D = x.shape
    H, P = c0.shape[1], h0.shape[1]
    h, c, gates = fwd["h"], fwd["c"], fwd["gates"]
    h_prev = np.concatenate([h0[None], h[:-1]])
    c_prev = np.concatenate([c0[None], c[:-1]])
    gh = np.swapaxes(gh, 0, 1)
    U_joined_T = join_gates(U).T
    dh = np.empty_like(h)
    dc = np.empty_like(c)
    dz = np.empty_like(gates)
    m = None if Wr is None else np.empty_like(c)  # m_t = o_t * tanh(c_t), what Wr projects
    # Deltas flow back through time along two paths: dh_t receives dz_{t+1} @ U^T
    # (h_t fed step t+1's gates) and dc_t receives dc_{t+1} * f_{t+1} (the cell's carry).
    dh_from_next = np.zeros((B, P), x.dtype)
    dc_from_next = gc
    if acts is not None:
        z = split_gates(input_projection(x, W, b))
        z += split_gates(h_prev @ join_gates(U))
        if peepholes is not None:
            z[:, :, 0] += peepholes[0] * c_prev
            z[:, :, 1] += peepholes[1] * c_prev
            z[:, :, 3] += peepholes[2] * c
    for t in reversed(range(T)):
        i, f, g, o = (gates[t, :, k] for k in range(4))
        tanh_c = output_activation(c[t], output, ulps, acts)
        dh_t = np.add(gh[t], dh_from_next, out=dh[t])
        dm_t = dh_t  # dL/dm_t: h_t = m_t, or h_t = m_t @ Wr
        if Wr is not None:
            dm_t = dh_t @ Wr.T
            m[t] = o * tanh_c
        if acts is None:
            dc_t = np.multiply(dm_t, o * (1 - tanh_c * tanh_c) if output == "tanh" else o, out=dc[t])
            dc_t += dc_from_next
            np.multiply(dm_t, tanh_c * o * (1 - o), out=dz[t, :, 3])
            if peepholes is not None:  # o_t sees c_t: dc_t takes dz_o * P_o too
                dc_t += dz[t, :, 3] * peepholes[2]
            if coupled:  # c_t = (1 - i) c_{t-1} + i g: f takes no part (dz_f = 0)
                np.multiply(dc_t, (g - c_prev[t]) * i * (1 - i), out=dz[t, :, 0])
                dz[t, :, 1] = 0
            else:
                np.multiply(dc_t, g * i * (1 - i), out=dz[t, :, 0])
                np.multiply(dc_t, c_prev[t] * f * (1 - f), out=dz[t, :, 1])
            np.multiply(dc_t, i * (1 - g * g), out=dz[t, :, 2])
        else:  # each slope from the table: gate' at z_i, z_f, z_o; act' at z_g and at c_t
            gate, act, out_act = acts
            out_slope = out_act.derivative(c[t], tanh_c) if output == "tanh" else 1
            dc_t = np.multiply(dm_t, o * out_slope, out=dc[t])
            dc_t += dc_from_next
            gate_slope = gate.derivative(z[t], gates[t])
            np.multiply(dm_t, tanh_c * gate_slope[:, 3], out=dz[t, :, 3])
            if peepholes is not None:  # o_t sees c_t
                dc_t += dz[t, :, 3] * peepholes[2]
            if coupled:  # c_t = (1 - i) c_{t-1} + i g
                np.multiply(dc_t, (g - c_prev[t]) * gate_slope[:, 0], out=dz[t, :, 0])
                dz[t, :, 1] = 0
            else:
                np.multiply(dc_t, g * gate_slope[:, 0], out=dz[t, :, 0])
                np.multiply(dc_t, c_prev[t] * gate_slope[:, 1], out=dz[t, :, 1])
            np.multiply(dc_t, i * act.derivative(z[t, :, 2], g), out=dz[t, :, 2])
        dh_from_next = dz[t].reshape(B, 4 * H) @ U_joined_T
        dc_from_next = dc_t * f
        if peepholes is not None:  # i_t and f_t see c_{t-1}
            dc_from_next = dc_from_next + dz[t, :, 0] * peepholes[0] + dz[t, :, 1] * peepholes[1]
    dz_flat = dz.reshape(T * B, 4 * H)
    x_tm = np.swapaxes(x, 0, 1).reshape(T * B, D)
    dW = split_gates(x_tm.T @ dz_flat).transpose(1, 0, 2)
    dU = split_gates(h_prev.reshape(T * B, P).T @ dz_flat).transpose(1, 0, 2)
    db = dz.sum(axis=(0, 1))
    dx = (dz_flat @ join_gates(W).T).reshape(T, B, D)
    out = dict(
        dh=batch_major(dh), dc=batch_major(dc), dz=batch_major(dz), dx=batch_major(dx),
        dW=dW, dU=dU, db=db, dh0=dh_from_next, dc0=dc_from_next,
    )
    if Wr is not None:
        out["dWr"] = m.reshape(T * B, H).T @ dh.reshape(T * B, P)
    if peepholes is not None:
        out["dP"] = np.stack([(dz[:, :, 0] * c_prev).sum(axis=(0, 1)), (dz[:, :, 1] * c_prev).sum(axis=(0, 1)),
                              (dz[:, :, 3] * c).sum(axis=(0, 1))])
    return out


def run(x, h0, c0, W, U, b, gh, gc, *, output="tanh", ulps=0, activation="tanh", recurrent_activation="sigmoid",
        clip=None, clip_output=True, coupled=False):
    """Forward and backward pass under the candidate contract (see the module docstring).

    ``output="identity"`` gives the variant without the output tanh (h_t = o_t * c_t),
    the model some hand-written LSTMs implement; the contract is otherwise the same.
    ``ulps`` moves every activation by that many ulps (the tolerance's yardstick: see
    ``reference._numerics``); 0 is the exact reference. ``activation`` (g and the output) and
    ``recurrent_activation`` (i, f, o): the keywords a candidate is called with under an activation
    option (gatecheck.model.options), names of gatecheck.reference.activations or (name, alpha, beta).
    ``clip``: ONNX's cell clip threshold (None: no clip), on the input of every activation: z_i, z_f, z_g,
    z_o and c_t where h_t = o_t * tanh(clip(c_t)) (the cell state carried on is not clipped);
    ``clip_output=False``: c_t not clipped there (``chosen``).
    ``coupled``: ONNX's input_forget=1, f_t = 1 - i_t (W[f], U[f], b[f] unused: their gradients are 0).
    """
    return _run(x, h0, c0, W, U, b, gh, gc, None, output, ulps,
                chosen(activation, recurrent_activation, clip, clip_output), coupled=coupled)


def _run(x, h0, c0, W, U, b, gh, gc, Wr, output, ulps, acts=None, P=None, coupled=False):
    if output not in OUTPUTS:
        raise ValueError(f"output: expected one of {list(OUTPUTS)}, got {output!r}")
    if not isinstance(coupled, (bool, np.bool_)):
        raise ValueError(f"coupled: expected True or False, got {coupled!r}")
    validate(x, h0, c0, W, U, b, gh, gc, Wr, P)
    fwd = forward_tm(x, h0, c0, W, U, b, output, ulps, Wr, acts, P, coupled)
    bwd = backward(fwd, x, h0, c0, W, U, gh, gc, output, ulps, Wr, b, acts, P, coupled)
    return {**{k: batch_major(v) for k, v in fwd.items()}, **bwd}


def no_bias(W):
    """The bias a no-bias LSTM stands for: b = 0 (4, H) in W's dtype (z_t[k] = x_t W[k] + h_{t-1} U[k])."""
    return {"b": np.zeros((W.shape[0], W.shape[2]), W.dtype)}


def run_nobias(x, h0, c0, W, U, gh, gc, *, output="tanh", ulps=0, **activations):
    """The contract under the no-bias option (Keras use_bias=False, PyTorch bias=False): no
    ``b`` in, no ``db`` out. The model is the LSTM at b = 0, exactly."""
    out = run(x, h0, c0, W, U, **no_bias(W), gh=gh, gc=gc, output=output, ulps=ulps, **activations)
    del out["db"]
    return out


# The outputs of ``run`` without a time axis (gradients of the parameters and initial states):
# every other output is per step, time on axis 1.
TIMELESS = ("dW", "dU", "db", "dh0", "dc0")


def run_rev(x, h0, c0, W, U, b, gh, gc, *, output="tanh", reverse=True, ulps=0, **activations):
    """The contract under the reverse option (Keras go_backwards=True): the layer consumes
    x[:, T-1] first and x[:, 0] last. Inputs and outputs are those of ``run``, every per-step
    array indexed by the original t (c[:, t], h[:, t]: the states after x[:, t]); the final
    state, which ``gc`` is the gradient of, is c[:, 0]. One loop: ``run`` on the time-flipped
    sequence (gc unchanged: it belongs to the last step processed), its per-step outputs
    flipped back.
    ``reverse``: the keyword every candidate is called with under the option (always True).
    """
    if not reverse:
        raise ValueError("run_rev is the reverse model: reverse must be True (the forward one is run)")
    out = run(x[:, ::-1], h0, c0, W, U, b, gh[:, ::-1], gc, output=output, ulps=ulps, **activations)
    return {k: v if k in TIMELESS else v[:, ::-1] for k, v in out.items()}


def run_proj(x, h0, c0, W, U, b, Wr, gh, gc, *, output="tanh", ulps=0):
    """The contract under the projection option (PyTorch ``nn.LSTM(proj_size=P)``): the state
    fed back and returned is h_t = (o_t * tanh(c_t)) @ Wr, Wr (H, P) (PyTorch's weight_hr is
    Wr.T). Inputs: those of ``run`` plus ``Wr``, with h0 (B, P), U (4, P, H), gh (B, T, P);
    c0 and gc keep width H. Outputs: those of ``run`` with h, dh (B, T, P), dh0 (B, P),
    dU (4, P, H), plus dWr (H, P); c, dc, dc0 keep width H. Any P >= 1 is accepted (PyTorch
    requires P < H; at P = H with Wr the identity this is ``run``, exactly).
    """
    return _run(x, h0, c0, W, U, b, gh, gc, Wr, output, ulps)


def run_peep(x, h0, c0, W, U, b, P, gh, gc, *, output="tanh", ulps=0, **model):
    """The contract under the peephole option (ONNX's LSTM input ``P``): i and f see c_{t-1}, o sees c_t
    (z_i += P[0] c_{t-1}, z_f += P[1] c_{t-1}, z_o += P[2] c_t). Inputs: those of ``run`` plus ``P`` (3, H),
    the peephole weights of i, f and o (the family's gate order; ONNX orders them i, o, f). Outputs: those of
    ``run`` plus dP (3, H). ``model``: ``run``'s other keywords (activations, clip, coupled). At P = 0 this is
    ``run``'s model (its arithmetic differs by the added zero terms only)."""
    keywords = dict(activation="tanh", recurrent_activation="sigmoid", clip=None, clip_output=True, coupled=False)
    unknown = set(model) - set(keywords)
    if unknown:
        raise TypeError(f"run_peep: unexpected keyword(s) {sorted(unknown)}")
    keywords.update(model)
    if P is None:
        raise ValueError("P: expected the peephole weights (3, H), got None")
    acts = chosen(keywords["activation"], keywords["recurrent_activation"], keywords["clip"], keywords["clip_output"])
    return _run(x, h0, c0, W, U, b, gh, gc, None, output, ulps, acts, P, keywords["coupled"])
