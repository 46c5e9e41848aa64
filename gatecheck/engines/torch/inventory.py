"""The inventory of PyTorch's recurrent modules: ``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` (their constructors
take ``*args, **kwargs``; the parameters are their ``typing.overload``'s), ``nn.LSTMCell``, ``nn.GRUCell``,
``nn.RNNCell``, each one's ``forward``, and ``nn.utils.rnn.pack_padded_sequence`` / ``pad_packed_sequence``
as the layer oracles use them under ``len`` (gatecheck.engines.inventory). The layer oracles build their
modules in ``lstm.run_layer``, ``gru``/``rnn``'s layer runners and, under structural options,
``common._run_torch``; the cell oracles in ``run_cell`` of each module.
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_torch

LAYERS = ("LSTM", "GRU", "RNN")
CELLS = ("LSTMCell", "GRUCell", "RNNCell")
_LAYER_ORACLES = {"LSTM": ("torch-lstm-layer",), "GRU": ("torch-gru-layer",), "RNN": ("torch-rnn-layer",)}
_CELL_ORACLES = {"LSTMCell": ("torch-lstm-cell", "torch-lstm-head-cell"), "GRUCell": ("torch-gru-cell",),
                 "RNNCell": ("torch-rnn-cell",)}
PACK = "nn.utils.rnn.pack_padded_sequence"
PAD = "nn.utils.rnn.pad_packed_sequence"


def introspect():
    torch = import_torch()
    found = {}
    for name in LAYERS:
        module = getattr(torch.nn, name)
        found[f"nn.{name}"] = inv.overloaded_parameters(module)
        found[f"nn.{name}.forward"] = inv.parameters(module.forward)
    for name in CELLS:
        module = getattr(torch.nn, name)
        found[f"nn.{name}"] = inv.parameters(module.__init__)
        found[f"nn.{name}.forward"] = inv.parameters(module.forward)
    found[PACK] = inv.parameters(torch.nn.utils.rnn.pack_padded_sequence)
    found[PAD] = inv.parameters(torch.nn.utils.rnn.pad_packed_sequence)
    return inv.version_tuple(torch.__version__), found


_DEVICE = inv.declined("device", "device placement: the oracles run on the CPU (a GPU kernel is another engine)")
_DTYPE = inv.exercised("dtype", ("dtype",), "torch.float32 or float64, the case's dtype (getattr(torch, x.dtype.name))")
_NONLINEARITY = inv.exercised("nonlinearity", ("relu",), "'relu' under relu, else 'tanh' (rnn.nonlinearity; the "
                                                         "structured layers' Model.own)")
_BATCH_FIRST = inv.open_("batch_first", "True in every oracle (x (B, T, D), the contract's layout); False, x (T, B, "
                                        "D), needs a layout axis on the layer oracles (as the ONNX oracles' layout), "
                                        "transposing x and the output")


def _layer(name):
    entries = [
        inv.exercised("input_size", ("D",), "the case's D"),
        inv.exercised("hidden_size", ("H",), "the case's H (c0's width under proj)"),
        inv.exercised("num_layers", ("L2",), "2 under L2, else 1 (common._run_torch)"),
        inv.exercised("bias", ("nobias",), "False under nobias (common.bias)"),
        _BATCH_FIRST,
        inv.declined("dropout", "stochastic at training time (between layers): 0, the default"),
        inv.exercised("bidirectional", ("bi",), "True under bi (common._run_torch; PyTorch concatenates: no other "
                                                 "merge)"),
        _DEVICE,
        _DTYPE,
    ]
    if name == "LSTM":
        entries.append(inv.exercised("proj_size", ("proj",), "P, h0's width, under proj (lstm.run_layer; "
                                                             "lstm.PROJ_MODEL's torch_args under structures)"))
    if name == "RNN":
        entries.append(_NONLINEARITY)
    return entries


def _layer_forward():
    return [
        inv.exercised("input", ("B", "T", "D", "inputs", "len"),
                      "the case's x; under len a PackedSequence of it (pack_padded_sequence, common._run_torch)"),
        inv.exercised("hx", ("inputs",), "the case's initial states, (h0, c0) for the LSTM, stacked per layer and "
                                         "direction under bi, L2"),
    ]


def _cell(name):
    entries = [
        inv.exercised("input_size", ("D",), "the case's D"),
        inv.exercised("hidden_size", ("H",), "the case's H"),
        inv.exercised("bias", ("nobias",), "False under nobias (common.bias in each run_cell)"),
        _DEVICE,
        _DTYPE,
    ]
    if name == "RNNCell":
        entries.append(_NONLINEARITY)
    return entries


def _cell_forward():
    return [
        inv.exercised("input", ("B", "D", "inputs"), "x[:, t] of the case's x, step by step (lstm._unroll and its "
                                                     "siblings)"),
        inv.exercised("hx", ("inputs",), "the case's initial states, then each step's (h_t, c_t)"),
    ]


_LEN = ("torch-lstm-layer", "torch-gru-layer", "torch-rnn-layer")

APIS = tuple(
    [inv.Api(f"nn.{n}", tuple(_layer(n)), _LAYER_ORACLES[n]) for n in LAYERS]
    + [inv.Api(f"nn.{n}.forward", tuple(_layer_forward()), _LAYER_ORACLES[n]) for n in LAYERS]
    + [inv.Api(f"nn.{n}", tuple(_cell(n)), _CELL_ORACLES[n]) for n in CELLS]
    + [inv.Api(f"nn.{n}.forward", tuple(_cell_forward()), _CELL_ORACLES[n]) for n in CELLS]
    + [
        inv.Api(PACK, (
            inv.exercised("input", ("len", "inputs"), "the case's x (common._run_torch)"),
            inv.exercised("lengths", ("len",), "each row's valid steps (structured.right_padded_lengths of the "
                                               "case's mask)"),
            inv.fixed("batch_first", "True: x is (B, T, D), as the layer's batch_first"),
            inv.fixed("enforce_sorted", "False: the case's rows are in any order of length"),
        ), _LEN),
        inv.Api(PAD, (
            inv.exercised("sequence", ("len",), "the layer's packed output (common._run_torch)"),
            inv.fixed("batch_first", "True: the output is (B, T, width), as the contract's"),
            inv.fixed("padding_value", "0.0 (the default): the len option's output is 0 past each row's length "
                                       "(gatecheck.model.options.MASKS['len'])"),
            inv.fixed("total_length", "T, the case's number of steps: the padding past the longest row is "
                                      "compared too"),
        ), _LEN),
    ]
)

INVENTORY = inv.Inventory(
    engine="torch",
    framework="torch",
    package="torch",
    apis=APIS,
    introspect=introspect,
    what="torch.nn's recurrent layers and cells (constructors and forward) and the packing functions the len "
         "option uses; torch.onnx.export is the torch_onnx engine's",
)
