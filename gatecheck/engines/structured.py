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


def own_option(model, options):
    """The option of the model's own (``Model.own``) among ``options``, or None; checked as ``modelled``
    checks it. Builders cached by their arguments take this name, not the ``Model`` (a record of dicts)."""
    modelled(model, options)
    return next((o for o in options if o in model.own), None)


def with_own(model, options):
    """``model`` under the option of its own among ``options`` (``Model.own``: an activation), unchecked: for
    a builder that takes the other options itself (a reverse layer, a mask)."""
    own = next((o for o in options if o in model.own), None)
    return model.own[own] if own else model


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


# --- Keras ---------------------------------------------------------------------------------------------


