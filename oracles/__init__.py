"""Framework oracles, one module per framework; see ``oracles.base.Oracle``."""

from oracles.keras_oracle import KERAS_CELL, KERAS_LAYER
from oracles.torch_oracle import TORCH_CELL, TORCH_LAYER

ORACLES = {o.name: o for o in (KERAS_CELL, KERAS_LAYER, TORCH_CELL, TORCH_LAYER)}
