"""The inventory of MLX's recurrent layers: ``mlx.nn.LSTM``, ``GRU`` and ``RNN``, each constructor and
``__call__`` (gatecheck.engines.inventory). Every oracle builds its layer in ``oracles._layer``; MLX has no
cell classes (the step oracles call the layer one step at a time).
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_mlx

LAYERS = ("LSTM", "GRU", "RNN")
_ORACLES = {"LSTM": ("mlx-lstm-layer", "mlx-lstm-step"), "GRU": ("mlx-gru-layer", "mlx-gru-step"),
            "RNN": ("mlx-rnn-layer", "mlx-rnn-step")}


def introspect():
    mx, nn = import_mlx()
    found = {}
    for name in LAYERS:
        cls = getattr(nn, name)
        found[f"nn.{name}"] = inv.parameters(cls.__init__)
        found[f"nn.{name}.__call__"] = inv.parameters(cls.__call__)
    return inv.version_tuple(mx.__version__), found


def _layer(name):
    entries = [
        inv.exercised("input_size", ("D",), "the case's D"),
        inv.exercised("hidden_size", ("H",), "the case's H"),
        inv.exercised("bias", ("nobias",), "False under nobias (oracles._layer), else True"),
    ]
    if name == "RNN":
        entries.append(inv.open_("nonlinearity", "None, tanh (the default); another activation needs a family variant "
                                                 "whose reference takes it"))
    return entries


def _call(name):
    entries = [
        inv.exercised("x", ("B", "T", "D", "inputs"), "the case's x (B, T, D), or one step of it x[:, t:t+1] in the "
                                                      "step oracles"),
        inv.exercised("hidden", ("inputs",), "the case's h0, then (step oracles) each step's probed h_t"),
    ]
    if name == "LSTM":
        entries.append(inv.exercised("cell", ("inputs",), "the case's c0, then (step oracles) each step's c_t"))
    return entries


APIS = tuple(a for n in LAYERS for a in (inv.Api(f"nn.{n}", tuple(_layer(n)), _ORACLES[n]),
                                         inv.Api(f"nn.{n}.__call__", tuple(_call(n)), _ORACLES[n])))

INVENTORY = inv.Inventory(
    engine="mlx",
    framework="mlx",
    package="mlx",
    apis=APIS,
    introspect=introspect,
    what="mlx.nn's LSTM, GRU and RNN layers: constructors and __call__ (MLX has no cell classes)",
)
