"""The inventory of PaddlePaddle's recurrent API: ``paddle.nn.LSTM``, ``GRU``, ``SimpleRNN`` and the cells
``LSTMCell``, ``GRUCell``, ``SimpleRNNCell``, each constructor and ``forward`` (gatecheck.engines.inventory).
The cell oracles build their cells in ``oracles.cell_runner``, the layer oracles their layers in
``oracles.layer_runner``.
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_paddle
from gatecheck.engines.paddle import oracles

LAYERS = ("LSTM", "GRU", "SimpleRNN")
CELLS = ("LSTMCell", "GRUCell", "SimpleRNNCell")
_LAYER_ORACLES = {"LSTM": ("paddle-lstm-layer", "paddle-lstm-layer-tm"), "GRU": ("paddle-gru-layer", "paddle-gru-layer-tm"),
                  "SimpleRNN": ("paddle-rnn-layer", "paddle-rnn-layer-tm")}
_CELL_ORACLES = {"LSTMCell": ("paddle-lstm-cell",), "GRUCell": ("paddle-gru-cell",),
                 "SimpleRNNCell": ("paddle-rnn-cell",)}


def introspect():
    paddle = import_paddle()
    found = {}
    for name in LAYERS + CELLS:
        cls = getattr(paddle.nn, name)
        found[f"nn.{name}"] = inv.parameters(cls.__init__)
        found[f"nn.{name}.forward"] = inv.parameters(cls.forward)
    return inv.version_tuple(paddle.__version__), found


_ATTR = "a ParamAttr (initializer, regularizer, learning rate, name): the case's weights replace the parameters"
_NAME = inv.declined("name", "the layer's name prefix: not numerical")
_ACTIVATION = inv.open_("activation", "'tanh' (stated); 'relu' needs a ReLU RNN family (reference, contract, mutants) "
                                      "and its oracles in the other engines")
_PROJ = inv.exercised("proj_size", ("proj",), "P, h0's width, under proj (oracles._modelled), else 0; weight_ho (H, P) "
                                              "is Wr (layout.to_paddle_lstm_proj), loaded into each layer's and "
                                              "direction's cell (the layer's flat names are attached four per cell "
                                              "and name the wrong arrays once a cell has five)")


def _bias_entries(layer):
    entries = [inv.declined("weight_ih_attr", _ATTR), inv.declined("weight_hh_attr", _ATTR)]
    for name in ("bias_ih_attr", "bias_hh_attr"):
        entries.append(inv.declined(name, "None (a trained bias); False is declined: " + oracles.NOBIAS_CRASH) if layer
                       else inv.exercised(name, ("nobias",), "False under nobias (oracles._bias), else None (a trained "
                                                             "bias)"))
    return entries


def _layer(name):
    entries = [
        inv.exercised("input_size", ("D",), "the case's D"),
        inv.exercised("hidden_size", ("H",), "the case's H"),
        inv.exercised("num_layers", ("L2",), "2 under L2, else 1 (oracles.layer_runner)"),
        inv.exercised("direction", ("bi",), "'bidirect' under bi, else 'forward' (Paddle concatenates the directions: "
                                            "no other merge)"),
        inv.exercised("time_major", ("oracle",), "True in the -tm layer oracles (x fed as (T, B, D), the output "
                                                 "transposed back: oracles.layer_runner), False in the others"),
        inv.declined("dropout", "stochastic at training time (between layers): 0, the default"),
        _NAME,
    ] + _bias_entries(layer=True)
    if name == "LSTM":
        entries.append(_PROJ)
    if name == "SimpleRNN":
        entries.append(_ACTIVATION)
    return entries


def _layer_forward():
    return [
        inv.exercised("inputs", ("B", "T", "D", "inputs"), "the case's x"),
        inv.exercised("initial_states", ("inputs", "bi", "L2"), "the case's initial states, (layers * directions, B, "
                                                               "H) layer-major under bi and L2"),
        inv.exercised("sequence_length", ("len",), "each row's length under len (right-padded rows), else None"),
    ]


def _cell(name):
    entries = [inv.exercised("input_size", ("D",), "the case's D"), inv.exercised("hidden_size", ("H",), "the case's H"),
               _NAME] + _bias_entries(layer=False)
    if name == "LSTMCell":
        entries.append(_PROJ)
    if name == "SimpleRNNCell":
        entries.append(_ACTIVATION)
    return entries


def _cell_forward():
    return [
        inv.exercised("inputs", ("B", "D", "inputs"), "x[:, t] of the case's x"),
        inv.exercised("states", ("inputs",), "the case's initial states, then each step's"),
    ]


APIS = tuple(
    [a for n in LAYERS for a in (inv.Api(f"nn.{n}", tuple(_layer(n)), _LAYER_ORACLES[n]),
                                  inv.Api(f"nn.{n}.forward", tuple(_layer_forward()), _LAYER_ORACLES[n]))]
    + [a for n in CELLS for a in (inv.Api(f"nn.{n}", tuple(_cell(n)), _CELL_ORACLES[n]),
                                   inv.Api(f"nn.{n}.forward", tuple(_cell_forward()), _CELL_ORACLES[n]))]
)

INVENTORY = inv.Inventory(
    engine="paddle",
    framework="paddle",
    package="paddlepaddle",
    apis=APIS,
    introspect=introspect,
    what="paddle.nn's LSTM, GRU and SimpleRNN layers and their cells (LSTMCell, GRUCell, SimpleRNNCell): constructors "
         "and forward",
)
