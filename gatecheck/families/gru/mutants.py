"""The GRU's mutant catalogue: realistic GRU bugs, as data (see ``gatecheck.core.mutants``).
Textual mutants edit ``gatecheck/reference/gru.py``; ``COMMON`` applies to both reset
conventions, ``AFTER`` and ``BEFORE`` only to the convention whose code they edit (an edit
of the other convention's branch would change nothing there, and one bug, dbh copied
from dbx, is no bug in reset-before, where dbh equals dbx).

Where a public report shows the pattern, the ``why`` cites it: the reset_after default that
changed between TF 1 and TF 2 (nntrainer/nntrainer#1644), converters that map the two
biases of a reset-after GRU onto one (onnx/keras-onnx#33, tensorflow/tfjs#3620) or read the
gate blocks in another order (openvinotoolkit/openvino#17651: bias in z,r vs r,z order),
and hand-written GRUs that drop a bias (oreilly-japan/deep-learning-from-scratch-2#13).
"""

import functools
import itertools

import numpy as np

from gatecheck.core.mutants import Mutant
from gatecheck.families.lstm.mutants import _in_float32
from gatecheck.reference.gru import GATES

_GATED = ("W", "U", "bx", "bh")


def _gate_order(order):
    """An implementation that reads its gate blocks as ``order`` (consistently: forward,
    backward, and the gradients it writes back)."""
    idx = [GATES.index(name) for name in order]
    inv = list(np.argsort(idx))

    def wrap(run):
        def mutated(**kw):
            out = run(**dict(kw, **{k: kw[k][inv] for k in _GATED}))
            return dict(out, **{"d" + k: out["d" + k][idx] for k in _GATED})
        return mutated
    return wrap


def _mix_swapped(run):
    """h_t = z_t * n_t + (1 - z_t) * h_{t-1}, forward and backward consistently: the same
    as the canonical GRU with every z block negated (1 - sigmoid(a) = sigmoid(-a)), so its
    own gradients are the reference's on negated z blocks, negated back."""
    def mutated(**kw):
        flipped = {k: kw[k].copy() for k in _GATED}
        for a in flipped.values():
            a[1] *= -1
        out = run(**dict(kw, **flipped))
        back = {"d" + k: out["d" + k].copy() for k in _GATED}
        for a in back.values():
            a[1] *= -1
        return dict(out, **back)
    return mutated


def _other_convention(run):
    """The whole model in the other reset convention (forward and backward consistently)."""
    other = {"after": "before", "before": "after"}[run.keywords["reset"]]
    return functools.partial(run, reset=other)


COMMON = [
    Mutant("reset-convention-swapped",
           "n_t uses the other reset convention, consistently (forward and backward)",
           "Keras' reset_after default changed from False (TF 1) to True (TF 2) and PyTorch has only "
           "reset-after, while courses and Cho et al. (v3) write reset-before (nntrainer/nntrainer#1644)",
           wrap=_other_convention, first="h t=0"),
    Mutant("reset-convention-swapped-in-forward",
           "the forward pass computes n_t in the other reset convention; the backward is the right one's",
           "a forward ported from one framework and a backward derived from the other's equations",
           old='if reset == "after":', new='if reset != "after":', first="h t=0"),
    Mutant("reset-convention-swapped-in-backward",
           "the backward pass differentiates n_t of the other reset convention; the forward is right",
           "the backward derived from the paper's equations (r_t * h_{t-1} inside U[n]) under a "
           "framework's reset-after forward, or the other way round",
           old='after = reset == "after"', new='after = reset != "after"', first="dx t=T-1"),
    Mutant("mix-swapped", "h_t = z_t * n_t + (1 - z_t) * h_{t-1}, consistently (forward and backward)",
           "Chung et al. (2014) write h_t = (1 - z) h_{t-1} + z n_t, Cho et al. and the frameworks the other "
           "way round; both are 'the GRU'", wrap=_mix_swapped, first="h t=0"),
    Mutant("mix-swapped-in-forward", "the forward mixes h_t = z_t * n_t + (1 - z_t) * h_{t-1}; the backward "
           "differentiates the frameworks' mix", "the forward from one paper, the backward from another",
           old="h_t = h[t] = (1 - z) * n + z * h_t", new="h_t = h[t] = z * n + (1 - z) * h_t", first="h t=0"),
    Mutant("no-recurrent-dh", "dh_t lacks everything step t+1 passes back",
           "only the local loss gradient is remembered when writing dh_t",
           old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])", new="dh_t = np.add(gh[t], 0, out=dh[t])",
           first="dh t=T-2"),
    Mutant("last-step-upstream-ignored", "the upstream gradient of h at the last step is ignored",
           "the backward loop starts from the recurrent delta only, as if h_T fed nothing",
           old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
           new="dh_t = np.add(gh[t] * (t < T - 1), dh_from_next, out=dh[t])", first="dh t=T-1"),
    Mutant("truncated-bptt-20", "deltas stop flowing back after 20 steps (only matters when T > 20)",
           "truncated backpropagation, a training device, left in a gradient meant to be exact",
           old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
           new="dh_t = np.add(gh[t], dh_from_next if T - t <= 20 else 0, out=dh[t])",
           first="dh t=T-21", needs="T>20"),
    Mutant("carry-without-z", "what dh_t passes straight back to h_{t-1} (dh_t * z_t) is dropped",
           "only the paths through the gates' weights are followed; h_{t-1} also enters h_t directly",
           old="dh_from_next = dh_t * z + dzh", new="dh_from_next = dzh", first="dh t=T-2"),
    Mutant("carry-uses-1-z", "the direct path back to h_{t-1} is weighted by 1 - z_t instead of z_t",
           "the two weights of the update mix confused in the derivative",
           old="dh_from_next = dh_t * z + dzh", new="dh_from_next = dh_t * (1 - z) + dzh", first="dh t=T-2"),
    Mutant("gates-recurrent-dh-dropped", "dh_{t-1} gets the recurrent terms of n only, not those of r and z",
           "the gates' recurrent weights are forgotten in the backward (their inputs 'are only gates')",
           old="dzh[t, :, :2].reshape(B, 2 * H) @ U_rz_T + dh_prev_n", new="dh_prev_n", first="dh t=T-2"),
    Mutant("update-derivative-wrong", "the update gate's derivative is taken as (1 - z) instead of z (1 - z)",
           "sigma' = sigma (1 - sigma) is half remembered",
           old="z * (1 - z) if acts is None", new="(1 - z) if acts is None", first="dx t=T-1"),
    Mutant("reset-derivative-wrong", "the reset gate's derivative is taken as (1 - r) instead of r (1 - r)",
           "sigma' = sigma (1 - sigma) is half remembered",
           old="np.multiply(dr, r * (1 - r), out=dzx[t, :, 0])", new="np.multiply(dr, (1 - r), out=dzx[t, :, 0])",
           first="dx t=T-1"),
    Mutant("tanh-derivative-wrong", "the candidate's derivative is taken as (1 - n) instead of (1 - n^2)",
           "tanh' = 1 - tanh^2 written from memory", old="1 - n * n", new="1 - n", first="dx t=T-1"),
    Mutant("z-grad-uses-h_t", "the update gate's gradient uses h_t - n_t instead of h_{t-1} - n_t",
           "h_prev and h_next sit side by side in the cache and get mixed up",
           old="dh_t * (h_prev[t] - n)", new="dh_t * (h[t] - n)", first="dx t=T-1"),
    Mutant("z-grad-sign-flipped", "the update gate's gradient uses n_t - h_{t-1} instead of h_{t-1} - n_t",
           "dh/dz copied from a derivation with the other mix convention (h = (1 - z) h + z n)",
           old="dh_t * (h_prev[t] - n)", new="dh_t * (n - h_prev[t])", first="dx t=T-1"),
    Mutant("dU-from-h_t", "dU is accumulated from h_t instead of h_{t-1}",
           "the outputs h_t are at hand, the states that fed each step are not",
           old="h_in = np.repeat(h_prev[:, :, None], 3, axis=2)", new="h_in = np.repeat(h[:, :, None], 3, axis=2)",
           first="dU gate r"),
    Mutant("h0-ignored-in-dU", "dU's first step uses zeros instead of h0 (only matters when h0 != 0)",
           "the list of previous hidden states is built from the outputs, which lack h0",
           old="h_in = np.repeat(h_prev[:, :, None], 3, axis=2)",
           new="h_in = np.repeat(np.concatenate([np.zeros_like(h0)[None], h[:-1]])[:, :, None], 3, axis=2)",
           first="dU gate r"),
    Mutant("dW-last-step", "dW is computed from the last step only",
           "the per-step gradient is assigned instead of accumulated over time",
           old="dW = split_gates(x_tm.T @ dzx_flat).transpose(1, 0, 2)",
           new="dW = split_gates(x[:, -1].T @ dzx[-1].reshape(B, 3 * H)).transpose(1, 0, 2)", first="dW gate r"),
    Mutant("dU-transposed", "dU is returned transposed per gate (silent: U is square)",
           "h_prev^T dz vs dz^T h_prev: both have the right shape",
           old="h_in[:, :, k].reshape(TB, H).T @ dzh[:, :, k].reshape(TB, H)",
           new="dzh[:, :, k].reshape(TB, H).T @ h_in[:, :, k].reshape(TB, H)", first="dU gate r"),
    Mutant("dbx-batch-mean", "the input bias gradient is averaged over the batch instead of summed",
           "the loss is often a mean over the batch, and the mean is applied to one gradient only",
           old="dbx = dzx.sum(axis=(0, 1))", new="dbx = dzx.sum(axis=(0, 1)) / B", first="dbx gate r"),
    Mutant("dh0-dropped", "dL/dh0 is returned as zero",
           "the gradient flowing out of step 0 is not returned (h0 is 'not a parameter')",
           old="dbh=dbh, dh0=dh_from_next,", new="dbh=dbh, dh0=np.zeros_like(dh_from_next),", first="dh0 "),
    Mutant("dx-without-n-term", "dx_t lacks the candidate's term dzx_n @ W[n]^T",
           "one gate's contribution forgotten when the three are written out by hand",
           old="dx = (dzx_flat @ join_gates(W).T).reshape(T, B, D)",
           new="dx = (dzx_flat[:, :2 * H] @ join_gates(W[:2]).T).reshape(T, B, D)", first="dx t=T-1"),
    Mutant("batch-and-time-mixed", "the input projection reshapes batch-major x as if it were time-major "
           "(only matters when B > 1 and T > 1)", "a reshape without the transpose before it: the shapes still fit",
           old="x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D)", new="x_tm = x.reshape(T * B, D)",
           first="h t=0"),
    Mutant("silent-float32", "the computation runs in float32 whatever the inputs' dtype",
           "a float32 constant or buffer in the middle of the computation downcasts everything", wrap=_in_float32),
]
COMMON += [
    Mutant("gate-order-" + "".join(order), f"the gate blocks are read in the order {','.join(order)} instead of r,z,n",
           "Keras orders the blocks z,r,h, PyTorch and ONNX's own r,z,n, and converters mix them "
           "(openvinotoolkit/openvino#17651)", wrap=_gate_order(order), first="h t=0", family="gate-order")
    for order in itertools.permutations(GATES) if order != GATES
]

AFTER = [
    Mutant("no-r-in-n-backward", "the candidate's recurrent delta is not multiplied by r_t (dzh_n = dzx_n)",
           "r_t * (h U[n] + bh[n]) differentiated as if r_t were outside the recurrent term's path",
           old="np.multiply(da_n, r, out=dzh[t, :, 2])", new="np.multiply(da_n, 1, out=dzh[t, :, 2])",
           first="dh t=T-2"),
    Mutant("bh-n-outside-r", "bh[n] is added outside r_t: n_t = tanh(x W[n] + bx[n] + bh[n] + r_t * h U[n])",
           "the two biases merged into one (bx + bh), as a reset_after=False layout has, then used in a "
           "reset-after step (onnx/keras-onnx#33, tensorflow/tfjs#3620: the reset-after GRU's second bias)",
           old="a_n = xw[t, :, 2] + r * hn[t]", new="a_n = xw[t, :, 2] + r * (hn[t] - bh[2]) + bh[2]", first="h t=0"),
    Mutant("dr-without-bh-n", "the reset gate's gradient uses h_{t-1} U[n] without bh[n]",
           "the cached recurrent product is kept before its bias is added",
           old="dr = da_n * hn[t]", new="dr = da_n * (h_prev[t] @ U[2])", first="dx t=T-1"),
    Mutant("dbh-copied-from-dbx", "dbh is returned as dbx (wrong for n, where r_t scales the recurrent bias)",
           "the two biases are thought to have one gradient, as they do in the reset-before GRU",
           old="dbh = dzh.sum(axis=(0, 1))", new="dbh = dzx.sum(axis=(0, 1))", first="dbh gate n"),
]

BEFORE = [
    Mutant("no-r-in-n-backward", "what n_t passes back to h_{t-1} is not multiplied by r_t",
           "(r_t * h_{t-1}) U[n] differentiated with respect to h_{t-1} as if r_t were not there",
           old="dh_prev_n = d_rh * r", new="dh_prev_n = d_rh", first="dh t=T-2"),
    Mutant("bh-n-inside-r", "bh[n] is scaled by r_t: n_t = tanh(x W[n] + bx[n] + r_t * (h_{t-1} U[n] + bh[n])) "
           "with U[n] applied to r_t * h_{t-1}", "a reset-after bias placement in a reset-before step",
           old="a_n = xw[t, :, 2] + (r * h_t) @ U[2] + bh[2]", new="a_n = xw[t, :, 2] + (r * h_t) @ U[2] + r * bh[2]",
           first="h t=0"),
    Mutant("dU-n-without-r", "dU[n] is accumulated from h_{t-1} instead of r_t * h_{t-1}",
           "U[n]'s input is r_t * h_{t-1}, not the state alone",
           old="h_in[:, :, 2] *= gates[:, :, 0]", new="h_in[:, :, 2] *= 1", first="dU gate n"),
]

MUTANTS = tuple(COMMON + AFTER)
MUTANTS_BEFORE = tuple(COMMON + BEFORE)
