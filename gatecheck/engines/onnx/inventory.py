"""The inventory of the ONNX ``LSTM``, ``GRU`` and ``RNN`` operators at the opset the ONNX oracles build
(``oracles.OPSET``): each schema's attributes, inputs and outputs (``onnx.defs.get_schema``), classified
(gatecheck.engines.inventory). The oracles' nodes are made by ``oracles.build_model`` and fed by
``oracles.run``; both engines (onnxruntime, onnx.reference) run the same nodes.
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_onnxruntime
from gatecheck.engines.onnx import oracles as onnx_oracles

OPS = ("LSTM", "GRU", "RNN")
PARTS = ("attributes", "inputs", "outputs")
_ORACLES = {"LSTM": ("ort-lstm", "onnx-reference-lstm"),
            "GRU": ("ort-gru", "ort-gru-before", "onnx-reference-gru", "onnx-reference-gru-before"),
            "RNN": ("ort-rnn", "onnx-reference-rnn")}


def api_name(op, part):
    return f"{op} ({part})"


def introspect():
    onnx, _ = import_onnxruntime()
    found = {}
    for op in OPS:
        schema = onnx.defs.get_schema(op, max_inclusive_version=onnx_oracles.OPSET)
        found[api_name(op, "attributes")] = tuple(sorted(schema.attributes))
        found[api_name(op, "inputs")] = tuple(i.name for i in schema.inputs)
        found[api_name(op, "outputs")] = tuple(o.name for o in schema.outputs)
    return inv.version_tuple(onnx.__version__), found


_ACTIVATION = ("exercising another activation (Relu, HardSigmoid, LeakyRelu, ... with activation_alpha/beta) "
               "needs a family variant whose reference takes the activation, and the same in the other engines")


def _attributes(op):
    entries = [
        inv.exercised("hidden_size", ("H",), "the case's H (oracles.run -> build_model(hidden_size=H))"),
        inv.exercised("direction", ("rev", "bi", "bisum", "bimul", "biave", "binone"),
                      "'reverse' under rev, 'bidirectional' under bi* (merged in the graph), else 'forward' "
                      "(oracles.run)"),
        inv.exercised("layout", ("oracle",),
                      "0 for the ort-* oracles (onnxruntime's CPU kernels refuse 1), 1 for onnx-reference-* "
                      "(oracles.ENGINE_LAYOUT, build_model)"),
        inv.exercised("activations", ("relu",), "Relu under relu (one per direction; oracles.Node.under), else Tanh; "
                                                "onnx-reference-rnn declines relu: onnx.reference's RNN knows Tanh and "
                                                "Affine only") if op == "RNN" else
        inv.exercised("activations", ("relu", "hardsig"),
                      "the defaults stated (LSTM Sigmoid, Tanh, Tanh; GRU Sigmoid, Tanh), Relu in the tanh slots "
                      "under relu, HardSigmoid in the gates' slot under hardsig (per direction; oracles.Node.under); "
                      "onnx.reference's LSTM and GRU ignore the attribute (sigmoid and tanh fixed in op_lstm.py, "
                      "op_gru.py: onnx 1.23), a deviation (gatecheck.truth.deviations)"),
        inv.open_("activation_alpha", "not set (no activation that takes alpha is used); " + _ACTIVATION) if op == "RNN"
        else inv.exercised("activation_alpha", ("hardsig",), "[1/6] per direction under hardsig (the HardSigmoid's; "
                                                             "oracles.Node.under), else not set"),
        inv.open_("activation_beta", "not set (no activation that takes beta is used); " + _ACTIVATION) if op == "RNN"
        else inv.exercised("activation_beta", ("hardsig",), "[0.5] per direction under hardsig (the HardSigmoid's; "
                                                            "oracles.Node.under), else not set"),
        inv.exercised("clip", ("clip",), "1.0 under clip (oracles.Node.under), else not set; onnxruntime does not "
                                         "clip the LSTM's C_t before h and onnx.reference reads no clip: deviations "
                                         "(gatecheck.truth.deviations)"),
    ]
    if op == "LSTM":
        entries.append(inv.exercised("input_forget", ("coupled",),
                                     "1 under coupled (oracles.Node.under: f = 1 - i, as onnxruntime computes it), "
                                     "else not set (0); onnx.reference never reads it and OpenVINO's ONNX frontend "
                                     "drops it: deviations (gatecheck.truth.deviations)"))
    if op == "GRU":
        entries.append(inv.exercised("linear_before_reset", ("family",),
                                     "1 for the gru family (reset after), 0 for gru-reset-before (oracles.GRU, "
                                     "GRU_BEFORE)"))
    return entries


def _inputs(op):
    entries = [
        inv.exercised("X", ("B", "T", "D", "inputs"), "the case's x in the node's layout (oracles.run)"),
        inv.exercised("W", ("inputs",), "the case's W remapped to the node's gate order (onnx.layout.to_onnx)"),
        inv.exercised("R", ("inputs",), "the case's U remapped (onnx.layout.to_onnx)"),
        inv.exercised("B", ("nobias", "inputs"), "the case's biases remapped (onnx.layout.to_onnx); omitted (the "
                                                 "optional input left empty) under nobias (build_model)"),
        inv.exercised("sequence_lens", ("len",), "the rows' lengths under len (right padding: "
                                                  "structured.right_padded_lengths in oracles.run)"),
        inv.exercised("initial_h", ("inputs",), "the case's h0 (per direction and layer under bi*, L2)"),
    ]
    if op == "LSTM":
        entries += [
            inv.exercised("initial_c", ("inputs",), "the case's c0 (per direction and layer under bi*, L2)"),
            inv.exercised("P", ("peep", "inputs"), "the case's peepholes P under peep, remapped from the canonical "
                                                   "rows i, f, o to ONNX's blocks i, o, f (onnx.layout."
                                                   "peepholes_to_onnx; per direction and layer under bi*, L2), else "
                                                   "not fed; OpenVINO's ONNX frontend drops it: a deviation"),
        ]
    return entries


def _outputs(op):
    entries = [
        inv.fixed("Y", "requested and compared at every step (h; out under len; y merged in the graph under bi*)"),
        inv.fixed("Y_h", "requested: compared as hT under len, and checked to be Y's final step without it "
                         "(oracles.run)"),
    ]
    if op == "LSTM":
        entries.append(inv.fixed("Y_c", "requested and compared as cT (the LSTM's final cell state)"))
    return entries


INVENTORY = inv.Inventory(
    engine="onnx",
    framework="onnxruntime",
    package="onnx",
    apis=tuple(inv.Api(api_name(op, part), tuple({"attributes": _attributes, "inputs": _inputs,
                                                  "outputs": _outputs}[part](op)), _ORACLES[op])
               for op in OPS for part in PARTS),
    introspect=introspect,
    what=f"the ONNX LSTM, GRU and RNN operators at opset {onnx_oracles.OPSET} (onnx.defs.get_schema): attributes, "
         f"inputs and outputs; both engines (onnxruntime, onnx.reference) run the same nodes",
)
