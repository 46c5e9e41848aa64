"""The references themselves as oracles (framework "numpy"), one per model.

They are the truth ``verify`` compares with by default and the diagnosis works against.
They are not in a battery grid (the reference against itself proves nothing), except for a
model no framework offers: ``lstm-identity``, whose only oracle is its reference (proven
by finite differences, tests/test_reference.py).
"""

import functools

from gatecheck.oracles.base import Oracle
from gatecheck.reference import head, lstm, rnn

_LSTM = ("c", "h", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db")


def _runner(fn):
    return lambda inputs: fn(**inputs)


ORACLES = (
    Oracle("reference", "lstm", "numpy", "the NumPy reference itself (gatecheck.reference.lstm.run)", _LSTM,
           runner=_runner(lstm.run), battery=False),
    Oracle("reference-identity", "lstm-identity", "numpy",
           "the reference's identity-output model, h_t = o_t * c_t (gatecheck.reference.lstm.run(output='identity'))",
           _LSTM, runner=_runner(functools.partial(lstm.run, output="identity"))),
    Oracle("reference-head", "lstm-head", "numpy", "the NumPy reference head (gatecheck.reference.head.run)",
           ("c", "h", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
           runner=_runner(head.run), battery=False),
    Oracle("reference-rnn", "rnn", "numpy", "the NumPy reference RNN (gatecheck.reference.rnn.run)",
           ("h", "dh", "dx", "dh0", "dW", "dU", "db"), runner=_runner(rnn.run), battery=False),
)
