"""The GRU families: ``gru`` (reset after: PyTorch, Keras reset_after=True) and
``gru-reset-before`` (Cho et al. v3, Keras reset_after=False). Everything the engine needs
to know of them is here."""

import functools

import numpy as np

from gatecheck.core.cases import case_rng, scales, structural_ci
from gatecheck.core.family import Family, Quantity, Variant, quantity_table
from gatecheck.core.mutants import Mutant, called_with, reverse_mutants
from gatecheck.families.gru import diagnosis as gru_diagnosis
from gatecheck.families.gru import mutants as gru_mutants
from gatecheck.model.options import (
    STRUCTURAL,
    STRUCTURAL_NIGHTLY,
    STRUCTURAL_NOBIAS,
    activation_keywords,
    blocks,
)
from gatecheck.reference import gru

REGIMES = {
    "std": "random weights, inputs and upstream gradients; h0 non-zero",
    "zero": "as std, but h0 = 0",
    "longmem": "update-gate input bias raised by +3 to +6: z near 1, h_t carried over many steps (long memory)",
    "sat": "weights x4 and inputs x3: most gates saturated",
}


def make_inputs(case):
    """Float64 canonical GRU inputs for a case, before rounding to the case's dtype. Weights
    and both biases are random in every regime, so the three gates differ."""
    if case.regime not in REGIMES:
        raise ValueError(f"regime: expected one of {sorted(REGIMES)}, got {case.regime!r}")
    rng = case_rng(case, "gru-")
    B, T, D, H = case.B, case.T, case.D, case.H
    w_scale, x_scale = scales(case.regime)
    inputs = dict(
        x=x_scale * rng.standard_normal((B, T, D)),
        h0=0.5 * rng.standard_normal((B, H)),
        W=w_scale * rng.standard_normal((3, D, H)) / np.sqrt(D),
        U=w_scale * rng.standard_normal((3, H, H)) / np.sqrt(H),
        bx=0.5 * rng.standard_normal((3, H)),
        bh=0.5 * rng.standard_normal((3, H)),
        gh=rng.standard_normal((B, T, H)),
    )
    if case.regime == "zero":
        inputs["h0"] = np.zeros_like(inputs["h0"])
    if case.regime == "longmem":
        inputs["bx"][1] += rng.uniform(3.0, 6.0, size=H)
    return inputs


def shapes(inputs):
    B, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    return dict(h=(B, T, H), dh=(B, T, H), dW=(3, D, H), dU=(3, H, H), dbx=(3, H), dbh=(3, H),
                dx=(B, T, D), dh0=(B, H))


QUANTITIES = quantity_table(
    Quantity("h", 0, "time", ("b", "t", "j"), "h", meaning="hidden state h_t"),
    Quantity("dh", 1, "time", ("b", "t", "j"), "dh", meaning="total dL/dh_t"),
    Quantity("dx", 1, "time", ("b", "t", "d"), "dx", meaning="dL/dx_t"),
    Quantity("dh0", 1, "", ("b", "j"), "dh0", meaning="dL/dh0"),
    Quantity("dW", 2, "gate", ("gate", "d", "j"), "dW", meaning="input kernel gradient"),
    Quantity("dU", 2, "gate", ("gate", "k", "j"), "dU", meaning="recurrent kernel gradient"),
    Quantity("dbx", 2, "gate", ("gate", "j"), "dbx", meaning="input bias gradient"),
    Quantity("dbh", 2, "gate", ("gate", "j"), "dbh", meaning="recurrent bias gradient"),
)

# (B, T, D, H): B=1, T=1, H=1, D != H, B >= 3 and T > 20 (truncated BPTT) all appear, over
# two (D, H) pairs only: each Keras oracle traces one graph per (D, H, dtype).
CI_SHAPES = [(1, 1, 4, 1), (2, 3, 4, 1), (3, 7, 4, 5), (4, 5, 4, 1), (2, 24, 4, 5)]
NIGHTLY_SMALL = [(1, 1, 1, 1), (2, 2, 1, 3), (1, 9, 5, 5), (4, 12, 8, 3), (6, 10, 2, 9), (3, 64, 4, 5)]
NIGHTLY_LARGE = [(8, 20, 6, 7), (16, 40, 10, 12), (4, 128, 5, 8), (2, 500, 3, 5), (2, 1000, 3, 4)]


def ci_regimes(shape):
    """Each special regime on a few shapes: zero at T=1 and T=7, longmem at T=7 and T=24,
    sat at T=3 and T=24."""
    T = shape[1]
    return [r for r, at in (("zero", (1, 7)), ("longmem", (7, 24)), ("sat", (3, 24))) if T in at]


def every_regime(shape):
    return [r for r in REGIMES if r != "std"]


def no_bias_regimes(shape):
    """The special regimes that mean something without a bias (longmem moves a bias)."""
    return ["zero", "sat"]


# No-bias cases (gatecheck.model.options) over one (D, H) pair of the ci grid: one more Keras
# trace per oracle and dtype.
NOBIAS_CI = dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, "sat")],
                 options=("nobias",))
NOBIAS_NIGHTLY = dict(shapes=[(3, 7, 4, 5), (2, 24, 4, 5), (8, 20, 6, 7)], seeds=range(3), special_seeds=range(1),
                      regimes=no_bias_regimes, options=("nobias",))

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
# with the other merges, depths and masks. hardsig is bounded as the sigmoid is: every regime, sat included (where
# its clip saturates: slope 0). relu bounds n_t below only; h_t = (1 - z) n_t + z h_{t-1} is a convex mix, so h
# grows only as fast as n_t = relu(x W + r (h U + b)) feeds back through U. Measured over 60 seeds: T <= 24 keeps
# max |h| <= 30 in std, zero and longmem, while T = 80 reaches 1e16 (zero): the grids' T stays <= 24. Not sat
# (U x4: faster feedback still, overflow rather than the activation).
def _activation_ci(option, regime):
    return [dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, regime),
                         ((2, 24, 4, 5), 3, "std")], options=(option,)),
            *structural_ci([((3, 7, 4, 5), 0, "std")], [(option, "bi", "L2"), (option, "len")])]


def _activation_nightly(option, regimes):
    return [dict(NOBIAS_NIGHTLY, regimes=regimes, options=(option,)),
            *blocks(dict(NOBIAS_NIGHTLY, seeds=range(2), regimes=regimes),
                    [(option, "bi", "L2"), (option, "len"), (option, "bisum"), (option, "L2"),
                     # (no masks under clip: its engines run ONNX nodes, with lengths and no mask; rnn's record)
                     *([] if option == "clip" else [(option, "mask"), (option, "maskz", "bi")])])]


# clip (ONNX's, gatecheck.model.options) is bounded as the defaults are: every regime, sat included (where most
# pre-activations are clipped: slope 0).
ACTIVATION_CI = [*_activation_ci("relu", "longmem"), *_activation_ci("hardsig", "sat"), *_activation_ci("clip", "sat")]
ACTIVATION_NIGHTLY = [*_activation_nightly("relu", lambda shape: ["zero", "longmem"]),
                      *_activation_nightly("hardsig", every_regime), *_activation_nightly("clip", every_regime)]

PROFILES = {
    "ci": [dict(shapes=CI_SHAPES, seeds=range(1), special_seeds=range(1), regimes=ci_regimes), NOBIAS_CI, REV_CI, *STRUCTURE_CI,
           *ACTIVATION_CI],
    "nightly": [
        dict(shapes=CI_SHAPES + NIGHTLY_SMALL, seeds=range(6), special_seeds=range(2), regimes=every_regime),
        dict(shapes=NIGHTLY_LARGE, seeds=range(2), special_seeds=range(1), regimes=every_regime),
        NOBIAS_NIGHTLY,
        REV_NIGHTLY,
        *STRUCTURE_NIGHTLY,
        *ACTIVATION_NIGHTLY,
    ],
}

CONTRACT = """\
run(x, h0, W, U, bx, bh, gh) -> mapping with
  "h", "dh" (B,T,H)   states after every step; total dL/dh_t
  "dW" (3,D,H), "dU" (3,H,H), "dbx", "dbh" (3,H), "dx" (B,T,D), "dh0" (B,H)
x (B,T,D), h0 (B,H), W (3,D,H), U (3,H,H), bx, bh (3,H), gh (B,T,H); gates r,z,n
r_t = sigmoid(x_t W[r] + bx[r] + h_{t-1} U[r] + bh[r]);  z_t likewise with W[z], bx[z], U[z], bh[z]
%s
h_t = (1 - z_t)*n_t + z_t*h_{t-1};  L = sum(gh*h)"""

_N = {
    "after": "n_t = tanh(x_t W[n] + bx[n] + r_t*(h_{t-1} U[n] + bh[n]))   (reset after)",
    "before": "n_t = tanh(x_t W[n] + bx[n] + (r_t*h_{t-1}) U[n] + bh[n])   (reset before)",
}


def fd_hooks(reset, acts=None):
    """(loss, state loss, output sequence) of the GRU in this convention (``acts``: gru.chosen's), for finite
    differences."""
    params = ("W", "U", "bx", "bh")

    def loss(inputs):
        fwd = gru.forward(inputs["x"], inputs["h0"], *(inputs[k] for k in params), reset, acts=acts)
        return gru.loss(fwd["h"], inputs["gh"])

    def state_loss(inputs, t, which, offset):
        """The loss with h_t moved by ``offset`` and the sequence run on from there."""
        x, gh = inputs["x"], inputs["gh"]
        weights = [inputs[k] for k in params]
        head = gru.forward(x[:, : t + 1], inputs["h0"], *weights, reset, acts=acts)["h"]
        h_t = head[:, t] + offset
        total = np.sum(gh[:, :t] * head[:, :t]) + np.sum(gh[:, t] * h_t)
        if t == x.shape[1] - 1:
            return total
        return total + gru.loss(gru.forward(x[:, t + 1:], h_t, *weights, reset, acts=acts)["h"], gh[:, t + 1:])

    def output(inputs, moved=None):
        """The output sequence h (B, T, H), with h_t moved by ``offset`` at step t when ``moved`` =
        (t, "h", offset) and the sequence run on from there (the hook of layers built from the model)."""
        x, weights = inputs["x"], [inputs[k] for k in params]
        if moved is None:
            return gru.forward(x, inputs["h0"], *weights, reset, acts=acts)["h"]
        t, _, offset = moved
        head = gru.forward(x[:, : t + 1], inputs["h0"], *weights, reset, acts=acts)["h"]
        h_t = head[:, t] + offset
        tail = [gru.forward(x[:, t + 1:], h_t, *weights, reset, acts=acts)["h"]] if t < x.shape[1] - 1 else []
        return np.concatenate([head[:, :t], h_t[:, None]] + tail, axis=1)

    return loss, state_loss, output


# Finite-difference cases: B=1, T=1, D=H=1, D != H, H=1 and every regime.
FD_POINTS = (((1, 1, 1, 1), 0, "std"), ((1, 1, 3, 2), 1, "std"), ((2, 3, 4, 1), 2, "std"), ((3, 5, 2, 4), 3, "std"),
             ((2, 6, 3, 3), 4, "zero"), ((2, 8, 3, 2), 5, "longmem"), ((2, 4, 3, 3), 6, "sat"))


# The no-bias option's mutants: edits of reference.gru.run_nobias (both conventions).
_NOBIAS_CALL = "out = run(x, h0, W, U, **no_bias(W), gh=gh, reset=reset, ulps=ulps, **activations)"
NOBIAS_MUTANTS = (
    Mutant("nobias-stale-bias", "both biases are added although the model has no bias",
           "the bias parameters are still created with the default initialisation (PyTorch's "
           "U(-1/sqrt(H), 1/sqrt(H))) and the step still adds them",
           old=_NOBIAS_CALL,
           new=_NOBIAS_CALL.replace("**no_bias(W)", "**{k: (np.random.default_rng(0).uniform(-1, 1, v.shape) / "
                                                    "np.sqrt(v.shape[1])).astype(v.dtype) for k, v in no_bias(W).items()}"),
           first="h t=0"),
    Mutant("nobias-dbh-returned", "the recurrent bias gradient dbh is still returned under no bias",
           "only the input bias is removed; the recurrent bias (the one reset-after keeps inside r) stays "
           "in the backward pass and goes out",
           old='    del out["dbx"], out["dbh"]\n', new='    del out["dbx"]\n', first="contract"),
)


def _nobias(reset):
    return Variant(run=functools.partial(gru.run_nobias, reset=reset), drops=("bx", "bh"), drops_keys=("dbx", "dbh"),
                   fill=lambda inputs: gru.no_bias(inputs["W"]), mutants=NOBIAS_MUTANTS,
                   mutant_bind=lambda module: functools.partial(module.run_nobias, reset=reset))


def _rev(reset):
    return Variant(run=functools.partial(gru.run_rev, reset=reset), flips=("x", "gh"), keywords={"reverse": True},
                   mutants=reverse_mutants("out = run(x[:, ::-1], h0, W, U, bx, bh, gh[:, ::-1], reset=reset, "
                                           "ulps=ulps, **activations)"),
                   mutant_bind=lambda module: functools.partial(module.run_rev, reset=reset))


# The activation options (gatecheck.model.options: relu, hardsig): the model is gru.run with the option's
# activation= or recurrent_activation=, the keyword a candidate is called with; the mutants are edits of the
# reference's lines that only those options run (gru.py's ``acts`` branches), in both conventions.
_RELU_MUTANTS = (
    Mutant("relu-tanh-derivative", "n's slope is tanh's 1 - n^2 under relu",
           "the activation is switched in the forward pass, and the backward pass written for tanh is kept",
           old="1 - n * n if acts is None else slope_n[t]", new="1 - n * n", first="dx t=T-1"),
    Mutant("relu-forward-tanh", "n still applies tanh although relu is asked for",
           "the activation argument is accepted and not passed on to the step",
           old="np.tanh(a_n) if acts is None else acts[1](a_n)", new="np.tanh(a_n)", first="h t=0"),
    Mutant("relu-slope-without-recurrence", "relu' of n is taken at x_t W[n] + bx[n], without its recurrent part",
           "the pre-activation is recomputed for the backward pass from the input projection alone",
           old='a[:, :, 2] += r * fwd["hn"] if reset == "after" else (r * h_prev) @ U[2] + bh[2]',
           new="pass", first="dx "),
)
_HARDSIG_MUTANTS = (
    Mutant("hardsig-sigmoid-derivative", "the gates' slope is the sigmoid's y (1 - y) under the hard sigmoid",
           "the gate activation is switched in the forward pass, and the backward pass written for the sigmoid "
           "is kept", old="slope_rz = acts[0].derivative(a[:, :, :2], gates[:, :, :2])",
           new="slope_rz = gates[:, :, :2] * (1 - gates[:, :, :2])", first="dx t=T-1"),
    Mutant("hardsig-forward-sigmoid", "r and z still apply the sigmoid although the hard sigmoid is asked for",
           "the recurrent_activation argument is accepted and not passed on to the step",
           old="else _numerics.jitter(acts[0](a_rz), ulps)", new="else sigmoid(a_rz, ulps)", first="h t=0"),
    Mutant("hardsig-alpha-0.2", "the gates' hard sigmoid is clip(0.2 z + 0.5, 0, 1), ONNX's default and Keras "
           "2's, not Keras 3's clip(z / 6 + 0.5, 0, 1)",
           "'hard_sigmoid' means two functions across Keras versions and ONNX's HardSigmoid defaults to the old "
           "one (gatecheck.engines.keras.versions)", wrap=called_with(recurrent_activation=("hard_sigmoid", 0.2, 0.5)), first="h t=0"),
    Mutant("hardsig-slope-not-clipped", "the gates' slope is 1/6 everywhere, also where the clip saturates",
           "the derivative of the linear part taken without the clip's",
           old="slope_rz = acts[0].derivative(a[:, :, :2], gates[:, :, :2])",
           new="slope_rz = np.full_like(gates[:, :, :2], 1 / 6)", first="dx "),
)


# The clip option's mutants: edits of gru.chosen (where the clip enters, each activation behind it) and of the
# backward pass's slopes; and the keyword dropped.
_CLIP_CHOSEN = "return activations.clipped(recurrent_activation, clip), activations.clipped(activation, clip)"
_CLIP_MUTANTS = (
    Mutant("clip-ignored", "the clip is not applied anywhere", "the clip keyword is accepted and not passed on",
           wrap=called_with(clip=None), first="h t=0"),
    Mutant("clip-gates-only", "r and z are clipped, n's input is not", "the clip placed where the gates are "
           "computed, the candidate n written apart from them",
           old=_CLIP_CHOSEN, new=_CLIP_CHOSEN.replace("activations.clipped(activation, clip)",
                                                      "activations.choose(activation)"), first="h t=0"),
    Mutant("clip-candidate-only", "only n's input is clipped, not r's and z's", "'cell clip' read as a clip of "
           "the candidate state alone",
           old=_CLIP_CHOSEN, new=_CLIP_CHOSEN.replace("activations.clipped(recurrent_activation, clip)",
                                                      "activations.choose(recurrent_activation)"), first="h t=0"),
    Mutant("clip-forgotten-in-backward", "the backward pass takes the unclipped activations' slopes: nonzero "
           "where the clip holds the input", "the clip is added to the forward pass, and the backward pass written "
           "for the plain activations is kept",
           old="a = pre_activations(fwd, x, h0, W, U, bx, bh, reset)\n",
           new="a = pre_activations(fwd, x, h0, W, U, bx, bh, reset)\n"
               "        acts = tuple(getattr(f, 'inner', f) for f in acts)\n", first="dx "),
)


def _activation(reset, option, mutants):
    """The GRU under an activation option (its keywords: gatecheck.model.options.activation_keywords)."""
    keywords = activation_keywords((option,))
    loss, state_loss, output = fd_hooks(reset, gru.chosen(**keywords))
    return Variant(run=functools.partial(gru.run, reset=reset, **keywords), keywords=keywords, mutants=mutants,
                   mutant_bind=lambda module: functools.partial(module.run, reset=reset, **keywords),
                   replace=dict(fd_loss=loss, fd_state_loss=state_loss, fd_output=output), in_layers=True)


def _family(name, description, reset, mutants, hypotheses, examples):
    return Family(
        name=name,
        description=description,
        run=functools.partial(gru.run, reset=reset),
        inputs=("x", "h0", "W", "U", "bx", "bh", "gh"),
        contract=gru.CONTRACT_KEYS,
        shapes=shapes,
        quantities=QUANTITIES,
        regimes=REGIMES,
        make_inputs=make_inputs,
        profiles=PROFILES,
        contract_doc=CONTRACT % _N[reset],
        gates=gru.GATES,
        gated=("W", "U", "bx", "bh"),
        swappable=("W", "U"),
        forward=("h",),
        mutants=mutants,
        mutant_source=gru,
        mutant_bind=lambda module: functools.partial(module.run, reset=reset),
        hypotheses=hypotheses,
        isolating=gru_diagnosis.isolating,
        step_parts=gru_diagnosis.step_parts,
        local=gru_diagnosis.local(reset),
        examples=examples,
        fd_loss=fd_hooks(reset)[0],
        fd_state_loss=fd_hooks(reset)[1],
        output="h",
        fd_output=fd_hooks(reset)[2],
        states=("h",),
        fd_points=FD_POINTS,
        options={"nobias": _nobias(reset), "rev": _rev(reset), "relu": _activation(reset, "relu", _RELU_MUTANTS),
                 "hardsig": _activation(reset, "hardsig", _HARDSIG_MUTANTS),
                 "clip": _activation(reset, "clip", _CLIP_MUTANTS)},
    )


GRU = _family(
    "gru", "the GRU of PyTorch nn.GRU and Keras GRU(reset_after=True): gates r,z,n, reset applied after U[n]",
    "after", gru_mutants.MUTANTS, gru_diagnosis.HYPOTHESES,
    {"examples.course_gru:run": 0, "examples.course_gru:run_before": 1},
)

GRU_RESET_BEFORE = _family(
    "gru-reset-before", "the GRU of Cho et al. (2014, v3) and Keras GRU(reset_after=False): reset applied "
    "to h_{t-1} before U[n]; PyTorch has no such GRU", "before", gru_mutants.MUTANTS_BEFORE,
    gru_diagnosis.HYPOTHESES_BEFORE,
    {"examples.course_gru:run_before": 0, "examples.course_gru:run": 1},
)
