"""The references themselves as oracles (framework "numpy"), one per model.

They are the truth ``verify`` compares with by default and the diagnosis works against.
They are not in a battery grid (the reference against itself proves nothing), except for a
model no framework offers: ``lstm-identity``, whose only oracle is its reference (proven
by finite differences, tests/core/test_reference.py).
"""

import functools

from gatecheck.engines.base import Oracle
from gatecheck.families import GRU, GRU_RESET_BEFORE, LSTM, LSTM_IDENTITY, RNN
from gatecheck.model.options import defined, under
from gatecheck.reference import gru, head, lstm, rnn

_LSTM = ("c", "h", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dWr", "dP")  # dWr, dP: under proj, peep only
# (the identity model has no peep: an ONNX LSTM's output is tanh(c_t); gatecheck.families.lstm.record)


def _runner(fn):
    return lambda inputs: fn(**inputs)


def with_options(run, family):
    """A reference's runner that takes the options (gatecheck.model.options): the family's record
    (``family``) under them runs its reference (``run`` without options)."""
    @functools.wraps(run)
    def runner(inputs, options=()):
        if not options:
            return run(**inputs)
        return under(family, options).run(**inputs)

    return runner


def contract_quantities(family):
    """What a reference returns under structural options: every quantity of the family's record under
    them that is a contract key (the final state C_T and torch's bias halves are read from those)."""
    def names(options):
        table = under(family, options).quantities
        return tuple(name for name, q in table.items() if q.source == name)

    return names


def offered(family):
    """The options a reference oracle offers: every option its family's record can be put under."""
    return frozenset(defined(family))


ORACLES = (
    Oracle("reference-lstm", "lstm", "numpy", "the NumPy reference itself (gatecheck.reference.lstm.run)", _LSTM,
           runner=with_options(lstm.run, LSTM), battery=False, options=offered(LSTM),
           observes_structured=contract_quantities(LSTM)),
    Oracle("reference-lstm-identity", "lstm-identity", "numpy",
           "the reference's identity-output model, h_t = o_t * c_t (gatecheck.reference.lstm.run(output='identity'))",
           tuple(q for q in _LSTM if q != "dP"), runner=with_options(lambda **inputs: lstm.run(**inputs, output="identity"), LSTM_IDENTITY),
           options=offered(LSTM_IDENTITY), observes_structured=contract_quantities(LSTM_IDENTITY)),
    Oracle("reference-lstm-head", "lstm-head", "numpy", "the NumPy reference head (gatecheck.reference.head.run)",
           ("c", "h", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
           runner=_runner(head.run), battery=False),
    Oracle("reference-rnn", "rnn", "numpy", "the NumPy reference RNN (gatecheck.reference.rnn.run)",
           ("h", "dh", "dx", "dh0", "dW", "dU", "db"),
           runner=with_options(rnn.run, RNN), battery=False,
           options=offered(RNN), observes_structured=contract_quantities(RNN)),
)


_GRU = ("h", "dh", "dx", "dh0", "dW", "dU", "dbx", "dbh")


def _reference(name, record, reset):
    def run(**inputs):
        return gru.run(**inputs, reset=reset)

    return Oracle(name, record.name, "numpy",
                  f"the NumPy reference GRU (gatecheck.reference.gru.run(reset={reset!r}))", _GRU,
                  runner=with_options(run, record), battery=False, options=offered(record),
                  observes_structured=contract_quantities(record))


ORACLES += (
    _reference("reference-gru", GRU, "after"),
    _reference("reference-gru-before", GRU_RESET_BEFORE, "before"),
)
