"""gatecheck: step-by-step conformance of recurrent layers (LSTM, RNN) against a NumPy
reference and the frameworks. The user command is ``python -m gatecheck check``."""
