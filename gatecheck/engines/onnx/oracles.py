"""ONNX oracles: one ONNX ``LSTM``, ``GRU`` or ``RNN`` node (opset ``OPSET``) per layer, built with
``onnx.helper``, run by two engines.

ort-lstm, ort-rnn, ort-gru, ort-gru-before
    ``onnxruntime.InferenceSession`` on the CPU (``frameworks.ort_session``), graphs in ``layout=0``
    (X (T, B, D), Y (T, dirs, B, H)): its CPU kernels refuse ``layout=1`` ("Batchwise recurrent
    operations (layout == 1) are not supported", microsoft/onnxruntime#7687) and compute float32 only,
    so these oracles decline float64 (``Oracle.declines_dtype``).
onnx-reference-lstm, -rnn, -gru, -gru-before
    ``onnx.reference.ReferenceEvaluator`` (the onnx package's NumPy evaluator), graphs in ``layout=1``
    (X (B, T, D), Y (B, T, dirs, H)): the graph and the remaps are on the grid in both layouts. It
    ignores ``sequence_lens``: a known deviation (gatecheck/truth/deviations.py).

The nodes: LSTM gates i, o, f, c (activations Sigmoid, Tanh, Tanh stated, not left to defaults); RNN
Tanh; GRU z, r, h with ``linear_before_reset=1`` for the gru family (reset after) and ``0`` for
gru-reset-before. The weights are graph inputs, not initializers: one graph per (engine, op, H, dtype,
layout, options) is built once in a process and every case feeds its own weights, remapped by
``gatecheck.engines.onnx.layout`` (looked up when called, so a test can substitute a remap).

An inference engine computes no gradient: the oracles observe the forward quantities a node returns:
every step's output Y of every layer and direction (h, or under ``len`` the output ``out``: zeros past a
row's length), the LSTM's final cell state Y_c (C_T) and, under ``len``, the final hidden state Y_h (h_T,
the last valid step's), and each bidirectional layer's merged output ``y``. Without ``len``, Y_h is
checked here to be Y's final step (an inconsistent node is an error, not a quantity). Options: ``nobias``
(the optional B omitted), ``rev`` (``direction="reverse"``; Y comes indexed by the original t), ``bi*``
(``direction="bidirectional"``; ONNX has no merge, so the graph merges Y's two directions with Concat,
Add, Mul or Mean; ``binone`` is the concatenation), ``L2`` (two nodes, the second fed the first's
merged output), ``len`` (``sequence_lens`` on right-padded rows), ``relu`` and ``hardsig`` (the node's
``activations``, per direction), ``clip`` (the node's ``clip`` attribute), and the LSTM's ``coupled``
(``input_forget=1``) and ``peep`` (the input ``P``, one per direction, remapped by the layout module). ONNX has no mask with gaps or left
padding and no projection: ``mask``, ``maskz`` and ``proj`` are not offered (gatecheck.model.options spells
every option for these nodes, under "onnxruntime").
"""

import functools
from typing import NamedTuple

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_onnxruntime, ort_session
from gatecheck.engines.onnx import layout as onnx_layout
from gatecheck.model import options as opts
from gatecheck.reference import layers
from gatecheck.reference.activations import ACTIVATIONS

# Opset 14 introduced ``layout`` on LSTM, GRU and RNN (their semantics are unchanged up to 22, which
# adds bfloat16); IR version 7 is opset 14's, so the graphs load in every supported onnxruntime.
OPSET = 14
IR_VERSION = 7


class Node(NamedTuple):
    """How one family's model is an ONNX node."""

    op: str  # "LSTM", "GRU", "RNN"
    kind: str  # the remap (onnx_layout.GATES)
    states: tuple  # canonical initial states, in the node's input order: ("h0", "c0")
    activations: tuple  # stated, not left to defaults (per direction)
    attributes: tuple = ()  # (name, value) pairs (a tuple: a Node keys the session cache)
    # The activations' positions that hold the model's tanh on the state (RNN: Tanh; an activation option,
    # gatecheck.model.options, puts its own there) and the options of that kind the node takes.
    tanh_slots: tuple = ()
    activation_options: frozenset = frozenset()
    gate_slots: tuple = ()  # the positions of the gates' Sigmoid (LSTM f: i, o, f; GRU f: z, r)
    # The options the node takes as its own attribute or input (the LSTM's coupled: input_forget=1; peep: the
    # input P), and whether it has the peephole input P (the node under peep).
    node_options: frozenset = frozenset()
    peepholes: bool = False

    def under(self, options):
        """The node under a case's options: an activation option's ONNX activation in ``tanh_slots``, a
        recurrent activation option's in ``gate_slots`` with its alpha and beta (activation_alpha/_beta: the
        values are consumed in the order of the activations that take them, one list per direction); under
        coupled input_forget=1, under peep the input P."""
        name, spec, clip = opts.activation(options), opts.recurrent_activation(options), opts.clip(options)
        node = self
        if "coupled" in options:
            node = node._replace(attributes=tuple(dict(node.attributes, input_forget=1).items()))
        if "peep" in options:
            node = node._replace(peepholes=True)
        if name is None and spec is None and clip is None:
            return node
        return node._activated(name, spec, clip)

    def _activated(self, name, spec, clip):
        spelled, attributes = list(self.activations), dict(self.attributes)
        for i in self.tanh_slots if name else ():
            spelled[i] = ACTIVATIONS[name].onnx
        if spec:
            for i in self.gate_slots:
                spelled[i] = ACTIVATIONS[spec[0]].onnx
            attributes.update(activation_alpha=(spec[1],) * len(self.gate_slots),
                              activation_beta=(spec[2],) * len(self.gate_slots))
        if clip is not None:  # (one float for the node, both directions)
            attributes["clip"] = clip
        return self._replace(activations=tuple(spelled), attributes=tuple(attributes.items()))


_GATED_OPTIONS = frozenset({"relu", "hardsig", "clip"})
LSTM = Node("LSTM", "lstm", ("h0", "c0"), ("Sigmoid", "Tanh", "Tanh"), tanh_slots=(1, 2), gate_slots=(0,),
            activation_options=_GATED_OPTIONS, node_options=frozenset({"coupled", "peep"}))
RNN = Node("RNN", "rnn", ("h0",), ("Tanh",), tanh_slots=(0,), activation_options=frozenset({"relu", "clip"}))
GRU = Node("GRU", "gru", ("h0",), ("Sigmoid", "Tanh"), (("linear_before_reset", 1),), tanh_slots=(1,),
           gate_slots=(0,), activation_options=_GATED_OPTIONS)
GRU_BEFORE = Node("GRU", "gru", ("h0",), ("Sigmoid", "Tanh"), (("linear_before_reset", 0),), tanh_slots=(1,),
                  gate_slots=(0,), activation_options=_GATED_OPTIONS)

_STATE_INPUTS = {"h0": "initial_h", "c0": "initial_c"}
_MERGE_OPS = {"concat": "Concat", "none": "Concat", "sum": "Add", "mul": "Mul", "ave": "Mean"}


def _elem_type(onnx, dtype_name):
    return {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}[dtype_name]


def build_model(node, H, dtype_name, layout, bias, direction, merge, depth, lens):
    """The ONNX model of ``depth`` layers of ``node`` (a ``Node``), each ``direction`` ("forward",
    "reverse", "bidirectional"; a bidirectional layer's two outputs merged by ``merge`` in the graph),
    with the weights, initial states and (``lens``) ``sequence_lens`` as inputs. Graph inputs: X, then
    per layer k: W{k}, R{k}, (B{k}), initial_h{k}, (initial_c{k}), (P{k}: the node's peepholes); sequence_lens.
    Outputs per layer:
    Y{k}, Y_h{k}, (Y_c{k}) and, bidirectional, y{k} (the merged output, in X's layout)."""
    onnx, _ = import_onnxruntime()
    helper = onnx.helper
    et = _elem_type(onnx, dtype_name)
    dirs = 2 if direction == "bidirectional" else 1
    axis = 1 if layout == 0 else 2  # Y's num_directions axis
    inputs, outputs, nodes, constants = [helper.make_tensor_value_info("X", et, [None] * 3)], [], [], []
    if lens:
        inputs.append(helper.make_tensor_value_info("sequence_lens", onnx.TensorProto.INT32, [None]))
    constants.append(helper.make_tensor("direction_axis", onnx.TensorProto.INT64, [1], [axis]))
    x = "X"
    for k in range(depth):
        names = [f"W{k}", f"R{k}"] + ([f"B{k}"] if bias else [])
        inputs += [helper.make_tensor_value_info(n, et, [None] * (2 if n.startswith("B") else 3)) for n in names]
        states = [f"{_STATE_INPUTS[s]}{k}" for s in node.states]
        inputs += [helper.make_tensor_value_info(n, et, [None] * 3) for n in states]
        node_inputs = [x] + names + ([] if bias else [""]) + (["sequence_lens"] if lens else [""]) + states
        if node.peepholes:
            inputs.append(helper.make_tensor_value_info(f"P{k}", et, [None] * 2))
            node_inputs.append(f"P{k}")
        produced = [f"Y{k}", f"Y_h{k}"] + ([f"Y_c{k}"] if "c0" in node.states else [])
        nodes.append(helper.make_node(node.op, node_inputs, produced, name=f"layer{k}", hidden_size=H,
                                      direction=direction, layout=layout,
                                      activations=list(node.activations) * dirs,
                                      **{k: list(v) * dirs if k.startswith("activation_") else v
                                         for k, v in node.attributes}))
        outputs += [helper.make_tensor_value_info(produced[0], et, [None] * 4)]
        outputs += [helper.make_tensor_value_info(n, et, [None] * 3) for n in produced[1:]]
        if dirs == 2:
            halves = [f"Y{k}_forward", f"Y{k}_reverse"]
            nodes.append(helper.make_node("Split", [f"Y{k}"], [h + "_4d" for h in halves], axis=axis))
            nodes += [helper.make_node("Squeeze", [h + "_4d", "direction_axis"], [h]) for h in halves]
            merge_kw = {"axis": -1} if _MERGE_OPS[merge] == "Concat" else {}
            nodes.append(helper.make_node(_MERGE_OPS[merge], halves, [f"y{k}"], **merge_kw))
            outputs.append(helper.make_tensor_value_info(f"y{k}", et, [None] * 3))
            x = f"y{k}"
        else:
            nodes.append(helper.make_node("Squeeze", [f"Y{k}", "direction_axis"], [f"Y{k}_sequence"]))
            x = f"Y{k}_sequence"
    graph = helper.make_graph(nodes, f"{node.op.lower()}-{depth}-{direction}", inputs, outputs, initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gatecheck")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


# The engines that run a graph: name -> (model -> a function of the feeds returning {output name: array}).
def _onnxruntime(model):
    sess = ort_session(model)
    names = [o.name for o in sess.get_outputs()]
    return lambda feeds: dict(zip(names, sess.run(None, feeds), strict=True))


def _onnx_reference(model):
    import_onnxruntime()
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(model)
    return lambda feeds: dict(zip(evaluator.output_names, evaluator.run(None, feeds), strict=True))


ENGINES = {"onnxruntime": _onnxruntime, "onnx-reference": _onnx_reference}


@functools.lru_cache(maxsize=None)
def session(engine, node, H, dtype_name, layout, bias, direction, merge, depth, lens):
    """``build_model``'s graph in ``engine``, built once per process and argument set: a function of the
    feeds returning {output name: array}. ``engine``: a key of ``ENGINES``, or a function like their
    values (an ONNX model -> that function of the feeds), through which another engine's folder runs
    these graphs."""
    load = ENGINES[engine] if isinstance(engine, str) else engine
    return load(build_model(node, H, dtype_name, layout, bias, direction, merge, depth, lens))


def engine_name(engine):
    """How messages name an engine (a key of ``ENGINES`` or a function of a model: its name)."""
    return engine if isinstance(engine, str) else engine.__name__


def run(engine, node, layout, inputs, options=()):
    """The forward quantities of ``node`` in ``engine`` (see ``session``) with ``layout`` on canonical
    inputs under ``options`` (see the module docstring)."""
    masking = opts.masking(options)
    if masking and masking != opts.MASKS["len"]:
        raise ValueError(f"options {list(options)}: ONNX's sequence_lens takes right-padded rows (len) only")
    other = [o for o in options if not opts.OPTIONS[o].structural and o not in ("nobias", "rev")
             and o not in node.activation_options | node.node_options]
    if other:
        raise ValueError(f"options {list(options)}: the ONNX {node.op} node has no {other}")
    node = node.under(options)
    merge, depth = structured.structure(options)
    direction = "bidirectional" if merge else "reverse" if "rev" in options else "forward"
    bias = "nobias" not in options
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    compute = session(engine, node, H, x.dtype.name, layout, bias, direction, merge, depth, bool(masking))
    names = structured.suffixes(options)
    dirs = 2 if merge else 1
    feeds = {"X": onnx_layout.sequence_to_onnx(x, layout)}
    if masking:
        feeds["sequence_lens"] = structured.right_padded_lengths(inputs[layers.MASK]).astype(np.int32)
    for k in range(depth):
        parts = [structured.part(inputs, s) for s in names[k * dirs:(k + 1) * dirs]]
        weights = onnx_layout.stack_directions([onnx_layout.to_onnx(node.kind, p) for p in parts])
        feeds.update({f"{n}{k}": v for n, v in weights.items()})
        for s in node.states:
            feeds[f"{_STATE_INPUTS[s]}{k}"] = onnx_layout.states_to_onnx([p[s] for p in parts], layout)
    found = compute(feeds)
    output = "out" if masking else "h"
    out = {}
    for k in range(depth):
        suffix = names[k * dirs:(k + 1) * dirs]
        sequences = onnx_layout.outputs_from_onnx(found[f"Y{k}"], layout)
        finals_h = onnx_layout.states_from_onnx(found[f"Y_h{k}"], layout)
        for d, s in enumerate(suffix):
            out[output + s] = sequences[d]
            if masking:  # compared as hT
                out["hT" + s] = finals_h[d]
                continue
            final = sequences[d][:, 0] if d == 1 or direction == "reverse" else sequences[d][:, -1]
            if not np.array_equal(finals_h[d], final):  # not compared: it must be Y's final step
                raise RuntimeError(f"{engine_name(engine)} {node.op}: Y_h{k} of direction {d} is not Y{k}'s final step "
                                   f"(greatest difference {np.abs(finals_h[d] - final).max():.3g})")
        if "c0" in node.states:
            out.update({"cT" + s: c for s, c in zip(suffix, onnx_layout.states_from_onnx(found[f"Y_c{k}"], layout),
                                                     strict=True)})
        if merge:
            out["y" + (layers.LAYER if k else "")] = onnx_layout.sequence_from_onnx(found[f"y{k}"], layout)
    return out


def observed(node, options):
    """What the oracles return under structural options: every layer's and direction's output (h, or
    out under len), the final states it returns (the LSTM's cT; hT under len), each bidirectional
    layer's y."""
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    output = "out" if masking else "h"
    finals = (("cT",) if "c0" in node.states else ()) + (("hT",) if masking else ())
    names = []
    for n, s in enumerate(structured.suffixes(options)):
        names += [output + s] + [q + s for q in finals]
        if merge and n % 2:
            names.append("y" + (layers.LAYER if n > 1 else ""))
    return tuple(names)


# --- the module's oracles ------------------------------------------------------------------------

OFFERED = frozenset({"nobias", "rev", "bi", "bisum", "bimul", "biave", "binone", "L2", "len"})
_NO_GRADIENT = "an inference engine: it computes the forward pass only, no gradient of any input"
_INSIDE = "dL/dh_t: no gradient is computed (and the recurrent path stays inside the node)"
# ONNX Runtime's CPU kernels compute the recurrent nodes in float32 only: RNN has no float64 kernel
# (a float64 graph fails to load, NOT_IMPLEMENTED); LSTM and GRU load one that raises when run ("LSTM
# operator does not support double yet"). tests/engines/onnx/test_onnx.py checks that this still holds.
_F64 = {"f64": "onnxruntime's CPU kernels of LSTM, GRU and RNN compute float32 only (RNN has no float64 kernel; "
               "LSTM's and GRU's raise 'operator does not support double yet' when run)"}
# ONNX Runtime's CPU kernels refuse layout=1 ("Batchwise recurrent operations (layout == 1) are not
# supported", microsoft/onnxruntime#7687): its oracles build layout=0 graphs; the onnx package's own
# evaluator runs layout=1, so that the graph and the remaps are exercised in both layouts.
# onnx.reference's RNN evaluator knows the activations Tanh and Affine only: any other raises "Unknown activation
# function" when the evaluator is built (onnx/reference/ops/op_rnn.py, choose_act; onnx 1.23). Its LSTM and GRU
# ignore the activations attribute altogether (sigmoid and tanh fixed in op_lstm.py, op_gru.py).
_REFERENCE_KNOWS = frozenset({"tanh", "affine"})


def _REFERENCE_ACTIVATIONS(options):
    name = opts.activation(options)
    if name is None or name in _REFERENCE_KNOWS:
        return None
    return (f"onnx.reference's RNN evaluator knows the activations Tanh and Affine only; "
            f"{ACTIVATIONS[name].onnx} raises 'Unknown activation function' (onnx/reference/ops/op_rnn.py, onnx 1.23)")


ENGINE_LAYOUT = {"onnxruntime": 0, "onnx-reference": 1}
_SPELLED = {0: "layout=0: X (T, B, D), Y (T, dirs, B, H)", 1: "layout=1: X (B, T, D), Y (B, T, dirs, H)"}
_WHO = {"onnxruntime": ("ort", "onnxruntime (InferenceSession, CPU)"),
        "onnx-reference": ("onnx-reference", "onnx.reference.ReferenceEvaluator (the onnx package's NumPy evaluator)")}


def _cannot(node, bias):
    found = {"dh": _INSIDE, "dW": _NO_GRADIENT, "dU": _NO_GRADIENT, "dx": _NO_GRADIENT, "dh0": _NO_GRADIENT}
    found.update({"d" + b: _NO_GRADIENT for b in bias})
    if "c0" in node.states:
        found.update(c="the LSTM node returns C_T only (Y_c); c_t for t < T stays inside the node",
                     dc=_NO_GRADIENT, dc0=_NO_GRADIENT)
    return found


def _oracle(engine, name, family, node, what, bias):
    prefix, who = _WHO[engine]
    layout = ENGINE_LAYOUT[engine]
    return Oracle(
        name=f"{prefix}-{name}",
        family=family,
        framework="onnxruntime",  # the onnx package and onnxruntime: one extra, one importer
        description=f"{who}: an ONNX {what} node (opset {OPSET}, {_SPELLED[layout]}), the weights graph inputs; "
                    f"forward only",
        observes=("h", "cT") if "c0" in node.states else ("h",),
        cannot_observe=_cannot(node, bias),
        runner=functools.partial(run, engine, node, layout),
        trace_ms=1,  # building a graph and its session: about 1 ms (either engine)
        options=OFFERED | node.activation_options | node.node_options,
        observes_structured=functools.partial(observed, node),
        declines_dtype=(lambda options, dtype: _F64.get(dtype)) if engine == "onnxruntime" else None,
        # (its LSTM and GRU run any activation given, as the defaults: gatecheck.truth.deviations)
        declines=_REFERENCE_ACTIVATIONS if engine == "onnx-reference" and node.op == "RNN" else None,
    )


def _oracles(engine):
    return (
        _oracle(engine, "lstm", "lstm", LSTM, "LSTM", ("b",)),
        _oracle(engine, "rnn", "rnn", RNN, "RNN (Tanh)", ("b",)),
        _oracle(engine, "gru", "gru", GRU, "GRU (linear_before_reset=1: reset after)", ("bx", "bh")),
        _oracle(engine, "gru-before", "gru-reset-before", GRU_BEFORE, "GRU (linear_before_reset=0: reset before)",
                ("bx", "bh")),
    )


ORACLES = _oracles("onnxruntime") + _oracles("onnx-reference")
