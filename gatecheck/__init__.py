"""gatecheck: step-by-step conformance of recurrent layers (LSTM, GRU, RNN) against a NumPy
reference and the engines. The user command is ``gatecheck check`` (``python -m gatecheck
check``); in Python (a notebook), ``gatecheck.check(fn, family="lstm")`` runs the same check and
returns a ``gatecheck.Result`` (``gatecheck.frontends.api``). Importing gatecheck imports no
framework.

PYTEST_DONT_REWRITE: pytest marks an installed plugin's package for assertion rewriting, and warns
where it is imported already (a notebook, a script that calls pytest.main): this module has no
assert to rewrite."""


def __getattr__(name):
    """``check`` and ``Result`` (the Python API), imported when first used."""
    if name in ("check", "Result"):
        from gatecheck.frontends import api

        return getattr(api, name)
    raise AttributeError(f"module 'gatecheck' has no attribute {name!r}")
