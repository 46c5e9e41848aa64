"""LSTM implementations in the styles people write by hand, each with a pure adapter
(``run``) to the canonical contract of ``reference.lstm.run``."""
