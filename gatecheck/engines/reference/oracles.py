"""The references themselves as oracles (framework "numpy"), one per model.

They are the truth ``verify`` compares with by default and the diagnosis works against.
They are not in a battery grid (the reference against itself proves nothing), except for a
model no framework offers: ``lstm-identity``, whose only oracle is its reference (proven
by finite differences, tests/test_reference.py).
"""

import functools

from gatecheck.engines.base import Oracle
from gatecheck.model.options import OPTIONS
from gatecheck.reference import head, lstm, rnn

_LSTM = ("c", "h", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dWr")  # dWr: under proj only


def _runner(fn):
    return lambda inputs: fn(**inputs)


def with_options(run, family):
    """A reference's runner that takes the options (gatecheck.model.options): the family's record under
    them runs its reference (``run`` without options). It belongs to ``run``'s module."""
    @functools.wraps(run)
    def runner(inputs, options=()):
        if not options:
            return run(**inputs)
        from gatecheck.families import get
        from gatecheck.model.options import under

        return under(get(family), options).run(**inputs)

    return runner


def contract_quantities(family):
    """What a reference returns under structural options: every quantity of the family's record under
    them that is a contract key (the final state C_T and torch's bias halves are read from those)."""
    def names(options):
        from gatecheck.families import get
        from gatecheck.model.options import under

        table = under(get(family), options).quantities
        return tuple(name for name, q in table.items() if q.source == name)

    return names


OFFERED = frozenset({"nobias", "rev"} | {name for name, o in OPTIONS.items() if o.structural})


ORACLES = (
    Oracle("reference", "lstm", "numpy", "the NumPy reference itself (gatecheck.reference.lstm.run)", _LSTM,
           runner=with_options(lstm.run, "lstm"), battery=False, options=OFFERED | {"proj"},
           observes_structured=contract_quantities("lstm")),
    Oracle("reference-identity", "lstm-identity", "numpy",
           "the reference's identity-output model, h_t = o_t * c_t (gatecheck.reference.lstm.run(output='identity'))",
           _LSTM, runner=with_options(lambda **inputs: lstm.run(**inputs, output="identity"), "lstm-identity"),
           options=OFFERED | {"proj"}, observes_structured=contract_quantities("lstm-identity")),
    Oracle("reference-head", "lstm-head", "numpy", "the NumPy reference head (gatecheck.reference.head.run)",
           ("c", "h", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
           runner=_runner(head.run), battery=False),
    Oracle("reference-rnn", "rnn", "numpy", "the NumPy reference RNN (gatecheck.reference.rnn.run)",
           ("h", "dh", "dx", "dh0", "dW", "dU", "db"),
           runner=with_options(rnn.run, "rnn"), battery=False,
           options=OFFERED, observes_structured=contract_quantities("rnn")),
)
