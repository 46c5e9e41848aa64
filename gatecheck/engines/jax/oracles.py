"""JAX oracles: each family's model written in JAX, run over time by ``jax.lax.scan`` and
differentiated by ``jax.vjp``.

jax-lstm, jax-lstm-head, jax-rnn, jax-gru, jax-gru-before

Each step is a pure function of the fused arrays JAX code commonly keeps (``gatecheck.engines.
jax_layout``: the LSTM's one kernel (D + H, 4H) on concat([x_t, h_{t-1}]) with its gate blocks
i, g, f, o; the RNN's (D + H, H); the GRU's kernel (D, 3H) and recurrent_kernel (H, 3H) with r, z,
n and a bias on each side), its gates cut apart by ``jnp.split``. ``jax.lax.scan`` runs it over
time; under the reverse option with ``reverse=True``, which processes t = T-1 down to 0 and
returns the per-step outputs indexed by the original t, its final carry the state after x[:, 0].

One ``jax.vjp`` of the whole forward pass gives every gradient: with respect to the parameters, x,
the initial states and zero probes (T, B, H) added inside the step to every h_t and, for the LSTM,
to c_t before h_t = o_t * tanh(c_t) is taken from it (as the probed Keras cells do), so that the
probes' gradients are the total deltas dL/dh_t and dL/dc_t. The cotangents are the loss's: gh for
the output sequence, gc for C_T; the head's loss is the cross-entropy itself (cotangent 1).

Structural options (``gatecheck.model.options``) are composed here, as JAX code composes them: a
bidirectional layer is a forward and a reverse scan, each with its own arrays, initial states and
probes, their outputs merged (concat, sum, mul, ave, or the pair stacked on the last axis); a second
layer scans the first's output. Under a mask a masked step keeps the state (``jnp.where`` on the
mask) and outputs 0 (len, maskz) or the previous step's output (mask; 0 before the first valid
step). Every layer's and direction's per-step states and deltas leave, as the probed Keras cells'.

XLA compiles static shapes: ``jax.jit`` compiles one program per (B, T, D, H, dtype, options) and
reuses it within the process (``trace_ms`` is that compile, once per shape: ``trace_per_shape``).
"""

import functools
from typing import Callable, NamedTuple

import numpy as np

from gatecheck.engines import frameworks, structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_jax
from gatecheck.engines.jax import layout as jax_layout
from gatecheck.model import options as opts
from gatecheck.reference import layers

# --- the steps: (params, state, x_t, probes) -> the new state, probes added --------------------------------


def lstm_step(params, state, x_t, probes):
    jax = import_jax()
    jnp = jax.numpy
    (h, c), (e_h, e_c) = state, probes
    z = jnp.concatenate([x_t, h], axis=-1) @ params["kernel"]
    if "bias" in params:
        z = z + params["bias"]
    i, g, f, o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g) + e_c  # probed before h_t is taken from c_t
    h = jax.nn.sigmoid(o) * jnp.tanh(c) + e_h
    return h, c


def rnn_step(params, state, x_t, probes):
    jnp = import_jax().numpy
    z = jnp.concatenate([x_t, state[0]], axis=-1) @ params["kernel"]
    if "bias" in params:
        z = z + params["bias"]
    return (jnp.tanh(z) + probes[0],)


def gru_step(params, state, x_t, probes, reset):
    jax = import_jax()
    jnp = jax.numpy
    h, U = state[0], params["recurrent_kernel"]
    biased = "input_bias" in params
    a = x_t @ params["kernel"] + (params["input_bias"] if biased else 0)
    x_r, x_z, x_n = jnp.split(a, 3, axis=-1)
    if reset == "after":
        u = h @ U + (params["recurrent_bias"] if biased else 0)
        h_r, h_z, h_n = jnp.split(u, 3, axis=-1)
    else:  # reset before: r_t multiplies h_{t-1} before U[n]; the n block's bias sits outside r_t
        H = h.shape[-1]
        u = h @ U[:, :2 * H] + (params["recurrent_bias"][:2 * H] if biased else 0)
        h_r, h_z = jnp.split(u, 2, axis=-1)
    r, z = jax.nn.sigmoid(x_r + h_r), jax.nn.sigmoid(x_z + h_z)
    if reset == "before":
        h_n = (r * h) @ U[:, 2 * H:] + (params["recurrent_bias"][2 * H:] if biased else 0)
        n = jnp.tanh(x_n + h_n)
    else:
        n = jnp.tanh(x_n + r * h_n)
    return ((1 - z) * n + z * h + probes[0],)


class Model(NamedTuple):
    """One family's model in JAX."""

    states: tuple  # initial-state inputs in the carry's order: ("h0", "c0")
    step: Callable  # (params, state, x_t, probes) -> the new state
    remap: str  # the jax_layout function canonical -> JAX arrays (looked up when called: a test may replace it)
    back: str  # the jax_layout function of the arrays' gradients -> canonical, (grads, D)
    finals: dict  # quantity -> (index in the carry, its upstream input): {"cT": (1, "gc")}
    observes: tuple  # the timeless quantities of one layer and direction: dh0, dW, ...
    biases: tuple  # the bias gradients among them (none under no bias)


LSTM_MODEL = Model(("h0", "c0"), lstm_step, "to_jax_lstm", "grads_from_jax_lstm", {"cT": (1, "gc")},
              ("dh0", "dc0", "dW", "dU", "db"), ("db",))
RNN_MODEL = Model(("h0",), rnn_step, "to_jax_rnn", "grads_from_jax_rnn", {}, ("dh0", "dW", "dU", "db"), ("db",))
GRU_MODELS = {reset: Model(("h0",), functools.partial(gru_step, reset=reset), "to_jax_gru", "grads_from_jax_gru", {},
                     ("dh0", "dW", "dU", "dbx", "dbh"), ("dbx", "dbh")) for reset in ("after", "before")}


# --- the forward pass and its vjp ---------------------------------------------------------------------------


def merge_directions(jnp, merge, a, b):
    """Two directions' outputs merged as ``merge`` says (Keras' and Flax's bidirectional merges), in jnp."""
    if merge in ("concat", "none"):  # none: Keras' pair of outputs, stacked on the last axis
        return jnp.concatenate([a, b], axis=-1)
    return {"sum": a + b, "mul": a * b, "ave": (a + b) / 2}[merge]


def forward(model, merge, depth, reverse, masked_output):
    """The forward pass of a structure of ``model``'s layers: (params, x, initial states, probes, mask) ->
    (per-step states, final states, outputs, merged outputs), per (layer, direction) layer-major (the
    merged output per layer), every sequence batch-major."""
    jax = import_jax()
    jnp, lax = jax.numpy, jax.lax
    directions = 2 if merge else 1

    def body(params):
        def step(carry, xs):
            state, previous = carry
            x_t, probes_t, keep = xs
            new = model.step(params, state, x_t, probes_t)
            if keep is None:
                return (new, new[0]), (new, new[0])
            keep = keep[:, None]
            new = tuple(jnp.where(keep, n, s) for n, s in zip(new, state))  # a masked step keeps the state
            out = jnp.where(keep, new[0], previous if masked_output == "carry" else jnp.zeros_like(new[0]))
            return (new, out), (new, out)

        return step

    def run(params, x, states0, probes, mask):
        seq = jnp.swapaxes(x, 0, 1)
        keep = None if mask is None else jnp.swapaxes(mask, 0, 1) > 0.5
        per_step, finals, outputs, merged = [], [], [], []
        for k in range(depth):
            outs = []
            for d in range(directions):
                n = k * directions + d
                init = (tuple(states0[n]), jnp.zeros_like(states0[n][0]))
                (final, _), (states, out) = lax.scan(body(params[n]), init, (seq, probes[n], keep),
                                                     reverse=reverse or bool(d))
                per_step.append(tuple(jnp.swapaxes(s, 0, 1) for s in states))
                finals.append(final)
                outs.append(out)
            seq = merge_directions(jnp, merge, *outs) if merge else outs[0]
            outputs += [jnp.swapaxes(o, 0, 1) for o in outs]
            merged.append(jnp.swapaxes(seq, 0, 1))
        return tuple(per_step), tuple(finals), tuple(outputs), tuple(merged)

    return run


_compiled = {}


def compiled(model, merge=None, depth=1, reverse=False, masked_output=None):
    """The jitted (params, x, initial states, final states' upstream, gy, mask) -> (forward outputs,
    (d params, dx, d initial states, d probes)), one per model and structure; XLA compiles it once per
    shape and dtype."""
    key = (model.step, merge, depth, reverse, masked_output)
    if key not in _compiled:
        _compiled[key] = _jitted(model, merge, depth, reverse, masked_output)
    return _compiled[key]


def _jitted(model, merge, depth, reverse, masked_output):
    jax = import_jax()
    jnp = jax.numpy
    run = forward(model, merge, depth, reverse, masked_output)

    @frameworks.jit
    def fn(params, x, states0, final_upstream, gy, mask):
        B, T = x.shape[:2]
        probes = tuple(tuple(jnp.zeros((T, B, s.shape[-1]), x.dtype) for s in part) for part in states0)
        out, pull = jax.vjp(lambda p, x_, s, e: run(p, x_, s, e, mask), params, x, states0, probes)
        per_step, finals, outputs, merged = out
        cotangent = (jax.tree_util.tree_map(jnp.zeros_like, per_step), tuple(tuple(u) for u in final_upstream),
                     jax.tree_util.tree_map(jnp.zeros_like, outputs),
                     tuple(jnp.zeros_like(y) for y in merged[:-1]) + (gy,))
        return out, pull(cotangent)

    return fn


def _numpy(tree):
    return {k: np.asarray(v) for k, v in tree.items()}


def run_model(model, inputs, options=()):
    """A model's quantities on canonical inputs under ``options``: per (layer, direction) its per-step
    states and deltas, final states, parameter and initial-state gradients, and its masked output; dx;
    each bidirectional layer's merged output y."""
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    names = structured.suffixes(options)
    remap, back = getattr(jax_layout, model.remap), getattr(jax_layout, model.back)
    parts = [structured.part(inputs, s) for s in names]
    params = [remap(p) for p in parts]
    states0 = [tuple(p[k] for k in model.states) for p in parts]
    upstream_of = {i: up for i, up in model.finals.values()}
    zeros = np.zeros_like(inputs[model.states[0]])
    upstream = [tuple(p[upstream_of[i]] if i in upstream_of else zeros for i in range(len(model.states)))
                for p in parts]
    fn = compiled(model, merge, depth, "rev" in options, masking[0] if masking else None)
    (per_step, finals, outputs, merged), (d_params, dx, d_states0, d_probes) = fn(
        params, inputs["x"], states0, upstream, inputs["gh"], inputs.get(layers.MASK))
    out = {"dx": np.asarray(dx)}
    returned = structured.final_states(model, options)
    for n, (s, part) in enumerate(zip(names, parts)):
        out.update({k + s: v for k, v in back(_numpy(d_params[n]), part["W"].shape[-2]).items()})
        for i, k in enumerate(model.states):
            state = k[:-1]  # h0 -> h
            out[state + s] = np.asarray(per_step[n][i])
            out["d" + state + s] = np.swapaxes(np.asarray(d_probes[n][i]), 0, 1)  # the probes are time-major
            out["d" + k + s] = np.asarray(d_states0[n][i])
        for q, (i, _) in returned.items():
            out[q + s] = np.asarray(finals[n][i])
        if masking:
            out["out" + s] = np.asarray(outputs[n])
    if merge:
        out.update({"y" + (layers.LAYER if k else ""): np.asarray(y) for k, y in enumerate(merged)})
    return out


def observed(model):
    """What a JAX oracle returns under structural options: per layer and direction its per-step states
    and deltas, initial-state and parameter gradients, final states and (under a mask) its output; dx;
    each bidirectional layer's merged output y."""
    per_step = tuple(k[:-1] for k in model.states)
    per_step += tuple("d" + k for k in per_step)

    def names(options):
        merge, depth = structured.structure(options)
        timeless = tuple(q for q in model.observes if not ("nobias" in options and q in model.biases))
        own = per_step + timeless + tuple(structured.final_states(model, options))
        own += ("out",) if opts.masking(options) else ()
        found = ["dx"] + [q + s for s in structured.suffixes(options) for q in own]
        if merge:
            found += ["y" + (layers.LAYER if k else "") for k in range(depth)]
        return tuple(found)

    return names


def runner(model):
    return lambda inputs, options=(): run_model(model, inputs, options)


# --- the softmax / cross-entropy head (gatecheck/reference/head.py) ---------------------------------------


@functools.lru_cache(maxsize=None)
def compiled_head():
    """The jitted (params, V, cb, x, h0, c0, y) -> ((h, c, p, loss), (d params, dV, dcb, dx, dh0, dc0, d probes))."""
    jax = import_jax()
    jnp = jax.numpy
    run = forward(LSTM_MODEL, None, 1, False, None)

    @frameworks.jit
    def fn(params, V, cb, x, h0, c0, y):
        B, T = x.shape[:2]
        probes = tuple(jnp.zeros((T, B, h0.shape[-1]), x.dtype) for _ in range(2))

        def loss(params, V, cb, x, h0, c0, probes):
            (h, c), = run((params,), x, ((h0, c0),), (probes,), None)[0]
            log_p = jax.nn.log_softmax(h @ V + cb, axis=-1)
            return -jnp.sum(y * log_p), (h, c, jnp.exp(log_p))

        value, pull, (h, c, p) = jax.vjp(loss, params, V, cb, x, h0, c0, probes, has_aux=True)
        return (h, c, p, value), pull(jnp.ones_like(value))

    return fn


def run_head(inputs):
    params = jax_layout.to_jax_lstm(inputs)
    (h, c, p, loss), (d_params, dV, dcb, dx, dh0, dc0, (dh, dc)) = compiled_head()(
        params, inputs["V"], inputs["cb"], inputs["x"], inputs["h0"], inputs["c0"], inputs["y"])
    out = {k: np.asarray(v) for k, v in dict(h=h, c=c, p=p, loss=loss, dV=dV, dcb=dcb, dx=dx, dh0=dh0, dc0=dc0,
                                             dh=dh.swapaxes(0, 1), dc=dc.swapaxes(0, 1)).items()}
    out.update(jax_layout.grads_from_jax_lstm(_numpy(d_params), inputs["W"].shape[1]))
    return out


# --- the module's oracles ------------------------------------------------------------------------------------

# benchmarks/trace_cost.py: tracing and XLA's compile of one shape's forward and vjp, on one core (measured on
# a loaded machine beside the Keras cells, and scaled by their registry / measured ratio in that run, 2.2-2.4)
_COMPILE_MS = {"jax-lstm": 520, "jax-rnn": 320, "jax-gru": 520, "jax-gru-before": 620, "jax-lstm-head": 800}
OFFERED = frozenset({"nobias", "rev"} | {name for name, o in opts.OPTIONS.items() if o.structural})


def _oracle(name, family, model, what, observes):
    return Oracle(name, family, "jax", what, observes, runner=runner(model), trace_ms=_COMPILE_MS[name],
                  trace_per_shape=True, options=OFFERED, observes_structured=observed(model))


_SCAN = "jax.lax.scan over a pure step, jax.vjp with zero probes on every h_t"

ORACLES = (
    _oracle("jax-lstm", "lstm", LSTM_MODEL, f"{_SCAN} and c_t: one kernel (D+H, 4H) on [x_t, h_t-1], gates i,g,f,o",
            ("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db")),
    _oracle("jax-rnn", "rnn", RNN_MODEL, f"{_SCAN}: one kernel (D+H, H) on [x_t, h_t-1], tanh",
            ("h", "dh", "dx", "dh0", "dW", "dU", "db")),
    _oracle("jax-gru", "gru", GRU_MODELS["after"], f"{_SCAN}: kernel (D, 3H), recurrent_kernel (H, 3H), gates r,z,n, "
            "a bias on each side, reset after", ("h", "dh", "dx", "dh0", "dW", "dU", "dbx", "dbh")),
    _oracle("jax-gru-before", "gru-reset-before", GRU_MODELS["before"], f"{_SCAN}: kernel (D, 3H), recurrent_kernel "
            "(H, 3H), gates r,z,n, a bias on each side, reset before", ("h", "dh", "dx", "dh0", "dW", "dU", "dbx", "dbh")),
    Oracle("jax-lstm-head", "lstm-head", "jax", f"{_SCAN} and c_t, then h_t V + cb, jax.nn.log_softmax "
           "cross-entropy per step", ("h", "c", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
           runner=run_head, trace_ms=_COMPILE_MS["jax-lstm-head"], trace_per_shape=True),
)
