"""Version-aware expectations, as data: what a framework version documents and does,
checked against each installed version by tests/test_versions.py and shown in the header.

Each fact was read in the framework's own code:
- Keras 3 (keras/src/backend/tensorflow/nn.py, ``hard_sigmoid``):
  ``relu6(x + 3) / 6``, i.e. clip(x / 6 + 0.5, 0, 1).
- Keras 2.x (keras/src/backend.py, ``hard_sigmoid``): ``0.2 * x + 0.5`` clipped to [0, 1].
- Keras 2.3 and later, and Keras 3: LSTM's ``recurrent_activation`` defaults to sigmoid
  (it was hard_sigmoid before 2.3); gatecheck's oracles state it explicitly anyway.
"""

from typing import Callable, NamedTuple

import numpy as np


class Semantics(NamedTuple):
    framework: str
    since: tuple  # first version (major, minor) it applies to
    until: tuple  # first version it no longer applies to
    name: str
    formula: Callable
    source: str


def _clip01(v):
    return np.clip(v, 0.0, 1.0)


SEMANTICS = [
    Semantics("keras", (2, 0), (3, 0), "hard_sigmoid", lambda x: _clip01(0.2 * x + 0.5),
              "keras/src/backend.py: hard_sigmoid = clip(0.2 x + 0.5, 0, 1)"),
    Semantics("keras", (3, 0), (99, 0), "hard_sigmoid", lambda x: _clip01(x / 6 + 0.5),
              "keras/src/backend/tensorflow/nn.py: hard_sigmoid = relu6(x + 3) / 6"),
    Semantics("keras", (2, 3), (99, 0), "lstm_recurrent_activation_default", lambda x: 1 / (1 + np.exp(-x)),
              "keras LSTMCell(recurrent_activation='sigmoid') default since Keras 2.3"),
]


def version_tuple(text):
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in text.split("+")[0].split(".")[:2]]
    return tuple(parts + [0] * (2 - len(parts)))


def applicable(framework, version, name):
    """The one entry for ``name`` that applies to ``framework`` at ``version``."""
    v = version_tuple(version)
    found = [s for s in SEMANTICS if s.framework == framework and s.name == name and s.since <= v < s.until]
    if len(found) != 1:
        raise LookupError(f"{framework} {version}: {len(found)} entries for {name!r}; expected exactly one")
    return found[0]
