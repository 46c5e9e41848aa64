"""OpenVINO as oracles: its CPU plugin runs the ONNX graphs the ONNX oracles build, and the PyTorch layers
its converter reads. OpenVINO maps the recurrent layers onto its own ``LSTMSequence``, ``GRUSequence`` and
``RNNSequence`` ops; every compiled model runs with ``INFERENCE_PRECISION_HINT`` f32 stated (the CPU
plugin's default is bf16 on a CPU with AVX-512 BF16 or AMX) and ``GATECHECK_THREADS`` threads.

openvino-onnx-lstm, -rnn, -gru, -gru-before
    ``gatecheck.engines.onnx.oracles.build_model``'s graph in ``layout=0`` (X (T, B, D)), read by
    ``Core.read_model``, with the case's remapped weights made constants of the graph (``with_constants``),
    as a deployed model holds them: compiled per case. The CPU plugin then runs a forward or reverse
    sequence as one fused RNN node of its own (RNNSeq), which ignores the sequence lengths (a deviation:
    gatecheck/truth/deviations.py). Only layout=0: OpenVINO's ONNX frontend ignores ``layout``
    (openvinotoolkit/openvino#37820). Bidirectional sets are declined: compiling the graph's merge of the
    two directions aborts the process (``BI_CRASH``).
openvino-onnx-lstm-fed, -rnn-fed, -gru-fed, -gru-before-fed
    the same graphs, the weights graph inputs as the ONNX oracles feed them: compiled once per (op, H, dtype,
    options); the CPU plugin runs such a sequence as a loop of cells (TensorIterator).
openvino-torch-lstm, -gru, -rnn
    ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` (batch_first, built as the PyTorch layer oracles build them:
    ``gatecheck.engines.torch.common.layer``, the case's weights loaded through their remaps) converted by
    ``openvino.convert_model(module, example_input=...)`` per case, at a batch size and length no case has
    (``export_shape``), so a model that froze either axis fails the case. Packed sequences (``len``) are
    ``pack_padded_sequence`` / ``pad_packed_sequence`` around the layer, the lengths a model input.

Forward only: OpenVINO runs inference and has no autodiff. The oracles return what the ONNX oracles return
(every step's output of every layer and direction, the LSTM's C_T, under ``len`` the final h, each
bidirectional layer's merged output) and, for the converted layers, what torch.onnx's oracles return.

What the converter emits, and where it or the plugin stops, is data (``CONVERTS``, ``ONNX_GRAPHS``, read at
``READ_AT``): the declines derive from it, every conversion is checked against it, and
``tests/engines/openvino/test_openvino.py`` derives it afresh.
"""

import contextlib
import functools
import re
import warnings
from typing import NamedTuple

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import (
    import_onnxruntime,
    import_openvino,
    import_torch,
    openvino_telemetry_off,
    threads,
)
from gatecheck.engines.onnx import oracles as onnx_oracles
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch_onnx import oracles as torch_onnx_oracles
from gatecheck.model import options as opts
from gatecheck.reference import layers

READ_AT = {"openvino": "2026.4.1", "torch": "2.13.0"}
SEQUENCES = ("LSTMSequence", "GRUSequence", "RNNSequence")  # OpenVINO's recurrent ops
LOOPS = ("TensorIterator", "Loop")

# --- compiling -----------------------------------------------------------------------------------------

PRECISION = "f32"  # INFERENCE_PRECISION_HINT of every compiled model (the plugin's default may be bf16)


@functools.lru_cache(maxsize=None)
def core():
    """The process's ``openvino.Core``."""
    return import_openvino().Core()


def config():
    """The CPU plugin's settings of every compiled model: float32 inference stated, ``threads()`` threads."""
    return {"INFERENCE_PRECISION_HINT": PRECISION, "INFERENCE_NUM_THREADS": threads()}


def compile_cpu(model):
    """An ``openvino.Model`` compiled for the CPU with ``config()``; the precision it took is checked."""
    compiled = core().compile_model(model, "CPU", config())
    took = compiled.get_property("INFERENCE_PRECISION_HINT")
    if took != import_openvino().Type.f32:
        raise RuntimeError(f"openvino compiled a model with INFERENCE_PRECISION_HINT {took}, not {PRECISION}")
    return compiled


def runner_of(compiled):
    """A function of the feeds ({input name: array}) returning {output name: array}."""
    names = [o.get_any_name() for o in compiled.outputs]
    request = compiled.create_infer_request()

    def compute(feeds):
        found = request.infer(feeds)
        return {n: np.array(found[o]) for n, o in zip(names, compiled.outputs, strict=True)}

    return compute


def runtime_ops(compiled):
    """The layer types the CPU plugin runs for a compiled model (its runtime model's ``layerType``)."""
    return {op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ordered_ops()}


def recurrence(model):
    """What carries the recurrence of an ``openvino.Model``: its sequence ops (SEQUENCES) or loops (LOOPS)
    joined by '+', or "unrolled" (neither)."""
    found = {op.get_type_name() for op in model.get_ordered_ops()}
    return "+".join(sorted(found & set(SEQUENCES))) or "+".join(sorted(found & set(LOOPS))) or "unrolled"


# --- the ONNX graphs -----------------------------------------------------------------------------------

_WEIGHT = re.compile(r"[WRBP]\d+\Z")  # build_model's weight inputs: W{k}, R{k}, B{k}, P{k} (the LSTM's peepholes)


def with_constants(model, feeds):
    """A copy of an ONNX model whose weight inputs (``_WEIGHT``) are constants (initializers) holding
    ``feeds``' arrays; its other inputs stay."""
    onnx, _ = import_onnxruntime()
    weights = {k: v for k, v in feeds.items() if _WEIGHT.match(k)}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [i for i in copy.graph.input if i.name not in weights]
    del copy.graph.input[:]
    copy.graph.input.extend(kept)
    copy.graph.initializer.extend(onnx.numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in weights.items())
    return copy


def read_onnx(model):
    """An ONNX model (``onnx.ModelProto``) as OpenVINO's ONNX frontend reads it."""
    return core().read_model(model=model.SerializeToString())


def openvino_fed(model):
    """The engine of the openvino-onnx-*-fed oracles (``onnx_oracles.session``): the graph compiled once, its
    weights fed per case as the ONNX oracles feed them."""
    return runner_of(compile_cpu(read_onnx(model)))


def openvino_constants(model):
    """The engine of the openvino-onnx-* oracles: per case, the graph with that case's weights as constants,
    compiled."""
    def compute(feeds):
        constant = with_constants(model, feeds)
        return runner_of(compile_cpu(read_onnx(constant)))({k: v for k, v in feeds.items() if not _WEIGHT.match(k)})

    return compute


class Graph(NamedTuple):
    """How OpenVINO runs the ONNX oracles' graphs in one kind of oracle (``ONNX_GRAPHS``)."""

    suffix: str  # of the oracles' names
    weights: str  # "constants" (with_constants, compiled per case) or "inputs" (compiled once per group)
    engine: object  # the engine function onnx_oracles.run is given
    runs: str  # the CPU plugin's layer that carries the recurrence (runtime_ops), read at READ_AT


# The graphs are built in layout=0 (X (T, B, D)): OpenVINO's ONNX frontend ignores the layout attribute and reads
# a layout=1 graph as layout=0 (openvinotoolkit/openvino#37820, open; the fix is openvinotoolkit/openvino#38183):
# its outputs come back with the batch and time axes mixed up, empty where B > T, and the process can abort
# afterwards. tests/engines/openvino/test_openvino.py checks that this still holds (when it fails, add layout=1
# oracles).
LAYOUT = 0
ONNX_GRAPHS = {
    "constants": Graph("", "constants", openvino_constants, "RNNSeq"),
    "inputs": Graph("-fed", "inputs", openvino_fed, "TensorIterator"),
}
READS = {"LSTM": "LSTMSequence", "GRU": "GRUSequence", "RNN": "RNNSequence"}  # read_model's op of each node
BI_CRASH = ("compile_model aborts the process ('free(): invalid pointer') on a layout=0 graph where a "
            "bidirectional node's Y is split into its two directions on the num_directions axis (Split, Squeeze, "
            "then the merge), the weights constants or inputs alike (the node alone compiles) [none found: searched "
            "the openvinotoolkit/openvino issues for bidirectional LSTMSequence / RNN crashes and 'free(): invalid "
            "pointer' in compile_model]; openvino-torch-* run bidirectional layers")


GRU_NOBIAS_FED = ("Core.read_model refuses the node: the ONNX frontend fills the omitted B of a GRU with "
                  "linear_before_reset=1 from W's shape, which is dynamic when W is a graph input ('While validating "
                  "ONNX node ... to_shape was called on a dynamic shape') [none found: searched the "
                  "openvinotoolkit/openvino issues for GRU linear_before_reset without B]; with the weights constants "
                  "(openvino-onnx-gru) it runs")


HARD_SIGMOID = ("compile_model raises 'Unsupported activation function' ([LSTMCellDecomposition] or "
                "[GRUCellDecomposition]): the CPU plugin builds a cell's gates from the activations relu, sigmoid and "
                "tanh only, and HardSigmoid is none of them, whether the sequence op runs fused or as cells [none "
                "found: searched the openvinotoolkit/openvino issues for HardSigmoid in LSTM / GRU activations]")


# OpenVINO's ONNX frontend reads the LSTM's P and input_forget and then builds a v5::LSTMSequence, which has neither
# (src/frontends/onnx/frontend/src/op/lstm.cpp, opset_1::lstm): both are dropped. With the weights constants that is a
# deviation (gatecheck.truth.deviations); with P a graph input, the read model has no input P left to feed.
PEEPHOLES_FED = ("the ONNX frontend drops the LSTM's P (it converts it, then builds a v5::LSTMSequence, which has no "
                 "peepholes: src/frontends/onnx/frontend/src/op/lstm.cpp), so with P a graph input the model read has "
                 "no input P ('Port for tensor name P0 was not found' when fed); openvino-onnx-lstm (P a constant, "
                 "dropped: a deviation) runs the peep cases")


def _graph_declines(node, graph, options):
    if graph.weights == "inputs" and "peep" in options:
        return f"{PEEPHOLES_FED} (read at openvino {READ_AT['openvino']})"
    if opts.merge(options):
        return f"{BI_CRASH} (read at openvino {READ_AT['openvino']})"
    if opts.recurrent_activation(options):
        return f"{HARD_SIGMOID} (read at openvino {READ_AT['openvino']})"
    if (graph.weights == "inputs" and "nobias" in options and node.op == "GRU"
            and dict(node.attributes).get("linear_before_reset")):
        return f"{GRU_NOBIAS_FED} (read at openvino {READ_AT['openvino']})"
    return None


# --- the PyTorch layers --------------------------------------------------------------------------------


class Outcome(NamedTuple):
    """What ``openvino.convert_model`` makes of a torch layer under some options."""

    emits: str = ""  # the recurrence of the converted model (``recurrence``), "" where it fails
    fails: str = ""  # "convert" where convert_model raises
    says: str = ""  # the words of that error (a part of its message, verbatim)
    why: str = ""
    issue: str = ""

    def declined(self):
        """Why an oracle does not run it (None: it runs)."""
        if not self.fails:
            return None
        return f"openvino.convert_model raises: '{self.says}': {self.why} [{self.issue}]"


_PACKED = Outcome(fails="convert", says="prim::PackPadded",
                  why="the PyTorch frontend has no conversion of pack_padded_sequence in front of nn.GRU or nn.RNN "
                      "(its PackPadded marks are resolved for nn.LSTM only)",
                  issue="none found: searched the openvinotoolkit/openvino issues for PackPadded, "
                        "pack_padded_sequence and packed GRU / RNN conversion")
# torch module -> rules, the first whose options are all in a set decides it.
CONVERTS = {
    "LSTM": (
        (("proj",), Outcome(fails="convert", says="SequenceMark",
                            why="nn.LSTM(proj_size=P) is not converted: the frontend's aten::lstm translation has no "
                                "projection (LSTMSequence has none) and leaves the layer unconverted",
                            issue="none found: searched the openvinotoolkit/openvino issues for LSTM proj_size "
                                  "conversion")),
        ((), Outcome("LSTMSequence")),
    ),
    "GRU": ((("len",), _PACKED), ((), Outcome("GRUSequence"))),
    "RNN": ((("len",), _PACKED), ((), Outcome("RNNSequence"))),
}


def outcome(module, options):
    """The recorded ``Outcome`` of converting a torch module ("LSTM", ...) under options, and the rule's options."""
    for rule, found in CONVERTS[module]:
        if set(rule) <= set(options):
            return found, rule
    raise LookupError(f"{module}: no rule for options {list(options)}")


def converted_table():
    """The recorded tables as lines: what the converter emits per torch module and options, and what the
    ONNX frontend and the CPU plugin make of the ONNX graphs."""
    lines = [f"read at openvino {READ_AT['openvino']}, torch {READ_AT['torch']}"]
    for module, rules in CONVERTS.items():
        for rule, found in rules:
            what = found.declined() or f"emits {found.emits}"
            lines.append(f"convert_model nn.{module} {','.join(rule) or '(otherwise)'}: {what}")
    for graph in ONNX_GRAPHS.values():
        lines.append(f"ONNX graphs, layout={LAYOUT}, weights {graph.weights}: read as {', '.join(READS.values())}; "
                     f"the CPU plugin runs {graph.runs}; bi* declined (the crash)")
    return lines


def export_shape(B, T):
    """The batch size and length a layer is converted at for a case of B, T (torch.onnx's oracles' rule:
    never the case's, never 0 or 1)."""
    return torch_onnx_oracles.export_shape(B, T)


@functools.lru_cache(maxsize=None)
def _wrapper():
    """The converted module: packs (under a mask), runs the layer, pads back to T; returns the sequence
    and every final state."""
    torch = import_torch()

    class Converted(torch.nn.Module):
        def __init__(self, rnn, states, packed):
            super().__init__()
            self.rnn, self.states, self.packed = rnn, states, packed

        def forward(self, x, *rest):
            initial = tuple(rest[:self.states]) if self.states > 1 else rest[0]
            seq = x
            if self.packed:
                seq = torch.nn.utils.rnn.pack_padded_sequence(x, rest[self.states], batch_first=True,
                                                              enforce_sorted=False)
            seq, finals = self.rnn(seq, initial)
            if self.packed:
                seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
            return (seq,) + (finals if isinstance(finals, tuple) else (finals,))

    return Converted


def _example(model, options, inputs, B, T):
    """Example inputs of a conversion at batch B and length T (the case's widths and dtype)."""
    torch = import_torch()
    rng = np.random.default_rng(0)
    dtype = inputs["x"].dtype
    n = len(structured.suffixes(options))
    x = rng.uniform(-1, 1, (B, T, inputs["x"].shape[2])).astype(dtype)
    states = [rng.uniform(-1, 1, (n, B, inputs[k].shape[1])).astype(dtype) for k in model.states]
    lengths = ([torch.from_numpy(np.array([1 + (2 * i + T - 1) % T for i in range(B)], np.int64))]
               if opts.masking(options) else [])
    return tuple([torch.from_numpy(x)] + [torch.from_numpy(s) for s in states] + lengths)


@contextlib.contextmanager
def _quiet_conversion(torch):
    """The warnings of a conversion that are no finding (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        # torch (2.9 and later) on torch.jit.trace and trace_method, which OpenVINO's PyTorch frontend calls on a
        # module given with example_input: TorchScript is deprecated. The tracer is what convert_model uses by
        # default (dynamo=False).
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.(trace|trace_method)` is deprecated",
                                category=DeprecationWarning)
        # torch.jit's tracer (convert_model traces the module) on the argument checks of nn.RNNBase and of
        # pad_packed_sequence: tensors read as Python bools and ints; the checks pass, and no value of the model
        # depends on them.
        warnings.filterwarnings("ignore", message="Converting a tensor to a Python (boolean|integer)",
                                category=torch.jit.TracerWarning, module=r"torch\.nn\.(modules|utils)\.rnn")
        yield


def convert(module, model, options, example):
    """``openvino.convert_model`` of a torch layer (``module``) in the wrapper, at the example's shapes."""
    ov = import_openvino()
    torch = import_torch()
    wrapped = _wrapper()(module, len(model.states), bool(opts.masking(options))).eval()
    with _quiet_conversion(torch), model.torch_context(), openvino_telemetry_off():
        return ov.convert_model(wrapped, example_input=example)


def _checked(converted, module, options):
    """The converted model, if it carries what ``CONVERTS`` records; else a clear error (the converter changed)."""
    found, _ = outcome(module, options)
    got = recurrence(converted)
    if got != found.emits:
        raise RuntimeError(f"openvino.convert_model of nn.{module} under {list(options) or 'no options'} now emits "
                           f"{got}; CONVERTS (read at openvino {READ_AT['openvino']}) records {found.emits}")
    return converted


def run_torch(family, inputs, options=()):
    """A family's torch layer on canonical inputs, converted by OpenVINO and run on its CPU plugin at the case's
    batch size and length: its forward quantities (``structured.observed`` less every gradient)."""
    options = tuple(options)
    base = torch_onnx_oracles.MODELS[family]
    declined = outcome(base.torch_module, options)[0].declined()
    if declined:
        raise ValueError(f"options {list(options)}: {declined}")
    model = structured.modelled(base, options)
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    if merge not in (None, "concat") or masking not in (None, opts.MASKS["len"]):
        raise ValueError(f"options {list(options)}: PyTorch's layers concatenate their directions and take packed "
                         f"sequences (len) only")
    import_openvino()
    x = inputs["x"]
    module = torch_common.layer(model, options, inputs).eval()
    example = _example(model, options, inputs, *export_shape(*x.shape[:2]))
    compiled = compile_cpu(_checked(convert(module, model, options, example), base.torch_module, options))
    names = structured.suffixes(options)
    feeds = [x] + [np.stack([inputs[k + s] for s in names]) for k in model.states]
    if masking:
        feeds.append(structured.right_padded_lengths(inputs[layers.MASK]).astype(np.int64))
    found = compiled(feeds)
    seq, *finals = (np.array(found[o]) for o in compiled.outputs)
    out = {}
    for q, (index, _) in structured.final_states(model, options).items():
        out.update({q + s: finals[index][n] for n, s in enumerate(names)})
    out.update(structured.top_outputs(seq, merge, depth, masking))
    return out


# --- the oracles ---------------------------------------------------------------------------------------

_NO_GRADIENT = "OpenVINO runs inference: it has no autodiff, so no gradient of any input is computed"
# The CPU plugin computes a float64 model in float32: its inputs and outputs stay float64, but the plugin
# converts the model's float64 to float32 when it compiles it (there is no float64 kernel of the sequence ops,
# and INFERENCE_PRECISION_HINT takes f32, bf16 or f16 only); a float64 case then differs from the reference
# by float32 rounding. tests/engines/openvino/test_openvino.py checks that this still holds.
F64 = (f"OpenVINO's CPU plugin computes a float64 model in float32 (its float64 inputs and outputs are converted "
       f"at the model's edges; INFERENCE_PRECISION_HINT has no f64), so a float64 case would be judged on float32 "
       f"numbers (read at openvino {READ_AT['openvino']})")
_INSIDE = "the recurrent op returns C_T only; c_t for t < T stays inside it"
_NAMES = {"lstm": "lstm", "rnn": "rnn", "gru": "gru", "gru-reset-before": "gru-before"}
_NODES = {"lstm": onnx_oracles.LSTM, "rnn": onnx_oracles.RNN, "gru": onnx_oracles.GRU,
          "gru-reset-before": onnx_oracles.GRU_BEFORE}
_BIASES = {"lstm": ("b",), "rnn": ("b",), "gru": ("bx", "bh"), "gru-reset-before": ("bx", "bh")}
_GRADIENTS = {"lstm": ("dW", "dU", "db", "dx", "dh0", "dc0"), "gru": ("dW", "dU", "dbx", "dbh", "dx", "dh0"),
              "rnn": ("dW", "dU", "db", "dx", "dh0")}


def _cannot(family, node):
    found = {"dh": _NO_GRADIENT, "dW": _NO_GRADIENT, "dU": _NO_GRADIENT, "dx": _NO_GRADIENT, "dh0": _NO_GRADIENT}
    found.update({"d" + b: _NO_GRADIENT for b in _BIASES[family]})
    if "c0" in node.states:
        found.update(c=_INSIDE, dc=_NO_GRADIENT, dc0=_NO_GRADIENT)
    return found


def _declines_f64(options, dtype):
    return F64 if dtype == "f64" else None


def _onnx_oracle(family, graph):
    node = _NODES[family]
    weights = ("the weights constants of the graph (compiled per case, as a deployed model holds them)"
               if graph.weights == "constants" else "the weights graph inputs (compiled once per H, dtype and options)")
    return Oracle(
        name=f"openvino-onnx-{_NAMES[family]}{graph.suffix}",
        family=family,
        framework="openvino",
        description=f"OpenVINO {READ_AT['openvino']} (Core.read_model, compile_model on the CPU, "
                    f"INFERENCE_PRECISION_HINT f32): the ONNX {node.op} graph of the ONNX oracles "
                    f"(opset {onnx_oracles.OPSET}, layout={LAYOUT}), read as {READS[node.op]}, {weights}; the "
                    f"CPU plugin runs it as {graph.runs}; forward only",
        observes=("h", "cT") if "c0" in node.states else ("h",),
        cannot_observe=_cannot(family, node),
        runner=functools.partial(onnx_oracles.run, graph.engine, node, LAYOUT),
        trace_ms=150 if graph.weights == "inputs" else 0,  # a compile: 0.1 to 0.2 s (per case under constants)
        options=onnx_oracles.OFFERED | node.activation_options | node.node_options,
        observes_structured=functools.partial(onnx_oracles.observed, node),
        declines=functools.partial(_graph_declines, node, graph),
        declines_dtype=_declines_f64,
    )


_TORCH_OPTIONS = {"lstm": frozenset({"nobias", "proj"}) | torch_common.STRUCTURES,
                  "gru": frozenset({"nobias"}) | torch_common.STRUCTURES,
                  "rnn": frozenset({"nobias", "relu"}) | torch_common.STRUCTURES}
_BLIND = {"lstm": {"c": _INSIDE, "dh": _NO_GRADIENT, "dc": _NO_GRADIENT}, "gru": {"dh": _NO_GRADIENT},
          "rnn": {"dh": _NO_GRADIENT}}


def _torch_declines(family):
    module = torch_onnx_oracles.MODELS[family].torch_module

    def declines(options):
        why = outcome(module, options)[0].declined()
        return why and f"{why} (read at openvino {READ_AT['openvino']}, torch {READ_AT['torch']})"

    return declines


def _torch_runner(family):
    def runner(inputs, options=()):
        return run_torch(family, inputs, options)

    return runner


def _torch_oracle(family):
    base = torch_onnx_oracles.MODELS[family]
    emits = outcome(base.torch_module, ())[0].emits
    return Oracle(
        f"openvino-torch-{family}", family, "openvino",
        f"torch.nn.{base.torch_module} converted by openvino.convert_model(module, example_input=...) per case, run "
        f"on the CPU plugin (INFERENCE_PRECISION_HINT f32); the converter emits {emits} (openvino "
        f"{READ_AT['openvino']}, torch {READ_AT['torch']}); forward only",
        observes=("h", "cT") if family == "lstm" else ("h",),
        cannot_observe=dict(_BLIND[family], **{q: _NO_GRADIENT for q in _GRADIENTS[family]}),
        runner=_torch_runner(family),
        trace_ms=0,  # a conversion per case: 0.4 to 0.6 s, in the case's own time
        options=_TORCH_OPTIONS[family],
        observes_structured=lambda options: tuple(
            q for q in structured.observed(base, options, merged_apart=True) if not q.startswith("d")),
        declines=_torch_declines(family),
        declines_dtype=_declines_f64,
    )


ORACLES = (tuple(_onnx_oracle(f, g) for g in ONNX_GRAPHS.values() for f in _NAMES)
           + tuple(_torch_oracle(f) for f in ("lstm", "gru", "rnn")))
