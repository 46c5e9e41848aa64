"""Flax NNX oracles: flax.nnx's own recurrent cells, run over time by ``nnx.RNN`` and differentiated
by ``jax.vjp`` over their parameter state (``nnx.split`` / ``nnx.merge``).

flax-lstm      ``nnx.LSTMCell`` (a ``nnx.Linear`` per gate and side)
flax-lstm-opt  ``nnx.OptimizedLSTMCell`` (one fused kernel per side, gates i, f, g, o)
flax-rnn       ``nnx.SimpleCell`` (tanh)
flax-gru       ``nnx.GRUCell`` (reset after, without a hidden-side bias: google/flax#5594)

Remaps (``gatecheck.oracles.flax_layout``, looked up when called) say where each canonical array
goes; every cell keeps one bias per gate, the LSTM's on the hidden side, the others' on the input
side. The cell is wrapped in a module that reads zero probes beside x_t (the input sequence is
[x, probes], as for the probed Keras cells) and adds them to the step's h_t (and c_t), so that their
gradients are the total deltas dL/dh_t and dL/dc_t. The LSTM cells compute c_t and h_t =
o_t * activation_fn(c_t) in one ``__call__``; the probe of c_t is added to the carry the cell
returns and, through the cell's ``activation_fn`` argument (tanh, its second call of the step:
``g`` first, then the output), to the c_t that h_t is taken from, so that it moves c_t everywhere
c_t is used. The wrapper checks that the activation was called exactly twice per step.

Under the reverse option ``nnx.RNN(reverse=True, keep_order=True)`` processes t = T-1 down to 0 and
returns the outputs indexed by the original t (the probes are flipped with x on the way in, so
their gradients come back by the original t), its final carry the state after x[:, 0].

No cell has a ``use_bias`` argument, so none offers the no-bias option. A module is built once per
(cell, D, H, dtype, reverse) in a process; ``jax.jit`` compiles one program per (B, T) of it.
"""

import functools

import numpy as np

from gatecheck.oracles import flax_layout
from gatecheck.oracles.base import Oracle
from gatecheck.oracles.frameworks import import_flax

_built = {}


class _ProbedTanh:
    """tanh that adds the current step's probe of c_t to its argument on its second call of the step
    (an LSTM cell's output activation, tanh(c_t)); the first is the candidate gate's."""

    def __init__(self):
        self.probe, self.calls = None, 0

    def __call__(self, a):
        jnp = import_flax()[0].numpy
        self.calls += 1
        return jnp.tanh(a + self.probe if self.calls == 2 else a)


def _module(cell_name, D, H, dtype, reverse):
    """(nnx.RNN around the probed cell, the probed tanh of an LSTM cell or None), built once."""
    key = (cell_name, D, H, dtype, reverse)
    if key in _built:
        return _built[key]
    jax, nnx = import_flax()
    jnp = jax.numpy
    lstm = "LSTM" in cell_name
    output = _ProbedTanh() if lstm else None
    extra = {"activation_fn": output} if lstm else {}
    cell = getattr(nnx, cell_name)(D, H, dtype=dtype, param_dtype=dtype, rngs=nnx.Rngs(0), **extra)

    class Probed(nnx.Module):
        """The cell, reading [x_t, probes_t] and adding the probes to h_t (and c_t)."""

        def __init__(self, cell):
            self.cell = cell
            self.num_feature_axes = 1

        def __call__(self, carry, inputs):
            x, probes = inputs[..., :D], inputs[..., D:]
            if not lstm:
                h, _ = self.cell(carry, x)
                h = h + probes
                return h, h
            e_h, e_c = probes[..., :H], probes[..., H:]
            output.probe, output.calls = e_c, 0
            (c, h), _ = self.cell(carry, x)
            calls, output.probe = output.calls, None
            if calls != 2:
                raise RuntimeError(f"nnx.{cell_name} called its activation_fn {calls} times in a step; the probe "
                                   "of c_t rides on the second call (tanh(c_t)): the cell's step has changed")
            c, h = c + e_c, h + e_h
            return (c, h), jnp.concatenate([h, c], axis=-1)

    rnn = nnx.RNN(Probed(cell), return_carry=True, reverse=reverse, keep_order=True, rngs=False)
    graphdef, params, rest = nnx.split(rnn, nnx.Param, ...)

    @jax.jit
    def fn(params, x, carry0, gy, upstream):
        B, T = x.shape[:2]
        probes = jnp.zeros((B, T, (2 if lstm else 1) * H), x.dtype)

        def run(params, x, carry0, probes):
            return nnx.merge(graphdef, params, rest)(jnp.concatenate([x, probes], axis=-1), initial_carry=carry0)

        out, pull = jax.vjp(run, params, x, carry0, probes)
        carry, ys = out
        cotangent = ((upstream, jnp.zeros_like(carry[1])) if lstm else jnp.zeros_like(carry),
                     jnp.concatenate([gy, jnp.zeros_like(gy)], axis=-1) if lstm else gy)
        return out, pull(cotangent)

    _built[key] = (params, fn)
    return _built[key]


def _paths(tree, prefix=()):
    """The paths of a nested dict's leaves."""
    found = set()
    for k, v in tree.items():
        found |= _paths(v, prefix + (k,)) if isinstance(v, dict) else {prefix + (k,)}
    return found


def runner(cell_name, remap, back):
    """The runner of a cell oracle: canonical inputs -> the cell's quantities (``remap``, ``back``: the
    flax_layout functions, looked up when called)."""
    lstm = "LSTM" in cell_name

    def run(inputs, options=()):
        jax, nnx = import_flax()
        x = inputs["x"]
        H = inputs["h0"].shape[1]
        params, fn = _module(cell_name, x.shape[2], H, x.dtype.name, "rev" in options)
        weights = {"cell": {"cell": getattr(flax_layout, remap)(inputs)}}
        if _paths(weights) != _paths(nnx.to_pure_dict(params)):  # every parameter set, none left stale
            raise RuntimeError(f"flax_layout.{remap} gives {sorted(_paths(weights))}; nnx.{cell_name} has "
                               f"{sorted(_paths(nnx.to_pure_dict(params)))}")
        nnx.replace_by_pure_dict(params, weights)
        carry0 = (inputs["c0"], inputs["h0"]) if lstm else inputs["h0"]
        upstream = inputs["gc"] if lstm else None
        (carry, ys), (d_params, dx, d_carry0, d_probes) = fn(params, x, carry0, inputs["gh"], upstream)
        ys, d_probes = np.asarray(ys), np.asarray(d_probes)
        out = dict(h=ys[..., :H], dh=d_probes[..., :H], dx=np.asarray(dx))
        if lstm:
            out.update(c=ys[..., H:], dc=d_probes[..., H:], dc0=np.asarray(d_carry0[0]), dh0=np.asarray(d_carry0[1]))
        else:
            out["dh0"] = np.asarray(d_carry0)
        grads = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(d_params))["cell"]["cell"]
        out.update(getattr(flax_layout, back)(grads))
        return out

    return run


# benchmarks/trace_cost.py: the first call of a shape (tracing nnx.RNN and XLA's compile) on one core
_COMPILE_MS = {"LSTMCell": 900, "OptimizedLSTMCell": 700, "SimpleCell": 500, "GRUCell": 600}
_RNN = "in nnx.RNN (reverse=True, keep_order=True under rev), jax.vjp over nnx.split's parameter state"


def _oracle(name, family, cell_name, remap, observes, what, cannot_observe=None):
    return Oracle(name, family, "flax", f"nnx.{cell_name} ({what}) with zero probes on h_t" +
                  (" and c_t" if "LSTM" in cell_name else "") + f", {_RNN}", observes,
                  cannot_observe=cannot_observe or {},
                  runner=runner(cell_name, "to_" + remap, "grads_from_" + remap),
                  trace_ms=_COMPILE_MS[cell_name], trace_per_shape=True, options=frozenset({"rev"}))


_LSTM = ("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db")


@functools.lru_cache(maxsize=None)
def missing_hidden_bias_shows(case):
    """Whether nnx.GRUCell's missing b_hn (google/flax#5594) shows on a case of flax-gru: the reference
    with bh[n] = 0 (the cell's model: tests/test_jax.py) judged against the reference as the battery
    judges the cell. Where r_t stays near 0 or z_t near 1 (saturated gates, one unit) bh[n] may move
    nothing beyond the allowance, and the case matches."""
    from gatecheck.battery import family_of, under, view
    from gatecheck.compare import compare, contract_value, undefined_entries

    oracle = next(o for o in ORACLES if o.family == "gru")
    family = family_of(oracle)
    record = under(case, family)
    inputs, truth, yard = view(case, family)
    quantities = oracle.observing(record)
    zeroed = {k: v.copy() for k, v in inputs.items()}
    zeroed["bh"][flax_layout.GRU_CANONICAL.index("n")] = 0
    actual, expected = ({q: contract_value(record.run(**x), q, record.quantities) for q in quantities}
                        for x in ({k: v.copy() for k, v in inputs.items()}, zeroed))
    report = compare(case.id, actual, expected, truth, yard, quantities, case.np_dtype, case.B, case.T, record,
                     undefined=undefined_entries(record, inputs, quantities))
    return not report.ok

ORACLES = (
    _oracle("flax-lstm", "lstm", "LSTMCell", "lstm", _LSTM,
            "an nnx.Linear per gate and side; b is the hidden side's bias, exactly"),
    _oracle("flax-lstm-opt", "lstm", "OptimizedLSTMCell", "optimized_lstm", _LSTM,
            "kernels (D, 4H) and (H, 4H), gates i,f,g,o; b is the hidden side's bias, exactly"),
    _oracle("flax-rnn", "rnn", "SimpleCell", "simple", ("h", "dh", "dx", "dh0", "dW", "dU", "db"),
            "tanh; b is the input side's bias, exactly"),
    _oracle("flax-gru", "gru", "GRUCell", "gru", ("h", "dh", "dx", "dh0", "dW", "dU", "dbx"),
            "kernels (D, 3H) and (H, 3H), gates r,z,n, reset after; one bias, on the input side: bx + bh for r "
            "and z, bx for n; bh[n] has no parameter (google/flax#5594)",
            {"dbh": "nnx.GRUCell has one bias, on the input side: its gradient is dbx; dbh[r], dbh[z] would be the "
                    "same numbers (bx and bh add up outside the gates) and bh[n] has no parameter (google/flax#5594)"}),
)
