"""PyTorch's ONNX exporters as oracles: ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` (batch_first, the
layers of torch-lstm-layer, torch-gru-layer and torch-rnn-layer, with their options) exported by
``torch.onnx.export`` and run in onnxruntime.

torch-onnx-lstm, -gru, -rnn      the TorchScript-based exporter (``dynamo=False``; torch 2.13 still has
                                 it and warns that it is deprecated), exported per case with the case's
                                 weights in the module, as by default (``export_params``, constant
                                 folding): 25 to 80 ms a case.
torch-dynamo-lstm, -gru, -rnn    the torch.export-based exporter (``dynamo=True``), exported once per
                                 (D, H, dtype, options) with the parameters as graph inputs
                                 (``torch.func.functional_call`` in the exported module), so that the
                                 exporter's own weight rewriting (gate blocks into ONNX's i,o,f,c or
                                 z,r,h, the bias pair into one B) is inside the graph that runs per case;
                                 a case feeds its weights. 2 to 3 s an export.

Both export with dynamic batch and time axes at a batch size and sequence length that differ from
the case's (``export_shape``), so a graph that froze either dimension fails the case (onnxruntime
refuses the shape). The case's canonical weights reach the torch module through the remaps the
PyTorch oracles use (``gatecheck.engines.keras.layout``, ``rnn_layout``, ``gru_layout``, ``torch_proj``),
looked up when a case runs. Packed sequences (``len``) are ``pack_padded_sequence`` /
``pad_packed_sequence`` inside the exported module, with the lengths a graph input.

Forward only: an inference session has no gradients. The oracles return h (the output under a
mask, y and each direction's output when bidirectional), the LSTM's C_T and, under a mask, every
final state.

What each exporter emits, and what does not export or run, is data (``EXPORTS``, read at
``READ_AT``): the oracles' declines derive from it, every export is checked against it, and
``tests/engines/torch_onnx/test_torch_onnx.py`` derives it afresh from exported graphs.
"""

import contextlib
import functools
import io
import logging
import warnings
from typing import NamedTuple

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import (
    import_torch_onnx,
    onnx_nodes,
    ort_session,
    quiet_stderr,
)
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch import gru as torch_gru
from gatecheck.engines.torch import gru_layout as torch_gru_layout
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.engines.torch import lstm as torch_oracle
from gatecheck.engines.torch import proj as torch_proj
from gatecheck.engines.torch import rnn as torch_rnn
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout
from gatecheck.model import options as opts
from gatecheck.reference import layers

# --- what the exporters make of each module (data) ---------------------------------------------------

READ_AT = {"torch": "2.13.0", "onnxscript": "0.7.2", "onnxruntime": "1.32.0"}
EXPORTERS = ("torchscript", "dynamo")
FUSED = ("LSTM", "GRU", "RNN")  # ONNX's recurrent nodes


class Outcome(NamedTuple):
    """What an exporter makes of a module under some options."""

    emits: str = ""  # the recurrence in the graph: a fused ONNX node (FUSED), "Loop", "Scan", or "unrolled"
    frozen_time: bool = False  # the graph's time axis is the export example's length
    fails: str = ""  # where it stops: "export" (torch.onnx.export raises), "session" or "run" (onnxruntime refuses)
    says: str = ""  # the words of that error (a part of its message, verbatim)
    why: str = ""  # what it comes from, as found
    issue: str = ""  # the upstream report, or "none found" with what was searched

    def declined(self):
        """Why an oracle does not run it (None: it runs)."""
        if not self.fails:
            return None
        where = {"export": "torch.onnx.export raises", "session": "onnxruntime refuses the exported graph",
                 "run": "onnxruntime refuses to run the exported graph on the case"}[self.fails]
        return f"{where}: '{self.says}': {self.why} [{self.issue}]"


_PACKED_DYNAMO = Outcome(
    fails="export", says="GuardOnDataDependentSymNode",
    why="torch.export cannot trace a packed sequence: the number of steps (pack_padded_sequence's batch_sizes) is "
        "data-dependent (it guards on it, or reads it as an integer), and the packed layer (aten.lstm.data, gru.data, rnn_tanh.data) decomposes into a Python "
        "loop over it", issue="pytorch#171978")
_PROJ_DYNAMO = ("onnxscript's aten_lstm ignores the projection (ONNX's LSTM has none): it takes the hidden size "
                "from h0's width (P) and reads the parameters four (two without bias) per direction, weight_hr "
                "not among them, ")
_NO_PROJ_ISSUE = "none found (searched pytorch and onnxscript for LSTM proj_size / projections in the ONNX export)"
def _rnn_frozen(op):
    return Outcome("unrolled", frozen_time=True, fails="run", says="Got invalid dimensions for input: x",
                   why=f"the time axis is frozen at the export example's length: nn.RNN ({op}) has no "
                       "while_loop decomposition, so torch.export unrolls the steps and torch.onnx pins the "
                       "dynamic time axis to the example's",
                   issue="pytorch#184872 gave one to the LSTM and the GRU only; pytorch#191855 is the same "
                         "freeze of another pattern")


# (exporter, torch module) -> rules, the first whose options are all in a set decides it.
EXPORTS = {
    ("torchscript", "LSTM"): (
        (("proj",), Outcome(fails="export", says="Unsupported: ONNX export of operator LSTM, LSTMs with projections",
                            why="ONNX's LSTM has no projection, and the TorchScript exporter builds no other graph "
                                "for nn.LSTM(proj_size=P)", issue=_NO_PROJ_ISSUE)),
        ((), Outcome("LSTM")),
    ),
    ("torchscript", "GRU"): (((), Outcome("GRU")),),
    ("torchscript", "RNN"): (((), Outcome("RNN")),),
    ("dynamo", "LSTM"): (
        (("len",), _PACKED_DYNAMO),
        (("proj", "bi", "L2"), Outcome("LSTM", fails="session", says="[ShapeInferenceError] Can't merge shape info",
                                       why=_PROJ_DYNAMO + "and the layers' weights no longer fit together",
                                       issue=_NO_PROJ_ISSUE)),
        (("proj", "bi"), Outcome("LSTM", fails="session",
                                 says="[ShapeInferenceError] All inputs to Concat must have same rank",
                                 why=_PROJ_DYNAMO + "and the directions' weights no longer fit together",
                                 issue=_NO_PROJ_ISSUE)),
        (("proj", "L2"), Outcome("LSTM", fails="session",
                                 says="[ShapeInferenceError] All inputs to Concat must have same rank",
                                 why=_PROJ_DYNAMO + "and the layers' weights no longer fit together",
                                 issue=_NO_PROJ_ISSUE)),
        (("proj",), Outcome("LSTM", fails="run", says="Input initial_c must have shape",
                            why=_PROJ_DYNAMO + "so the cell state c0 (width H) no longer fits", issue=_NO_PROJ_ISSUE)),
        ((), Outcome("LSTM")),
    ),
    ("dynamo", "GRU"): ((("len",), _PACKED_DYNAMO), ((), Outcome("GRU"))),
    ("dynamo", "RNN"): (
        (("len",), _PACKED_DYNAMO),
        (("relu",), _rnn_frozen("aten.rnn_relu")),
        ((), _rnn_frozen("aten.rnn_tanh")),
    ),
}
# onnxruntime's CPU kernels of the fused nodes take float32 only: what it says in float64.
ORT_FLOAT64 = {"LSTM": "LSTM operator does not support double yet",
               "GRU": "GRU operator does not support double yet",
               "RNN": "Could not find an implementation for RNN(14) node"}


def outcome(exporter, module, options):
    """The recorded ``Outcome`` of an exporter on a torch module ("LSTM", ...) under options, and the
    rule's own options (what the tests export to read it afresh)."""
    for rule, found in EXPORTS[(exporter, module)]:
        if set(rule) <= set(options):
            return found, rule
    raise LookupError(f"{exporter} {module}: no rule for options {list(options)}")


def emitted_table():
    """The recorded table as lines: exporter, module, options, what it emits or why it does not run."""
    lines = [f"read at torch {READ_AT['torch']}, onnxscript {READ_AT['onnxscript']}, "
             f"onnxruntime {READ_AT['onnxruntime']}"]
    for (exporter, module), rules in EXPORTS.items():
        for rule, found in rules:
            what = "" if found.fails == "export" else f"emits {found.emits}" + (
                " with a frozen time axis" if found.frozen_time else "")
            what = "; ".join(w for w in (what, found.declined()) if w)
            lines.append(f"{exporter} {module} {','.join(rule) or '(otherwise)'}: {what}")
    return lines


# --- the families ------------------------------------------------------------------------------------


def _load_lstm(module, inputs, suffix):
    torch_common.load(module, inputs, suffix, torch_layout.to_torch)  # looked up when called: a test may patch it


def _load_lstm_proj(module, inputs, suffix):
    torch_common.load(module, inputs, suffix, torch_proj.to_torch)


def _load_gru(module, inputs, suffix):
    torch_common.load(module, inputs, suffix, torch_gru_layout.to_torch)


def _load_rnn(module, inputs, suffix):
    torch_common.load(module, inputs, suffix, torch_rnn_layout.to_torch)


# The PyTorch layer oracles' models (gatecheck.engines.structured.Model) with loaders of our own; only the
# forward quantities of their records are returned here.
_LSTM = torch_oracle.MODEL._replace(torch_load=_load_lstm)
MODELS = {
    "lstm": _LSTM._replace(own={"proj": _LSTM.own["proj"]._replace(torch_load=_load_lstm_proj)}),
    "gru": torch_gru.TORCH_MODEL._replace(torch_load=_load_gru),
    "rnn": torch_rnn.TORCH_MODEL._replace(torch_load=_load_rnn),
}
_OPTIONS = {"lstm": frozenset({"nobias", "proj"}) | torch_common.STRUCTURES,
            "gru": frozenset({"nobias"}) | torch_common.STRUCTURES,
            "rnn": frozenset({"nobias", "relu"}) | torch_common.STRUCTURES}


def export_shape(B, T):
    """The batch size and length an export is traced at for a case of B, T: 5 and 3 unless the case has
    them (then 6, 4), so that neither is ever the case's (and neither is 0 or 1, which torch.export
    specialises)."""
    return (5 if B != 5 else 6), (3 if T != 3 else 4)


def _example_lengths(B, T):
    """Valid, unsorted lengths for tracing a packed batch: 1 .. T, the longest T."""
    return np.array([1 + (2 * i + T - 1) % T for i in range(B)], np.int64)


# --- building and exporting --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _wrapper():
    """The exported module: packs (under a mask), runs the layer (with its parameters as inputs when
    given, through functional_call), pads back to T; returns the sequence and every final state."""
    torch, _, _ = import_torch_onnx()

    class Exported(torch.nn.Module):
        def __init__(self, rnn, packed):
            super().__init__()
            self.rnn = rnn
            self.packed = packed
            self.names = [name for name, _ in rnn.named_parameters()]

        def forward(self, x, states, weights, lengths):
            initial = tuple(states) if len(states) > 1 else states[0]
            seq = x
            if self.packed:
                seq = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            if weights:
                seq, finals = torch.func.functional_call(self.rnn, dict(zip(self.names, weights)), (seq, initial))
            else:
                seq, finals = self.rnn(seq, initial)
            if self.packed:
                seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
            return (seq,) + (finals if isinstance(finals, tuple) else (finals,))

    return Exported


def _module(model, options, inputs):
    """The torch layer of a case, its canonical weights loaded through the model's remaps."""
    import_torch_onnx()
    return torch_common.layer(model, options, inputs).eval()


def _example(model, options, inputs, B, T):
    """Example inputs of the export at batch B and length T (the case's widths and dtype)."""
    torch, _, _ = import_torch_onnx()
    rng = np.random.default_rng(0)
    dtype = inputs["x"].dtype
    names = structured.suffixes(options)
    x = rng.uniform(-1, 1, (B, T, inputs["x"].shape[2])).astype(dtype)
    states = [rng.uniform(-1, 1, (len(names), B, inputs[k].shape[1])).astype(dtype) for k in model.states]
    lengths = _example_lengths(B, T) if opts.masking(options) else None
    return (torch.from_numpy(x), [torch.from_numpy(s) for s in states],
            None if lengths is None else torch.from_numpy(lengths))


def _names(model, packed):
    inputs = ["x"] + list(model.states) + (["lengths"] if packed else [])
    outputs = ["seq"] + [k[:-1] + "n" for k in model.states]  # h_n, c_n as torch names them
    return inputs, outputs



@contextlib.contextmanager
def _quiet_torchscript(torch):
    """The warnings of a TorchScript-based export that are no finding (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        # torch.onnx (2.9 and later) on dynamo=False: the legacy exporter, no longer the default. It is the one
        # these oracles test.
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export",
                                category=DeprecationWarning)
        # torch.onnx's TorchScript exporter calls a helper of its own that it marked deprecated (utils.py,
        # setup_onnx_logging): "The feature will be removed".
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        # torch.jit's tracer on the argument checks of nn.RNNBase (input size; the hidden states' shape, whose
        # batch size a packed batch gives as int(batch_sizes[0])) and of pad_packed_sequence (total_length at
        # least the longest length): tensors read as Python bools and ints; the checks pass, and no value of the
        # graph depends on them.
        warnings.filterwarnings("ignore", message="Converting a tensor to a Python (boolean|integer)",
                                category=torch.jit.TracerWarning, module=r"torch\.nn\.(modules|utils)\.rnn")
        # torch.onnx's LSTM symbolic: a batch size other than 1 can fail at another batch size unless the initial
        # states are graph inputs. They are (h0, c0), and every case runs at a batch size other than the export's.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1",
                                category=UserWarning)
        # The TorchScript shape inference writes C++ warnings straight to stderr (no Python warning to
        # filter): "The shape inference of prim::PackPadded type is missing, so it may result in wrong shape
        # inference" under packed sequences, into every report. The exported graph is judged by its numbers
        # at other shapes than the export's; an export that fails still raises.
        with quiet_stderr():
            yield


@contextlib.contextmanager
def _quiet_dynamo():
    """The warnings of a torch.export-based export that are no finding (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        # torch.export on torch.func.functional_call: nn.RNNBase keeps its parameters in a list (_flat_weights)
        # that functional_call reassigns; they are the graph inputs the parameters are passed as.
        warnings.filterwarnings("ignore", message=r"The tensor attributes self\.rnn\._flat_weights",
                                category=UserWarning)
        # torch._dynamo and torch.fx (2.13) on their own calls of torch._check_is_size / LeafSpec.
        warnings.filterwarnings("ignore", message="_check_is_size will be removed", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        # torch.onnx naming the graph's dynamic axes: the parameters (no dynamic axis) and the nested lists make
        # its flat list of names shorter than the inputs, and batch is named once; the axes stay dynamic.
        warnings.filterwarnings("ignore", message="# ONNX model has different number of inputs than the flatten",
                                category=UserWarning)
        warnings.filterwarnings("ignore", message="# The axis name: .* will not be used", category=UserWarning)
        yield


def _fresh_rnn_decompositions(torch):
    """Clear the dispatch caches of aten.lstm.input and aten.gru.input before an export. torch 2.13's dynamo
    exporter swaps in while_loop decompositions of the two, which keep the time axis dynamic, by assigning
    ``OpOverload.py_kernels`` (torch/export/_patches.py); that leaves the op's dispatch cache as it was. After
    a first export the cache holds the default decomposition (a Python loop over time steps), so every later
    export in the process specialises the time axis, and torch.onnx pins it to the example's length (it
    refines the dynamic shapes from torch.export's suggested fixes, silently). A process that exports once
    gets a dynamic time axis: this makes every export of these oracles such a first one
    (``tests/engines/torch_onnx/test_torch_onnx.py`` shows the second export freezing without it)."""
    for op in (torch.ops.aten.lstm.input, torch.ops.aten.gru.input):
        op._dispatch_cache.clear()


def _export(exporter, module, model, options, example):
    """The ONNX model of a torch layer exported at the example's batch size and length, batch and time
    dynamic; the dynamo exporter's with the parameters as graph inputs (named as the module names them)."""
    torch, onnx, _ = import_torch_onnx()
    packed = example[2] is not None
    wrapped = _wrapper()(module, packed).eval()
    in_names, out_names = _names(model, packed)
    x, states, lengths = example
    if exporter == "torchscript":
        axes = {"x": {0: "batch", 1: "time"}, "seq": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
        axes.update({k: {1: "batch"} for k in in_names[1:1 + len(states)] + out_names[1:]})
        buffer = io.BytesIO()
        with _quiet_torchscript(torch), model.torch_context():
            torch.onnx.export(wrapped, (x, states, [], lengths), buffer, dynamo=False, input_names=in_names,
                              output_names=out_names, dynamic_axes={k: v for k, v in axes.items()
                                                                    if k in in_names + out_names})
        return onnx.load_from_string(buffer.getvalue())
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)  # torchvision's ops
    weights = [p.detach().clone() for p in module.parameters()]
    batch, time = torch.export.Dim("batch"), torch.export.Dim("time")
    shapes = ({0: batch, 1: time}, [{1: batch} for _ in states], [None] * len(weights), {0: batch} if packed else None)
    names = in_names[:1 + len(states)] + wrapped.names + in_names[1 + len(states):]
    _fresh_rnn_decompositions(torch)
    with _quiet_dynamo(), model.torch_context():
        program = torch.onnx.export(wrapped, (x, states, weights, lengths), dynamo=True, dynamic_shapes=shapes,
                                    input_names=names, output_names=out_names, verbose=False)
    return program.model_proto


def recurrence(model):
    """What carries the recurrence of an exported ONNX model: a fused node (FUSED), "Loop" or "Scan", or
    "unrolled" (none of them: primitive ops, one copy of the step per time step)."""
    found = {node.op_type for node in onnx_nodes(model)}
    return next((op for op in FUSED + ("Loop", "Scan") if op in found), "unrolled")


def frozen_time(model):
    """Whether an exported model's input x has a fixed length (its time axis not dynamic)."""
    x = next(i for i in model.graph.input if i.name == "x")
    return x.type.tensor_type.shape.dim[1].HasField("dim_value")


def _checked(model, exporter, module, options):
    """The model, if it carries what ``EXPORTS`` records; else a clear error (the exporter changed)."""
    found, _ = outcome(exporter, module, options)
    got = (recurrence(model), frozen_time(model))
    if got != (found.emits, found.frozen_time):
        raise RuntimeError(
            f"torch.onnx.export ({exporter}) of nn.{module} under {list(options) or 'no options'} now emits {got[0]}"
            f"{' with a frozen time axis' if got[1] else ''}; EXPORTS (read at torch {READ_AT['torch']}, onnxscript "
            f"{READ_AT['onnxscript']}) records {found.emits}{' with a frozen time axis' if found.frozen_time else ''}")
    return model


_SESSIONS = {}  # the dynamo exporter's sessions: (family, options, widths, dtype, export shape) -> session
_MAX_SESSIONS = 64


def _session(exporter, family, module, model, options, inputs, shape):
    """The onnxruntime session of a case: exported now (TorchScript, the case's weights inside), or the
    cached export of its group (dynamo, parameters as inputs)."""
    example = _example(model, options, inputs, *shape)
    if exporter == "torchscript":
        return ort_session(_checked(_export(exporter, module, model, options, example), exporter,
                                    model.torch_module, options))
    key = (family, tuple(options), inputs["x"].shape[2], tuple(inputs[k].shape[1] for k in model.states),
           inputs["x"].dtype.name, shape)
    if key not in _SESSIONS:
        if len(_SESSIONS) >= _MAX_SESSIONS:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = ort_session(_checked(_export(exporter, module, model, options, example), exporter,
                                              model.torch_module, options))
    return _SESSIONS[key]


def run(exporter, family, inputs, options=()):
    """A family's torch layer on canonical inputs, exported by ``exporter`` and run in onnxruntime at the
    case's batch size and length: its forward quantities (``structured.observed`` less every gradient)."""
    options = tuple(options)
    base = MODELS[family]
    declined = outcome(exporter, base.torch_module, options)[0].declined()
    if declined:
        raise ValueError(f"options {list(options)}: {declined}")
    model = structured.modelled(base, options)
    merge, depth = structured.structure(options)
    masking = opts.masking(options)
    if merge not in (None, "concat") or masking not in (None, opts.MASKS["len"]):
        raise ValueError(f"options {list(options)}: PyTorch's layers concatenate their directions and take packed "
                         f"sequences (len) only")
    x = inputs["x"]
    module = _module(model, options, inputs)
    session = _session(exporter, family, module, model, options, inputs, export_shape(*x.shape[:2]))
    names = structured.suffixes(options)
    feeds = {"x": x, **{k: np.stack([inputs[k + s] for s in names]) for k in model.states}}
    if masking:
        feeds["lengths"] = structured.right_padded_lengths(inputs[layers.MASK]).astype(np.int64)
    if exporter == "dynamo":
        feeds.update({name: p.detach().numpy() for name, p in module.named_parameters()})
    seq, *finals = session.run(None, feeds)
    out = {}
    for q, (index, _) in structured.final_states(model, options).items():
        out.update({q + s: finals[index][n] for n, s in enumerate(names)})
    out.update(structured.top_outputs(seq, merge, depth, masking))
    return out


# --- the oracles -------------------------------------------------------------------------------------

_NO_GRADIENT = "an onnxruntime inference session of the exported forward pass computes no gradient"
_INSIDE = "{}: inside the ONNX {} node (or the graph's loop); only the output sequence and the final states leave it"
_BLIND = {
    "lstm": {"c": _INSIDE.format("c_t for t < T", "LSTM"), "dh": _NO_GRADIENT, "dc": _NO_GRADIENT},
    "gru": {"dh": _NO_GRADIENT},
    "rnn": {"dh": _NO_GRADIENT},
}
_GRADIENTS = {"lstm": ("dW", "dU", "db", "dx", "dh0", "dc0"), "gru": ("dW", "dU", "dbx", "dbh", "dx", "dh0"),
              "rnn": ("dW", "dU", "db", "dx", "dh0")}
_OBSERVES = {"lstm": ("h", "cT"), "gru": ("h",), "rnn": ("h",)}
_EXPORT_MS = {"torchscript": 0, "dynamo": 2500}  # measured: 25-80 ms a case (not a group cost), 2-3 s an export


def _runner(exporter, family):
    def runner(inputs, options=()):
        return run(exporter, family, inputs, options)

    return runner


def _declines(exporter, family):
    module = MODELS[family].torch_module

    def declines(options):
        why = outcome(exporter, module, options)[0].declined()
        return why and f"{why} (read at torch {READ_AT['torch']}, onnxscript {READ_AT['onnxscript']})"

    return declines


def _declines_dtype(exporter, family):
    module = MODELS[family].torch_module

    def declines_dtype(options, dtype):
        emits = outcome(exporter, module, options)[0].emits
        if dtype == "f64" and emits in FUSED:
            return (f"onnxruntime {READ_AT['onnxruntime']} runs the exported ONNX {emits} node in float32 only "
                    f"('{ORT_FLOAT64[emits]}')")
        return None

    return declines_dtype


def _describe(exporter, family):
    module = MODELS[family].torch_module
    how = ("dynamo=False (TorchScript), exported per case" if exporter == "torchscript" else
           "dynamo=True (torch.export), exported per D, H, dtype and options, parameters as graph inputs")
    emits = outcome(exporter, module, ())[0]
    what = (f"{emits.emits} primitive ops with a frozen time axis (every case declined)" if emits.frozen_time
            else f"an ONNX {emits.emits} node")
    return (f"torch.nn.{module} through torch.onnx.export({how}), run in onnxruntime; emits {what} "
            f"(torch {READ_AT['torch']}); forward only")


def _oracle(exporter, family):
    name = f"torch-{'onnx' if exporter == 'torchscript' else 'dynamo'}-{family}"
    model = MODELS[family]
    return Oracle(
        name, family, "torch-onnx", _describe(exporter, family),
        observes=_OBSERVES[family],
        cannot_observe=dict(_BLIND[family], **{q: _NO_GRADIENT for q in _GRADIENTS[family]}),
        runner=_runner(exporter, family),
        trace_ms=_EXPORT_MS[exporter],
        options=_OPTIONS[family],
        observes_structured=lambda options: tuple(
            q for q in structured.observed(model, options, merged_apart=True) if not q.startswith("d")),
        declines=_declines(exporter, family),
        declines_dtype=_declines_dtype(exporter, family),
    )


ORACLES = tuple(_oracle(exporter, family) for exporter in EXPORTERS for family in ("lstm", "gru", "rnn"))
