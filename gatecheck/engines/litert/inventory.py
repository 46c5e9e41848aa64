"""The inventory of what the litert oracles call (gatecheck.engines.inventory): TensorFlow's
``tf.lite.TFLiteConverter.from_concrete_functions``, the converter's settings (the public attributes of the
converter it returns, and of its ``target_spec``), and ``ai_edge_litert.interpreter.Interpreter``, every
parameter classified. The Keras layers it converts are built as the Keras oracles build theirs (their
parameters: the keras engine's inventory).
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_litert

FROM_CONCRETE = "tf.lite.TFLiteConverter.from_concrete_functions"
SETTINGS = "tf.lite.TFLiteConverter (settings)"
TARGET_SPEC = "tf.lite.TFLiteConverter.target_spec"
INTERPRETER = "ai_edge_litert.interpreter.Interpreter"
_ORACLES = ("litert-lstm", "litert-gru", "litert-gru-before", "litert-rnn")


def _public(obj):
    return tuple(sorted(k for k in vars(obj) if not k.startswith("_")))


def introspect():
    """The interpreter's version; the converter's factory and settings (read from a converter of an
    empty function) and the interpreter's constructor."""
    tf, _, litert = import_litert()
    from importlib import metadata

    fn = tf.function(lambda x: x + 1.0, input_signature=[tf.TensorSpec((1,), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    return inv.version_tuple(metadata.version("ai-edge-litert")), {
        FROM_CONCRETE: inv.parameters(tf.lite.TFLiteConverter.from_concrete_functions.__func__, skip=("cls",)),
        SETTINGS: _public(converter),
        TARGET_SPEC: _public(converter.target_spec),
        INTERPRETER: inv.parameters(litert.Interpreter.__init__),
    }


_QUANT = ("a quantisation setting: the oracles convert without optimizations (CONVERTER_SETTINGS), so none applies; "
          "a quantised model is another model than the float reference's")
_DEBUG = "a diagnostic of the conversion (IR dumps, timing, debug metadata): not part of the converted model"
_DELEGATE = ("a delegate setting; the default op resolver (XNNPACK applied by default on the CPU) is the one a "
             "deployed model gets")

CONVERTER_ENTRIES = (
    inv.exercised("funcs", ("family", "nobias", "rev", "bi", "bisum", "bimul", "biave", "binone", "L2", "len", "mask",
                            "maskz", "B"),
                  "the concrete function of a tf.function calling the family's Keras layer built with the case's "
                  "options, x (B, None, D) (oracles.build, oracles.convert)"),
    inv.fixed("trackable_obj", "the tf.function itself, which holds the layers' variables (frozen into constants)"),
)

SETTINGS_ENTRIES = (
    inv.fixed("optimizations", "empty (the default): no quantisation of weights or activations, checked at each "
                               "conversion (oracles.CONVERTER_SETTINGS)"),
    inv.fixed("target_spec", "TFLITE_BUILTINS only (the default; its attributes: the target_spec entries)"),
    inv.declined("representative_dataset", _QUANT),
    inv.declined("inference_input_type", _QUANT + " (the input type of a quantised model)"),
    inv.declined("inference_output_type", _QUANT + " (the output type of a quantised model)"),
    inv.declined("experimental_new_quantizer", _QUANT),
    inv.declined("experimental_new_dynamic_range_quantizer", _QUANT),
    inv.declined("experimental_use_stablehlo_quantizer", _QUANT),
    inv.declined("experimental_stablehlo_quantizer_config", _QUANT),
    inv.declined("allow_custom_ops", "custom ops a user registers: the Keras layers convert to builtins"),
    inv.fixed("experimental_new_converter", "True (the default): the MLIR-based converter, the one a user gets"),
    inv.declined("experimental_enable_resource_variables", "mutable resource variables in the model: the frozen "
                                                           "weights are constants"),
    inv.open_("unfold_batchmatmul", "the default; a BatchMatMul unfolded into FullyConnected ops changes kernels, "
                                    "not the model: an oracle variant"),
    inv.open_("legalize_custom_tensor_list_ops", "the default (False): the loop's TensorLists lower to builtins; "
                                                 "True keeps custom TensorList ops: an oracle variant"),
    inv.declined("canonicalizing_inf_as_min_max_float", "rewrites infinities as float limits for quantisation "
                                                        "ranges: the models hold none"),
    inv.declined("exclude_conversion_metadata", "metadata written into the file: not numerical"),
    inv.declined("model_origin_framework", "a label of the file's origin: not numerical"),
    inv.declined("saved_model_dir", "the SavedModel path of from_saved_model: the oracles convert a concrete "
                                    "function"),
    inv.open_("experimental_lower_to_saved_model", "the default; lowering through a SavedModel first is another "
                                                   "conversion path: an oracle variant"),
    inv.declined("elide_elementsattrs_if_larger", _DEBUG),
    inv.declined("enable_timing", _DEBUG),
    inv.declined("ir_dump_dir", _DEBUG),
    inv.declined("ir_dump_func_regex", _DEBUG),
    inv.declined("ir_dump_pass_regex", _DEBUG),
    inv.declined("print_ir_after", _DEBUG),
    inv.declined("print_ir_before", _DEBUG),
    inv.declined("print_ir_module_scope", _DEBUG),
    inv.declined("serialize_debug_metadata", _DEBUG),
)

TARGET_SPEC_ENTRIES = (
    inv.fixed("supported_ops", "{TFLITE_BUILTINS} (the default): LiteRT's own kernels; SELECT_TF_OPS would run "
                               "TensorFlow's (float64 is declined rather than run so: oracles.declines_dtype)"),
    inv.fixed("supported_types", "empty (the default): float32, unquantised; float16 would store the weights in "
                                 "half precision"),
    inv.declined("experimental_select_user_tf_ops", "TensorFlow ops a user adds to TF Select: builtins only"),
    inv.declined("experimental_supported_backends", "accelerator backends (GPU, TPU compatibility checks): the "
                                                    "oracles run on the CPU"),
)

INTERPRETER_ENTRIES = (
    inv.declined("model_path", "a file to read: the oracles pass the model in memory (model_content)"),
    inv.fixed("model_content", "the converted model's flatbuffer (oracles.interpreter)"),
    inv.declined("experimental_delegates", "delegates beyond the default (GPU, NNAPI, vendors'): the CPU's default"),
    inv.fixed("num_threads", "gatecheck's threads() (GATECHECK_THREADS, default 1), as every framework"),
    inv.open_("experimental_op_resolver_type", "AUTO (the default: builtin kernels with XNNPACK applied); "
                                               "BUILTIN_WITHOUT_DEFAULT_DELEGATES and BUILTIN_REF (the reference "
                                               "kernels) are other kernels: an oracle variant each"),
    inv.declined("experimental_preserve_all_tensors", "keeps intermediate tensors readable: not numerical"),
    inv.declined("experimental_disable_delegate_clustering", _DELEGATE),
    inv.declined("experimental_default_delegate_latest_features", _DELEGATE),
    inv.declined("experimental_compress_quantization_zero_points", _QUANT),
    inv.declined("experimental_disable_delegate_node_fusion", _DELEGATE),
    inv.declined("experimental_force_delegate_node_profiling", "profiling of delegate nodes: not numerical"),
)

INVENTORY = inv.Inventory(
    engine="litert",
    framework="litert",
    package="ai-edge-litert",
    apis=(inv.Api(FROM_CONCRETE, CONVERTER_ENTRIES, _ORACLES), inv.Api(SETTINGS, SETTINGS_ENTRIES, _ORACLES),
          inv.Api(TARGET_SPEC, TARGET_SPEC_ENTRIES, _ORACLES), inv.Api(INTERPRETER, INTERPRETER_ENTRIES, _ORACLES)),
    introspect=introspect,
    what="TensorFlow's TFLiteConverter (from_concrete_functions and the converter's settings) and ai-edge-litert's "
         "Interpreter; the converted Keras layers are the keras engine's inventory",
)
