"""The LSTM families under the projection option (``proj``, PyTorch ``nn.LSTM(proj_size=P)``):
h_t = (o_t * tanh(c_t)) @ Wr with Wr (H, P), so h, the state fed back, has P < H units while
c keeps H. The option changes shapes and adds an input, so its ``Variant`` states the derived
record's inputs, contract, shapes, quantities, inputs and finite-difference hooks outright
(``Variant.replace``); ``gatecheck.families.lstm`` names it in its options. It states its output
hook (``fd_output``: h, width P), so bidirectional and stacked layers are built on it, as PyTorch's
``nn.LSTM(proj_size=P, bidirectional=True, num_layers=2)`` offers (the second layer's input is P wide,
2P bidirectional), and its mutants are carried into those layers (``Variant.in_layers``).
"""

import functools

import numpy as np

from gatecheck.core.cases import case_rng, scales
from gatecheck.core.family import Quantity, Variant
from gatecheck.core.mutants import Mutant
from gatecheck.model.options import blocks
from gatecheck.reference import lstm

INPUTS = ("x", "h0", "c0", "W", "U", "b", "Wr", "gh", "gc")
CONTRACT_KEYS = lstm.CONTRACT_KEYS + ("dWr",)


def proj_size(H):
    """P of a case with H units: H // 2, so 1 <= P < H (PyTorch requires P < H); H >= 2."""
    if H < 2:
        raise ValueError(f"H: the projection option needs H >= 2 (P = H // 2 with 1 <= P < H), got H={H}")
    return H // 2


def make_inputs(base_make_inputs):
    """The case's inputs without the option (x, c0, W, b, gc as they are) plus Wr (H, P), with
    U (4, P, H), h0 (B, P) and gh (B, T, P) drawn from a stream of the case's own (prefix
    "proj"), so that they never equal the option-less case's weights."""
    def make(case):
        inputs = base_make_inputs(case)
        B, T, H = case.B, case.T, case.H
        P = proj_size(H)
        rng = case_rng(case, prefix="proj")
        w_scale, _ = scales(case.regime)
        inputs.update(
            U=w_scale * rng.standard_normal((4, P, H)) / np.sqrt(P),
            h0=0.5 * rng.standard_normal((B, P)),
            Wr=w_scale * rng.standard_normal((H, P)) / np.sqrt(H),
            gh=rng.standard_normal((B, T, P)),
        )
        if case.regime == "zero":
            inputs["h0"] = np.zeros_like(inputs["h0"])
        return {k: inputs[k] for k in INPUTS}
    return make


def shapes(inputs):
    B, T, D = inputs["x"].shape
    H, P = inputs["c0"].shape[1], inputs["h0"].shape[1]
    return dict(h=(B, T, P), c=(B, T, H), dh=(B, T, P), dc=(B, T, H), dW=(4, D, H), dU=(4, P, H), db=(4, H),
                dx=(B, T, D), dh0=(B, P), dc0=(B, H), dWr=(H, P))


def quantities(base):
    """The family's quantity table plus the projection's gradient (one slice: no gate axis)."""
    return dict(base, dWr=Quantity("dWr", 2, "", ("j", "p"), "dWr", meaning="projection gradient (H, P)"))


def _forward(inputs, x, h0, c0, output):
    return lstm.forward(x, h0, c0, inputs["W"], inputs["U"], inputs["b"], output, Wr=inputs["Wr"])


def _moved(inputs, t, which, offset, output):
    """(the forward pass up to step t, h_t, c_t) with h_t or c_t moved by ``offset`` (moving c_t
    moves h_t = m_t @ Wr through m_t = o_t * tanh(c_t))."""
    head = _forward(inputs, inputs["x"][:, : t + 1], inputs["h0"], inputs["c0"], output)
    h_t, c_t = head["h"][:, t], head["c"][:, t]
    if which == "h":
        h_t = h_t + offset
    else:
        c_t = c_t + offset
        h_t = lstm.hidden(head["gates"][:, t], c_t, output) @ inputs["Wr"]
    return head, h_t, c_t


def fd_hooks(output):
    """(loss, state loss) of the projected LSTM, for finite differences: as the family's hooks,
    with h_t = m_t @ Wr."""
    def loss(inputs):
        fwd = _forward(inputs, inputs["x"], inputs["h0"], inputs["c0"], output)
        return lstm.loss(fwd["h"], fwd["c"][:, -1], inputs["gh"], inputs["gc"])

    def state_loss(inputs, t, which, offset):
        x, gh, gc = inputs["x"], inputs["gh"], inputs["gc"]
        head, h_t, c_t = _moved(inputs, t, which, offset, output)
        total = np.sum(gh[:, :t] * head["h"][:, :t]) + np.sum(gh[:, t] * h_t)
        if t == x.shape[1] - 1:
            return total + np.sum(gc * c_t)
        tail = _forward(inputs, x[:, t + 1 :], h_t, c_t, output)
        return total + lstm.loss(tail["h"], tail["c"][:, -1], gh[:, t + 1 :], gc)

    return loss, state_loss


def fd_output_of(output):
    """The projected LSTM's output sequence h (B, T, P), with h_t (width P) or c_t (width H) moved
    by ``offset`` at step t when ``moved`` = (t, which, offset) and the sequence run on from there:
    the finite-difference hook that bidirectional and stacked layers of the model are built from
    (``Family.fd_output``)."""
    def fd_output(inputs, moved=None):
        x = inputs["x"]
        if moved is None:
            return _forward(inputs, x, inputs["h0"], inputs["c0"], output)["h"]
        t = moved[0]
        head, h_t, c_t = _moved(inputs, *moved, output)
        parts = [head["h"][:, :t], h_t[:, None]]
        if t < x.shape[1] - 1:
            parts.append(_forward(inputs, x[:, t + 1 :], h_t, c_t, output)["h"])
        return np.concatenate(parts, axis=1)

    return fd_output


# Finite-difference cases (H >= 2): B=1, T=1, D != H, P = 1 and P > 1, every regime.
FD_POINTS = [((1, 1, 1, 2), 0, "std"), ((1, 1, 3, 2), 1, "std"), ((2, 3, 4, 3), 2, "std"), ((3, 5, 2, 4), 3, "std"),
             ((2, 6, 3, 5), 4, "zero"), ((2, 8, 3, 2), 5, "longmem"), ((2, 4, 3, 4), 6, "sat")]

# Projection cases: torch-lstm-layer builds no graph, so the shapes are free; T >= 2 everywhere (dWr
# accumulates over time), H >= 2 (P = H // 2), P = 1 and P > 1, B = 1, both dtypes, every regime.
CI = dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 5, 3, 2), 1, "zero"), ((2, 12, 4, 5), 2, "sat"),
                  ((2, 9, 3, 4), 3, "longmem")], options=("proj",))
NIGHTLY = dict(shapes=[(3, 7, 4, 5), (2, 16, 6, 6), (2, 80, 3, 4), (8, 20, 6, 7)], seeds=range(3),
               special_seeds=range(1), regimes=lambda shape: ["zero", "longmem", "sat"], options=("proj",))

# Projection with bidirectional and stacked layers: what nn.LSTM(proj_size=P, bidirectional=True, num_layers=2)
# offers (torch-lstm-layer; Keras has no projection), ci on two points (P = 2 and P = 1, D != H), nightly on the
# projection's nightly shapes with fewer seeds; and packed sequences (len) into the projected LSTM, alone and
# in a bidirectional stack (MASKED).
STRUCTURAL = (("proj", "bi"), ("proj", "L2"), ("proj", "bi", "L2"))
MASKED = (("proj", "len"), ("proj", "len", "bi", "L2"))
STRUCTURE_CI = blocks(dict(points=[((3, 7, 4, 5), 0, "std"), ((2, 12, 3, 2), 2, "sat")]), STRUCTURAL + MASKED)
STRUCTURE_NIGHTLY = blocks(dict(NIGHTLY, seeds=range(2)), STRUCTURAL + MASKED)

CONTRACT = """\
run(x, h0, c0, W, U, b, Wr, gh, gc) -> mapping with
  "h", "dh" (B,T,P), "c", "dc" (B,T,H)   states after every step; total dL/dh_t, dL/dc_t
  "dW" (4,D,H), "dU" (4,P,H), "db" (4,H), "dWr" (H,P), "dx" (B,T,D), "dh0" (B,P), "dc0" (B,H)
x (B,T,D), h0 (B,P), c0 (B,H), W (4,D,H), U (4,P,H), b (4,H), Wr (H,P), gh (B,T,P), gc (B,H); gates i,f,g,o
z_t[k] = x_t W[k] + h_{t-1} U[k] + b[k]; i,f,o = sigmoid, g = tanh
c_t = f*c_{t-1} + i*g;  h_t = (o*%s) Wr;  L = sum(gh*h) + sum(gc*c_T)
P = H // 2 in the grid (1 <= P < H, H >= 2)"""

# The option's mutants: edits of the projection's lines in reference.lstm (forward_tm, backward).
_DWR = "out[\"dWr\"] = m.reshape(T * B, H).T @ dh.reshape(T * B, P)"
MUTANTS = (
    Mutant("proj-distributed-over-gate", "the projection is applied to the output gate and to tanh(c_t) "
           "separately, before their product: h_t = (o_t Wr) * (tanh(c_t) Wr)",
           "the projection is moved before the output gate, as if W(a*b) = (Wa)*(Wb); the shapes still agree",
           old="h_t = h_t @ Wr",
           new="h_t = (gates[t][:, 3] @ Wr) * (output_activation(c_t, output, ulps) @ Wr)",
           first="h t=0"),
    Mutant("proj-dWr-last-step", "dWr is taken from the last step only (no accumulation over time)",
           "the projection's gradient is written once after the loop from the last step's m_t and dh_t",
           old=_DWR, new="out[\"dWr\"] = m[-1].T @ dh[-1]", first="dWr"),
    Mutant("proj-dWr-upstream-only", "dWr uses the upstream gradient gh_t instead of the total dL/dh_t "
           "(the part that flows back from step t+1 through U is missing)",
           "the projection is treated as an output layer whose gradient is the loss's alone",
           old=_DWR, new="out[\"dWr\"] = m.reshape(T * B, H).T @ gh.reshape(T * B, P)", first="dWr"),
    Mutant("proj-dWr-without-output-gate", "dWr is computed from tanh(c_t) instead of m_t = o_t * tanh(c_t)",
           "the cached tanh(c_t) is taken for the projection's input",
           old="m[t] = o * tanh_c", new="m[t] = tanh_c", first="dWr"),
    Mutant("proj-dWr-torch-layout", "dWr is returned as (P, H), PyTorch's weight_hr layout, not the canonical (H, P)",
           "the gradient is computed as dh^T m, the way weight_hr is laid out",
           old=_DWR, new="out[\"dWr\"] = dh.reshape(T * B, P).T @ m.reshape(T * B, H)", first="contract"),
)


def bind(output):
    """A mutated module's run_proj as a candidate of the option (identity: output="identity")."""
    return (lambda module: module.run_proj) if output == "tanh" \
        else (lambda module: functools.partial(module.run_proj, output=output))


def variant(output, base_make_inputs, base_quantities):
    """The ``proj`` Variant of the LSTM family with this output activation ("tanh": ``lstm``,
    "identity": ``lstm-identity``, h_t = (o_t * c_t) @ Wr)."""
    loss, state_loss = fd_hooks(output)
    return Variant(
        run=lstm.run_proj if output == "tanh" else functools.partial(lstm.run_proj, output=output),
        mutants=MUTANTS,
        mutant_bind=bind(output),
        in_layers=True,
        replace=dict(
            inputs=INPUTS,
            contract=CONTRACT_KEYS,
            shapes=shapes,
            quantities=quantities(base_quantities),
            make_inputs=make_inputs(base_make_inputs),
            fd_loss=loss,
            fd_state_loss=state_loss,
            fd_output=fd_output_of(output),
            fd_points=FD_POINTS,
            contract_doc=CONTRACT % ("tanh(c_t)" if output == "tanh" else "c_t"),
        ),
    )
