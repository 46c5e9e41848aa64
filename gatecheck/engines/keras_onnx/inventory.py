"""The inventory of ``tf2onnx.convert.from_function``, the converter the keras-onnx oracles call
(``oracles.convert``; ``oracles.CONVERTERS`` says why not ``from_keras``, whose parameters are
from_function's with ``model`` for ``function`` and ``optimizers`` added), every parameter classified
(gatecheck.engines.inventory). The Keras layers it converts are built as the Keras oracles build theirs
(their parameters: the keras engine's inventory).
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_keras_onnx

FROM_FUNCTION = "tf2onnx.convert.from_function"
_ORACLES = ("keras-onnx-lstm", "keras-onnx-gru", "keras-onnx-gru-before", "keras-onnx-rnn")


def introspect():
    _, _, tf2onnx, _ = import_keras_onnx()
    return inv.version_tuple(tf2onnx.__version__), {FROM_FUNCTION: inv.parameters(tf2onnx.convert.from_function)}


_EXTENSION = "a user's extension of the converter (custom ops, handlers, rewriters, domains): not tf2onnx's own conversion"

ENTRIES = (
    inv.exercised("function", ("family", "nobias", "rev", "bi", "bisum", "bimul", "biave", "binone", "L2", "len",
                               "mask", "maskz"),
                  "a tf.function calling the family's Keras layer built with the case's options (oracles.build)"),
    inv.fixed("input_signature", "batch and time None (oracles.build's spec): one conversion serves every B and T, "
                                 "and a dimension frozen at conversion fails the case"),
    inv.open_("opset", "None: the converter's default (15 in tf2onnx 1.17); other opsets need an opset axis, with "
                       "EMITTED recorded per opset"),
    inv.declined("custom_ops", _EXTENSION),
    inv.declined("custom_op_handlers", _EXTENSION),
    inv.declined("custom_rewriter", _EXTENSION),
    inv.declined("inputs_as_nchw", "transposes named image inputs (NHWC to NCHW); a recurrent layer's input is "
                                   "(B, T, D)"),
    inv.declined("outputs_as_nchw", "transposes named image outputs (NHWC to NCHW); a recurrent layer's output is "
                                    "(B, T, H)"),
    inv.declined("extra_opset", _EXTENSION),
    inv.declined("shape_override", "overrides the input shapes: input_signature gives them"),
    inv.declined("target", "workarounds for other runtimes (rs4, rs6, caffe2, tensorrt, ...): the oracles run "
                           "onnxruntime"),
    inv.declined("large_model", "stores weights over 2 GB outside the protobuf: not numerical"),
    inv.declined("output_path", "a file to write: the oracles take the model in memory"),
)

INVENTORY = inv.Inventory(
    engine="keras_onnx",
    framework="keras-onnx",
    package="tf2onnx",
    apis=(inv.Api(FROM_FUNCTION, ENTRIES, _ORACLES),),
    introspect=introspect,
    what="tf2onnx.convert.from_function, the converter the oracles call (not from_keras: oracles.CONVERTERS); the "
         "converted Keras layers are the keras engine's inventory",
)
