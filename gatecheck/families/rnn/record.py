"""The vanilla (Elman, tanh) RNN family: h_t = tanh(x_t W + h_{t-1} U + b)."""

import functools

import numpy as np

from gatecheck.core.cases import case_rng, scales, structural_ci
from gatecheck.core.family import Family, Quantity, Variant, quantity_table
from gatecheck.core.mutants import Mutant, called_with, reverse_mutants
from gatecheck.model.options import (
    CLIP,
    STRUCTURAL,
    STRUCTURAL_NIGHTLY,
    STRUCTURAL_NOBIAS,
    blocks,
)
from gatecheck.reference import rnn

REGIMES = {
    "std": "random weights, inputs and upstream gradients; h0 non-zero",
    "zero": "as std, but h0 = 0",
    "sat": "weights x4 and inputs x3: most units saturated (|h| near 1)",
}


def make_inputs(case):
    """Float64 canonical RNN inputs for a case, before rounding to the case's dtype."""
    if case.regime not in REGIMES:
        raise ValueError(f"regime: expected one of {sorted(REGIMES)}, got {case.regime!r}")
    rng = case_rng(case, "rnn-")
    B, T, D, H = case.B, case.T, case.D, case.H
    w_scale, x_scale = scales(case.regime)
    inputs = dict(
        x=x_scale * rng.standard_normal((B, T, D)),
        h0=0.5 * rng.standard_normal((B, H)),
        W=w_scale * rng.standard_normal((D, H)) / np.sqrt(D),
        U=w_scale * rng.standard_normal((H, H)) / np.sqrt(H),
        b=0.5 * rng.standard_normal(H),
        gh=rng.standard_normal((B, T, H)),
    )
    if case.regime == "zero":
        inputs["h0"] = np.zeros_like(inputs["h0"])
    return inputs


def shapes(inputs):
    B, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    return dict(h=(B, T, H), dh=(B, T, H), dW=(D, H), dU=(H, H), db=(H,), dx=(B, T, D), dh0=(B, H))


QUANTITIES = quantity_table(
    Quantity("h", 0, "time", ("b", "t", "j"), "h", meaning="hidden state h_t"),
    Quantity("dh", 1, "time", ("b", "t", "j"), "dh", meaning="total dL/dh_t"),
    Quantity("dx", 1, "time", ("b", "t", "d"), "dx", meaning="dL/dx_t"),
    Quantity("dh0", 1, "", ("b", "j"), "dh0", meaning="dL/dh0"),
    Quantity("dW", 2, "", ("d", "j"), "dW", meaning="input kernel gradient"),
    Quantity("dU", 2, "", ("k", "j"), "dU", meaning="recurrent kernel gradient"),
    Quantity("db", 2, "", ("j",), "db", meaning="bias gradient"),
    Quantity("db_ih", 2, "", ("j",), "db", meaning="torch bias_ih gradient"),
    Quantity("db_hh", 2, "", ("j",), "db", meaning="torch bias_hh gradient"),
)

# (B, T, D, H): B=1, T=1, D=1, H=1, D != H, B >= 3 and T >= 40 all appear.
SHAPES = [(1, 1, 1, 1), (1, 1, 3, 2), (2, 3, 4, 1), (3, 7, 4, 5), (2, 40, 3, 4)]
NIGHTLY_SHAPES = [(1, 9, 5, 5), (4, 24, 8, 3), (8, 20, 6, 7), (2, 200, 3, 4)]


def _specials(shape):
    return ["zero", "sat"]


# No-bias cases (gatecheck.model.options) over one (D, H) pair of the ci grid: one more Keras
# trace per oracle and dtype.
NOBIAS_CI = dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, "sat")],
                 options=("nobias",))
NOBIAS_NIGHTLY = dict(shapes=[(3, 7, 4, 5), (2, 40, 3, 4), (8, 20, 6, 7)], seeds=range(3), special_seeds=range(1),
                      regimes=_specials, options=("nobias",))

# Reverse-direction cases on the no-bias cases' shapes (ci: one (D, H), one more Keras trace per oracle and
# dtype; nightly: the no-bias nightly shapes, every regime). T >= 2 everywhere (at T = 1 reverse is forward).
REV_CI = dict(points=[((3, 7, 4, 5), 0, "std"), ((2, 5, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, "sat")],
              options=("rev",))
REV_NIGHTLY = dict(NOBIAS_NIGHTLY, options=("rev",))

# Bidirectional and stacked layers (gatecheck.model.options, STRUCTURAL_*): ci on the no-bias cases' (D, H), one
# more Keras trace per set and dtype (the probed cells: one point, each set in one dtype, cases.structural_ci);
# nightly on the no-bias nightly shapes (with no bias: its regimes).
STRUCTURE_CI = structural_ci([((3, 7, 4, 5), 0, "std"), ((2, 12, 4, 5), 2, "sat")], STRUCTURAL)
STRUCTURE_NIGHTLY = (blocks(dict(NOBIAS_NIGHTLY, seeds=range(2), regimes=_specials), STRUCTURAL + STRUCTURAL_NIGHTLY)
                     + blocks(dict(NOBIAS_NIGHTLY, seeds=range(2)), STRUCTURAL_NOBIAS))

# relu cases (the activation option): ci on the no-bias cases' (D, H), alone and in a bidirectional stack and
# under lengths; nightly on the no-bias nightly shapes (T <= 40), with the other merges, depths and masks. Not
# the sat regime: weights x4 make relu's recurrence grow by about x2.8 a step (no tanh to bound it), so a
# sequence of 40 steps reaches 1e18: what it measures is overflow, not the activation.
RELU_CI = [dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 1, "zero"), ((2, 12, 4, 5), 2, "std")],
                options=("relu",)),
           *structural_ci([((3, 7, 4, 5), 0, "std")], [("relu", "bi", "L2"), ("relu", "len")])]
# clip cases (ONNX's clip, gatecheck.model.options): as relu's in ci, every regime (tanh bounds the state: sat
# included, where most pre-activations are clipped); nightly on the no-bias nightly shapes, every regime. The
# T = 1 point takes seed 2: at seed 1 no pre-activation of its one step reaches the clip (max |z| 0.80), and every
# clip case must be moved by the clip (tests/model/test_clip.py). No mask sets: the engines that offer clip run ONNX
# nodes, which take sequence lengths and no per-step mask (a block no oracle runs fails tests/run/test_grid.py).
CLIP_CI = [dict(points=[((3, 7, 4, 5), 0, "std"), ((1, 1, 4, 5), 2, "zero"), ((2, 12, 4, 5), 2, "sat")],
                options=("clip",)),
           *structural_ci([((3, 7, 4, 5), 0, "std")], [("clip", "bi", "L2"), ("clip", "len")])]
CLIP_NIGHTLY = [dict(NOBIAS_NIGHTLY, regimes=_specials, options=("clip",)),
                *blocks(dict(NOBIAS_NIGHTLY, seeds=range(2), regimes=_specials),
                        [("clip", "bi", "L2"), ("clip", "len"), ("clip", "bisum"), ("clip", "L2")])]
RELU_NIGHTLY = [dict(NOBIAS_NIGHTLY, regimes=lambda shape: ["zero"], options=("relu",)),
                *blocks(dict(NOBIAS_NIGHTLY, seeds=range(2), regimes=lambda shape: ["zero"]),
                        [("relu", "bi", "L2"), ("relu", "len"), ("relu", "bisum"), ("relu", "L2"), ("relu", "mask"),
                         ("relu", "maskz", "bi")])]

PROFILES = {
    "ci": [dict(shapes=SHAPES, seeds=range(1), special_seeds=range(1), regimes=_specials), NOBIAS_CI, REV_CI, *STRUCTURE_CI,
           *RELU_CI, *CLIP_CI],
    "nightly": [dict(shapes=SHAPES + NIGHTLY_SHAPES, seeds=range(5), special_seeds=range(2), regimes=_specials),
                NOBIAS_NIGHTLY, REV_NIGHTLY, *STRUCTURE_NIGHTLY, *RELU_NIGHTLY, *CLIP_NIGHTLY],
}

CONTRACT = """\
run(x, h0, W, U, b, gh) -> mapping with
  "h", "dh" (B,T,H)   states after every step; total dL/dh_t
  "dW" (D,H), "dU" (H,H), "db" (H,), "dx" (B,T,D), "dh0" (B,H)
x (B,T,D), h0 (B,H), W (D,H), U (H,H), b (H,), gh (B,T,H)
h_t = tanh(x_t W + h_{t-1} U + b);  L = sum(gh*h)"""

MUTANTS = (
    Mutant("no-recurrent-dh", "dh_t lacks the recurrent term dz_{t+1} @ U^T",
           "only the local loss gradient is remembered when writing dh_t",
           old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])", new="dh_t = np.add(gh[t], 0, out=dh[t])",
           first="dh t=T-2"),
    Mutant("tanh-derivative-wrong", "dz_t = dh_t * (1 - h_t) instead of dh_t * (1 - h_t^2)",
           "tanh' = 1 - tanh^2 written from memory",
           old="slope = 1 - h * h", new="slope = 1 - h",
           first="dx t=T-1"),
    Mutant("dW-last-step", "dW is computed from the last step only",
           "the per-step gradient is assigned instead of accumulated over time",
           old="dW=x_tm.T @ dz_flat,", new="dW=x[:, -1].T @ dz[-1],", first="dW "),
    Mutant("db-batch-mean", "the bias gradient is averaged over the batch instead of summed",
           "the loss is often a mean over the batch, and the mean is applied to one gradient only",
           old="db=dz_flat.sum(axis=0),", new="db=dz_flat.sum(axis=0) / B,", first="db "),
    Mutant("dh0-dropped", "dL/dh0 is returned as zero",
           "the gradient flowing out of step 0 is not returned (h0 is 'not a parameter')",
           old="dh0=dh_from_next,", new="dh0=np.zeros_like(dh_from_next),", first="dh0 "),
    Mutant("h0-ignored-in-dU", "dU's first step uses zeros instead of h0 (only matters when h0 != 0)",
           "the list of previous hidden states is built from the outputs, which lack h0",
           old="h_prev = np.concatenate([h0[None], h[:-1]])",
           new="h_prev = np.concatenate([np.zeros_like(h0)[None], h[:-1]])", first="dU "),
    Mutant("dU-transposed", "dU is returned transposed (silent: U is square)",
           "h_prev^T dz vs dz^T h_prev: both have the right shape",
           old="dU=h_prev.reshape(T * B, H).T @ dz_flat,", new="dU=dz_flat.T @ h_prev.reshape(T * B, H),",
           first="dU "),
    Mutant("last-step-upstream-ignored", "the upstream gradient of h at the last step is ignored",
           "the backward loop starts from the recurrent delta only",
           old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
           new="dh_t = np.add(gh[t] * (t < T - 1), dh_from_next, out=dh[t])", first="dh t=T-1"),
)

# The no-bias option's mutants: edits of reference.rnn.run_nobias.
_NOBIAS_CALL = "out = run(x, h0, W, U, **no_bias(W), gh=gh, ulps=ulps, activation=activation, clip=clip)"
NOBIAS_MUTANTS = (
    Mutant("nobias-stale-bias", "a bias is added although the model has no bias",
           "the bias parameter is still created with the default initialisation (PyTorch's "
           "U(-1/sqrt(H), 1/sqrt(H))) and the step still adds it",
           old=_NOBIAS_CALL,
           new=_NOBIAS_CALL.replace("**no_bias(W)", "b=(np.random.default_rng(0).uniform(-1, 1, W.shape[1]) / "
                                                    "np.sqrt(W.shape[1])).astype(W.dtype)"),
           first="h t=0"),
    Mutant("nobias-db-returned", "a bias gradient db is still returned under no bias",
           "the backward pass is the biased model's, and its db goes out with the rest",
           old='    del out["db"]\n', new="", first="contract"),
)

NOBIAS = Variant(run=rnn.run_nobias, drops=("b",), drops_keys=("db",), fill=lambda inputs: rnn.no_bias(inputs["W"]),
                 mutants=NOBIAS_MUTANTS, mutant_bind=lambda module: module.run_nobias)

REV = Variant(run=rnn.run_rev, flips=("x", "gh"), keywords={"reverse": True},
              mutants=reverse_mutants("out = run(x[:, ::-1], h0, W, U, b, gh[:, ::-1], ulps=ulps, activation=activation, "
                                      "clip=clip)"),
              mutant_bind=lambda module: module.run_rev)


def fd_loss(inputs, activation="tanh", clip=None):
    return rnn.loss(rnn.forward(*(inputs[k] for k in ("x", "h0", "W", "U", "b")), activation=activation,
                                clip=clip)["h"], inputs["gh"])


def fd_state_loss(inputs, t, which, offset, activation="tanh", clip=None):
    """The loss with h_t moved by ``offset`` and the sequence run on from there."""
    x, h0, W, U, b, gh = (inputs[k] for k in ("x", "h0", "W", "U", "b", "gh"))
    head = rnn.forward(x[:, : t + 1], h0, W, U, b, activation=activation, clip=clip)["h"]
    h_t = head[:, t] + offset
    total = np.sum(gh[:, :t] * head[:, :t]) + np.sum(gh[:, t] * h_t)
    if t == x.shape[1] - 1:
        return total
    return total + rnn.loss(rnn.forward(x[:, t + 1 :], h_t, W, U, b, activation=activation, clip=clip)["h"],
                            gh[:, t + 1 :])


def fd_output(inputs, moved=None, activation="tanh", clip=None):
    """The output sequence h (B, T, H), with h_t moved by ``offset`` at step t when ``moved`` =
    (t, "h", offset) and the sequence run on from there (the hook of layers built from the model)."""
    x, h0, W, U, b = (inputs[k] for k in ("x", "h0", "W", "U", "b"))
    if moved is None:
        return rnn.forward(x, h0, W, U, b, activation=activation, clip=clip)["h"]
    t, _, offset = moved
    head = rnn.forward(x[:, : t + 1], h0, W, U, b, activation=activation, clip=clip)["h"]
    h_t = head[:, t] + offset
    tail = [rnn.forward(x[:, t + 1:], h_t, W, U, b, activation=activation, clip=clip)["h"]] if t < x.shape[1] - 1 else []
    return np.concatenate([head[:, :t], h_t[:, None]] + tail, axis=1)


# The activation options (gatecheck.model.options.ACTIVATION_OPTIONS): the RNN with another activation than
# tanh (PyTorch nonlinearity, Keras activation, ONNX activations, Flax activation_fn). The model is rnn.run with
# ``activation``, the keyword a candidate is called with; its mutants are edits of reference.rnn.
def _activation_mutants(name):
    return (
        Mutant(f"{name}-tanh-derivative", f"the backward pass uses tanh's derivative 1 - h_t^2 under {name}",
               "the activation is switched in the forward pass, and the backward pass written for tanh is kept",
               old="slope = act.derivative(z, h)", new="slope = 1 - h * h", first="dx t=T-1"),
        Mutant(f"{name}-forward-tanh", f"the cell still applies tanh although {name} is asked for",
               "the activation argument is accepted and not passed on to the step",
               old="h[t] = act(h[t])", new="h[t] = np.tanh(h[t])", first="h t=0"),
        Mutant(f"{name}-slope-without-recurrence", "the derivative is taken at x_t W + b, without h_{t-1} U",
               "the pre-activation is recomputed for the backward pass from the input projection alone",
               old="z += h_prev @ U\n", new="pass\n", first="dx "),
    )


_RELU_MUTANTS = _activation_mutants("relu") + (
    Mutant("relu-derivative-of-output-sign", "relu' is taken as h_t >= 0, which holds everywhere (the output is "
           "never negative): the slope is 1 at every unit",
           "relu'(z) = [z > 0] written from the output, with >= where the output is 0 for every z <= 0",
           old="slope = act.derivative(z, h)", new="slope = (h >= 0).astype(h.dtype)", first="dx "),
)


def activation_variant(name, mutants):
    """The RNN under the activation ``name`` (gatecheck.reference.activations)."""
    return Variant(run=functools.partial(rnn.run, activation=name), keywords={"activation": name}, mutants=mutants,
                   mutant_bind=lambda module: functools.partial(module.run, activation=name),
                   replace=dict(fd_loss=functools.partial(fd_loss, activation=name),
                                fd_state_loss=functools.partial(fd_state_loss, activation=name),
                                fd_output=functools.partial(fd_output, activation=name)),
                   in_layers=True)


RELU = activation_variant("relu", _RELU_MUTANTS)


# ONNX's clip (gatecheck.model.options: clip): the model is rnn.run with ``clip``, the keyword a candidate is
# called with; its mutants are edits of reference.rnn (the activation behind the clip: activations.Clipped) and
# the keyword dropped.
_CLIP_MUTANTS = (
    Mutant("clip-ignored", "the clip is not applied", "the clip keyword is accepted and not passed on",
           wrap=called_with(clip=None), first="h t=0"),
    Mutant("clip-forgotten-in-backward", "the backward pass takes tanh's slope 1 - h_t^2 also where the clip "
           "holds z_t (there it is 0)", "the clip is added to the forward pass, and the backward pass written for "
           "tanh is kept", old="slope = act.derivative(z, h)", new="slope = 1 - h * h", first="dx "),
    Mutant("clip-backward-only", "the forward pass applies tanh to z_t unclipped; the backward pass has the "
           "clip's zero slopes", "the clip is written into the derivative and not into the step",
           old="h[t] = act(h[t])", new="h[t] = act.inner(h[t])", first="h t=0"),
)
CLIP_VARIANT = Variant(run=functools.partial(rnn.run, clip=CLIP), keywords={"clip": CLIP}, mutants=_CLIP_MUTANTS,
               mutant_bind=lambda module: functools.partial(module.run, clip=CLIP),
               replace=dict(fd_loss=functools.partial(fd_loss, clip=CLIP),
                            fd_state_loss=functools.partial(fd_state_loss, clip=CLIP),
                            fd_output=functools.partial(fd_output, clip=CLIP)),
               in_layers=True)


RNN = Family(
    name="rnn",
    description="the vanilla tanh RNN of Keras SimpleRNN and PyTorch nn.RNN",
    run=rnn.run,
    inputs=("x", "h0", "W", "U", "b", "gh"),
    contract=rnn.CONTRACT_KEYS,
    shapes=shapes,
    quantities=QUANTITIES,
    regimes=REGIMES,
    make_inputs=make_inputs,
    profiles=PROFILES,
    contract_doc=CONTRACT,
    swappable=("W", "U"),
    forward=("h",),
    mutants=MUTANTS,
    mutant_source=rnn,
    mutant_bind=lambda module: module.run,
    examples={"examples.course_rnn:run": 0, "examples.course_rnn:run_sequence": 0},
    fd_loss=fd_loss,
    fd_state_loss=fd_state_loss,
    output="h",
    fd_output=fd_output,
    states=("h",),
    options={"nobias": NOBIAS, "rev": REV, "relu": RELU, "clip": CLIP_VARIANT},
    fd_points=(((1, 1, 1, 1), 0, "std"), ((1, 1, 3, 2), 1, "std"), ((2, 3, 4, 1), 2, "std"), ((3, 5, 2, 4), 3, "std"),
               ((2, 6, 3, 3), 4, "zero"), ((2, 4, 3, 3), 5, "sat")),
)
