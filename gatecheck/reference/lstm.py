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


def step(xw_t, h_prev, c_prev, U_joined, out=None, ulps=0, acts=None):
    """One step up to the cell state: returns gates (B, 4, H) (written to ``out`` if
    given) and c_t."""
    z = np.matmul(h_prev, U_joined, out=None if out is None else out.reshape(out.shape[0], -1))
    z += xw_t
    gates = activate(split_gates(z), out=out, ulps=ulps, acts=acts)
    i, f, g = gates[:, 0], gates[:, 1], gates[:, 2]
    return gates, f * c_prev + i * g


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


def validate(x, h0, c0, W, U, b, gh, gc, Wr=None):
    """Check every argument of ``run`` (of ``run_proj`` with ``Wr``); return (B, T, D, H)."""
    args = dict(x=x, h0=h0, c0=c0, W=W, U=U, b=b, gh=gh, gc=gc)
    ndims = dict(x=3, h0=2, c0=2, W=3, U=3, b=2, gh=3, gc=2, Wr=2)
    if Wr is not None:
        args["Wr"] = Wr
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
    v.check_shape("h0", h0, (B, P), f"(B, {p})")
    v.check_shape("c0", c0, (B, H), "(B, H)")
    v.check_shape("gh", gh, (B, T, P), f"(B, T, {p})")
    v.check_shape("gc", gc, (B, H), "(B, H)")
    for name, value in args.items():
        v.check_finite(name, value)
    return B, T, D, H


def forward_tm(x, h0, c0, W, U, b, output="tanh", ulps=0, Wr=None, acts=None):
    """Unchecked forward pass, time-major: h (T, B, P), c (T, B, H) and gates (T, B, 4, H)
    (P = H without a projection ``Wr``; ``acts``: ``chosen``'s)."""
    B, T, _ = x.shape
    H = c0.shape[1]
    xw = input_projection(x, W, b)
    U_joined = join_gates(U)
    h = np.empty((T, B, h0.shape[1]), x.dtype)
    c = np.empty((T, B, H), x.dtype)
    gates = np.empty((T, B, 4, H), x.dtype)
    h_t, c_t = h0, c0
    for t in range(T):
        _, c_t = step(xw[t], h_t, c_t, U_joined, out=gates[t], ulps=ulps, acts=acts)
        h_t = hidden(gates[t], c_t, output, ulps, acts)
        if Wr is not None:
            h_t = h_t @ Wr
        h[t], c[t] = h_t, c_t
    return dict(h=h, c=c, gates=gates)


def forward(x, h0, c0, W, U, b, output="tanh", ulps=0, Wr=None, acts=None):
    """Unchecked forward pass: h (B, T, P), c (B, T, H) and gates (B, T, 4, H)."""
    return {k: batch_major(v) for k, v in forward_tm(x, h0, c0, W, U, b, output, ulps, Wr, acts).items()}


def backward(fwd, x, h0, c0, W, U, gh, gc, output="tanh", ulps=0, Wr=None, b=None, acts=None):
    """Unchecked BPTT from the time-major output of ``forward_tm``; batch-major results
    (with a projection ``Wr``, also dWr). Under other activations (``acts``, ``chosen``'s) each
    derivative is the table's at the pre-activation z_t, recomputed from x, h_{t-1} and ``b``."""
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
            np.multiply(dc_t, g * i * (1 - i), out=dz[t, :, 0])
            np.multiply(dc_t, c_prev[t] * f * (1 - f), out=dz[t, :, 1])
            np.multiply(dc_t, i * (1 - g * g), out=dz[t, :, 2])
            np.multiply(dm_t, tanh_c * o * (1 - o), out=dz[t, :, 3])
        else:  # each slope from the table: gate' at z_i, z_f, z_o; act' at z_g and at c_t
            gate, act, out_act = acts
            out_slope = out_act.derivative(c[t], tanh_c) if output == "tanh" else 1
            dc_t = np.multiply(dm_t, o * out_slope, out=dc[t])
            dc_t += dc_from_next
            gate_slope = gate.derivative(z[t], gates[t])
            np.multiply(dc_t, g * gate_slope[:, 0], out=dz[t, :, 0])
            np.multiply(dc_t, c_prev[t] * gate_slope[:, 1], out=dz[t, :, 1])
            np.multiply(dc_t, i * act.derivative(z[t, :, 2], g), out=dz[t, :, 2])
            np.multiply(dm_t, tanh_c * gate_slope[:, 3], out=dz[t, :, 3])
        dh_from_next = dz[t].reshape(B, 4 * H) @ U_joined_T
        dc_from_next = dc_t * f
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
    return out


def run(x, h0, c0, W, U, b, gh, gc, *, output="tanh", ulps=0, activation="tanh", recurrent_activation="sigmoid",
        clip=None, clip_output=True):
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
    """
    return _run(x, h0, c0, W, U, b, gh, gc, None, output, ulps,
                chosen(activation, recurrent_activation, clip, clip_output))


def _run(x, h0, c0, W, U, b, gh, gc, Wr, output, ulps, acts=None):
    if output not in OUTPUTS:
        raise ValueError(f"output: expected one of {list(OUTPUTS)}, got {output!r}")
    validate(x, h0, c0, W, U, b, gh, gc, Wr)
    fwd = forward_tm(x, h0, c0, W, U, b, output, ulps, Wr, acts)
    bwd = backward(fwd, x, h0, c0, W, U, gh, gc, output, ulps, Wr, b, acts)
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
