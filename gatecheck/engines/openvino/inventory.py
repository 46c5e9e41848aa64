"""The inventory of OpenVINO's recurrent ops and of the calls the OpenVINO oracles make, every parameter
classified (gatecheck.engines.inventory): the ``LSTMSequence``, ``GRUSequence`` and ``RNNSequence`` ops
as their Python factories spell them (``openvino.opsetN.lstm_sequence``, ... of the newest opset that has
each), which both of OpenVINO's frontends emit (the ONNX graphs' nodes, the converted torch layers);
``openvino.convert_model``; ``Core.compile_model``.
"""

import importlib

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_openvino

FACTORIES = {"LSTMSequence": "lstm_sequence", "GRUSequence": "gru_sequence", "RNNSequence": "rnn_sequence"}
CONVERT = "openvino.convert_model"
COMPILE = "openvino.Core.compile_model"
_ONNX = {"LSTMSequence": ("openvino-onnx-lstm", "openvino-onnx-lstm-fed"),
         "GRUSequence": ("openvino-onnx-gru", "openvino-onnx-gru-before", "openvino-onnx-gru-fed",
                         "openvino-onnx-gru-before-fed"),
         "RNNSequence": ("openvino-onnx-rnn", "openvino-onnx-rnn-fed")}
_TORCH = {"LSTMSequence": ("openvino-torch-lstm",), "GRUSequence": ("openvino-torch-gru",),
          "RNNSequence": ("openvino-torch-rnn",)}
ALL = tuple(n for op in FACTORIES for n in _ONNX[op] + _TORCH[op])


def api_name(op):
    return f"{op} (openvino.opset*.{FACTORIES[op]})"


def factory(op):
    """The op's factory in the newest ``openvino.opsetN`` module that has it (the number and the function)."""
    ov = import_openvino()
    newest = None
    for n in range(1, 100):
        try:
            module = importlib.import_module(f"openvino.opset{n}")
        except ImportError:
            break
        if hasattr(module, FACTORIES[op]):
            newest = (n, getattr(module, FACTORIES[op]))
    if newest is None:
        raise LookupError(f"openvino {ov.__version__}: no opset module has {FACTORIES[op]}")
    return newest


def introspect():
    ov = import_openvino()
    found = {api_name(op): inv.parameters(factory(op)[1]) for op in FACTORIES}
    found[CONVERT] = inv.parameters(ov.convert_model)
    found[COMPILE] = inv.parameters(ov.Core.compile_model)
    return inv.version_tuple(ov.__version__), found


_ACTIVATION = ("the ONNX oracles' activations (the defaults, stated); exercising another needs a family variant "
               "whose reference takes it, in every engine (as for the ONNX nodes' activations)")
_HOW = ("set by OpenVINO's ONNX frontend from the ONNX node (the openvino-onnx-* oracles) and by its PyTorch frontend "
        "from aten::lstm / gru / rnn_tanh (openvino-torch-*)")


def _sequence(op):
    entries = [
        inv.exercised("X", ("B", "T", "D", "inputs", "oracle"),
                      f"the case's x: {_HOW}; layout=0 in the ONNX graph (oracles.LAYOUT: the ONNX frontend ignores "
                      f"layout=1, openvinotoolkit/openvino#37820), batch_first in the torch layer"),
        inv.exercised("initial_hidden_state", ("inputs",), "the case's h0 (per layer and direction under bi, L2)"),
        inv.exercised("sequence_lengths", ("len",),
                      "the rows' lengths under len (the ONNX node's sequence_lens; pack_padded_sequence's lengths in "
                      "the torch layer); without len the frontends fill every row's length with T"),
        inv.exercised("W", ("inputs", "oracle"),
                      "the case's W through the ONNX remap (onnx.layout.to_onnx) or the torch remap and the PyTorch "
                      "frontend's own gate reordering; constants (openvino-onnx-*, -torch-*) or inputs (-fed)"),
        inv.exercised("R", ("inputs", "oracle"), "the case's U, as W"),
        inv.exercised("B", ("nobias", "inputs"), "the case's biases (both slots summed by the frontends); zeros "
                                                 "under nobias"),
        inv.exercised("hidden_size", ("H",), "the case's H"),
        inv.exercised("direction", ("rev", "bi"),
                      "forward; reverse under rev (ONNX graphs); bidirectional under bi (the torch layers; the ONNX "
                      "graphs decline bi*: compiling their merge aborts, oracles.BI_CRASH)"),
        inv.exercised("activations", ("relu",), "relu under relu (the ONNX node's activations Relu; nn.RNN("
                                                "nonlinearity='relu') through the PyTorch frontend), else tanh")
        if op == "RNNSequence" else inv.open_("activations", _ACTIVATION),
        inv.open_("activations_alpha", "not set (no activation that takes alpha is used); " + _ACTIVATION),
        inv.open_("activations_beta", "not set (no activation that takes beta is used); " + _ACTIVATION),
        inv.exercised("clip", ("clip",), "1.0 under clip, from the ONNX graphs' clip attribute (openvino-onnx-*), "
                                         "else 0; the LSTM's C_t is not clipped before h: a deviation "
                                         "(gatecheck.truth.deviations)"),
        inv.declined("name", "the node's friendly name: not numerical"),
    ]
    if op == "LSTMSequence":
        entries.append(inv.exercised("initial_cell_state", ("inputs",), "the case's c0 (per layer and direction)"))
    if op == "GRUSequence":
        entries.append(inv.exercised("linear_before_reset", ("family",),
                                     "the ONNX node's linear_before_reset: 1 for gru (and nn.GRU), 0 for "
                                     "gru-reset-before"))
    return tuple(entries)


_CONVERT = (
    inv.exercised("input_model", ("family", "len", "nobias", "bi", "L2"),
                  "nn.LSTM, GRU or RNN built as the PyTorch layer oracles build them (torch.common.layer), in the "
                  "wrapper that packs under len (oracles._wrapper, run_torch)"),
    inv.fixed("example_input", "inputs at oracles.export_shape, a B and T other than any case's, so that a model that "
                               "froze either axis fails the case"),
    inv.open_("input", "not given: every input's shape dynamic; fixing shapes (as edge deployments do) needs an "
                       "oracle variant converted per case shape"),
    inv.fixed("output", "not given: every output of the wrapper (the sequence and the final states)"),
    inv.declined("extension", "user extensions for ops the frontend lacks: not the converter a user gets by default"),
    inv.declined("verbose", "a diagnostic of the conversion: not numerical"),
    inv.fixed("share_weights", "True (the default): the converted model's constants are the module's weights, "
                               "converted per case"),
    inv.open_("dynamo", "False (the default: TorchScript tracing); True converts through torch.export: an oracle "
                        "variant, with its own table of what it emits"),
)

_COMPILE = (
    inv.fixed("model", "the model read from the ONNX graph (Core.read_model) or converted from the torch layer"),
    inv.fixed("device_name", "'CPU': the plugin these oracles run (GPU and NPU plugins are not on the CI machine)"),
    inv.fixed("config", "INFERENCE_PRECISION_HINT f32 (the plugin's default is bf16 on CPUs with AVX-512 BF16 or AMX, "
                        "checked after compiling) and INFERENCE_NUM_THREADS = GATECHECK_THREADS (oracles.config)"),
    inv.declined("weights", "a weights file of an IR model: the models here come from ONNX graphs and torch modules"),
)

INVENTORY = inv.Inventory(
    engine="openvino",
    framework="openvino",
    package="openvino",
    apis=tuple(inv.Api(api_name(op), _sequence(op), _ONNX[op] + _TORCH[op]) for op in FACTORIES)
    + (inv.Api(CONVERT, _CONVERT, tuple(n for op in FACTORIES for n in _TORCH[op])), inv.Api(COMPILE, _COMPILE, ALL)),
    introspect=introspect,
    what="OpenVINO's LSTMSequence, GRUSequence and RNNSequence as their opset factories spell them (the ops both "
         "frontends emit), openvino.convert_model and Core.compile_model: every parameter. LSTMSequence has no "
         "peepholes and no coupled gates: the ONNX LSTM's P and input_forget (the options peep and coupled, which "
         "openvino-onnx-lstm runs) are dropped by the ONNX frontend, deviations (gatecheck.truth.deviations)",
)
