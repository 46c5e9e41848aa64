"""MLX oracles: ``mlx.nn``'s recurrent layers on the CPU (the Linux wheel, ``mlx[cpu]``), differentiated by
``mlx.core.value_and_grad`` with respect to the layer's parameters, x and the initial states.

mlx-lstm-layer, mlx-gru-layer, mlx-rnn-layer
    ``mlx.nn.LSTM`` / ``GRU`` / ``RNN`` over the whole sequence: x (B, T, D), ``hidden=h0`` (and
    ``cell=c0``). The LSTM returns every h_t and every c_t; the per-step deltas stay inside its Python
    loop (its ``__call__``).
mlx-lstm-step, mlx-gru-step, mlx-rnn-step
    The same layer called on one step at a time (x[:, t:t+1], the previous step's states as
    ``hidden`` / ``cell``) with a zero probe added to each h_t it returns (and c_t), so that the probes'
    gradients are the total deltas dL/dh_t. MLX has no cell classes: a one-step call of the layer is
    its cell. The LSTM's c_t probe reaches c_t only where the next step reads it: h_t = o_t * tanh(c_t)
    is taken inside the call, before the probe, so its gradient lacks the path through h_t and is not
    dL/dc_t (``cannot_observe``).

MLX has no bidirectional, stacked, reverse or masked layer: the oracles offer no bias (``bias=False``)
only. The LSTM's and GRU's oracles decline float64 (``SIGMOID_IN_FLOAT32``). The remaps (``gatecheck.engines.mlx.layout``) are looked up when called.
"""

from typing import NamedTuple

import numpy as np

from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_mlx
from gatecheck.engines.mlx import layout as mlx_layout


class Model(NamedTuple):
    """One family's model in MLX."""

    layer: str  # the mlx.nn class
    states: tuple  # initial-state inputs: ("h0", "c0") for the LSTM
    remap: str  # mlx_layout's canonical -> MLX function (looked up when called)
    back: str  # mlx_layout's gradients -> canonical function
    params: tuple  # the parameter gradients it returns (with a bias)
    biases: tuple  # those among them that no bias removes


LSTM = Model("LSTM", ("h0", "c0"), "to_mlx_lstm", "grads_from_mlx_lstm", ("dW", "dU", "db"), ("db",))
GRU = Model("GRU", ("h0",), "to_mlx_gru", "grads_from_mlx_gru", ("dW", "dU", "dbx", "dbh"), ("dbx", "dbh"))
RNN = Model("RNN", ("h0",), "to_mlx_rnn", "grads_from_mlx_rnn", ("dW", "dU", "db"), ("db",))


def _array(mx, value):
    return mx.array(np.ascontiguousarray(value), dtype=getattr(mx, value.dtype.name))


def _layer(nn, model, D, H, options, weights):
    """The layer with the case's weights; every parameter set, none left stale, each of the case's shape."""
    layer = getattr(nn, model.layer)(D, H, bias="nobias" not in options)
    have = {k: v.shape for k, v in layer.parameters().items()}
    if set(have) != set(weights) or any(tuple(have[k]) != weights[k].shape for k in weights):
        raise RuntimeError(f"mlx.nn.{model.layer} has parameters {have}, the remap gives "
                           f"{ {k: v.shape for k, v in weights.items()} }")
    return layer


def runner(model, stepwise):
    """The runner of a layer oracle (``stepwise``: one call per step, probes on the states it returns)."""
    lstm = "c0" in model.states

    def run(inputs, options=()):
        mx, nn = import_mlx()
        x = inputs["x"]
        B, T, D = x.shape
        H = inputs["h0"].shape[1]
        weights = getattr(mlx_layout, model.remap)(inputs)
        layer = _layer(nn, model, D, H, options, weights)
        gh = _array(mx, inputs["gh"])
        gc = _array(mx, inputs["gc"]) if lstm else None

        def call(params, x_part, states):
            layer.update(params)
            if lstm:
                return layer(x_part, hidden=states[0], cell=states[1])
            return (layer(x_part, hidden=states[0]),)

        def forward(params, tx, states, probes):
            if not stepwise:
                seqs = call(params, tx, states)
            else:
                per_step, current = [], states
                for t in range(T):
                    out = call(params, tx[:, t:t + 1], current)
                    current = tuple(o[:, 0] + p[:, t] for o, p in zip(out, probes))
                    per_step.append(current)
                seqs = tuple(mx.stack([s[k] for s in per_step], axis=1) for k in range(len(states)))
            loss = (gh * seqs[0]).sum()
            if lstm:
                loss = loss + (gc * seqs[1][:, -1]).sum()
            return loss, seqs

        params = {k: _array(mx, v) for k, v in weights.items()}
        tx = _array(mx, x)
        states = tuple(_array(mx, inputs[k]) for k in model.states)
        probes = tuple(mx.zeros((B, T, H), dtype=tx.dtype) for _ in model.states)
        (_, seqs), (d_params, dx, d_states, d_probes) = mx.value_and_grad(forward, argnums=(0, 1, 2, 3))(
            params, tx, states, probes)
        mx.eval(seqs, d_params, dx, d_states, d_probes)
        out = {"h": np.array(seqs[0]), "dx": np.array(dx)}
        out.update({"d" + k: np.array(g) for k, g in zip(model.states, d_states)})
        if lstm:
            out.update(c=np.array(seqs[1]), cT=np.array(seqs[1][:, -1]))
        if stepwise:
            out["dh"] = np.array(d_probes[0])
        out.update(getattr(mlx_layout, model.back)({k: np.array(v) for k, v in d_params.items()}))
        return out

    return run


_LOOP = ("dL/dh_t includes the path into step t+1, inside the layer's Python loop (its __call__); only the upstream "
         "part is an input")
_C_PROBE = ("the probe on c_t is added after the call that computed h_t = o_t * tanh(c_t) from it, so its gradient "
            "lacks the path through h_t: MLX has no cell to put it inside, and a one-step call returns c_t after h_t "
            "is taken")


# mlx 0.32's CPU exp is a float32 polynomial for every dtype (mlx/backend/cpu/simd/math.h converts to Simd<float>):
# on float64 it and sigmoid, built on it, are accurate to about 2e-7 relatively, not 1e-16 (tanh is exact).
SIGMOID_IN_FLOAT32 = ("mlx's CPU exp, and sigmoid built on it, compute float64 at float32 accuracy (relative error "
                      "about 2e-7; ml-explore/mlx#3047, open; #4158): the LSTM's and GRU's gates are float32 numbers "
                      "in a float64 model (tanh is exact, so the RNN runs both dtypes)")


def _sigmoid_in_float32(options, dtype):
    return SIGMOID_IN_FLOAT32 if dtype == "f64" else None


def _oracle(name, family, model, stepwise, what):
    lstm = "c0" in model.states
    per_step = ("h", "c") if lstm else ("h",)
    observes = per_step + (("dh",) if stepwise else ()) + (("cT",) if lstm else ()) + ("dx",) + tuple(
        "d" + k for k in model.states) + model.params
    cannot = {"dh": _LOOP} if not stepwise else {}
    if lstm:
        cannot["dc"] = _C_PROBE if stepwise else _LOOP.replace("dh_t", "dc_t").replace("step t+1", "step t+1 and h_t")
    how = "called one step at a time, zero probes added to the h_t it returns" if stepwise else "whole sequence"
    return Oracle(name, family, "mlx", f"mlx.nn.{model.layer} {how} ({what}), mlx.core.value_and_grad on the CPU",
                  observes, cannot_observe=cannot, runner=runner(model, stepwise), options=frozenset({"nobias"}),
                  declines_dtype=_sigmoid_in_float32 if model.layer in ("LSTM", "GRU") else None)


_LSTM_WHAT = "Wx, Wh, bias; gates i, f, g, o; b exactly"
_GRU_WHAT = "reset after; gates r, z, n; b = bx + bh for r and z, bx for n, bhn = bh[n]"
_RNN_WHAT = "tanh; Wxh, Whh, bias"

ORACLES = (
    _oracle("mlx-lstm-layer", "lstm", LSTM, False, _LSTM_WHAT),
    _oracle("mlx-lstm-step", "lstm", LSTM, True, _LSTM_WHAT),
    _oracle("mlx-gru-layer", "gru", GRU, False, _GRU_WHAT),
    _oracle("mlx-gru-step", "gru", GRU, True, _GRU_WHAT),
    _oracle("mlx-rnn-layer", "rnn", RNN, False, _RNN_WHAT),
    _oracle("mlx-rnn-step", "rnn", RNN, True, _RNN_WHAT),
)
