"""The registry of oracles: every engine's models, one module per engine, one entry each.

The grid, the pytest markers, GATECHECK_REQUIRE gating, the shard cost model and every
command-line choice derive from ``ORACLES``; nothing else lists oracle names. Adding an
oracle is its module (a tuple ``ORACLES`` of ``gatecheck.engines.base.Oracle``) in its engine's folder
and one entry in ``MODULES``. ``INVENTORIES`` holds each engine's inventory of its framework's recurrent
API (gatecheck.engines.inventory), one entry per engine.
"""

from gatecheck.engines.executorch import inventory as executorch_inventory
from gatecheck.engines.executorch import oracles as executorch_oracles
from gatecheck.engines.flax import inventory as flax_inventory
from gatecheck.engines.flax import oracles as flax_oracles
from gatecheck.engines.frameworks import FRAMEWORKS
from gatecheck.engines.jax import oracles as jax_oracles
from gatecheck.engines.keras import gru as keras_gru
from gatecheck.engines.keras import inventory as keras_inventory
from gatecheck.engines.keras import lstm as keras_lstm
from gatecheck.engines.keras import rnn as keras_rnn
from gatecheck.engines.keras_onnx import inventory as keras_onnx_inventory
from gatecheck.engines.keras_onnx import oracles as keras_onnx_oracles
from gatecheck.engines.litert import inventory as litert_inventory
from gatecheck.engines.litert import oracles as litert_oracles
from gatecheck.engines.mlx import inventory as mlx_inventory
from gatecheck.engines.mlx import oracles as mlx_oracles
from gatecheck.engines.onnx import inventory as onnx_inventory
from gatecheck.engines.onnx import oracles as onnx_oracles
from gatecheck.engines.openvino import inventory as openvino_inventory
from gatecheck.engines.openvino import oracles as openvino_oracles
from gatecheck.engines.paddle import inventory as paddle_inventory
from gatecheck.engines.paddle import oracles as paddle_oracles
from gatecheck.engines.reference import oracles as reference_oracles
from gatecheck.engines.torch import gru as torch_gru
from gatecheck.engines.torch import inventory as torch_inventory
from gatecheck.engines.torch import lstm as torch_lstm
from gatecheck.engines.torch import rnn as torch_rnn
from gatecheck.engines.torch_onnx import inventory as torch_onnx_inventory
from gatecheck.engines.torch_onnx import oracles as torch_onnx_oracles

# One engine a folder (gatecheck/engines/<engine>/), its oracles one module per family.
MODULES = (reference_oracles, keras_lstm, torch_lstm, keras_rnn, torch_rnn, keras_gru, torch_gru, onnx_oracles,
           torch_onnx_oracles, keras_onnx_oracles, jax_oracles, flax_oracles, openvino_oracles, litert_oracles,
           paddle_oracles, mlx_oracles, executorch_oracles)

# The inventory of each engine's recurrent API (gatecheck.engines.inventory), one per engine folder that calls a
# framework's layers (the jax engine's oracles are this project's own lax.scan code; the reference is NumPy).
INVENTORIES = (onnx_inventory.INVENTORY, keras_inventory.INVENTORY, torch_inventory.INVENTORY,
               torch_onnx_inventory.INVENTORY, keras_onnx_inventory.INVENTORY, flax_inventory.INVENTORY,
               openvino_inventory.INVENTORY, litert_inventory.INVENTORY, paddle_inventory.INVENTORY,
               mlx_inventory.INVENTORY, executorch_inventory.INVENTORY)

ORACLES = {}
# The module that defines each oracle (its runner and remaps are there or imported from there): what the cache
# of oracle outputs digests (gatecheck.run.cache).
DEFINED_IN = {}

# Oracle ids before every id named its family (results files and baselines written then hold them):
# the old id -> the id now. A case id starts with its oracle's id.
ALIASES = {
    "reference": "reference-lstm",
    "reference-identity": "reference-lstm-identity",
    "reference-head": "reference-lstm-head",
    "keras-cell": "keras-lstm-cell",
    "keras-layer": "keras-lstm-layer",
    "keras-cell-head": "keras-lstm-head-cell",
    "torch-cell": "torch-lstm-cell",
    "torch-layer": "torch-lstm-layer",
    "torch-cell-head": "torch-lstm-head-cell",
}


def current(name):
    """An oracle's id now, for an id that may be an old one (``ALIASES``)."""
    return ALIASES.get(name, name)


def register(oracle):
    """Add an oracle to the registry (its name must be new, its framework known)."""
    if oracle.name in ORACLES:
        raise ValueError(f"oracle {oracle.name!r} is registered twice")
    if oracle.framework not in FRAMEWORKS:
        raise ValueError(f"oracle {oracle.name!r}: unknown framework {oracle.framework!r}; "
                         f"expected one of {sorted(FRAMEWORKS)}")
    ORACLES[oracle.name] = oracle
    return oracle


for _module in MODULES:
    for _oracle in _module.ORACLES:
        register(_oracle)
        DEFINED_IN[_oracle.name] = _module.__name__


def of_family(family):
    """Names of every registered oracle of a family (battery or not), in registry order."""
    return [name for name, o in ORACLES.items() if o.family == family]


def battery_oracles(family):
    """Names of a family's oracles in its battery grid."""
    return [name for name, o in ORACLES.items() if o.family == family and o.battery]


def reference_oracle(family):
    """The family's own reference oracle (framework numpy)."""
    found = [o for o in ORACLES.values() if o.family == family and o.framework == "numpy"]
    if len(found) > 1:  # (an engine of the numpy framework beside it: the reference is not in the battery)
        found = [o for o in found if not o.battery]
    if len(found) != 1:
        raise LookupError(f"family {family!r}: {len(found)} reference oracles registered; expected one")
    return found[0]
