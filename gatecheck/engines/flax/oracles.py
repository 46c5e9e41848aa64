"""Flax NNX oracles: flax.nnx's own recurrent cells, run over time by ``nnx.RNN`` and differentiated
by ``jax.vjp`` over their parameter state (``nnx.split`` / ``nnx.merge``).

flax-lstm      ``nnx.LSTMCell`` (a ``nnx.Linear`` per gate and side)
flax-lstm-opt  ``nnx.OptimizedLSTMCell`` (one fused kernel per side, gates i, f, g, o)
flax-rnn       ``nnx.SimpleCell`` (tanh; relu under the relu option: ``activation_fn``)
flax-gru       ``nnx.GRUCell`` (reset after, without a hidden-side bias: google/flax#5594)

Remaps (``gatecheck.engines.flax.layout``, looked up when called) say where each canonical array
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

Under the structural options (``flax-lstm``, ``flax-lstm-opt``, ``flax-rnn``) each layer is an
``nnx.Bidirectional`` of two probed loops (the backward one run by it with ``reverse=True,
keep_order=True``), merged by a ``merge_fn`` that also keeps the two directions' outputs apart, or one
loop; a second layer runs on the first's output. One probe tensor per layer holds a slot per direction,
so every layer's and direction's per-step states and deltas leave (quantity names as the JAX models':
``jax_oracle.observed``).

No cell has a ``use_bias`` argument, so none offers the no-bias option; ``nnx.RNN(seq_lengths=...)`` runs
the cell through the padding (outputs there not 0, states not held), so none offers a mask. The modules
are built once per (cell, D, H, dtype, options) in a process; ``jax.jit`` compiles one program per (B, T).
"""


import numpy as np

from gatecheck.engines import frameworks, structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.flax import layout as flax_layout
from gatecheck.engines.frameworks import import_flax
from gatecheck.engines.jax import oracles as jax_oracle
from gatecheck.model import options as opts
from gatecheck.reference import layers

_built = {}


class _ProbedActivation:
    """An LSTM cell's activation ``fn`` (tanh, or an activation option's) that adds the current step's probe of
    c_t to its argument on its second call of the step (the output activation, fn(c_t)); the first is the
    candidate gate's."""

    def __init__(self, fn):
        self.fn, self.probe, self.calls = fn, None, 0

    def __call__(self, a):
        self.calls += 1
        return self.fn(a + self.probe if self.calls == 2 else a)


# jax.nn's functions of the activation options (gatecheck.model.options): relu, and for the gates the hard
# sigmoid with the option's exact parameters: jax.nn.hard_sigmoid is relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1).
_JAX_ACTIVATIONS = {"relu": "relu"}
_JAX_GATES = {("hard_sigmoid", 1 / 6, 0.5): "hard_sigmoid"}


class _Recorded:
    """nnx.Bidirectional's ``merge_fn``: keeps both directions' outputs ([h_t, c_t] of each step; under sum,
    mul and ave the merged output does not hold them apart) and merges their h parts as ``merge`` says."""

    def __init__(self, merge, H):
        self.merge, self.H, self.seen = merge, H, None

    def __call__(self, a, b):
        jnp = import_flax()[0].numpy
        self.seen = (a, b)
        return jax_oracle.merge_directions(jnp, self.merge, a[..., :self.H], b[..., :self.H])


def _module(cell_name, D, H, dtype, reverse, merge=None, depth=1, activation=None, gate=None):
    """(the parameter state, the jitted forward pass and vjp) of the probed cells in ``nnx.RNN`` loops:
    one layer, or ``depth`` layers in sequence, each an ``nnx.Bidirectional`` of two when ``merge``;
    ``activation``: an activation option's (gatecheck.model.options), jax.nn's function of that name as
    the cell's ``activation_fn`` (None: the cell's default, tanh); ``gate``: a recurrent activation option's
    (name, alpha, beta), its jax.nn function as the cell's ``gate_fn`` (None: sigmoid); built once per
    arguments."""
    key = (cell_name, D, H, dtype, reverse, merge, depth, activation, gate)
    if key in _built:
        return _built[key]
    jax, nnx = import_flax()
    jnp = jax.numpy
    lstm = "LSTM" in cell_name
    width = (2 if lstm else 1) * H  # a cell's probes and its per-step output: [h_t, c_t] or h_t
    directions = 2 if merge else 1

    class Probed(nnx.Module):
        """The cell, reading [x_t, probes of slot 0, probes of slot 1, ...] and adding its slot's probes
        to h_t (and c_t)."""

        def __init__(self, cell, in_features, slot, output):
            self.cell, self.in_features, self.slot, self.num_feature_axes = cell, in_features, slot, 1
            self.output = output

        def __call__(self, carry, inputs):
            start = self.in_features + self.slot * width
            x, probes = inputs[..., :self.in_features], inputs[..., start:start + width]
            if not lstm:
                h, _ = self.cell(carry, x)
                h = h + probes
                return h, h
            e_h, e_c = probes[..., :H], probes[..., H:]
            self.output.probe, self.output.calls = e_c, 0
            (c, h), _ = self.cell(carry, x)
            calls, self.output.probe = self.output.calls, None
            if calls != 2:
                raise RuntimeError(f"nnx.{cell_name} called its activation_fn {calls} times in a step; the probe "
                                   "of c_t rides on the second call (tanh(c_t)): the cell's step has changed")
            c, h = c + e_c, h + e_h
            return (c, h), jnp.concatenate([h, c], axis=-1)

    def rnn(in_features, slot):
        fn = getattr(jax.nn, _JAX_ACTIVATIONS[activation]) if activation else jnp.tanh
        output = _ProbedActivation(fn) if lstm else None
        chosen = {"activation_fn": output if lstm else fn}
        if gate:
            chosen["gate_fn"] = getattr(jax.nn, _JAX_GATES[gate])
        cell = getattr(nnx, cell_name)(in_features, H, dtype=dtype, param_dtype=dtype, rngs=nnx.Rngs(0), **chosen)
        return nnx.RNN(Probed(cell, in_features, slot, output), return_carry=True, reverse=reverse, keep_order=True,
                       rngs=False)

    stack, features = [], D
    for _ in range(depth):
        stack.append(nnx.Bidirectional(rnn(features, 0), rnn(features, 1), merge_fn=_Recorded(merge, H),
                                       return_carry=True, rngs=False) if merge else rnn(features, 0))
        features = 2 * H if merge in ("concat", "none") else H
    graphdef, params, rest = nnx.split(nnx.List(stack), nnx.Param, ...)

    def run(params, x, carries0, probes):
        """(each (layer, direction)'s per-step [h_t, c_t], final carries, each layer's output y)."""
        seq, per_step, finals, ys = x, [], [], []
        for k, layer in enumerate(nnx.merge(graphdef, params, rest)):
            inputs = jnp.concatenate([seq, probes[k]], axis=-1)
            if merge:
                carry, seq = layer(inputs, initial_carry=tuple(carries0[2 * k:2 * k + 2]))
                per_step += list(layer.merge_fn.seen)
                finals += list(carry)
            else:
                carry, out = layer(inputs, initial_carry=carries0[k])
                seq = out[..., :H]
                per_step.append(out)
                finals.append(carry)
            ys.append(seq)
        return tuple(per_step), tuple(finals), tuple(ys)

    @frameworks.jit
    def fn(params, x, carries0, upstream, gy):
        B, T = x.shape[:2]
        probes = tuple(jnp.zeros((B, T, directions * width), x.dtype) for _ in range(depth))
        out, pull = jax.vjp(run, params, x, tuple(carries0), probes)
        per_step, finals, ys = out
        cotangent = (tuple(jnp.zeros_like(s) for s in per_step),
                     tuple((u, jnp.zeros_like(f[1])) if lstm else jnp.zeros_like(f) for u, f in zip(upstream, finals)),
                     tuple(jnp.zeros_like(y) for y in ys[:-1]) + (gy,))
        return out, pull(cotangent)

    _built[key] = (params, fn)
    return _built[key]


def _paths(tree, prefix=()):
    """The paths of a nested dict's leaves."""
    found = set()
    for k, v in tree.items():
        found |= _paths(v, prefix + (k,)) if isinstance(v, dict) else {prefix + (k,)}
    return found


def _cell_paths(merge, depth):
    """Each (layer, direction)'s cell in the parameter state, layer-major (gatecheck.engines.structured)."""
    sides = ("forward_rnn", "backward_rnn") if merge else (None,)
    return [(k,) + ((side,) if side else ()) + ("cell", "cell") for k in range(depth) for side in sides]


def _at(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def runner(cell_name, remap, back):
    """The runner of a cell oracle: canonical inputs -> the cell's quantities (``remap``, ``back``: the
    flax_layout functions, looked up when called); under structural options every layer's and direction's."""
    lstm = "LSTM" in cell_name
    states = ("c0", "h0") if lstm else ("h0",)  # the cell's carry: (c, h) for the LSTMs

    def run(inputs, options=()):
        jax, nnx = import_flax()
        merge, depth = structured.structure(options)
        names = structured.suffixes(options)
        x = inputs["x"]
        H = inputs["h0"].shape[1]
        params, fn = _module(cell_name, x.shape[2], H, x.dtype.name, "rev" in options, merge, depth,
                             opts.activation(options), opts.recurrent_activation(options))
        parts = [structured.part(inputs, s) for s in names]
        weights = {}
        for path, part in zip(_cell_paths(merge, depth), parts):
            node = weights
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = getattr(flax_layout, remap)(part)
        if _paths(weights) != _paths(nnx.to_pure_dict(params)):  # every parameter set, none left stale
            raise RuntimeError(f"flax_layout.{remap} gives {sorted(_paths(weights))}; the cells have "
                               f"{sorted(_paths(nnx.to_pure_dict(params)))}")
        nnx.replace_by_pure_dict(params, weights)
        carries0 = [tuple(p[k] for k in states) if lstm else p["h0"] for p in parts]
        upstream = [p["gc"] if lstm else None for p in parts]
        (per_step, finals, ys), (d_params, dx, d_carries0, d_probes) = fn(params, x, carries0, upstream, inputs["gh"])
        grads = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(d_params))
        width = (2 if lstm else 1) * H
        out = {"dx": np.asarray(dx)}
        for n, (s, path) in enumerate(zip(names, _cell_paths(merge, depth))):
            layer, slot = divmod(n, 2 if merge else 1)
            seq = np.asarray(per_step[n])
            deltas = np.asarray(d_probes[layer])[..., slot * width:(slot + 1) * width]
            out.update({"h" + s: seq[..., :H], "dh" + s: deltas[..., :H]})
            if lstm:
                out.update({"c" + s: seq[..., H:], "dc" + s: deltas[..., H:], "cT" + s: np.asarray(finals[n][0]),
                            "dc0" + s: np.asarray(d_carries0[n][0]), "dh0" + s: np.asarray(d_carries0[n][1])})
            else:
                out["dh0" + s] = np.asarray(d_carries0[n])
            out.update({k + s: v for k, v in getattr(flax_layout, back)(_at(grads, path)).items()})
        if merge:
            out.update({"y" + (layers.LAYER if k else ""): np.asarray(y) for k, y in enumerate(ys)})
        return out

    return run


# benchmarks/trace_cost.py: the first call of a shape (tracing nnx.RNN and XLA's compile) on one core (measured
# on a loaded machine beside the Keras cells, and scaled by their registry / measured ratio in that run, 2.2-2.4)
_COMPILE_MS = {"LSTMCell": 1180, "OptimizedLSTMCell": 1400, "SimpleCell": 530, "GRUCell": 1450}
_RNN = "in nnx.RNN (reverse=True, keep_order=True under rev), jax.vjp over nnx.split's parameter state"


# Bidirectional (nnx.Bidirectional, every merge as its merge_fn) and stacked (layers in sequence); no mask:
# nnx.RNN(seq_lengths=...) runs the cell through the padding (outputs there not 0, states not held).
STRUCTURES = frozenset({"bi", "bisum", "bimul", "biave", "binone", "L2"})


def _oracle(name, family, cell_name, remap, observes, what, cannot_observe=None, model=None, activations=()):
    """A cell's oracle; ``model``: the JAX model of its family, whose quantity names it returns under the
    structural options it then offers (none without); ``activations``: the activation options it offers
    (its cell's ``activation_fn``)."""
    return Oracle(name, family, "flax", f"nnx.{cell_name} ({what}) with zero probes on h_t" +
                  (" and c_t" if "LSTM" in cell_name else "") + f", {_RNN}", observes,
                  cannot_observe=cannot_observe or {},
                  runner=runner(cell_name, "to_" + remap, "grads_from_" + remap),
                  trace_ms=_COMPILE_MS[cell_name], trace_per_shape=True,
                  options=frozenset({"rev", *activations}) | (STRUCTURES if model else frozenset()),
                  observes_structured=jax_oracle.observed(model) if model else None)


_LSTM = ("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db")


def without_hidden_n_bias(inputs):
    """The inputs with every hidden-side n bias (bh[n], per direction and layer) set to 0: what
    nnx.GRUCell computes (google/flax#5594), the model of its deviation (``Deviation.explained_by``)."""
    out = {k: v.copy() for k, v in inputs.items()}
    n = flax_layout.GRU_CANONICAL.index("n")
    for k in out:
        if k == "bh" or k.startswith("bh_"):
            out[k][n] = 0
    return out


_GATED = ("; activation_fn jax.nn.relu under relu, gate_fn jax.nn.hard_sigmoid under hardsig")

ORACLES = (
    _oracle("flax-lstm", "lstm", "LSTMCell", "lstm", _LSTM,
            "an nnx.Linear per gate and side; b is the hidden side's bias, exactly" + _GATED, model=jax_oracle.LSTM_MODEL,
            activations=("relu", "hardsig")),
    _oracle("flax-lstm-opt", "lstm", "OptimizedLSTMCell", "optimized_lstm", _LSTM,
            "kernels (D, 4H) and (H, 4H), gates i,f,g,o; b is the hidden side's bias, exactly" + _GATED,
            model=jax_oracle.LSTM_MODEL, activations=("relu", "hardsig")),
    _oracle("flax-rnn", "rnn", "SimpleCell", "simple", ("h", "dh", "dx", "dh0", "dW", "dU", "db"),
            "tanh, or relu under the relu option (activation_fn); b is the input side's bias, exactly",
            model=jax_oracle.RNN_MODEL, activations=("relu",)),
    _oracle("flax-gru", "gru", "GRUCell", "gru", ("h", "dh", "dx", "dh0", "dW", "dU", "dbx"),
            "kernels (D, 3H) and (H, 3H), gates r,z,n, reset after; one bias, on the input side: bx + bh for r "
            "and z, bx for n; bh[n] has no parameter (google/flax#5594)" + _GATED,
            {"dbh": "nnx.GRUCell has one bias, on the input side: its gradient is dbx; dbh[r], dbh[z] would be the "
                    "same numbers (bx and bh add up outside the gates) and bh[n] has no parameter (google/flax#5594)"},
            activations=("relu", "hardsig")),
)
