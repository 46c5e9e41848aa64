"""gatecheck: step-by-step conformance of recurrent layers (LSTM, RNN) against a NumPy
reference and the frameworks. The user command is ``python -m gatecheck check``; in Python
(a notebook), ``gatecheck.check(fn, family="lstm")`` runs the same check and returns a
``gatecheck.Result`` (``gatecheck.api``). Importing gatecheck imports no framework."""


def __getattr__(name):
    """``check`` and ``Result``, imported when first used."""
    if name == "check":  # the module gatecheck/check.py, which calls gatecheck.api.check when called
        import importlib

        return importlib.import_module("gatecheck.check")
    if name == "Result":
        from gatecheck.api import Result

        return Result
    raise AttributeError(f"module 'gatecheck' has no attribute {name!r}")
