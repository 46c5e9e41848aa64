"""The LSTM's mutant catalogue: realistic LSTM bugs, as data (see ``gatecheck.core.mutants``).
Textual mutants edit ``gatecheck/reference/lstm.py``."""

import itertools

import numpy as np

from gatecheck.core.mutants import Mutant
from gatecheck.reference.lstm import GATES

# --- wrappers ------------------------------------------------------------------------


def _gate_order(order):
    """An implementation that reads its gate blocks as ``order`` (consistently: forward,
    backward, and the gradients it writes back)."""
    idx = [GATES.index(name) for name in order]
    inv = list(np.argsort(idx))

    def wrap(run):
        def mutated(**kw):
            out = run(**dict(kw, W=kw["W"][inv], U=kw["U"][inv], b=kw["b"][inv]))
            return dict(out, dW=out["dW"][idx], dU=out["dU"][idx], db=out["db"][idx])
        return mutated
    return wrap


def _weights_swapped(run):
    """x_t meets U and h_{t-1} meets W (only computable when D == H)."""
    def mutated(**kw):
        out = run(**dict(kw, W=kw["U"], U=kw["W"]))
        return dict(out, dW=out["dU"], dU=out["dW"])
    return mutated


def _forget_bias(change):
    def wrap(run):
        def mutated(**kw):
            b = kw["b"].copy()
            b[1] = change(b[1])
            return run(**dict(kw, b=b))
        return mutated
    return wrap


def _in_float32(run):
    def mutated(**kw):
        out = run(**{k: v.astype(np.float32) for k, v in kw.items()})
        return {k: np.asarray(v).astype(kw["x"].dtype) for k, v in out.items()}
    return mutated


def _clipped(run, max_norm=5.0):
    """Gradient clipping by global norm left in: what a training loop does, not the math."""
    def mutated(**kw):
        out = run(**kw)
        norm = np.sqrt(sum(np.sum(out[k] ** 2) for k in ("dW", "dU", "db")))
        if norm > max_norm:
            out = dict(out, **{k: out[k] * (max_norm / norm) for k in ("dW", "dU", "db")})
        return out
    return mutated


def _perturbed_gate(run, rel=1e-5):
    """The g gate's input weights off by a relative 1e-5 (a stale or rounded copy)."""
    def mutated(**kw):
        W = kw["W"].copy()
        W[2] *= 1 + rel
        return run(**dict(kw, W=W))
    return mutated


# --- the catalogue ---------------------------------------------------------------------

MUTANTS = [
    Mutant(
        "swapped-input-forget",
        "the input and forget gates are read from each other's blocks in the forward step",
        "gate order conventions differ between papers and frameworks (i,f,g,o vs f,i,g,o)",
        old="i, f, g = gates[:, 0], gates[:, 1], gates[:, 2]",
        new="f, i, g = gates[:, 0], gates[:, 1], gates[:, 2]",
        first="c t=0",
    ),
    Mutant(
        "no-recurrent-dh",
        "dh_t lacks the recurrent term dz_{t+1} @ U^T",
        "only the local loss gradient is remembered when writing dh_t",
        old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
        new="dh_t = np.add(gh[t], 0, out=dh[t])",
        first="dh t=T-2",
    ),
    Mutant(
        "dW-last-step",
        "dW is computed from the last step only",
        "the per-step gradient is assigned instead of accumulated over time",
        old="dW = split_gates(x_tm.T @ dz_flat).transpose(1, 0, 2)",
        new="dW = split_gates(x[:, -1].T @ dz[-1].reshape(B, 4 * H)).transpose(1, 0, 2)",
        first="dW gate i",
    ),
    Mutant(
        "dc-without-forget",
        "dc_t is passed back to step t-1 without the factor f_t",
        "the carry path c_{t-1} -> c_t is thought of as an identity, as in a plain sum",
        old="dc_from_next = dc_t * f\n",
        new="dc_from_next = dc_t.copy()\n",
        first="dc t=T-2",
    ),
    Mutant(
        "f-grad-uses-c_t",
        "the forget gate's gradient uses c_t instead of c_{t-1}",
        "c_prev and c_next sit side by side in the cache and get mixed up",
        old="np.multiply(dc_t, c_prev[t] * f * (1 - f), out=dz[t, :, 1])",
        new="np.multiply(dc_t, c[t] * f * (1 - f), out=dz[t, :, 1])",
        first="dx t=T-1",
    ),
    Mutant(
        "sigmoid-derivative-wrong",
        "the input gate's derivative is taken as (1 - i) instead of i (1 - i)",
        "sigma' = sigma (1 - sigma) is half remembered",
        old="np.multiply(dc_t, g * i * (1 - i), out=dz[t, :, 0])",
        new="np.multiply(dc_t, g * (1 - i), out=dz[t, :, 0])",
        first="dx t=T-1",
    ),
    Mutant(
        "tanh-derivative-of-g-wrong",
        "the g gate's derivative is taken as (1 - g) instead of (1 - g^2)",
        "tanh' = 1 - tanh^2 written from memory",
        old="np.multiply(dc_t, i * (1 - g * g), out=dz[t, :, 2])",
        new="np.multiply(dc_t, i * (1 - g), out=dz[t, :, 2])",
        first="dx t=T-1",
    ),
    Mutant(
        "output-tanh-derivative-wrong",
        "dc_t takes dh_t through o_t * (1 - tanh c_t) instead of o_t * (1 - tanh^2 c_t)",
        "the same half-remembered tanh', on the output path",
        old="o * (1 - tanh_c * tanh_c) if output == \"tanh\" else o",
        new="o * (1 - tanh_c) if output == \"tanh\" else o",
        first="dc t=T-1",
    ),
    Mutant(
        "db-batch-mean",
        "the bias gradient is averaged over the batch instead of summed",
        "the loss is often a mean over the batch, and the mean is applied to one gradient only",
        old="db = dz.sum(axis=(0, 1))",
        new="db = dz.sum(axis=(0, 1)) / B",
        first="db gate i",
    ),
    Mutant(
        "dh0-dropped",
        "dL/dh0 is returned as zero",
        "the gradient flowing out of step 0 is not returned (h0 is 'not a parameter')",
        old="dh0=dh_from_next, dc0=dc_from_next,",
        new="dh0=np.zeros_like(dh_from_next), dc0=dc_from_next,",
        first="dh0 ",
    ),
    Mutant(
        "dc0-dropped",
        "dL/dc0 is returned as zero",
        "the same, for the initial cell state",
        old="dh0=dh_from_next, dc0=dc_from_next,",
        new="dh0=dh_from_next, dc0=np.zeros_like(dc_from_next),",
        first="dc0 ",
    ),
    Mutant(
        "last-step-upstream-ignored",
        "the upstream gradient of h at the last step is ignored",
        "the backward loop starts from the recurrent delta only, as if h_T fed nothing",
        old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
        new="dh_t = np.add(gh[t] * (t < T - 1), dh_from_next, out=dh[t])",
        first="dh t=T-1",
    ),
    Mutant(
        "c_T-upstream-ignored",
        "the upstream gradient of C_T is ignored (only matters when gc != 0)",
        "a loss on h alone is assumed; the final cell state's gradient is never passed in",
        old="dc_from_next = gc\n",
        new="dc_from_next = np.zeros_like(gc)\n",
        first="dc t=T-1",
    ),
    Mutant(
        "h0-ignored-in-dU",
        "dU's first step uses zeros instead of h0 (only matters when h0 != 0)",
        "the list of previous hidden states is built from the outputs, which lack h0",
        old="h_prev = np.concatenate([h0[None], h[:-1]])",
        new="h_prev = np.concatenate([np.zeros_like(h0)[None], h[:-1]])",
        first="dU gate i",
    ),
    Mutant(
        "batch-and-time-mixed",
        "the input projection reshapes batch-major x as if it were time-major (only matters "
        "when B > 1 and T > 1)",
        "a reshape without the transpose before it: the shapes still fit",
        old="x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(T * B, D)",
        new="x_tm = x.reshape(T * B, D)",
        first="c t=0",
    ),
    Mutant(
        "truncated-bptt-20",
        "deltas stop flowing back after 20 steps (only matters when T > 20)",
        "truncated backpropagation, a training device, left in a gradient meant to be exact",
        old="dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
        new="dh_t = np.add(gh[t], dh_from_next if T - t <= 20 else 0, out=dh[t])",
        first="dh t=T-21",
        needs="T>20",
    ),
    Mutant(
        "no-output-tanh",
        "h_t = o_t * c_t: the output tanh is missing (forward and backward consistently)",
        "some tutorials' 'LSTM' has no output nonlinearity",
        old="def run(x, h0, c0, W, U, b, gh, gc, *, output=\"tanh\", ulps=0,",
        new="def run(x, h0, c0, W, U, b, gh, gc, *, output=\"identity\", ulps=0,",
        first="h t=0",
    ),
    Mutant(
        "dU-transposed",
        "dU is returned transposed per gate (silent when, as always, U is square)",
        "h_prev^T dz vs dz^T h_prev: both have the right shape",
        old="dU = split_gates(h_prev.reshape(T * B, P).T @ dz_flat).transpose(1, 0, 2)",
        new="dU = split_gates(h_prev.reshape(T * B, P).T @ dz_flat).transpose(1, 2, 0)",
        first="dU gate i",
    ),
    Mutant(
        "forget-bias-missing",
        "the forget gate's bias is not added",
        "the bias of one gate is lost when the four are written out by hand",
        wrap=_forget_bias(lambda bf: np.zeros_like(bf)),
        first="c t=0",
    ),
    Mutant(
        "forget-bias-doubled",
        "the forget gate's bias is added twice",
        "b_ih + b_hh of a PyTorch checkpoint added to a single-bias layout that already has both",
        wrap=_forget_bias(lambda bf: 2 * bf),
        first="c t=0",
    ),
    Mutant(
        "forget-bias-plus-one",
        "1 is added to the forget gate's bias in the forward pass",
        "Keras' unit_forget_bias (an initialiser) mistaken for a term of the step",
        wrap=_forget_bias(lambda bf: bf + 1),
        first="c t=0",
    ),
    Mutant(
        "weights-swapped",
        "x_t meets the recurrent weights and h_{t-1} the input weights (the concatenation "
        "order [h; x] vs [x; h]); with D != H the shapes fail, with D == H it is silent",
        "separate Wx and Wh matrices, or one fused matrix, read in the other order",
        wrap=_weights_swapped,
        needs="D==H",
    ),
    Mutant(
        "silent-float32",
        "the computation runs in float32 whatever the inputs' dtype",
        "a float32 constant or buffer in the middle of the computation downcasts everything",
        wrap=_in_float32,
    ),
    Mutant(
        "gradient-clipping",
        "the parameter gradients are clipped to global norm 5",
        "clip_grad_norm from the training loop left in the gradient computation",
        wrap=_clipped,
    ),
    Mutant(
        "g-weights-1e-5-off",
        "the g gate's input weights are off by a relative 1e-5",
        "a stale or rounded copy of one weight block",
        wrap=_perturbed_gate,
    ),
]
MUTANTS += [
    Mutant(
        "gate-order-" + "".join(order),
        f"the gate blocks are read in the order {','.join(order)} instead of i,f,g,o",
        "every framework, paper and course picks its own gate order",
        wrap=_gate_order(order),
        first="c t=0",
        family="gate-order",
    )
    for order in itertools.permutations(GATES)
    if order != GATES
]
