"""The LSTM families: ``lstm`` (the canonical LSTM, h_t = o_t * tanh(c_t)) and
``lstm-identity`` (no output tanh, h_t = o_t * c_t: the node-style model).
Everything the engine needs to know of them is here."""

import dataclasses
import functools

import numpy as np

from gatecheck.core.cases import case_rng, scales, structural_ci
from gatecheck.core.family import Family, Quantity, Variant, quantity_table
from gatecheck.core.mutants import Mutant, called_with, reverse_mutants
from gatecheck.families.lstm import diagnosis as lstm_diagnosis
from gatecheck.families.lstm import mutants as lstm_mutants
from gatecheck.families.lstm import peep as lstm_peep
from gatecheck.families.lstm import proj as lstm_proj
from gatecheck.model.options import (
    STRUCTURAL,
    STRUCTURAL_NIGHTLY,
    STRUCTURAL_NOBIAS,
    activation_keywords,
    blocks,
)
from gatecheck.reference import lstm

REGIMES = {
    "std": "random weights, inputs and upstream gradients; h0, c0 and gc non-zero",
    "zero": "as std, but h0 = c0 = 0 and gc = 0",
    "longmem": "forget-gate bias raised by +3 to +6: forget gates near 1 (long memory)",
    "sat": "weights x4 and inputs x3: most gates saturated",
}


def make_inputs(case):
    """Float64 canonical inputs for a case, before rounding to the case's dtype. Weights and
    inputs are random in every regime, so the four gates differ."""
    if case.regime not in REGIMES:
        raise ValueError(f"regime: expected one of {sorted(REGIMES)}, got {case.regime!r}")
    rng = case_rng(case)
    B, T, D, H = case.B, case.T, case.D, case.H
    w_scale, x_scale = scales(case.regime)
    inputs = dict(
        x=x_scale * rng.standard_normal((B, T, D)),
        h0=0.5 * rng.standard_normal((B, H)),
        c0=0.5 * rng.standard_normal((B, H)),
        W=w_scale * rng.standard_normal((4, D, H)) / np.sqrt(D),
        U=w_scale * rng.standard_normal((4, H, H)) / np.sqrt(H),
        b=0.5 * rng.standard_normal((4, H)),
        gh=rng.standard_normal((B, T, H)),
        gc=rng.standard_normal((B, H)),
    )
    if case.regime == "zero":
        for k in ("h0", "c0", "gc"):
            inputs[k] = np.zeros_like(inputs[k])
    if case.regime == "longmem":
        inputs["b"][1] += rng.uniform(3.0, 6.0, size=H)
    return inputs


def shapes(inputs):
    B, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    bth = (B, T, H)
    return dict(h=bth, c=bth, dh=bth, dc=bth, dW=(4, D, H), dU=(4, H, H), db=(4, H),
                dx=(B, T, D), dh0=(B, H), dc0=(B, H))


QUANTITIES = quantity_table(
    Quantity("c", 0, "time", ("b", "t", "j"), "c", meaning="cell state c_t"),
    Quantity("h", 0, "time", ("b", "t", "j"), "h", meaning="hidden state h_t"),
    Quantity("cT", 0, "", ("b", "j"), "c", last_step=True, meaning="final cell state C_T"),
    Quantity("dh", 1, "time", ("b", "t", "j"), "dh", meaning="total dL/dh_t"),
    Quantity("dc", 1, "time", ("b", "t", "j"), "dc", meaning="total dL/dc_t"),
    Quantity("dx", 1, "time", ("b", "t", "d"), "dx", meaning="dL/dx_t"),
    Quantity("dh0", 1, "", ("b", "j"), "dh0", meaning="dL/dh0"),
    Quantity("dc0", 1, "", ("b", "j"), "dc0", meaning="dL/dc0"),
    Quantity("dW", 2, "gate", ("gate", "d", "j"), "dW", meaning="input kernel gradient"),
    Quantity("dU", 2, "gate", ("gate", "k", "j"), "dU", meaning="recurrent kernel gradient"),
    Quantity("db", 2, "gate", ("gate", "j"), "db", meaning="bias gradient"),
    Quantity("db_ih", 2, "gate", ("gate", "j"), "db", meaning="torch bias_ih gradient"),
    Quantity("db_hh", 2, "gate", ("gate", "j"), "db", meaning="torch bias_hh gradient"),
)

# (B, T, D, H): B=1, T=1, D=1, H=1, D != H, B >= 3 and T >= 64 all appear.
CI_SHAPES = [
    (1, 1, 1, 1),
    (1, 1, 3, 2),
    (1, 5, 1, 4),
    (2, 3, 4, 1),
    (3, 7, 4, 5),
    (4, 6, 5, 3),
    (2, 12, 3, 3),
    (5, 4, 2, 6),
    (3, 64, 4, 5),
    (2, 80, 3, 4),
]
# Nightly adds small shapes, run over many seeds (a case costs milliseconds), and larger
# ones over fewer: wide layers, D = H (where swapped input and recurrent kernels have the
# same shape), and T up to 1,000. The keras-lstm-cell oracle traces one graph per shape and
# dtype (see gatecheck.run.grid.cost), so long sequences are few.
NIGHTLY_SMALL = [
    (1, 2, 2, 1),
    (2, 2, 1, 3),
    (1, 9, 5, 5),
    (3, 3, 7, 2),
    (6, 10, 2, 9),
    (2, 16, 6, 6),
    (4, 24, 8, 3),
    (1, 33, 3, 7),
]
NIGHTLY_LARGE = [
    (8, 20, 6, 7),
    (16, 50, 10, 12),
    (32, 16, 24, 32),
    (8, 40, 16, 64),
    (4, 128, 5, 8),
    (3, 256, 4, 6),
    (2, 500, 3, 5),
    (2, 1000, 3, 4),
]


def ci_regimes(shape):
    """The CI grid's special regimes: each on a few shapes, so that every regime meets
    T = 1, a T >= 64 and D != H without multiplying the grid."""
    B, T, D, H = shape
    regimes = []
    if T in (1, 7, 80) or B == 1 and T == 5:
        regimes.append("zero")
    if T >= 7:
        regimes.append("longmem")
    if T in (3, 6, 12, 64):
        regimes.append("sat")
    return regimes


def every_regime(shape):
    return [r for r in REGIMES if r != "std"]


def no_bias_regimes(shape):
    """The special regimes that mean something without a bias (longmem moves the forget bias)."""
    return ["zero", "sat"]


# No-bias cases (gatecheck.model.options): one (D, H) pair already in the ci grid, so each Keras
# oracle traces one more graph per dtype (Keras builds another model for use_bias=False).
NOBIAS_CI = dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, "sat")],
                 options=("nobias",))
NOBIAS_NIGHTLY = dict(shapes=[(3, 7, 4, 5), (2, 16, 6, 6), (2, 80, 3, 4), (8, 20, 6, 7)], seeds=range(3),
                      special_seeds=range(1), regimes=no_bias_regimes, options=("nobias",))

# Reverse-direction cases on the no-bias cases' shapes (ci: one (D, H), one more Keras trace per oracle and
# dtype; nightly: the no-bias nightly shapes, every regime). T >= 2 everywhere (at T = 1 reverse is forward).
REV_CI = dict(points=[((3, 7, 4, 5), 0, "std"), ((2, 5, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, "sat")],
              options=("rev",))
REV_NIGHTLY = dict(NOBIAS_NIGHTLY, regimes=every_regime, options=("rev",))

# Bidirectional and stacked layers (gatecheck.model.options, STRUCTURAL_*): ci on the no-bias cases' (D, H), one
# more Keras trace per set and dtype (the probed cells: one point, each set in one dtype, cases.structural_ci);
# nightly on the no-bias nightly shapes (with no bias: its regimes).
STRUCTURE_CI = structural_ci([((3, 7, 4, 5), 0, "std"), ((2, 12, 4, 5), 2, "sat")], STRUCTURAL)
STRUCTURE_NIGHTLY = (blocks(dict(NOBIAS_NIGHTLY, seeds=range(2), regimes=every_regime), STRUCTURAL + STRUCTURAL_NIGHTLY)
                     + blocks(dict(NOBIAS_NIGHTLY, seeds=range(2)), STRUCTURAL_NOBIAS))

# Activation cases (gatecheck.model.options: relu, hardsig), on the no-bias cases' (D, H): ci alone in std, zero
# and a regime of its own, and in a bidirectional stack and under lengths; nightly on the no-bias nightly shapes
# (T <= 80) with the other merges, depths and masks. hardsig is bounded as the sigmoid is: every regime, sat
# included (where its clip saturates: slope 0). relu is not: h_t = o relu(c_t) feeds back into
# c_t = f c_{t-1} + i relu(z_g) with nothing to bound it, so some seeds grow geometrically with T. Measured on
# the std regime over 400 seeds: T <= 16 keeps max |h| <= 250 and the gradients <= 1.4e4 ((2, 16, 6, 6)), while
# T = 20 reaches 7e3 in h, T = 24 1.4e4 and T = 80 5e17 (float32 overflow in the gradients: what it measures is
# overflow, not the activation). So relu runs on T <= 16, std only: longmem (f ~ 0.99) and sat (weights x4) grow
# faster, and zero (c0 = 0) puts units at relu's kink (_RELU_POINTS).
def _activation_ci(option, regime, one_step=None):
    """``one_step``: the regime of the T = 1 point (default zero, std where ``regime`` is std)."""
    long = ((4, 16, 4, 5), 3, "std") if option == "relu" else ((2, 80, 3, 4), 3, "std")
    one_step = one_step or ("zero" if regime != "std" else "std")
    return [dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 1, one_step),
                         ((2, 12, 4, 5), 2, regime), long], options=(option,)),
            *structural_ci([((3, 7, 4, 5), 0, "std")], [(option, "bi", "L2"), (option, "len")])]


_RELU_NIGHTLY_SHAPES = [(3, 7, 4, 5), (2, 12, 4, 5), (1, 9, 5, 5), (6, 10, 2, 9), (2, 16, 6, 6)]


def _activation_nightly(option, regimes):
    shapes = dict(shapes=_RELU_NIGHTLY_SHAPES) if option == "relu" else {}
    return [dict(NOBIAS_NIGHTLY, regimes=regimes, options=(option,), **shapes),
            *blocks(dict(NOBIAS_NIGHTLY, seeds=range(2), regimes=regimes, **shapes),
                    [(option, "bi", "L2"), (option, "len"), (option, "bisum"), (option, "L2"),
                     # (no masks under the ONNX options: their engines run ONNX nodes, with lengths and no mask)
                     *([] if option in _ONNX_ONLY else [(option, "mask"), (option, "maskz", "bi")])])]


# The options only ONNX nodes offer (onnxruntime, onnx.reference, OpenVINO's ONNX frontend): lengths, no masks.
_ONNX_ONLY = ("clip", "coupled", "peep")
ACTIVATION_CI = [*_activation_ci("relu", "std"), *_activation_ci("hardsig", "sat"), *_activation_ci("clip", "longmem")]
ACTIVATION_NIGHTLY = [*_activation_nightly("relu", lambda shape: []), *_activation_nightly("hardsig", every_regime),
                      *_activation_nightly("clip", every_regime)]
# ONNX's coupled gates and peepholes: the activation options' blocks (ci: std, zero and a regime of its own, T = 80,
# a bidirectional stack and lengths; nightly: the no-bias nightly shapes, merges, depths and lengths). Under coupled
# the forget gate's bias takes no part, so longmem (a raised forget bias) is std again: sat in its place; and its one
# step is std: with c0 = 0 (zero) f_1 multiplies 0, and coupling moves nothing a forward-only engine observes.
ONNX_CI = [*_activation_ci("coupled", "sat", one_step="std"), *_activation_ci("peep", "longmem")]
ONNX_NIGHTLY = [*_activation_nightly("coupled", no_bias_regimes), *_activation_nightly("peep", every_regime)]

PROFILES = {
    "ci": [dict(shapes=CI_SHAPES, seeds=range(3), special_seeds=range(1), regimes=ci_regimes), NOBIAS_CI, REV_CI,
           lstm_proj.CI, *STRUCTURE_CI, *lstm_proj.STRUCTURE_CI, *ACTIVATION_CI, *ONNX_CI],
    "nightly": [
        dict(shapes=CI_SHAPES + NIGHTLY_SMALL, seeds=range(20), special_seeds=range(6), regimes=every_regime),
        dict(shapes=NIGHTLY_LARGE, seeds=range(6), special_seeds=range(3), regimes=every_regime),
        NOBIAS_NIGHTLY,
        REV_NIGHTLY,
        lstm_proj.NIGHTLY,
        *STRUCTURE_NIGHTLY,
        *lstm_proj.STRUCTURE_NIGHTLY,
        *ACTIVATION_NIGHTLY,
        *ONNX_NIGHTLY,
    ],
}
# The identity model's grids: the same, less the activation options it does not define (_common).
PROFILES_IDENTITY = {name: [b for b in profile if not {"relu", "hardsig", *_ONNX_ONLY} & set(b.get("options", ()))]
                     for name, profile in PROFILES.items()}

CONTRACT = """\
run(x, h0, c0, W, U, b, gh, gc) -> mapping with
  "h", "c", "dh", "dc" (B,T,H)   states after every step; total dL/dh_t, dL/dc_t
  "dW" (4,D,H), "dU" (4,H,H), "db" (4,H), "dx" (B,T,D), "dh0", "dc0" (B,H)
x (B,T,D), h0, c0 (B,H), W (4,D,H), U (4,H,H), b (4,H), gh (B,T,H), gc (B,H); gates i,f,g,o
z_t[k] = x_t W[k] + h_{t-1} U[k] + b[k]; i,f,o = sigmoid, g = tanh
c_t = f*c_{t-1} + i*g;  h_t = o*%s;  L = sum(gh*h) + sum(gc*c_T)"""


def _forward(inputs, x, h0, c0, output, acts=None, coupled=False):
    """The forward pass of the record's model from (x, h0, c0) with the inputs' weights (their peepholes ``P``,
    where the inputs have them: the peep option's)."""
    return lstm.forward(x, h0, c0, inputs["W"], inputs["U"], inputs["b"], output, acts=acts,
                        peepholes=inputs.get("P"), coupled=coupled)


def _hidden(inputs, head, t, c_t, output, acts=None):
    """h_t = o_t * tanh(c_t) at a moved c_t: with peepholes, o_t sees c_t too (its pre-activation recomputed)."""
    if "P" not in inputs:
        return lstm.hidden(head["gates"][:, t], c_t, output, acts=acts)
    h_prev = inputs["h0"] if t == 0 else head["h"][:, t - 1]
    z_o = inputs["x"][:, t] @ inputs["W"][3] + h_prev @ inputs["U"][3] + inputs["b"][3] + inputs["P"][2] * c_t
    return lstm.gate(z_o, acts=acts) * lstm.output_activation(c_t, output, acts=acts)


def _moved(inputs, t, which, offset, output, acts=None, coupled=False):
    """(the forward pass up to step t, h_t, c_t) with h_t or c_t moved by ``offset`` (moving c_t
    moves h_t = o_t * tanh(c_t) too)."""
    x, h0, c0 = (inputs[k] for k in ("x", "h0", "c0"))
    head = _forward(inputs, x[:, : t + 1], h0, c0, output, acts, coupled)
    h_t, c_t = head["h"][:, t], head["c"][:, t]
    if which == "h":
        h_t = h_t + offset
    else:
        c_t = c_t + offset
        h_t = _hidden(inputs, head, t, c_t, output, acts)
    return head, h_t, c_t


def fd_hooks(output, acts=None, coupled=False):
    """(loss, state loss) of the LSTM with this output activation (``acts``: lstm.chosen's; ``coupled``: f = 1 - i;
    the inputs' peepholes ``P`` where they have them), for finite differences."""
    def loss(inputs):
        fwd = _forward(inputs, inputs["x"], inputs["h0"], inputs["c0"], output, acts, coupled)
        return lstm.loss(fwd["h"], fwd["c"][:, -1], inputs["gh"], inputs["gc"])

    def state_loss(inputs, t, which, offset):
        """The loss with h_t or c_t moved by ``offset``; moving c_t also moves
        h_t = o_t * tanh(c_t), so its derivative is the contract's total dL/dc_t."""
        x, gh, gc = (inputs[k] for k in ("x", "gh", "gc"))
        head, h_t, c_t = _moved(inputs, t, which, offset, output, acts, coupled)
        total = np.sum(gh[:, :t] * head["h"][:, :t]) + np.sum(gh[:, t] * h_t)
        if t == x.shape[1] - 1:
            return total + np.sum(gc * c_t)
        tail = _forward(inputs, x[:, t + 1 :], h_t, c_t, output, acts, coupled)
        return total + lstm.loss(tail["h"], tail["c"][:, -1], gh[:, t + 1 :], gc)

    return loss, state_loss


def fd_output_of(output, acts=None, coupled=False):
    """The LSTM's output sequence h (B, T, H), with h_t or c_t moved by ``offset`` at step t
    when ``moved`` = (t, which, offset) and the sequence run on from there (moving c_t moves
    h_t = o_t * tanh(c_t) too): the finite-difference hook of layers built from the model."""
    def fd_output(inputs, moved=None):
        x, h0, c0 = (inputs[k] for k in ("x", "h0", "c0"))
        if moved is None:
            return _forward(inputs, x, h0, c0, output, acts, coupled)["h"]
        t = moved[0]
        head, h_t, c_t = _moved(inputs, *moved, output, acts, coupled)
        parts = [head["h"][:, :t], h_t[:, None]]
        if t < x.shape[1] - 1:
            parts.append(_forward(inputs, x[:, t + 1:], h_t, c_t, output, acts, coupled)["h"])
        return np.concatenate(parts, axis=1)

    return fd_output


# Finite-difference cases: B=1, T=1, D != H, H=1 and every regime.
FD_POINTS = [((1, 1, 1, 1), 0, "std"), ((1, 1, 3, 2), 1, "std"), ((2, 3, 4, 1), 2, "std"), ((3, 5, 2, 4), 3, "std"),
             ((2, 6, 3, 3), 4, "zero"), ((2, 8, 3, 2), 5, "longmem"), ((2, 4, 3, 3), 6, "sat")]


def _bind(output):
    """A mutated module's run as this family's candidate: the canonical LSTM takes run as it
    is (a mutant may change its default), the identity model passes output="identity"."""
    def bind(module):
        return module.run if output == "tanh" else functools.partial(module.run, output=output)
    return bind


# The no-bias option's mutants: edits of reference.lstm.run_nobias.
_NOBIAS_CALL = "out = run(x, h0, c0, W, U, **no_bias(W), gh=gh, gc=gc, output=output, ulps=ulps, **activations)"
NOBIAS_MUTANTS = (
    Mutant("nobias-forget-bias-one", "the forget gate's bias is 1 and added although the model has no bias",
           "the bias is created and initialised anyway, the way Keras' unit_forget_bias does (1 on f), "
           "and the step still adds it",
           old=_NOBIAS_CALL,
           new=_NOBIAS_CALL.replace("**no_bias(W)", "b=np.outer([0.0, 1.0, 0.0, 0.0], np.ones(W.shape[2])).astype(W.dtype)"),
           first="c t=0"),
    Mutant("nobias-db-returned", "a bias gradient db is still returned under no bias",
           "the backward pass is the biased model's, and its db goes out with the rest",
           old='    del out["db"]\n', new="", first="contract"),
)


def _nobias(output):
    return Variant(
        run=lstm.run_nobias if output == "tanh" else functools.partial(lstm.run_nobias, output=output),
        drops=("b",), drops_keys=("db",), fill=lambda inputs: lstm.no_bias(inputs["W"]),
        mutants=NOBIAS_MUTANTS,
        mutant_bind=(lambda module: module.run_nobias) if output == "tanh"
        else (lambda module: functools.partial(module.run_nobias, output=output)),
    )


def _rev(output):
    return Variant(
        run=lstm.run_rev if output == "tanh" else functools.partial(lstm.run_rev, output=output),
        flips=("x", "gh"), keywords={"reverse": True},
        mutants=reverse_mutants("out = run(x[:, ::-1], h0, c0, W, U, b, gh[:, ::-1], gc, output=output, ulps=ulps, "
                                "**activations)",
                                states=("h", "c"), first="c"),
        mutant_bind=(lambda module: module.run_rev) if output == "tanh"
        else (lambda module: functools.partial(module.run_rev, output=output)),
    )


# The activation options (gatecheck.model.options: relu, hardsig) of the canonical LSTM: its model is lstm.run
# with the option's activation= or recurrent_activation=, the keyword a candidate is called with; the mutants are
# edits of the reference's lines that only those options run (lstm.py's ``acts`` branches).
_RELU_MUTANTS = (
    Mutant("relu-g-tanh-derivative", "the g gate's slope is tanh's 1 - g^2 under relu",
           "the activation is switched in the forward pass, and the backward pass written for tanh is kept",
           old="np.multiply(dc_t, i * act.derivative(z[t, :, 2], g), out=dz[t, :, 2])",
           new="np.multiply(dc_t, i * (1 - g * g), out=dz[t, :, 2])", first="dx t=T-1"),
    Mutant("relu-output-tanh-derivative", "dc_t takes dh_t through o_t * (1 - relu(c_t)^2), tanh's slope",
           "the output activation is switched in the forward pass, its slope written for tanh kept",
           old="out_slope = out_act.derivative(c[t], tanh_c) if output", new="out_slope = 1 - tanh_c * tanh_c if output",
           first="dc t=T-1"),
    Mutant("relu-g-still-tanh", "the g gate still applies tanh although relu is asked for",
           "the activation argument reaches the output and not the cell input",
           old="g = act(z[..., 2, :])", new="g = np.tanh(z[..., 2, :])", first="c t=0"),
    Mutant("relu-output-still-tanh", "the output still applies tanh(c_t) although relu is asked for",
           "the activation argument reaches the cell input and not the output",
           old="return _numerics.jitter(acts[2](c), ulps)", new="return _numerics.jitter(np.tanh(c), ulps)",
           first="h t=0"),
    Mutant("relu-slope-without-recurrence", "relu' of g is taken at x_t W + b, without h_{t-1} U",
           "the pre-activation is recomputed for the backward pass from the input projection alone",
           old="z += split_gates(h_prev @ join_gates(U))\n", new="pass\n", first="dx "),
)
_HARDSIG_MUTANTS = (
    Mutant("hardsig-sigmoid-derivative", "the gates' slope is the sigmoid's y (1 - y) under the hard sigmoid",
           "the gate activation is switched in the forward pass, and the backward pass written for the sigmoid "
           "is kept", old="gate_slope = gate.derivative(z[t], gates[t])",
           new="gate_slope = gates[t] * (1 - gates[t])", first="dx t=T-1"),
    Mutant("hardsig-forward-sigmoid", "the gates still apply the sigmoid although the hard sigmoid is asked for",
           "the recurrent_activation argument is accepted and not passed on to the step",
           old="y = gate(z)", new="y = activations.choose('sigmoid')(z)", first="c t=0"),
    Mutant("hardsig-alpha-0.2", "the gates' hard sigmoid is clip(0.2 z + 0.5, 0, 1), ONNX's default and Keras "
           "2's, not Keras 3's clip(z / 6 + 0.5, 0, 1)",
           "'hard_sigmoid' means two functions across Keras versions and ONNX's HardSigmoid defaults to the old "
           "one (gatecheck.engines.keras.versions)", wrap=called_with(recurrent_activation=("hard_sigmoid", 0.2, 0.5)), first="c t=0"),
    Mutant("hardsig-slope-not-clipped", "the gates' slope is 1/6 everywhere, also where the clip saturates",
           "the derivative of the linear part taken without the clip's", old="gate_slope = gate.derivative(z[t], gates[t])",
           new="gate_slope = np.full_like(gates[t], 1 / 6)", first="dx "),
)



# The clip option's mutants (gatecheck.model.options: clip): edits of lstm.chosen, the one place where the clip
# enters (each activation behind it), and of the backward pass's slopes; and the keyword dropped.
_CLIP_CHOSEN = "return activations.clipped(recurrent_activation, clip), act, act"
_CLIP_MUTANTS = (
    Mutant("clip-ignored", "the clip is not applied anywhere", "the clip keyword is accepted and not passed on",
           wrap=called_with(clip=None), first="c "),
    Mutant("clip-not-on-output", "c_t is not clipped before the output's tanh: h_t = o_t * tanh(c_t), only the gates' "
           "and g's inputs are clipped", "'cell clip' read as a clip of the gates' pre-activations only (onnxruntime's "
           "and OpenVINO's reading: gatecheck.truth.deviations)",
           old=_CLIP_CHOSEN, new=_CLIP_CHOSEN.replace(", act, act", ", act, activations.choose(activation)"),
           first="h ", needs="|c_t| > clip"),
    Mutant("clip-sigmoid-gates-only", "only i, f and o are clipped; g and the output's tanh take their inputs "
           "unclipped", "the clip placed where the gates are computed, and g written apart from them",
           old=_CLIP_CHOSEN, new=_CLIP_CHOSEN.replace(", act, act", ", activations.choose(activation), "
                                                                   "activations.choose(activation)"),
           first="c "),
    Mutant("clip-carried-cell-state", "the cell state itself is clipped and carried clipped (c_t = clip(f c + i g))",
           "TensorFlow's LSTMCell cell_clip clips the state it carries, and 'cell clip' reads as that",
           old="c_t = f * c_prev + i * g", new="c_t = np.clip(f * c_prev + i * g, -1.0, 1.0)",
           first="c ", needs="|c_t| > clip"),
    Mutant("clip-forgotten-in-backward", "the backward pass takes the unclipped activations' slopes: nonzero where "
           "the clip holds the input", "the clip is added to the forward pass, and the backward pass written for "
           "the plain activations is kept",
           old="gate, act, out_act = acts\n", new="gate, act, out_act = (getattr(a, 'inner', a) for a in acts)\n",
           first="d"),
)

# relu's points are std only. zero: with c0 = 0, a unit whose relu(z_g) is 0 keeps c_t = 0, exactly at relu's kink
# in h_t = o_t relu(c_t), for every step until g turns on: the slope there is a convention (0 in the table, as in
# TensorFlow, PyTorch and JAX), which differences cannot prove and cases should not rest on. sat: saturated
# forget gates (f ~ 1e-8) and g = 0 leave c_t within 1e-8 of that kink, inside a difference's step.
_RELU_POINTS = tuple(p if p[2] == "std" else (p[0], p[1], "std") for p in FD_POINTS)


# clip's points: FD_POINTS (some pre-activations beyond the clip in every one, in both directions; the longmem
# point's cell state beyond it too), checked to keep every clipped input at least 1e-3 away from the bounds, a
# thousand times the differences' step (tests/core/test_finite_differences.py).
# Two points more, whose cell state exceeds the clip at some steps (the others' does not): the output's clip proven.
_CLIP_POINTS = FD_POINTS + [((2, 8, 3, 3), 7, "sat"), ((2, 10, 3, 2), 9, "std")]


def _activation(output, option, mutants, fd_points=FD_POINTS, keywords=None):
    """The LSTM under an activation option (its keywords: gatecheck.model.options.activation_keywords;
    ``keywords``: others, for an engine's model of the option)."""
    keywords = keywords or activation_keywords((option,))
    acts = lstm.chosen(**keywords)
    loss, state_loss = fd_hooks(output, acts)
    return Variant(run=functools.partial(lstm.run, output=output, **keywords), keywords=keywords, mutants=mutants,
                   mutant_bind=lambda module: functools.partial(module.run, output=output, **keywords),
                   replace=dict(fd_loss=loss, fd_state_loss=state_loss, fd_output=fd_output_of(output, acts),
                                fd_points=fd_points),
                   in_layers=True)


# The coupled option's mutants (gatecheck.model.options: coupled, ONNX's input_forget=1): edits of the coupled lines
# of reference.lstm (step, backward) and the keyword dropped.
_COUPLED_DZ_I = "np.multiply(dc_t, (g - c_prev[t]) * i * (1 - i), out=dz[t, :, 0])"
_COUPLED_MUTANTS = (
    Mutant("coupled-ignored", "the forget gate is not coupled: f = sigmoid(z_f), as without the option",
           "the input_forget attribute is accepted and not passed on (onnx.reference's and OpenVINO's reading: "
           "gatecheck.truth.deviations)", wrap=called_with(coupled=False), first="c t=0"),
    Mutant("coupled-f-equals-i", "the forget gate is the input gate itself, f = i, not 1 - i",
           "'couple the input and forget gates' read as sharing one gate",
           old="gates[:, 1] = 1 - gates[:, 0]", new="gates[:, 1] = gates[:, 0]", first="c t=0"),
    Mutant("coupled-input-from-forget", "the input gate is coupled to the forget gate, i = 1 - f (f its own "
           "sigmoid), not f = 1 - i",
           "the coupling the other way round: TensorFlow Lite's and NNAPI's CIFG LSTM (coupled input and forget "
           "gate) drops the input gate's weights and computes i = 1 - f",
           old="gates[:, 1] = 1 - gates[:, 0]", new="gates[:, 0] = 1 - gates[:, 1]", first="c t=0"),
    Mutant("coupled-forget-gradient-flows", "the forget gate's pre-activation still gets a delta, dz_f = dc_t * "
           "c_{t-1} * f (1 - f), so W[f], U[f], b[f] get gradients (and dh, dx its path) although f = 1 - i "
           "takes no part", "the backward pass of the uncoupled LSTM is kept for f",
           old=_COUPLED_DZ_I + "\n                dz[t, :, 1] = 0",
           new=_COUPLED_DZ_I + "\n                np.multiply(dc_t, c_prev[t] * f * (1 - f), out=dz[t, :, 1])",
           first="dx t=T-1"),
    Mutant("coupled-input-without-forget-path", "dz_i misses the forget gate's path: dc_t * g * i (1 - i), not "
           "dc_t * (g - c_{t-1}) * i (1 - i)", "the input gate's delta written as in the uncoupled LSTM, and f's "
           "dropped", old=_COUPLED_DZ_I, new="np.multiply(dc_t, g * i * (1 - i), out=dz[t, :, 0])",
           first="dx t=T-1"),
)


def _coupled(output):
    """The LSTM under the coupled option: lstm.run with coupled=True, the keyword a candidate is called with."""
    keywords = {"coupled": True}
    loss, state_loss = fd_hooks(output, coupled=True)
    return Variant(run=functools.partial(lstm.run, output=output, **keywords), keywords=keywords,
                   mutants=_COUPLED_MUTANTS,
                   mutant_bind=lambda module: functools.partial(module.run, output=output, **keywords),
                   replace=dict(fd_loss=loss, fd_state_loss=state_loss, fd_output=fd_output_of(output, coupled=True)),
                   in_layers=True)


def _common(output):
    # (the identity model has no engine to run these on: its options stay the structural ones and nobias, rev, proj;
    # ONNX's coupled and peep are options of the ONNX LSTM node, whose output is tanh(c_t): no engine runs them on the
    # identity model either)
    activations = {"relu": _activation(output, "relu", _RELU_MUTANTS, _RELU_POINTS),
                   "hardsig": _activation(output, "hardsig", _HARDSIG_MUTANTS),
                   "clip": _activation(output, "clip", _CLIP_MUTANTS, _CLIP_POINTS),
                   "coupled": _coupled(output),
                   "peep": lstm_peep.variant(output, dict(make_inputs=make_inputs, shapes=shapes, quantities=QUANTITIES),
                                             fd_hooks, fd_output_of, FD_POINTS)} if output == "tanh" else {}
    return dict(
        options={"nobias": _nobias(output), "rev": _rev(output),
                 "proj": lstm_proj.variant(output, make_inputs, QUANTITIES), **activations},
        inputs=("x", "h0", "c0", "W", "U", "b", "gh", "gc"),
        contract=lstm.CONTRACT_KEYS,
        shapes=shapes,
        quantities=QUANTITIES,
        regimes=REGIMES,
        make_inputs=make_inputs,
        profiles=PROFILES if output == "tanh" else PROFILES_IDENTITY,
        gates=lstm.GATES,
        gated=("W", "U", "b"),
        swappable=("W", "U"),
        forward=("c", "h"),
        mutant_source=lstm,
        mutant_bind=_bind(output),
        isolating=lstm_diagnosis.isolating,
        step_parts=lstm_diagnosis.step_parts,
        local=lstm_diagnosis.local if output == "tanh" else None,
        fd_loss=fd_hooks(output)[0],
        fd_state_loss=fd_hooks(output)[1],
        output="h",
        fd_output=fd_output_of(output),
        states=("h", "c"),
        final_upstreams=("gc",),
        fd_points=FD_POINTS,
    )


LSTM = Family(
    name="lstm",
    description="the LSTM of Keras and PyTorch: gates i,f,g,o, h_t = o_t * tanh(c_t)",
    run=lstm.run,
    contract_doc=CONTRACT % "tanh(c_t)",
    mutants=tuple(lstm_mutants.MUTANTS),
    hypotheses=lstm_diagnosis.HYPOTHESES,
    examples={"examples.assignment:run": 0, "examples.course:run": 0, "examples.node:run": 1},
    **_common("tanh"),
)

LSTM_IDENTITY = Family(
    name="lstm-identity",
    description="the LSTM without the output tanh, h_t = o_t * c_t (as some hand-written LSTMs are); "
                "no framework offers it: checked against the reference, proven by finite differences",
    run=functools.partial(lstm.run, output="identity"),
    contract_doc=CONTRACT % "c_t   (no output tanh)",
    # Two LSTM mutants change only the output tanh, which this model does not have.
    mutants=tuple(m for m in lstm_mutants.MUTANTS if m.name not in ("no-output-tanh", "output-tanh-derivative-wrong")),
    hypotheses=lstm_diagnosis.HYPOTHESES_IDENTITY,
    examples={"examples.node:run": 0, "examples.assignment:run": 1},
    **_common("identity"),
)


# An engine that flushes float32 subnormal numbers to zero (FTZ/DAZ) holds a cell state that decays below float32's
# smallest normal number (a unit whose forget gate and g stay near 0 for steps) at 0, exactly at relu's kink in
# h_t = o_t relu(c_t), where the slope is 0 (the table's), while the reference's c_t is a positive subnormal (slope 1).
# Its model: relu with the kink moved to that number (thresholded_relu, alpha = float32's tiny), whose values differ
# from relu's by less than 1.2e-38 and whose slope is 0 below it (gatecheck.truth.deviations: the engines that do so).
FLUSHED_RELU = ("thresholded_relu", float(np.finfo(np.float32).tiny), None)
LSTM_FLUSHED = dataclasses.replace(
    LSTM, options={**LSTM.options, "relu": _activation("tanh", "relu", (), _RELU_POINTS,
                                                        keywords={"activation": FLUSHED_RELU})})

# onnxruntime's and OpenVINO's reading of ONNX's clip: the gates' pre-activations clipped, c_t not clipped before the
# output's tanh (gatecheck.truth.deviations: _clip_not_on_output). The LSTM under that reading, the model of their
# deviation; the mutant clip-not-on-output is the same reading as a candidate's bug.
LSTM_GATES_CLIPPED = dataclasses.replace(
    LSTM, options={**LSTM.options, "clip": _activation("tanh", "clip", (), _CLIP_POINTS,
                                                        keywords={**activation_keywords(("clip",)), "clip_output": False})})
