"""The inventory of Keras' recurrent API: ``keras.layers.LSTM``, ``GRU``, ``SimpleRNN``, their cells
(``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``), ``RNN`` and ``Bidirectional``, constructors and ``call``,
every parameter classified (gatecheck.engines.inventory). The layer oracles build their layers in
``lstm._build_layer``, ``gru._build_keras_layer``, ``rnn._build_keras_layer`` and, under structural and
mask options, ``common.keras_stack``; the cell oracles their cells in ``keras.layers.RNN`` loops
(``lstm._probed_lstm``, ``gru._build_keras_cell``, ``rnn._build_keras_cell``; ``common._build_probed``
under structural options). Keras 2 (2.15, the oldest supported) spells a few parameters otherwise: the
entries say so with a version range.
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_keras

LAYERS = ("LSTM", "GRU", "SimpleRNN")
CELLS = ("LSTMCell", "GRUCell", "SimpleRNNCell")
WRAPPERS = ("RNN", "Bidirectional")
_LAYER_ORACLES = {"LSTM": ("keras-lstm-layer",), "GRU": ("keras-gru-layer", "keras-gru-layer-before"),
                  "SimpleRNN": ("keras-rnn-layer",)}
_CELL_ORACLES = {"LSTMCell": ("keras-lstm-cell", "keras-lstm-head-cell"),
                 "GRUCell": ("keras-gru-cell", "keras-gru-cell-before"), "SimpleRNNCell": ("keras-rnn-cell",)}
_CELL_LOOPS = tuple(o for n in CELLS for o in _CELL_ORACLES[n])
_BI = ("keras-lstm-cell", "keras-lstm-layer", "keras-gru-cell", "keras-gru-layer", "keras-gru-cell-before",
       "keras-gru-layer-before", "keras-rnn-cell", "keras-rnn-layer")
_MERGES = ("bi", "bisum", "bimul", "biave", "binone")
_MASKS = ("len", "mask", "maskz")
KERAS3 = (3, 0)


def introspect():
    _, keras = import_keras()
    found = {}
    for name in LAYERS + CELLS + WRAPPERS:
        cls = getattr(keras.layers, name)
        found[f"keras.layers.{name}"] = inv.parameters(cls.__init__)
        found[f"keras.layers.{name}.call"] = inv.parameters(cls.call)
    return inv.version_tuple(keras.__version__), found


_INIT = "an initializer: the case's weights are assigned over it (common.assign)"
_REGULARIZER = "a penalty added to the training loss outside the layer's forward and backward pass"
_CONSTRAINT = "applied to the weights by the optimizer after an update: not in the forward or backward pass"
_DROPOUT = "stochastic at training time: 0, the default (no dropout)"


def _cell_params(name):
    """What a layer and its cell share."""
    entries = [
        inv.exercised("units", ("H",), "the case's H"),
        inv.exercised("activation", ("relu",), "'relu' under relu, else 'tanh' (rnn.activation, common.activation_kwargs; "
                                               "the structured layers' Model.own)"),
        inv.exercised("use_bias", ("nobias",), "False under nobias (common.use_bias)"),
        inv.declined("kernel_initializer", _INIT),
        inv.declined("recurrent_initializer", _INIT),
        inv.declined("bias_initializer", _INIT),
        inv.declined("kernel_regularizer", _REGULARIZER),
        inv.declined("recurrent_regularizer", _REGULARIZER),
        inv.declined("bias_regularizer", _REGULARIZER),
        inv.declined("kernel_constraint", _CONSTRAINT),
        inv.declined("recurrent_constraint", _CONSTRAINT),
        inv.declined("bias_constraint", _CONSTRAINT),
        inv.declined("dropout", _DROPOUT),
        inv.declined("recurrent_dropout", _DROPOUT),
        inv.declined("seed", "the seed of dropout's masks: stochastic at training time", since=KERAS3),
    ]
    if name in ("LSTM", "GRU"):
        entries.append(inv.exercised("recurrent_activation", ("hardsig",),
                                     "'hard_sigmoid' under hardsig where the installed Keras' is the option's "
                                     "relu6(x + 3) / 6 (Keras 3; Keras 2's 0.2x + 0.5 declined: "
                                     "common.declines_activation), else 'sigmoid', stated (Keras before 2.3 "
                                     "defaulted to hard_sigmoid, versions.py)"))
    if name == "LSTM":
        entries.append(inv.declined("unit_forget_bias", "an initializer (adds 1 to the forget gate's bias when the "
                                                        "layer is built): the case's bias is assigned over it"))
    if name == "GRU":
        entries.append(inv.exercised("reset_after", ("family",), "True for the gru family, False for "
                                                                 "gru-reset-before (gru._keras)"))
    return entries


_KWARGS = inv.exercised("**kwargs", ("dtype",), "the base Layer's arguments: dtype= the case's dtype (name, "
                                                "trainable: not numerical)")


def _layer(name):
    entries = _cell_params(name) + [
        inv.declined("activity_regularizer", _REGULARIZER),
        inv.fixed("return_sequences", "True: every step's output is compared"),
        inv.fixed("return_state", "True where a final state is compared (the LSTM's C_T; every layer's and "
                                  "direction's states in common.keras_stack); False in the plain GRU and SimpleRNN "
                                  "layers, whose h_T is the output's last step"),
        inv.exercised("go_backwards", ("rev",), "True under rev (common.go_backwards); Bidirectional sets it on its "
                                                "backward copy"),
        inv.open_("stateful", "False; True carries the final states into the next call: a case that calls the layer "
                              "twice, the second from the first's final states"),
        inv.open_("unroll", "False (the backend's loop); True unrolls the T steps into one graph, another code path: "
                            "an oracle variant"),
        inv.open_("time_major", "False (x (B, T, D), the contract's layout); True needs a layout axis",
                  until=KERAS3),
        inv.exercised("**kwargs", ("dtype",) + _MASKS,
                      "dtype= the case's dtype; zero_output_for_mask= True under len and maskz, False under mask "
                      "(keras.layers.RNN's, passed through: common.keras_stack)"),
    ]
    if name in ("LSTM", "GRU"):
        entries.append(
            inv.declined("use_cudnn", "cuDNN runs on a GPU only: False on TensorFlow, the default ('auto', no "
                                      "cuDNN on the CPU) elsewhere (backends.layer_kwargs)", since=KERAS3))
    return entries


def _cell(name):
    return _cell_params(name.removesuffix("Cell")) + [_KWARGS]


_TRAINING = inv.fixed("training", "the default (inference); it changes dropout only, which is 0")


def _call(first, mask_by, initial=True):
    entries = [
        inv.exercised(first, ("B", "T", "D", "inputs"), "the case's x", since=KERAS3),
        inv.exercised("inputs", ("B", "T", "D", "inputs"), "the case's x", until=KERAS3),
        _TRAINING,
    ]
    if initial:
        entries.append(inv.exercised("initial_state", ("inputs",), "the case's initial states"))
    if mask_by:
        entries.append(inv.exercised("mask", mask_by, "the case's mask (layers.valid) under len, mask, maskz "
                                                      "(common._build_keras)"))
    else:
        entries.append(inv.fixed("mask", "None: the cell oracles run no mask (common.MASKED: layers only)"))
    return entries


def _cell_call(name):
    first = "sequence" if name == "SimpleRNNCell" else "inputs"
    entries = [
        inv.exercised(first, ("B", "D", "inputs"), "x_t with the zero probes beside it (common.probed_one_state_cell, "
                                                   "lstm.probed_lstm_cell)", **({"since": KERAS3} if first != "inputs"
                                                                                 else {})),
        inv.exercised("states", ("inputs",), "the case's initial states, then each step's"),
        _TRAINING,
    ]
    if first != "inputs":
        entries.append(inv.exercised("inputs", ("B", "D", "inputs"), "x_t with the zero probes beside it",
                                     until=KERAS3))
    return entries


def _rnn():
    return [
        inv.exercised("cell", ("family", "oracle"), "the family's Keras cell with its probes (the cell oracles)"),
        inv.fixed("return_sequences", "True: every step's output is compared"),
        inv.fixed("return_state", "True where a final state is compared (the LSTM cell's C_T, every structured "
                                  "layer's), else False"),
        inv.exercised("go_backwards", ("rev",), "True under rev (common.go_backwards)"),
        inv.open_("stateful", "False; True needs a case that calls the loop twice"),
        inv.open_("unroll", "False; True unrolls the steps: an oracle variant"),
        inv.fixed("zero_output_for_mask", "False (the default): the cell oracles run no mask; the layers get it "
                                          "through **kwargs", since=KERAS3),
        inv.open_("time_major", "False; True needs a layout axis", until=KERAS3),
        _KWARGS,
    ]


def _bidirectional():
    return [
        inv.exercised("layer", _MERGES, "the forward layer (common.keras_stack, common._build_probed)"),
        inv.exercised("merge_mode", _MERGES, "concat, sum, mul, ave or None (binone)"),
        inv.declined("weights", "initial weights, an initializer: the case's weights are assigned after building"),
        inv.exercised("backward_layer", _MERGES, "the probed cells' reversed loop (common._build_probed); the "
                                                 "layers' is Keras' copy of the forward one (None)"),
        _KWARGS,
    ]


def _bidirectional_call():
    entries = _call("sequences", ("len", "maskz"))
    entries.append(inv.open_("constants", "constants fed to the cell at every step: a cell that reads them",
                             until=KERAS3))
    return entries


APIS = tuple(
    [a for n in LAYERS for a in (inv.Api(f"keras.layers.{n}", tuple(_layer(n)), _LAYER_ORACLES[n]),
                                  inv.Api(f"keras.layers.{n}.call", tuple(_call("sequences", _MASKS)),
                                          _LAYER_ORACLES[n]))]
    + [a for n in CELLS for a in (inv.Api(f"keras.layers.{n}", tuple(_cell(n)), _CELL_ORACLES[n]),
                                   inv.Api(f"keras.layers.{n}.call", tuple(_cell_call(n)), _CELL_ORACLES[n]))]
    + [inv.Api("keras.layers.RNN", tuple(_rnn()), _CELL_LOOPS),
       inv.Api("keras.layers.RNN.call", tuple(_call("sequences", None)), _CELL_LOOPS),
       inv.Api("keras.layers.Bidirectional", tuple(_bidirectional()), _BI),
       inv.Api("keras.layers.Bidirectional.call", tuple(_bidirectional_call()), _BI)]
)

INVENTORY = inv.Inventory(
    engine="keras",
    framework="keras",
    package="keras",
    apis=APIS,
    introspect=introspect,
    what="keras.layers' LSTM, GRU, SimpleRNN, their cells, RNN and Bidirectional (constructors and call); the "
         "keras-onnx oracles convert the same layers",
)
