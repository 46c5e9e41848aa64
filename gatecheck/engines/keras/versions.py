"""Version-aware expectations, as data: what a framework version documents and does,
checked against each installed version by tests/engines/keras/test_versions.py and shown in the header.

Each fact was read in the framework's own code:
- Keras 3 (keras/src/backend/tensorflow/nn.py, ``hard_sigmoid``):
  ``relu6(x + 3) / 6``, i.e. clip(x / 6 + 0.5, 0, 1).
- Keras 2.x (keras/src/backend.py, ``hard_sigmoid``): ``0.2 * x + 0.5`` clipped to [0, 1].
- Keras 2.3 and later, and Keras 3: LSTM's ``recurrent_activation`` defaults to sigmoid
  (it was hard_sigmoid before 2.3); gatecheck's oracles state it explicitly anyway.
- GRU (keras/src/layers/rnn/gru.py in Keras 2.15 and 3.x; tf.keras r1.15 and r2.0 API docs):
  ``reset_after`` defaults to True (the reset-after convention, two biases (2, 3H)) and
  ``recurrent_activation`` to sigmoid since tf.keras 2.0 / Keras 2.3; before, False (one
  bias (3H,), reset before) and hard_sigmoid. A GRU model saved with the old defaults is
  the other family (``gru-reset-before``) with a hard sigmoid; gatecheck's oracles pass
  both arguments explicitly. The ``formula`` of a default is a function of the
  pre-activation for activations, and returns the default itself for flags.
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
    Semantics("keras", (2, 0), (2, 3), "gru_reset_after_default", lambda _=None: False,
              "tf.keras r1.15 GRU(reset_after=False, recurrent_activation='hard_sigmoid'): reset before, one bias"),
    Semantics("keras", (2, 3), (99, 0), "gru_reset_after_default", lambda _=None: True,
              "keras GRUCell(reset_after=True) default since tf.keras 2.0 / Keras 2.3 (Keras 2.15, 3.x gru.py): "
              "reset after, bias (2, 3H)"),
    Semantics("keras", (2, 0), (2, 3), "gru_recurrent_activation_default", lambda x: _clip01(0.2 * x + 0.5),
              "tf.keras r1.15 GRU(recurrent_activation='hard_sigmoid')"),
    Semantics("keras", (2, 3), (99, 0), "gru_recurrent_activation_default", lambda x: 1 / (1 + np.exp(-x)),
              "keras GRUCell(recurrent_activation='sigmoid') default since Keras 2.3"),
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
