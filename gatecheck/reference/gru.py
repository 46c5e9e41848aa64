"""NumPy reference GRU: forward pass and backpropagation through time, in both reset conventions.

Canonical layout (batch-major, gate axis first, gates in the order r, z, n, two biases)::

    x (B, T, D)   h0 (B, H)   W (3, D, H)   U (3, H, H)   bx (3, H)   bh (3, H)
    gh (B, T, H)  upstream gradient of the loss

    r_t = sigmoid(x_t W[r] + bx[r] + h_{t-1} U[r] + bh[r])
    z_t = sigmoid(x_t W[z] + bx[z] + h_{t-1} U[z] + bh[z])
    reset="after"  (PyTorch, Keras reset_after=True):
        n_t = tanh(x_t W[n] + bx[n] + r_t * (h_{t-1} U[n] + bh[n]))
    reset="before" (Cho et al. 2014 v3, Keras reset_after=False):
        n_t = tanh(x_t W[n] + bx[n] + (r_t * h_{t-1}) U[n] + bh[n])
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    L = sum(gh * h)

``run`` is the candidate contract. It returns

    h, dh  (B, T, H)  state after every step and total dL/dh_t
    dW (3, D, H), dU (3, H, H), dbx, dbh (3, H), dx (B, T, D), dh0 (B, H)

and, beyond the contract, ``gates`` (B, T, 3, H) (r, z, n activations), ``hn`` (B, T, H)
(h_{t-1} U[n] + bh[n], what reset-after multiplies by r_t), ``dzx`` (B, T, 3, H) (dL/d of
the input-side pre-activations x_t W[k] + bx[k]) and ``dzh`` (B, T, 3, H) (dL/d of the
recurrent-side ones: h_{t-1} U[k] + bh[k] for reset-after, with (r_t * h_{t-1}) for n in
reset-before). In reset-before dzh equals dzx, so dbh equals dbx: L depends on bx + bh only.
Arithmetic stays in the dtype of the inputs (float32 or float64; float64 is the canonical
reference).

Other activations (Keras ``activation`` / ``recurrent_activation``, ONNX ``activations``): ``activation``
replaces the tanh of n, ``recurrent_activation`` the sigmoid of r and z; each a name of
gatecheck.reference.activations or a (name, alpha, beta) tuple. ONNX's ``clip`` (a threshold) clips the
input of every activation: r, z = sigmoid(clip(.)), n = tanh(clip(.)). At the defaults (tanh, sigmoid, no
clip) the arithmetic is the canonical one, operation for operation; otherwise the backward pass takes each
derivative from the table at the recomputed pre-activation (0 where the clip holds it).
"""

import numpy as np

from gatecheck.reference import _numerics, activations
from gatecheck.reference import _validate as v

GATES = ("r", "z", "n")
CONVENTIONS = ("after", "before")
CONTRACT_KEYS = ("h", "dh", "dW", "dU", "dbx", "dbh", "dx", "dh0")


def sigmoid(x, ulps=0):
    """Logistic function in the dtype of ``x`` (exp overflow for very negative x gives 0, exactly)."""
    with np.errstate(over="ignore"):
        e = np.exp(-x)
    e += 1
    return _numerics.jitter(np.reciprocal(e, out=e).astype(x.dtype, copy=False), ulps)


def chosen(activation="tanh", recurrent_activation="sigmoid", clip=None):
    """(recurrent activation, activation) as gatecheck.reference.activations' Chosen (behind ``clip``'s
    Clipped where a clip is given), or None at the defaults (sigmoid, tanh, no clip), whose canonical
    arithmetic the references keep."""
    if activation == "tanh" and recurrent_activation == "sigmoid" and clip is None:
        return None
    return activations.clipped(recurrent_activation, clip), activations.clipped(activation, clip)


def split_gates(a):
    """(..., 3H) -> (..., 3, H): the single place where the gate axis is cut."""
    return a.reshape(*a.shape[:-1], 3, a.shape[-1] // 3)


def join_gates(w):
    """(k, A, H) -> (A, kH), the inverse of ``split_gates`` on the last axis."""
    return w.transpose(1, 0, 2).reshape(w.shape[1], w.shape[0] * w.shape[2])


def loss(h, gh):
    """The scalar loss all gradients refer to."""
    return np.sum(gh * h)


def batch_major(a):
    """Time-major (T, B, ...) -> batch-major (B, T, ...), as a view."""
    return np.swapaxes(a, 0, 1)


def validate(x, h0, W, U, bx, bh, gh):
    """Check every argument of ``run``; return (B, T, D, H)."""
    args = dict(x=x, h0=h0, W=W, U=U, bx=bx, bh=bh, gh=gh)
    ndims = dict(x=3, h0=2, W=3, U=3, bx=2, bh=2, gh=3)
    B, T, D = v.sequence_arguments(args, ndims)
    if W.shape[0] != 3:
        raise ValueError(f"W: expected the gate axis first with 3 gates (r, z, n), got shape {W.shape}")
    H = W.shape[2]
    if H == 0:
        raise ValueError(f"W: expected H >= 1, got shape {W.shape}")
    v.check_shape("W", W, (3, D, H), "(3, D, H)")
    v.check_shape("U", U, (3, H, H), "(3, H, H)")
    v.check_shape("bx", bx, (3, H), "(3, H)")
    v.check_shape("bh", bh, (3, H), "(3, H)")
    v.check_shape("h0", h0, (B, H), "(B, H)")
    v.check_shape("gh", gh, (B, T, H), "(B, T, H)")
    for name, value in args.items():
        v.check_finite(name, value)
    return B, T, D, H


def check_convention(reset):
    if reset not in CONVENTIONS:
        raise ValueError(f"reset: expected one of {list(CONVENTIONS)}, got {reset!r}")


def forward_tm(x, h0, W, U, bx, bh, reset="after", ulps=0, acts=None):
    """Unchecked forward pass, time-major: h, hn (T, B, H) and gates (T, B, 3, H) (``acts``:
    ``chosen``'s)."""
    B, T, D = x.shape
    H = h0.shape[1]
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D)
    xw = split_gates((x_tm @ join_gates(W)).reshape(T, B, 3 * H))  # x_t W[k] + bx[k], every step
    xw += bx
    U_rz = join_gates(U[:2])
    h = np.empty((T, B, H), x.dtype)
    hn = np.empty((T, B, H), x.dtype)
    gates = np.empty((T, B, 3, H), x.dtype)
    h_t = h0
    for t in range(T):
        a_rz = (h_t @ U_rz).reshape(B, 2, H) + bh[:2]
        a_rz += xw[t, :, :2]
        gates[t, :, :2] = sigmoid(a_rz, ulps) if acts is None else _numerics.jitter(acts[0](a_rz), ulps)
        r, z = gates[t, :, 0], gates[t, :, 1]
        hn[t] = h_t @ U[2] + bh[2]
        if reset == "after":
            a_n = xw[t, :, 2] + r * hn[t]
        else:
            a_n = xw[t, :, 2] + (r * h_t) @ U[2] + bh[2]
        n = gates[t, :, 2] = _numerics.jitter(np.tanh(a_n) if acts is None else acts[1](a_n), ulps)
        h_t = h[t] = (1 - z) * n + z * h_t
    return dict(h=h, hn=hn, gates=gates)


def forward(x, h0, W, U, bx, bh, reset="after", ulps=0, acts=None):
    """Unchecked forward pass: h, hn (B, T, H) and gates (B, T, 3, H)."""
    return {k: batch_major(a) for k, a in forward_tm(x, h0, W, U, bx, bh, reset, ulps, acts).items()}


def pre_activations(fwd, x, h0, W, U, bx, bh, reset="after"):
    """The pre-activations (T, B, 3, H) of r, z and n, recomputed from the forward pass's states and r."""
    B, T, D = x.shape
    h_prev = np.concatenate([h0[None], fwd["h"][:-1]])
    a = split_gates((np.swapaxes(x, 0, 1).reshape(T * B, D) @ join_gates(W)).reshape(T, B, -1))
    a += bx
    a[:, :, :2] += (h_prev @ join_gates(U[:2])).reshape(T, B, 2, -1) + bh[:2]
    r = fwd["gates"][:, :, 0]
    a[:, :, 2] += r * fwd["hn"] if reset == "after" else (r * h_prev) @ U[2] + bh[2]
    return a


def backward(fwd, x, h0, W, U, gh, reset="after", bx=None, bh=None, acts=None):
    """Unchecked BPTT from the time-major output of ``forward_tm``; batch-major results. Under other
    activations (``acts``, ``chosen``'s) each derivative is the table's at the pre-activation,
    recomputed (``pre_activations``: it needs the biases ``bx``, ``bh``)."""
    after = reset == "after"
    B, T, D = x.shape
    H = h0.shape[1]
    h, hn, gates = fwd["h"], fwd["hn"], fwd["gates"]
    h_prev = np.concatenate([h0[None], h[:-1]])
    gh = batch_major(gh)
    U_rz_T = join_gates(U[:2]).T
    U_n_T = U[2].T
    dh = np.empty_like(h)
    dzx = np.empty_like(gates)
    dzh = np.empty_like(gates)
    # dh_t is the upstream gh_t plus what step t+1 passes back to h_t: directly through the
    # update mix (dh_{t+1} * z_{t+1}) and through its three gates' recurrent pre-activations.
    dh_from_next = np.zeros((B, H), x.dtype)
    if acts is not None:
        a = pre_activations(fwd, x, h0, W, U, bx, bh, reset)
        slope_rz = acts[0].derivative(a[:, :, :2], gates[:, :, :2])
        slope_n = acts[1].derivative(a[:, :, 2], gates[:, :, 2])
    for t in reversed(range(T)):
        r, z, n = gates[t, :, 0], gates[t, :, 1], gates[t, :, 2]
        dh_t = np.add(gh[t], dh_from_next, out=dh[t])
        dn = dh_t * (1 - z)
        da_n = np.multiply(dn, 1 - n * n if acts is None else slope_n[t], out=dzx[t, :, 2])
        np.multiply(dh_t * (h_prev[t] - n), z * (1 - z) if acts is None else slope_rz[t, :, 1], out=dzx[t, :, 1])
        if after:  # n's recurrent part is r_t * (h_{t-1} U[n] + bh[n])
            np.multiply(da_n, r, out=dzh[t, :, 2])
            dr = da_n * hn[t]
            dh_prev_n = dzh[t, :, 2] @ U_n_T
        else:  # n's recurrent part is (r_t * h_{t-1}) U[n] + bh[n]
            dzh[t, :, 2] = da_n
            d_rh = da_n @ U_n_T
            dr = d_rh * h_prev[t]
            dh_prev_n = d_rh * r
        if acts is None:
            np.multiply(dr, r * (1 - r), out=dzx[t, :, 0])
        else:
            np.multiply(dr, slope_rz[t, :, 0], out=dzx[t, :, 0])
        dzh[t, :, :2] = dzx[t, :, :2]
        dh_from_next = dh_t * z + dzh[t, :, :2].reshape(B, 2 * H) @ U_rz_T + dh_prev_n
    TB = T * B
    dzx_flat = dzx.reshape(TB, 3 * H)
    x_tm = np.ascontiguousarray(batch_major(x)).reshape(TB, D)
    # What each gate's recurrent kernel multiplies: h_{t-1}, and r_t * h_{t-1} for n in reset-before.
    h_in = np.repeat(h_prev[:, :, None], 3, axis=2)
    if not after:
        h_in[:, :, 2] *= gates[:, :, 0]
    dW = split_gates(x_tm.T @ dzx_flat).transpose(1, 0, 2)
    dU = np.stack([h_in[:, :, k].reshape(TB, H).T @ dzh[:, :, k].reshape(TB, H) for k in range(3)])
    dbx = dzx.sum(axis=(0, 1))
    dbh = dzh.sum(axis=(0, 1))
    dx = (dzx_flat @ join_gates(W).T).reshape(T, B, D)
    return dict(
        dh=batch_major(dh), dzx=batch_major(dzx), dzh=batch_major(dzh), dx=batch_major(dx),
        dW=dW, dU=dU, dbx=dbx, dbh=dbh, dh0=dh_from_next,
    )


def run(x, h0, W, U, bx, bh, gh, *, reset="after", ulps=0, activation="tanh", recurrent_activation="sigmoid",
        clip=None):
    """Forward and backward pass under the candidate contract (see the module docstring).

    ``reset`` picks the convention of the candidate gate: "after" (r_t multiplies
    h_{t-1} U[n] + bh[n]) or "before" (r_t multiplies h_{t-1} before U[n]). ``ulps`` moves
    every activation by that many ulps (the tolerance's yardstick: see
    ``reference._numerics``); 0 is the exact reference. ``activation`` (n) and
    ``recurrent_activation`` (r, z): the keywords a candidate is called with under an activation
    option (gatecheck.model.options), names of gatecheck.reference.activations or (name, alpha, beta).
    ``clip``: ONNX's clip threshold (None: no clip) on the input of every activation (r, z and n).
    """
    check_convention(reset)
    validate(x, h0, W, U, bx, bh, gh)
    acts = chosen(activation, recurrent_activation, clip)
    fwd = forward_tm(x, h0, W, U, bx, bh, reset, ulps, acts)
    bwd = backward(fwd, x, h0, W, U, gh, reset, bx, bh, acts)
    return {**{k: batch_major(a) for k, a in fwd.items()}, **bwd}


def no_bias(W):
    """The biases a no-bias GRU stands for: bx = bh = 0 (3, H) in W's dtype."""
    zeros = np.zeros((W.shape[0], W.shape[2]), W.dtype)
    return {"bx": zeros, "bh": zeros.copy()}


def run_nobias(x, h0, W, U, gh, *, reset="after", ulps=0, **activations):
    """The contract under the no-bias option (Keras use_bias=False, PyTorch bias=False): no
    ``bx``, ``bh`` in, no ``dbx``, ``dbh`` out. The model is the GRU at bx = bh = 0, exactly."""
    out = run(x, h0, W, U, **no_bias(W), gh=gh, reset=reset, ulps=ulps, **activations)
    del out["dbx"], out["dbh"]
    return out


# The outputs of ``run`` without a time axis (gradients of the parameters and initial states):
# every other output is per step, time on axis 1.
TIMELESS = ("dW", "dU", "dbx", "dbh", "dh0")


def run_rev(x, h0, W, U, bx, bh, gh, *, reset="after", reverse=True, ulps=0, **activations):
    """The contract under the reverse option (Keras go_backwards=True): the layer consumes
    x[:, T-1] first and x[:, 0] last. Inputs and outputs are those of ``run``, every per-step
    array indexed by the original t (h[:, t] is the state after x[:, t]). One loop: ``run`` on
    the time-flipped sequence, its per-step outputs flipped back.
    ``reverse``: the keyword every candidate is called with under the option (always True).
    """
    if not reverse:
        raise ValueError("run_rev is the reverse model: reverse must be True (the forward one is run)")
    out = run(x[:, ::-1], h0, W, U, bx, bh, gh[:, ::-1], reset=reset, ulps=ulps, **activations)
    return {k: v if k in TIMELESS else v[:, ::-1] for k, v in out.items()}
