"""The inventory of ``torch.onnx.export``, every parameter classified (not only those the oracles pass:
a parameter a release adds shows as unclassified), as ``oracles._export`` calls it for both exporters
(gatecheck.engines.inventory). The modules it exports are torch's layers (their parameters: the torch
engine's inventory).
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_torch_onnx

EXPORT = "torch.onnx.export"
_ORACLES = ("torch-onnx-lstm", "torch-onnx-gru", "torch-onnx-rnn",
            "torch-dynamo-lstm", "torch-dynamo-gru", "torch-dynamo-rnn")


def introspect():
    torch, _, _ = import_torch_onnx()
    return inv.version_tuple(torch.__version__), {EXPORT: inv.parameters(torch.onnx.export)}


_DIAGNOSTIC = "a diagnostic of the export (logs, reports, files): not part of the exported graph"

ENTRIES = (
    inv.exercised("model", ("family", "len", "nobias", "bi", "L2"),
                  "nn.LSTM, GRU or RNN (the family's), built with the case's options, in the module that packs "
                  "under len (oracles._wrapper, _export)"),
    inv.fixed("args", "example inputs at oracles.export_shape, a B and T other than any case's, so that a graph "
                      "that froze either dimension fails the case"),
    inv.declined("f", "where the file is written (torchscript: an io.BytesIO read back; dynamo: none, the "
                      "ONNXProgram's model_proto): not numerical"),
    inv.fixed("kwargs", "None: the wrapped module takes its inputs positionally"),
    inv.declined("verbose", _DIAGNOSTIC),
    inv.fixed("input_names", "the names the feeds use (x, the states, the lengths; dynamo: each parameter's)"),
    inv.fixed("output_names", "the names the outputs are read by"),
    inv.open_("opset_version", "each exporter's default opset; exercising others needs an opset axis within "
                               "each exporter's range, and EXPORTS recorded per opset"),
    inv.exercised("dynamo", ("oracle",), "False for torch-onnx-* (TorchScript), True for torch-dynamo-* "
                                         "(oracles._export)"),
    inv.declined("external_data", "where weights over 2 GB are stored: not numerical"),
    inv.fixed("dynamic_shapes", "dynamo: batch and time dynamic (torch.export.Dim), the parameters static "
                                "(oracles._export)"),
    inv.declined("custom_translation_table", "replaces the exporter's own translation of an op: not the "
                                             "exporter's behaviour a user gets by default"),
    inv.declined("report", _DIAGNOSTIC),
    inv.open_("optimize", "True (the default: onnxscript's optimizer rewrites the dynamo graph); False needs an "
                          "oracle variant that runs the unoptimized graph"),
    inv.declined("verify", "the exporter's own comparison in onnxruntime: gatecheck compares the graph's numbers "
                           "with the reference itself"),
    inv.declined("profile", _DIAGNOSTIC),
    inv.declined("dump_exported_program", _DIAGNOSTIC),
    inv.declined("artifacts_dir", _DIAGNOSTIC),
    inv.fixed("export_params", "True (the default): the TorchScript export holds the case's weights (exported per "
                               "case); the dynamo export gets them as graph inputs through the wrapper"),
    inv.open_("keep_initializers_as_inputs", "False (the default); True would make the TorchScript graph's "
                                             "weights inputs (one export per group, as dynamo's): an oracle "
                                             "variant"),
    inv.fixed("dynamic_axes", "TorchScript: batch and time dynamic on x, the states and the outputs "
                              "(oracles._export)"),
    inv.declined("training", "TrainingMode.EVAL (the default): a training-mode export differs in dropout, "
                             "stochastic at training time"),
    inv.declined("operator_export_type", "ONNX (the default); the ATen fallbacks emit ops onnxruntime does not "
                                         "run"),
    inv.open_("do_constant_folding", "True (the default: the TorchScript exporter folds the gate reordering of the "
                                     "weights into constants); False keeps that arithmetic in the graph: an "
                                     "oracle variant"),
    inv.declined("custom_opsets", "versions of custom op domains: the exports use the default domain only"),
    inv.open_("export_modules_as_functions", "False (the default); True exports nn.LSTM/GRU/RNN as ONNX local "
                                             "functions, which onnxruntime inlines: an oracle variant"),
    inv.declined("autograd_inlining", "TorchScript inlining of autograd.Function: the exported modules have "
                                      "none"),
)

INVENTORY = inv.Inventory(
    engine="torch_onnx",
    framework="torch-onnx",
    package="torch",
    apis=(inv.Api(EXPORT, ENTRIES, _ORACLES),),
    introspect=introspect,
    what="torch.onnx.export, every parameter (not only those the oracles pass); the exported nn modules are "
         "the torch engine's inventory",
)
