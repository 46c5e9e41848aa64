"""Gate blocks: an engine's fused weight matrix holds the canonical gates' blocks in its own
order along one axis. Pure NumPy, shared by the engines' layout modules."""

from typing import NamedTuple

import numpy as np


class Blocks(NamedTuple):
    """A model's gates: their canonical order, and which canonical gate an engine's name computes."""

    canonical: tuple
    same: dict  # an engine's gate name -> the canonical gate it computes (Keras' 'c' is the LSTM's g)

    def order(self, engine_gates):
        """The canonical index of each of an engine's gate blocks, in the engine's order."""
        return [self.canonical.index(self.same[name]) for name in engine_gates]

    def fuse(self, blocks, engine_gates, axis):
        """(G, ...) canonical blocks -> one array with the engine's gate blocks along ``axis``."""
        return np.concatenate([blocks[k] for k in self.order(engine_gates)], axis=axis)

    def unfuse(self, fused, engine_gates, axis):
        """Inverse of ``fuse``: the engine's array -> (G, ...) canonical blocks."""
        blocks = [None] * len(self.canonical)
        for part, k in zip(np.split(fused, len(engine_gates), axis=axis), self.order(engine_gates)):
            blocks[k] = part
        return np.stack(blocks)


LSTM = Blocks(("i", "f", "g", "o"), {"i": "i", "f": "f", "g": "g", "c": "g", "o": "o"})
GRU = Blocks(("r", "z", "n"), {"r": "r", "z": "z", "n": "n", "h": "n"})
