"""Layer options: variants of a family's model that the frameworks offer as
arguments of their layers and cells, such as no bias.

An option is data everywhere it appears:

- ``OPTIONS``, the one registry: its name (also the case-id suffix, ``-nobias``), what it
  means, and how each framework spells it. The registry's order is the order of suffixes.
- A case carries its options (``Case.options``, a tuple in the registry's order); the id
  gets one suffix per option after the regime's, so a case without options keeps its id.
- A family says what an option changes in its contract (``Family.options``: option name ->
  ``Variant``): the reference under the option, the inputs and contract keys it removes, the
  values the removed inputs stand for, the inputs whose time axis it reverses (both for finite
  differences: the option's loss is the family's on the filled, flipped inputs), its own mutants.
  ``under(family, options)`` derives the family record that the engine then uses unchanged.
- An oracle declares the options it offers (``Oracle.options``) and its runner is called
  with the case's options; the grid gives an option's cases only to oracles that offer it.
- A candidate declares the options it implements (``run.options = {"nobias", "bi", "L2"}``; default
  none; 'bi+L2' declares bi and L2). It declares with them every combination of them that gatecheck
  defines for its family (``combinations``: each set ``under`` accepts), since it is called with each
  option's keywords and inputs together: it runs every case whose options it all declares, and every
  report says which of its combinations no case of the run had (``gatecheck.tools.check.unexercised``)
  and which option cases were not run because it does not declare them.
- Results files carry each case's options as a list (``options``), never parsed back from
  the id; a file without the field (written before options) means no options.
"""

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from gatecheck.core import candidate as candidate_contract
from gatecheck.core.family import Arrays, Family, Quantity
from gatecheck.model import structures


class Option(NamedTuple):
    name: str
    meaning: str
    frameworks: dict[str, str]  # framework -> how it spells the option (or why it cannot)
    # A layer structure built from the family's own model (gatecheck.reference.layers), for every
    # family that names its output (Family.output), rather than a variant the family defines.
    structural: bool = False
    # The activation (a name of gatecheck.reference.activations) the option puts where the family's model
    # has tanh (the RNN's h_t; a family's own Variant says where): "" for an option of another kind.
    activation: str = ""
    # The activation the option puts where the family's model has the sigmoid of its gates (LSTM i, f, o; GRU
    # r, z), with its parameters: (name, alpha, beta) of gatecheck.reference.activations; () for another kind.
    recurrent_activation: tuple = ()
    # ONNX's clip: the threshold the option clips every activation's input to, [-clip, clip] (None: another kind).
    clip: float | None = None


# The clip option's threshold (a float32 number exactly): pre-activations of the grids' regimes exceed it often
# (std: |z| > 1 for about 4 units in 10) and the LSTM's cell state in some cases (gatecheck.families.lstm.record).
CLIP = 1.0

_MERGE_KERAS = ("keras.layers.Bidirectional(layer, merge_mode={!r}); the backward layer is the forward one's copy "
                "with go_backwards=True, its sequence put back in time order by Bidirectional itself; "
                "return_state gives [output, forward states, backward states]")
_MERGE_TORCH = "none: PyTorch's bidirectional layers concatenate (merge_mode 'concat' only)"
# Bidirectional layers, one option per merge mode: name -> the merge (gatecheck.reference.layers.MERGES).
MERGES = {"bi": "concat", "bisum": "sum", "bimul": "mul", "biave": "ave", "binone": "none"}
_MERGE_MEANING = {
    "concat": "y = [h, h_r] on the last axis (B, T, 2H)",
    "sum": "y = h + h_r", "mul": "y = h * h_r", "ave": "y = (h + h_r) / 2",
    "none": "Keras returns the pair [h, h_r]; y is the pair stacked on the last axis (B, T, 2H), as concat",
}


OPTIONS = {
    o.name: o
    for o in (
        Option("nobias", "no bias: the model has no bias vector; the candidate gets no bias input and returns "
                         "no bias gradient",
               {"keras": "use_bias=False (cells and layers)", "torch": "bias=False (cells and layers)"}),
        Option("rev", "reverse direction: the layer consumes x[:, T-1] first and x[:, 0] last; inputs and outputs "
                      "are the forward contract's, every per-step array indexed by the original t (h[:, t] is the "
                      "state after x[:, t], having consumed x[:, t+1:] before it) and the final state (C_T, what "
                      "gc is the gradient of) is c[:, 0]; a candidate is called with reverse=True",
               {"keras": "go_backwards=True (keras.layers.RNN, LSTM, GRU, SimpleRNN); the output sequence comes "
                         "back in processing order (tensorflow#40345), the oracles flip it to the original t",
                "torch": "none: PyTorch offers reverse only inside bidirectional=True"}),
        Option("proj", "projection (LSTM only): h_t = (o_t * tanh(c_t)) @ Wr with Wr (H, P), so h_t, the state fed "
                       "back, has P units and c_t keeps H; the candidate also gets Wr and returns dWr (H, P), with "
                       "h0, gh, h, dh, dh0 of width P and U, dU (4, P, H); the grid takes P = H // 2 (1 <= P < H, "
                       "cases with H >= 2); combines with bi and L2 (a second layer's input is P wide, 2P with bi)",
               {"keras": "none: Keras' LSTM and LSTMCell have no projection",
                "torch": "proj_size=P (nn.LSTM only; nn.LSTMCell has none); weight_hr_l0 (P, H) is Wr.T; with "
                         "bidirectional=True and num_layers=2, weight_hr_l{k}[_reverse] and h_0 (layers * directions, "
                         "B, P)"}),
        Option("relu", "the relu activation (gatecheck.reference.activations) where the family's model has tanh: the "
                       "vanilla RNN's h_t = relu(z_t); the LSTM's g_t = relu(z_g) and h_t = o_t * relu(c_t); the "
                       "GRU's n_t = relu(...); inputs and outputs are the family's, and a candidate is called "
                       "with activation='relu'",
               {"keras": "activation='relu' (SimpleRNN, SimpleRNNCell, LSTM, LSTMCell, GRU, GRUCell)",
                "torch": "nonlinearity='relu' (nn.RNN, nn.RNNCell); none for nn.LSTM and nn.GRU (no activation "
                         "argument)",
                "flax": "activation_fn=jax.nn.relu (nnx.SimpleCell, nnx.LSTMCell, nnx.OptimizedLSTMCell, "
                        "nnx.GRUCell)"},
               activation="relu"),
        Option("hardsig", "the hard sigmoid of Keras 3 and jax.nn, clip(z / 6 + 1/2, 0, 1) (gatecheck.reference."
                          "activations' hard_sigmoid with alpha = 1/6, beta = 1/2), where the family's model has the "
                          "sigmoid of its gates: the LSTM's i, f, o; the GRU's r, z; inputs and outputs are the "
                          "family's, and a candidate is called with recurrent_activation=('hard_sigmoid', 1/6, 0.5)",
               {"keras": "recurrent_activation='hard_sigmoid' (LSTM, LSTMCell, GRU, GRUCell) from Keras 3, where it "
                         "is relu6(x + 3) / 6 (Keras 2's was clip(0.2 x + 0.5, 0, 1), another model: "
                         "gatecheck.engines.keras.versions)",
                "torch": "none: nn.LSTM and nn.GRU have no activation argument",
                "flax": "gate_fn=jax.nn.hard_sigmoid, relu6(x + 3) / 6 (nnx.LSTMCell, nnx.OptimizedLSTMCell, "
                        "nnx.GRUCell)"},
               recurrent_activation=("hard_sigmoid", 1 / 6, 0.5)),
        Option("clip", f"ONNX's clip attribute, threshold {CLIP:g}: the input of every activation is clipped to "
                       f"[-{CLIP:g}, {CLIP:g}], as the spec's text says ('applied to the input of activations'): the "
                       f"vanilla RNN's h_t = tanh(clip(z_t)); the GRU's r, z = sigmoid(clip(.)), n = tanh(clip(.)); "
                       f"the LSTM's i, f, o = sigmoid(clip(.)), g = tanh(clip(.)) and h_t = o_t * tanh(clip(c_t)) "
                       f"(the cell state carried on is not clipped); a clipped input's derivative is 0; inputs and "
                       f"outputs are the family's, and a candidate is called with clip={CLIP!r}",
               {"keras": "none: Keras' LSTM, GRU and SimpleRNN have no clip",
                "torch": "none: nn.LSTM, nn.GRU and nn.RNN have no clip",
                "flax": "none: Flax's cells have no clip"},
               clip=CLIP),
        Option("coupled", "ONNX's input_forget=1 (LSTM only): the forget gate coupled to the input gate, f_t = 1 - i_t "
                          "(as onnxruntime computes it; the spec says 'couple the input and forget gates'); W[f], U[f] "
                          "and b[f] take no part, so their gradients are 0, and dz_i = dc_t (g_t - c_{t-1}) i_t (1 - "
                          "i_t); inputs and outputs are the family's, and a candidate is called with coupled=True",
               {"keras": "none: Keras' LSTM and LSTMCell have no coupled gates",
                "torch": "none: nn.LSTM and nn.LSTMCell have no coupled gates",
                "flax": "none: Flax's LSTM cells have no coupled gates"}),
        Option("peep", "ONNX's peepholes (LSTM only; the node's input P): z_i += P[0] c_{t-1}, z_f += P[1] c_{t-1}, "
                       "z_o += P[2] c_t, with P (3, H) the peepholes of i, f and o in the family's gate order (ONNX "
                       "orders P's blocks i, o, f); dc_t (total) takes the path through o_t too; the candidate also "
                       "gets P and returns dP (3, H); combines with bi and L2 (each direction and layer has its own "
                       "P: P_r, P_l1)",
               {"keras": "none: Keras' LSTM and LSTMCell have no peepholes",
                "torch": "none: nn.LSTM and nn.LSTMCell have no peepholes",
                "flax": "none: Flax's LSTM cells have no peepholes"}),
    )
}
# Variable lengths and masks, one option per semantics: name -> (what a masked step outputs, how masks
# are drawn) (gatecheck.reference.layers.masked, gatecheck.model.structures.draw_mask).
MASKS = {"len": ("zero", "right"), "mask": ("carry", "any"), "maskz": ("zero", "any")}
_MASK_COMMON = ("a row's model consumes its valid steps only (mask 1.0; the candidate gets mask (B, T)); a masked "
                "step (0.0) keeps the state (h_t, c_t the last valid step's; the initial state before any) and "
                "computes nothing (dx_t = 0, the states' deltas are not compared there); the output is out (B, T, "
                "width), gh its upstream gradient; the final states are the last valid step's")
OPTIONS["len"] = Option(
    "len", "variable lengths, packed: each row a prefix of valid steps (lengths = mask.sum(1), right padding); "
           "a masked step outputs 0; " + _MASK_COMMON + "; a candidate is called with masked_output='zero'",
    {"keras": "mask=... on a right-padded batch with zero_output_for_mask=True (on a GPU, cuDNN takes right "
              "padding only: tensorflow#48702)",
     "torch": "nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) into the "
              "layer, pad_packed_sequence(..., total_length=T) out: zeros past each length; h_n/c_n at the last "
              "valid step"},
    structural=True)
OPTIONS["mask"] = Option(
    "mask", "Keras masking: any mask (rows right-padded, left-padded and with gaps in turn); a masked step "
            "outputs the previous step's output (0 before the row's first valid step, where the state is the "
            "initial one: output and state differ there); " + _MASK_COMMON
            + "; a candidate is called with masked_output='carry'",
    {"keras": "layer(x, mask=mask) (or a Masking layer), zero_output_for_mask=False (the default of LSTM, GRU, "
              "SimpleRNN; Bidirectional forces True: it offers maskz only)",
     "torch": "none: packed sequences are right-padded and output zeros past each length"},
    structural=True)
OPTIONS["maskz"] = Option(
    "maskz", "Keras masking with zero output: any mask (as under mask); a masked step outputs 0; " + _MASK_COMMON
             + "; a candidate is called with masked_output='zero'",
    {"keras": "layer(x, mask=mask) with zero_output_for_mask=True (what Bidirectional sets on its layers)",
     "torch": "none: packed sequences take right padding only (len)"},
    structural=True)
for _name, _merge in MERGES.items():
    OPTIONS[_name] = Option(
        _name, f"bidirectional, merge {_merge}: a forward and a reverse direction (as under rev) with their own "
               f"weights and initial states (every input but x and gh again, suffix _r: W_r, h0_r, ...), on the "
               f"same x; {_MERGE_MEANING[_merge]}; gh is the upstream gradient of y; the contract is the forward "
               f"direction's, the reverse one's (suffix _r: h_r, dh_r, dW_r, ...; its final state at t = 0), y, "
               f"and dx of both; a candidate is called with merge_mode={_merge!r}",
        {"keras": _MERGE_KERAS.format(None if _merge == "none" else _merge),
         "torch": "bidirectional=True (layers; output [forward, reverse], h_n/c_n direction-major per layer)"
         if _merge == "concat" else _MERGE_TORCH},
        structural=True)
OPTIONS["L2"] = Option(
    "L2", "two stacked layers: the second (its own weights and initial states, every input but x and gh again, "
          "suffix _l1) consumes the first's output sequence; gh is the upstream gradient of the second's output; "
          "the contract is both layers' (the second's with suffix _l1; dx once, the first layer's dh includes "
          "what flows back from the second); with bi* each layer is bidirectional (its output y feeds the "
          "second); a candidate is called with num_layers=2",
    {"keras": "two layers in sequence, the first with return_sequences=True",
     "torch": "num_layers=2 (layers; h_0/h_n of shape (num_layers * directions, B, H), layer-major: "
              "[layer 0 forward, layer 0 reverse, layer 1 forward, ...])"},
    structural=True)

# How the ONNX nodes spell each option (gatecheck.engines.onnx.oracles: onnxruntime and the onnx package's
# evaluator run the same graphs).
_ONNX_MERGE = ("direction='bidirectional' (Y holds [forward, reverse] on its num_directions axis), merged in the "
               "graph by {}")
for _name, _text in {
    "nobias": "B omitted (the node's optional bias input)",
    "rev": "direction='reverse'; Y is indexed by the original t (Y[t] the state after x[t]), Y_h the state after "
           "x[0]",
    "proj": "none: the ONNX LSTM has no projection",
    "relu": "activations=['Relu'] (RNN), ['Sigmoid', 'Relu', 'Relu'] (LSTM), ['Sigmoid', 'Relu'] (GRU); one set "
            "per direction",
    "hardsig": "activations=['HardSigmoid', 'Tanh', 'Tanh'] (LSTM), ['HardSigmoid', 'Tanh'] (GRU), one set per "
               "direction, with activation_alpha=[1/6] and activation_beta=[0.5] per direction (the values are "
               "consumed in the order of the activations that take them; float attributes: 1/6 as float32)",
    "coupled": "input_forget=1 (LSTM). onnx.reference and OpenVINO's ONNX frontend never apply it (deviations)",
    "peep": "the LSTM's input P (num_directions, 3H), blocks i, o, f: the canonical P's rows 0, 2, 1 (gatecheck."
            "engines.onnx.layout); one per direction. OpenVINO's ONNX frontend drops it (a deviation; with P a graph "
            "input the read model has no such input)",
    "clip": f"clip={CLIP:g} (LSTM, GRU, RNN; a float attribute). onnxruntime and OpenVINO clip the inputs of "
            f"the gates and of g, n and the RNN's h, not the LSTM's c_t before h (a deviation); onnx.reference does "
            f"not read clip (a deviation)",
    "bi": _ONNX_MERGE.format("Concat on the last axis"), "bisum": _ONNX_MERGE.format("Add"),
    "bimul": _ONNX_MERGE.format("Mul"), "biave": _ONNX_MERGE.format("Mean"),
    "binone": _ONNX_MERGE.format("Concat (the pair, stacked as for bi)"),
    "L2": "two nodes in one graph, the second fed the first's (merged) output",
    "len": "sequence_lens (right-padded rows): Y is 0 past a row's length, Y_h and Y_c are its last valid step's "
           "(the reverse direction's: after x[0])",
    "mask": "none: ONNX has sequence_lens (right padding) only, no mask with gaps or left padding",
    "maskz": "none: ONNX has sequence_lens (right padding) only, no mask with gaps or left padding",
}.items():
    OPTIONS[_name].frameworks["onnxruntime"] = _text

# How PaddlePaddle (gatecheck.engines.paddle: paddle.nn's layers and cells) and MLX (gatecheck.engines.mlx: mlx.nn's
# layers) spell each option.
_PADDLE_MERGE = "none: Paddle's direction='bidirect' concatenates (bi only)"
_NO_MASK = "none: sequence_length takes right-padded rows only (len)"
_MLX_NONE = "none: mlx.nn's layers have no {}"
for _name, (_paddle, _mlx) in {
    "nobias": ("bias_ih_attr=False, bias_hh_attr=False (the cells; the layers crash without a bias: declined)",
               "bias=False (LSTM, GRU, RNN)"),
    "rev": ("none: Paddle offers the reverse direction inside direction='bidirect' only", _MLX_NONE.format("direction")),
    "proj": ("proj_size=P (LSTMCell and LSTM): weight_ho (H, P) is Wr", _MLX_NONE.format("projection")),
    "coupled": ("none: paddle.nn's LSTM and LSTMCell have no coupled gates", _MLX_NONE.format("coupled gates")),
    "peep": ("none: paddle.nn's LSTM and LSTMCell have no peepholes", _MLX_NONE.format("peepholes")),
    "bi": ("direction='bidirect' (the output [forward, backward] on the last axis; initial_states (layers * 2, B, H) "
           "layer-major)", _MLX_NONE.format("bidirectional layer")),
    "bisum": (_PADDLE_MERGE, _MLX_NONE.format("bidirectional layer")),
    "bimul": (_PADDLE_MERGE, _MLX_NONE.format("bidirectional layer")),
    "biave": (_PADDLE_MERGE, _MLX_NONE.format("bidirectional layer")),
    "binone": (_PADDLE_MERGE, _MLX_NONE.format("bidirectional layer")),
    "L2": ("num_layers=2", _MLX_NONE.format("stacked layers")),
    "len": ("sequence_length (right-padded rows): the output 0 past a row's length, the final states its last valid "
            "step's", _MLX_NONE.format("lengths or masks")),
    "mask": (_NO_MASK, _MLX_NONE.format("lengths or masks")),
    "maskz": (_NO_MASK, _MLX_NONE.format("lengths or masks")),
}.items():
    OPTIONS[_name].frameworks.update(paddle=_paddle, mlx=_mlx)


# The structural options' sets in the grids: each alone and a bidirectional stack (ci and nightly), and
# that stack without a bias (nightly, on the no-bias regimes). A block with the points or shapes of a
# family gives one block per set (``blocks``).
# Each mask semantics alone and in a stack, and the zero-output ones in a bidirectional stack (ci and nightly);
# nightly adds the other merges and depths under masks.
STRUCTURAL = (("bi",), ("bisum",), ("bimul",), ("biave",), ("binone",), ("L2",), ("bi", "L2"),
              ("len",), ("mask",), ("maskz",), ("mask", "L2"), ("len", "bi", "L2"), ("maskz", "bi", "L2"))
STRUCTURAL_NIGHTLY = (("len", "bi"), ("len", "L2"), ("maskz", "bi"), ("maskz", "bisum"), ("maskz", "bimul"),
                      ("maskz", "biave"), ("maskz", "binone"))
STRUCTURAL_NOBIAS = (("nobias", "bi", "L2"), ("nobias", "mask"), ("nobias", "len", "bi"))


def blocks(block: Mapping[str, Any], option_sets: Iterable[tuple[str, ...]]) -> list[dict[str, Any]]:
    """One grid block (gatecheck.core.cases.expand) per set of options, each with ``block``'s points."""
    return [dict(block, options=o) for o in option_sets]


def masking(options: Iterable[str]) -> tuple[str, str] | None:
    """(what a masked step outputs, how masks are drawn) of a set of options (None: no mask)."""
    found = [MASKS[o] for o in options if o in MASKS]
    return found[0] if found else None


def activation(options: Iterable[str]) -> str | None:
    """The activation a set of options puts in place of tanh (a name of gatecheck.reference.activations;
    None: the family's own)."""
    found = [OPTIONS[o].activation for o in options if OPTIONS[o].activation]
    return found[0] if found else None


def recurrent_activation(options: Iterable[str]) -> tuple | None:
    """The activation, with its parameters ((name, alpha, beta)), a set of options puts in place of the gates'
    sigmoid (None: the family's own)."""
    found = [OPTIONS[o].recurrent_activation for o in options if OPTIONS[o].recurrent_activation]
    return found[0] if found else None


def clip(options: Iterable[str]) -> float | None:
    """The threshold a set of options clips every activation's input to (None: no clip)."""
    found = [OPTIONS[o].clip for o in options if OPTIONS[o].clip is not None]
    return found[0] if found else None


def activation_keywords(options: Iterable[str]) -> dict[str, Any]:
    """The keywords of the references (and a candidate) under a set of options' activations: activation=,
    recurrent_activation= and clip=, each only where an option sets it."""
    options = tuple(options)
    found = {"activation": activation(options), "recurrent_activation": recurrent_activation(options),
             "clip": clip(options)}
    return {k: v for k, v in found.items() if v is not None}


def merge(options: Iterable[str]) -> str | None:
    """The merge mode of a set of options (None: not bidirectional)."""
    found = [MERGES[o] for o in options if o in MERGES]
    return found[0] if found else None


def canonical(options: Iterable[str]) -> tuple[str, ...]:
    """``options`` (any iterable of names) as a case holds them: a tuple in the registry's
    order, each once; a clear error listing the valid names otherwise."""
    names = set(options)
    unknown = names - set(OPTIONS)
    if unknown:
        raise ValueError(f"option: expected names from {list(OPTIONS)}, got {sorted(unknown)}")
    return tuple(name for name in OPTIONS if name in names)


def parse(text: str) -> tuple[str, ...]:
    """One set in command-line form, 'nobias', 'bi,L2' or 'bi+L2' -> canonical tuple; '' -> ()."""
    return canonical(part.strip() for part in text.replace("+", ",").split(",") if part.strip()) if text else ()


NONE = "none"  # how a selection of option sets names the set without options (``parse_set``)

# The keyword arguments a candidate is called with under some option set (``Family.keywords`` of the record
# under it), and the value each stands for when absent: a candidate that takes them all with these defaults
# runs every set (the families page's skeleton, gatecheck.tools.docs).
KEYWORD_DEFAULTS = {"reverse": False, "merge_mode": None, "num_layers": 1, "masked_output": None, "activation": "tanh",
                    "recurrent_activation": "sigmoid", "clip": None, "coupled": False}


def declared_set(entry: object) -> tuple[str, ...]:
    """One element of a candidate's ``run.options`` as the set it declares, a canonical tuple: an
    option name ('nobias': that option alone), a combination spelled 'bi+L2', or a tuple or
    frozenset of names."""
    names: list[str] | None
    if isinstance(entry, str):
        names = [part.strip() for part in entry.split("+")]
    elif isinstance(entry, (tuple, frozenset)) and all(isinstance(name, str) for name in entry):
        names = list(entry)
    else:
        names = None
    if not names or "" in names:
        raise ValueError(f"options: each element is an option name ('nobias'), a combination spelled 'bi+L2', or a "
                         f"tuple or frozenset of names; got {entry!r}")
    try:
        return canonical(names)
    except ValueError as exc:
        raise ValueError(f"options: {entry!r}: {exc}") from None


def parse_set(text: str) -> tuple[str, ...]:
    """A set as a selection names it: 'none' (no options) -> (); else ``declared_set``."""
    return () if text.strip() == NONE else declared_set(text)


def suffix(options: Iterable[str]) -> str:
    """The case-id suffix of a set of options: ``-nobias``; '' for none."""
    return "".join(f"-{name}" for name in canonical(options))


def label(options: tuple[str, ...]) -> str:
    """How a report names a set of options, as a candidate declares it: 'nobias', 'bi+L2', or
    'no options'."""
    return "+".join(options) if options else "no options"


def implemented(candidate: object) -> frozenset[tuple[str, ...]]:
    """The elements of a candidate's declaration (``candidate.options``; default none), each a
    canonical tuple (``declared_set``): a frozenset of them. A case runs when each of its options is
    in one of them (``implements``)."""
    declared = getattr(candidate, "options", None)
    if declared is None:
        return frozenset()
    if not isinstance(declared, (set, frozenset, list, tuple)):
        raise ValueError(f"options: expected a set of option sets, each an option name or a combination spelled "
                         f"'bi+L2' (names from {list(OPTIONS)}), got {declared!r}")
    return frozenset(declared_set(entry) for entry in declared)


def implements(declared: frozenset[tuple[str, ...]], options: Iterable[str]) -> bool:
    """Whether a candidate that declares ``declared`` (``implemented``) runs a case with ``options``:
    it declares each of them (declaring bi and L2 declares their stack, bi+L2, too: ``combinations``)."""
    return set(options) <= {name for s in declared for name in s}


def combinations(family: Family, declared: frozenset[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Every combination of the declared options (``implemented``) that the family defines (``under``
    accepts it), smallest first, each in the registry's order: what a candidate that declares them says
    it implements. Built up one option at a time: a set is tried only where each set one option smaller
    is defined (the rules of ``under`` only ever forbid a combination, never require one)."""
    names = [name for name in OPTIONS if any(name in s for s in declared)]
    found: list[tuple[str, ...]] = []
    level: list[tuple[str, ...]] = [()]
    while level:
        grown = []
        for s in level:
            for name in names[names.index(s[-1]) + 1 if s else 0:]:
                bigger = s + (name,)
                if any(bigger[:k] + bigger[k + 1:] not in found for k in range(len(bigger)) if len(bigger) > 1):
                    continue
                try:
                    under(family, bigger)
                except ValueError:
                    continue
                grown.append(bigger)
        found += grown
        level = grown
    return found


@functools.lru_cache(maxsize=None)
def under(family: Family, options: Iterable[str]) -> Family:
    """The family record for ``options`` (a canonical tuple): the family itself for none; else
    its contract less what each option removes, its reference under them, and the options'
    own mutants. One record per (family, options), so the engine's caches keyed by family hold.

    Options combine this way: at most one the family defines itself (no bias, reverse, projection,
    ...), then at most one mask semantics, then at most one bidirectional merge, then stacking
    (``gatecheck.model.structures``), each built
    on the record before it; reverse and bidirectional exclude each other (a bidirectional
    layer has its own reverse direction). A layer is built on an option's record that states its
    output hook (``fd_output``); its mutants are carried into the layer where its Variant says so
    (``Variant.in_layers``), and the inputs it adds (proj: Wr) each get a mutant of the layer that
    reads them from the first direction or layer for both."""

    options = canonical(options)
    if options == family.applied:
        return family
    if family.applied:
        raise ValueError(f"the {family.name} record is already under options {list(family.applied)}")
    own = [name for name in options if not OPTIONS[name].structural]
    built = [name for name in options if OPTIONS[name].structural]
    missing = [name for name in own if name not in family.options]
    if missing or built and not family.output:
        raise ValueError(f"family {family.name} does not define option(s) {missing or built}; it defines "
                         f"{sorted(defined(family)) or 'none'}")
    if len(own) > 1:
        raise ValueError(f"options {own}: combining {' and '.join(own)} is not defined yet")
    bis = [name for name in built if name in MERGES]
    if len(bis) > 1:
        raise ValueError(f"options {bis}: a layer has one merge mode")
    masks = [name for name in built if name in MASKS]
    if len(masks) > 1:
        raise ValueError(f"options {masks}: a layer has one mask semantics")
    if masks and "rev" in own:
        raise ValueError("options rev and a mask: a reverse layer under a mask is not defined yet (a bidirectional "
                         "layer's reverse direction is)")
    if bis and "rev" in own:
        raise ValueError("options rev and bidirectional: a bidirectional layer has its own reverse direction; "
                         "combine them is not defined")
    record = (_variant(family, own[0]) if options == tuple(own) else under(family, tuple(own))) if own else family
    if built and not record.fd_output:
        raise ValueError(f"options {own} and {built}: combining them is not defined yet (the {own[0]} record "
                         f"states no output hook to build layers from)")
    # What a layer built on an option's model keeps of the option: its mutants, where the Variant says they
    # are the layer's bugs too, and the inputs it adds (which a layer may read from the wrong direction or layer).
    variant = family.options[own[0]] if own else None
    carried = tuple(m.name for m in record.mutants) if variant and variant.in_layers else ()
    added = tuple(k for k in record.inputs if k not in family.inputs) if variant else ()
    if masks:  # (an option's mutants are not carried under a mask: the masked layer has its own)
        record = structures.masked(record, *MASKS[masks[0]])
    if bis:
        record = structures.bidirectional(record, MERGES[bis[0]], carried, added)
    if "L2" in built:
        record = structures.stacked(record, carried, added)
    return record if record.applied == options else dataclasses.replace(record, applied=options)


def grid_sets(family: Family) -> list[tuple[str, ...]]:
    """The sets of layer options a family's grids have (every profile), in a stable order."""
    found = dict.fromkeys(canonical(block.get("options", ())) for blocks in family.profiles.values()
                          for block in blocks)
    return [s for s in found if s]


def every_set(family: Family) -> list[tuple[str, ...]]:
    """Every set of options a family's record can be put under that matters to a report: each option
    it defines alone, then every set its grids combine."""
    singles = [(name,) for name in defined(family)]
    return singles + [s for s in grid_sets(family) if s not in singles]


@functools.lru_cache(maxsize=None)
def every_key(family: Family) -> tuple[str, ...]:
    """Every contract key of a family under any of ``every_set`` (what an isolated candidate's
    results are read back by)."""
    return tuple(dict.fromkeys(family.contract + tuple(k for s in every_set(family) for k in under(family, s).contract)))


def declared(candidate: object, family: Family) -> dict[str, Any]:
    """The contract keys a candidate declares it cannot observe (``gatecheck.core.candidate.cannot_observe``),
    each checked to be a key of the family under one of its option sets (a CandidateError names any other)."""
    return candidate_contract.cannot_observe(candidate, family, every_key(family))


def every_quantity(family: Family) -> dict[str, Quantity]:
    """The family's quantity table, then those its options add (proj: dWr; bi: h_r, y, ...), in order."""
    table = dict(family.quantities)
    for s in every_set(family):
        table.update({q: v for q, v in under(family, s).quantities.items() if q not in table})
    return table


def defined(family: Family) -> tuple[str, ...]:
    """Every option name that a family's record can be put under: its own and, for a family that
    names its output, the structural ones."""
    return tuple(name for name, o in OPTIONS.items() if name in family.options or o.structural and family.output)


def _variant(family: Family, name: str) -> Family:
    """The family's record under one option it defines itself (its ``Variant``)."""
    base, variant = family, family.options[name]
    dropped_in, dropped_out = set(variant.drops), set(variant.drops_keys)

    def fill(inputs: Arrays) -> dict[str, np.ndarray]:
        """The family's inputs that the option's model is the family's model on."""
        full = dict(inputs, **variant.fill(inputs))
        return {k: v[:, ::-1] if k in variant.flips else v for k, v in full.items()}

    def step(inputs: Arrays, t: int) -> int:
        """The family's step of the option's state t (reversed: the original t is processed T-1-t'th)."""
        return inputs[variant.flips[0]].shape[1] - 1 - t if variant.flips else t

    def fd_output(inputs: Arrays, moved: tuple[Any, ...] | None = None) -> np.ndarray:
        """The family's output hook on the filled, flipped inputs, flipped back."""
        out = base.hook("fd_output")(fill(inputs), moved and (step(inputs, moved[0]),) + tuple(moved[1:]))
        return out[:, ::-1] if variant.flips else out

    derived = dataclasses.replace(
        base,
        run=variant.run,
        inputs=tuple(k for k in base.inputs if k not in dropped_in),
        contract=tuple(k for k in base.contract if k not in dropped_out),
        shapes=lambda inputs: {k: s for k, s in base.shapes(inputs).items() if k not in dropped_out},
        quantities={n: dataclasses.replace(q, final=0 if q.last_step else q.final, reverse=True) if variant.flips else q
                    for n, q in base.quantities.items() if q.source not in dropped_out},
        make_inputs=lambda case: {k: v for k, v in base.make_inputs(case).items() if k not in dropped_in},
        gated=tuple(k for k in base.gated if k not in dropped_in),
        mutants=variant.mutants,
        mutant_bind=variant.mutant_bind,
        hypotheses=(),  # the family's are tried on the family's model under it (gatecheck.model.parts)
        isolating=None,
        step_parts=None,
        examples={},
        fd_loss=lambda inputs: base.hook("fd_loss")(fill(inputs)),
        fd_state_loss=lambda inputs, t, which, offset: base.hook("fd_state_loss")(fill(inputs), step(inputs, t),
                                                                                which, offset),
        fd_output=fd_output if base.fd_output else None,
        fd_scale=(lambda inputs: base.hook("fd_scale")(fill(inputs))) if base.fd_scale else None,
        options={},
        removed=tuple(k for k in base.contract if k in dropped_out),
        keywords=dict(variant.keywords),
        applied=(name,),
    )
    if variant.replace and "fd_output" not in variant.replace:  # its model is not the family's: no layers of it
        derived = dataclasses.replace(derived, fd_output=None)
    unknown = set(variant.replace) - {f.name for f in dataclasses.fields(base)}
    if unknown:
        raise ValueError(f"option {name} of {family.name}: replace names no Family field: {sorted(unknown)}")
    return dataclasses.replace(derived, **variant.replace) if variant.replace else derived
