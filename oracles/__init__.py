"""Framework oracles, one module per framework; see ``oracles.base.Oracle``."""

from oracles.keras_oracle import KERAS_CELL, KERAS_CELL_HEAD, KERAS_LAYER
from oracles.torch_oracle import TORCH_CELL, TORCH_CELL_HEAD, TORCH_LAYER

ORACLES = {o.name: o for o in (KERAS_CELL, KERAS_LAYER, TORCH_CELL, TORCH_LAYER)}
# The LSTM under the softmax / cross-entropy head of reference/head.py.
HEAD_ORACLES = {o.name: o for o in (KERAS_CELL_HEAD, TORCH_CELL_HEAD)}
