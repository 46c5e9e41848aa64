"""The registry of model families (``gatecheck.core.family.Family``): one record each. Adding a
family is a reference, its layouts and oracles, one record, and one entry here."""

from gatecheck.families.gru.record import GRU, GRU_RESET_BEFORE
from gatecheck.families.head.record import HEAD
from gatecheck.families.lstm.record import LSTM, LSTM_IDENTITY
from gatecheck.families.rnn.record import RNN

FAMILIES = {f.name: f for f in (LSTM, LSTM_IDENTITY, HEAD, RNN, GRU, GRU_RESET_BEFORE)}


def get(name):
    """The family called ``name``; a clear error listing the valid ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {name!r}")
    return FAMILIES[name]
