"""Gate blocks: an engine's fused weight matrix holds the canonical gates' blocks in its own
order along one axis. Pure NumPy, shared by the engines' layout modules."""

import numpy as np


def order(canonical, engine_gates, same):
    """The canonical index of each of an engine's gate blocks (``same``: engine name -> canonical name)."""
    return [canonical.index(same[name]) for name in engine_gates]


def fuse(blocks, positions):
    """(G, ...) canonical blocks -> the engine's blocks (``positions``: ``order``), a list to concatenate."""
    return [blocks[k] for k in positions]


def unfuse(parts, positions):
    """The engine's blocks (split from its fused array) -> (G, ...) canonical blocks."""
    blocks = [None] * len(positions)
    for part, k in zip(parts, positions):
        blocks[k] = part
    return np.stack(blocks)
