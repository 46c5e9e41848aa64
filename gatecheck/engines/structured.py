"""The frameworks' own layer structures as oracles of the structural options (gatecheck.model.options:
bidirectional ``bi*``, stacked ``L2``), for any family: one runner per framework, told a
family's model by a ``Model`` record (its module, its state names, its weight remaps).

PyTorch  ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` with ``bidirectional=True`` and ``num_layers=2``:
         parameters ``weight_ih_l{k}[_reverse]``; ``h_0``/``h_n`` (and ``c_0``/``c_n``) of shape
         (num_layers * directions, B, H), layer-major ([layer 0 forward, layer 0 reverse, layer 1
         forward, layer 1 reverse]); the output is [forward, reverse] on the last axis. Concat only.
         With ``proj_size=P`` (the LSTM's ``proj``, a ``Model.own`` option) h_0 and the output are
         P wide per direction (c_0 keeps H), ``weight_hr_l{k}[_reverse]`` (P, H) joins the
         parameters and the second layer's input is P wide (2P bidirectional).
Keras    ``keras.layers.Bidirectional(layer, merge_mode=...)`` (the backward layer is the forward
         one's copy with go_backwards=True; Bidirectional flips its sequence back to time order and
         returns [output, forward states..., backward states...]; merge_mode=None returns the two
         outputs as a pair) and two layers in sequence, each from its own initial states, on any
         Keras 3 backend (gatecheck.engines.keras.backends compiles them and takes the gradients).

Canonical names (gatecheck.reference.layers): the reverse direction's inputs and outputs carry
``_r``, the second layer's ``_l1``. What an oracle returns: every parameter and initial-state
gradient of every layer and direction, each final state the model returns (an LSTM's C_T), dx,
and the top layer's output: ``y`` (``y_l1`` when stacked) or ``h`` (``h_l1``), and, where the
framework returns the two directions apart (concat, none), each direction's h. The per-step
states and deltas of the layers inside stay in the frameworks' loops.
"""

import contextlib
import functools
from typing import Callable, NamedTuple

import numpy as np

from gatecheck.model import options as opts
from gatecheck.reference import layers


class Model(NamedTuple):
    """How a framework builds one family's model and moves its weights."""

    states: tuple  # initial-state inputs, in the framework's state order: ("h0", "c0")
    finals: dict  # quantity -> (index in the state order, its upstream input): {"cT": (1, "gc")}
    observes: tuple  # the timeless quantities of one layer and direction the oracle returns
    torch_module: str = ""  # "LSTM", "GRU", "RNN"
    torch_kwargs: dict = {}
    torch_load: Callable = None  # (module, canonical inputs of one layer and direction, parameter suffix)
    torch_grads: Callable = None  # (module, parameter suffix) -> canonical gradients
    keras_layer: str = ""  # "LSTM", "GRU", "SimpleRNN"
    keras_kwargs: dict = {}
    keras_assign: Callable = None  # (cell, canonical inputs of one layer and direction)
    keras_grads: Callable = None  # (gradient list starting with the cell's weights, cell) -> (canonical, rest)
    width: str = "h0"  # the initial state whose last axis is the module's hidden size H (c0 under proj)
    torch_args: Callable = None  # inputs -> module arguments read from their widths: {"proj_size": P}
    torch_context: Callable = contextlib.nullcontext  # the context the module runs in (a backend note silenced)
    # The family options (not structural) the runner also builds with a structure: option name -> the
    # Model under it (the LSTM's proj: proj_size, weight_hr). Any other option but no bias is refused.
    own: dict = {}


def modelled(model, options):
    """The model a structured runner builds under ``options``: ``model``, or the ``Model`` of its own
    option among them (``Model.own``); any other option but no bias and the structural ones is refused."""
    other = [o for o in options if not opts.OPTIONS[o].structural and o != "nobias" and o not in model.own]
    if other:
        raise ValueError(f"options {list(options)}: the structured oracles build {other} with no layer structure")
    own = [o for o in options if o in model.own]
    if len(own) > 1:
        raise ValueError(f"options {list(options)}: the structured oracles build one of {own} at a time")
    return model.own[own[0]] if own else model


def structure(options):
    """(merge mode or None, number of layers) of a case's options (which other options may come with
    them is the model's: ``modelled``)."""
    return opts.merge(options), 2 if "L2" in options else 1


def final_states(model, options):
    """The final-state quantities of one (layer, direction) the runner returns: the model's own
    (an LSTM's cT) and, under a mask, every state's (hT: the last valid step's, which is then not
    the output's last step) -> (index in the state order, its upstream input or None)."""
    found = dict(model.finals)
    if opts.masking(options):
        for i, k in enumerate(model.states):
            found.setdefault(k[:-1] + "T", (i, None))
    return found


def right_padded_lengths(mask):
    """The lengths of a mask whose rows are prefixes of valid steps (what packed sequences take);
    a clear error otherwise."""
    keep = layers.valid(mask)
    lengths = keep.sum(axis=1)
    prefix = np.arange(keep.shape[1])[None, :] < lengths[:, None]
    if not (keep == prefix).all():
        rows = np.flatnonzero((keep != prefix).any(axis=1)).tolist()
        raise ValueError(f"mask: packed sequences take right padding only (each row a prefix of valid steps); "
                         f"rows {rows} are not")
    return lengths


def suffixes(options):
    """The canonical suffix of every (layer, direction) in the frameworks' order: layer-major."""
    merge, depth = structure(options)
    return layers.suffixes(bool(merge), depth)


def part(inputs, suffix):
    """The canonical inputs of one (layer, direction): the keys that end in exactly ``suffix``,
    without it."""
    tails = ("_r", "_l1")
    found = {}
    for key, value in inputs.items():
        if suffix and not key.endswith(suffix):
            continue
        name = key[: len(key) - len(suffix)] if suffix else key
        if not name.endswith(tails):
            found[name] = value
    return found


def observed(model, options, merged_apart):
    """The quantities the structured oracles of a model return under ``options``
    (``merged_apart``: the framework returns the directions' outputs apart)."""
    merge, depth = structure(options)
    top = layers.LAYER if depth == 2 else ""
    output = "out" if opts.masking(options) else "h"  # under a mask the output is not the state
    observes = modelled(model, options).observes
    finals = [q for q in final_states(model, options) if q not in observes]
    names = ["dx"]
    for s in suffixes(options):
        names += [q + s for q in observes + tuple(finals)]
    if merge:
        names.append("y" + top)
        if merged_apart:
            names += [output + top, output + layers.REVERSE + top]
    else:
        names.append(output + top)
    return tuple(names)


def top_outputs(y, merge, depth, masking):
    """The top layer's output quantities of a structured layer whose output is ``y`` (B, T, width):
    ``y`` and, where the directions are apart in it (concat, none), each direction's half as h and
    h_r (out, out_r under a mask); without a merge, the one direction's output. (``observed`` names
    them for a framework that returns the directions apart.)"""
    top = layers.LAYER if depth == 2 else ""
    output = "out" if masking else "h"
    if not merge:
        return {output + top: y}
    out = {"y" + top: y}
    if merge in ("concat", "none"):
        half = y.shape[-1] // 2  # each direction's output width: H, or P with a projection
        out.update({output + top: y[..., :half], output + layers.REVERSE + top: y[..., half:]})
    return out


# --- PyTorch -------------------------------------------------------------------------------------------

def torch_runner(model, base_run):
    """The runner of a torch layer oracle: ``base_run`` without structural options, else the
    structure built with ``bidirectional`` / ``num_layers``."""
    @functools.wraps(base_run)
    def run(inputs, options=()):
        if not any(opts.OPTIONS[o].structural for o in options):
            return base_run(inputs, options)
        return _run_torch(model, inputs, options)

    return run


def _run_torch(model, inputs, options):
    from gatecheck.engines.torch import lstm as torch_oracle
    from gatecheck.engines.frameworks import import_torch

    torch = import_torch()
    model = modelled(model, options)
    merge, depth = structure(options)
    if merge not in (None, "concat"):
        raise ValueError(f"PyTorch concatenates its directions; merge {merge} is not offered")
    if opts.masking(options) not in (None, opts.MASKS["len"]):
        raise ValueError(f"options {list(options)}: PyTorch's packed sequences output zeros past each length on "
                         f"right-padded rows (len); Keras masking is not offered")
    D, H = inputs["x"].shape[2], inputs[model.width].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    sized = model.torch_args(inputs) if model.torch_args else {}
    module = getattr(torch.nn, model.torch_module)(D, H, num_layers=depth, bidirectional=bool(merge), batch_first=True,
                                                 dtype=dtype, bias=torch_oracle.bias(options), **model.torch_kwargs,
                                                 **sized)
    names = suffixes(options)
    for n, s in enumerate(names):
        model.torch_load(module, part(inputs, s), _torch_suffix(n, bool(merge)))
    x = torch.from_numpy(inputs["x"].copy()).requires_grad_(True)
    initial = [torch.stack([torch.from_numpy(inputs[k + s].copy()) for s in names]).requires_grad_(True)
               for k in model.states]
    packed = x
    if opts.masking(options):  # variable lengths: a packed batch in, padded back to T out
        lengths = torch.from_numpy(right_padded_lengths(inputs[layers.MASK]))
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with model.torch_context():
        seq, finals = module(packed, tuple(initial) if len(initial) > 1 else initial[0])
    if opts.masking(options):
        seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
    finals = finals if isinstance(finals, tuple) else (finals,)
    loss = (torch.from_numpy(inputs["gh"].copy()) * seq).sum()
    returned = final_states(model, options)
    for q, (index, upstream) in returned.items():
        for n, s in enumerate(names):
            if upstream:
                loss = loss + (torch.from_numpy(inputs[upstream + s].copy()) * finals[index][n]).sum()
    loss.backward()
    out = {"dx": x.grad.numpy()}
    for n, s in enumerate(names):
        out.update({k + s: v for k, v in model.torch_grads(module, _torch_suffix(n, bool(merge))).items()})
        for k, leaf in zip(model.states, initial):
            out["d" + k + s] = leaf.grad[n].numpy()
        for q, (index, _) in returned.items():
            out[q + s] = finals[index][n].detach().numpy()
    out.update(top_outputs(seq.detach().numpy(), merge, depth, opts.masking(options)))  # (torch: concat only)
    return out


def _torch_suffix(n, bidirectional):
    """torch's parameter suffix of the n-th (layer, direction), layer-major: _l0, _l0_reverse, _l1, ..."""
    directions = 2 if bidirectional else 1
    return f"_l{n // directions}" + ("_reverse" if n % directions else "")


# --- Keras ---------------------------------------------------------------------------------------------

def keras_runner(model, base_run):
    """The runner of a Keras layer oracle: ``base_run`` without structural options, else the structure
    built from ``keras.layers.Bidirectional`` and layers in sequence (built once per D, H, dtype, options)."""
    build = functools.partial(_build_keras, model)

    @functools.wraps(base_run)
    def run(inputs, options=()):
        if not any(opts.OPTIONS[o].structural for o in options):
            return base_run(inputs, options)
        return _run_keras(model, build, inputs, options)

    return run


def declines_keras(options):
    """Why the Keras layer oracles do not run a set of options they offer one by one (None: they run it)."""
    if opts.masking(options) == opts.MASKS["mask"] and opts.merge(options):
        return ("keras.layers.Bidirectional sets zero_output_for_mask=True on both its layers (when returning "
                "sequences): a bidirectional layer under Keras masking outputs zeros at masked steps (maskz)")
    return None


def keras_stack(keras, model, D, H, dtype, merge, depth, masked_output=None, **layer_args):
    """``depth`` built Keras layers of a model (each in ``keras.layers.Bidirectional`` under ``merge``),
    returning sequences and states, with the backend's code path (``keras_backends.layer_kwargs``),
    ``zero_output_for_mask`` as ``masked_output`` says and ``layer_args`` (use_bias, go_backwards);
    returns (the layers, every layer's and direction's cell, layer-major, the top layer's output width)."""
    from gatecheck.engines.keras import backends as keras_backends

    extra = keras_backends.layer_kwargs(keras) if model.keras_layer in ("LSTM", "GRU") else {}
    if masked_output:
        extra["zero_output_for_mask"] = masked_output == "zero"
    stack, cells, width = [], [], D
    for _ in range(depth):
        layer = getattr(keras.layers, model.keras_layer)(H, return_sequences=True, return_state=True, dtype=dtype,
                                                         **model.keras_kwargs, **extra, **layer_args)
        if merge:
            layer = keras.layers.Bidirectional(layer, merge_mode=None if merge == "none" else merge, dtype=dtype)
        layer.build((None, None, width))
        cells += [layer.forward_layer.cell, layer.backward_layer.cell] if merge else [layer.cell]
        stack.append(layer)
        width = 2 * H if merge in ("concat", "none") else H
    return stack, cells, width


def _build_keras(model, D, H, dtype, bias, merge, depth, masked_output=None):
    from gatecheck.engines.keras import backends as keras_backends, lstm as keras_oracle
    from gatecheck.engines.frameworks import import_keras

    _, keras = import_keras()
    ops = keras_backends.ops()
    stack, cells, width = keras_stack(keras, model, D, H, dtype, merge, depth, masked_output, use_bias=bias)
    per_layer = len(model.states) * (2 if merge else 1)
    n_states = per_layer * depth
    # x and every initial state (the differentiated inputs); gy, every final state's upstream, the mask
    specs = ([((None, None, D), dtype)] + [((None, H), dtype)] * n_states + [((None, None, width), dtype)]
             + [((None, H), dtype)] * n_states + [((None, None), "bool")])

    def forward(x, *rest):
        initial, gy = rest[:n_states], rest[n_states]
        final_upstream, mask = rest[n_states + 1:-1], rest[-1]
        seq, finals = x, []
        for k, layer in enumerate(stack):
            given = dict(mask=mask) if masked_output else {}  # every layer gets the mask
            result = layer(seq, initial_state=list(initial[k * per_layer:(k + 1) * per_layer]), **given)
            if merge == "none":  # the pair of outputs, then the states
                seq, states = ops.concatenate(list(result[:2]), -1), list(result[2:])
            else:
                seq, states = result[0], list(result[1:])
            finals += states
        loss = ops.sum(gy * seq)
        for state, upstream in zip(finals, final_upstream):
            loss += ops.sum(upstream * state)
        return loss, [seq, finals]

    weights = [w for cell in cells for w in keras_oracle.weights(cell)]
    return cells, keras_backends.gradient_function(forward, weights, specs, 1 + n_states)


def _run_keras(model, build, inputs, options):
    from gatecheck.engines.keras import lstm as keras_oracle

    modelled(model, options)  # Keras' models have no option of their own: any but no bias is refused
    merge, depth = structure(options)
    declined = declines_keras(options)
    if declined:
        raise ValueError(f"options {list(options)}: {declined}")
    masking = opts.masking(options)
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cells, fn = keras_oracle.built(build, x.shape[2], H, x.dtype.name, keras_oracle.use_bias(options), merge, depth,
                                   masking and masking[0])
    names = suffixes(options)
    for cell, s in zip(cells, names):
        model.keras_assign(cell, part(inputs, s))
    initial = [inputs[k + s] for s in names for k in model.states]
    # The upstream gradient of every returned state: a final state's upstream input, zeros for the rest
    # (an LSTM's h_T is the output's last step, whose gradient is in gh).
    returned = final_states(model, options)
    by_index = {index: up for index, up in returned.values() if up}
    zeros = np.zeros_like(inputs["h0"])
    upstream = [inputs[by_index[i] + s] if i in by_index else zeros for s in names for i in range(len(model.states))]
    mask = layers.valid(inputs[layers.MASK]) if masking else np.ones(x.shape[:2], bool)
    (y, finals), rest, dinputs = fn(x, *initial, inputs["gh"], *upstream, mask)
    out = {}
    for cell, s in zip(cells, names):
        n = len(keras_oracle.weights(cell))
        params, _ = model.keras_grads(rest[:n], cell)
        rest = rest[n:]
        out.update({k + s: v for k, v in params.items()})
    out["dx"] = dinputs[0]
    for n, s in enumerate(names):
        for i, k in enumerate(model.states):
            out["d" + k + s] = dinputs[1 + n * len(model.states) + i]
        for q, (index, _) in returned.items():
            out[q + s] = finals[n * len(model.states) + index]
    out.update(top_outputs(y, merge, depth, masking))
    return out
