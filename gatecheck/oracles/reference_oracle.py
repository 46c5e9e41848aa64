"""The references themselves as oracles (framework "numpy"), one per model.

They are the truth ``verify`` compares with by default and the diagnosis works against.
They are not in a battery grid (the reference against itself proves nothing), except for a
model no framework offers: ``lstm-identity``, whose only oracle is its reference (proven
by finite differences, tests/test_reference.py).
"""

from gatecheck.oracles.base import Oracle
from gatecheck.reference import head, lstm, rnn

_LSTM = ("c", "h", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dWr")  # dWr: under proj only


def _runner(fn):
    return lambda inputs: fn(**inputs)


def _with_options(run, **runs):
    """A reference's runner that takes the options (gatecheck.options; one at a time): ``runs``
    maps an option to the reference's run under it."""
    return lambda inputs, options=(), **kw: (runs[options[0]] if options else run)(**inputs, **kw)


_OPTIONS = frozenset({"nobias", "rev"})
_LSTM_OPTIONS = _OPTIONS | {"proj"}
_identity = _with_options(lstm.run, nobias=lstm.run_nobias, rev=lstm.run_rev, proj=lstm.run_proj)


ORACLES = (
    Oracle("reference", "lstm", "numpy", "the NumPy reference itself (gatecheck.reference.lstm.run)", _LSTM,
           runner=_with_options(lstm.run, nobias=lstm.run_nobias, rev=lstm.run_rev, proj=lstm.run_proj), battery=False,
           options=_LSTM_OPTIONS),
    Oracle("reference-identity", "lstm-identity", "numpy",
           "the reference's identity-output model, h_t = o_t * c_t (gatecheck.reference.lstm.run(output='identity'))",
           _LSTM, runner=lambda inputs, options=(): _identity(inputs, options, output="identity"),
           options=_LSTM_OPTIONS),
    Oracle("reference-head", "lstm-head", "numpy", "the NumPy reference head (gatecheck.reference.head.run)",
           ("c", "h", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
           runner=_runner(head.run), battery=False),
    Oracle("reference-rnn", "rnn", "numpy", "the NumPy reference RNN (gatecheck.reference.rnn.run)",
           ("h", "dh", "dx", "dh0", "dW", "dU", "db"),
           runner=_with_options(rnn.run, nobias=rnn.run_nobias, rev=rnn.run_rev), battery=False,
           options=_OPTIONS),
)
