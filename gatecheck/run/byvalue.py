"""A candidate given as a Python object, on its way to the process that runs it
(``gatecheck.run.isolation``).

An importable function (``my_lstm.run``, found again under its module and name) travels by
name, as ``'my_lstm:run'``, exactly as on the command line. Anything else (a function defined
in a notebook cell or in ``__main__``, a lambda, a closure, a callable object) travels by
value: cloudpickle copies its code, its closure, the globals it reads (modules by name) and
its attributes, so ``run.options`` and ``run.cannot_observe`` arrive with it. Its name in
every report is ``module:qualname`` (``__main__:run``).
"""

import pickle
import sys
from collections.abc import Callable
from typing import Any

from gatecheck.core.candidate import CandidateError
from gatecheck.core.candidate import load as load_by_name


class ByValue(str):
    """A candidate's name as reports show it (``'__main__:run'``) that carries the candidate
    itself, pickled by value; it crosses process boundaries (a pipe, a process pool) with it."""

    payload: bytes  # the candidate, pickled by cloudpickle

    def __new__(cls, name: str, payload: bytes) -> "ByValue":
        self = super().__new__(cls, name)
        self.payload = payload
        return self

    def __reduce__(self) -> tuple[type, tuple[str, bytes]]:
        return ByValue, (str(self), self.payload)


def _by_name(fn: object) -> str | None:
    """'module:name' when ``fn`` is what that name imports to (not ``__main__``), else None."""
    module_name = getattr(fn, "__module__", None)
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    if module is None or module_name == "__main__" or getattr(module, "__spec__", None) is None:
        return None
    for attr in (getattr(fn, "__qualname__", None), getattr(fn, "__name__", None)):
        if not isinstance(attr, str) or "<" in attr:
            continue
        target: Any = module
        for part in attr.split("."):
            target = getattr(target, part, None)
        if target is fn:
            return f"{module_name}:{attr}"
    return None


def spec(fn: object, what: str = "fn") -> str:
    """What ``Isolated`` loads ``fn`` from: ``fn`` itself when it is a 'module:callable' string,
    the importable name of a function, or a ``ByValue``. ``what`` names the argument in errors."""
    if isinstance(fn, str):
        if fn.count(":") != 1 or not all(fn.split(":")):
            raise ValueError(f"{what}: expected a callable or a 'module:callable' string, got {fn!r}")
        return fn
    if not callable(fn):
        raise ValueError(f"{what}: expected a callable or a 'module:callable' string, got a {type(fn).__name__}")
    name = _by_name(fn)
    if name:
        return name
    import cloudpickle

    try:
        payload = cloudpickle.dumps(fn)
    except Exception as exc:  # noqa: BLE001 (whatever it holds that cannot be pickled: a lock, a file, a generator ...)
        raise ValueError(f"{what}: {fn!r} cannot be sent to the process it runs in: cloudpickle cannot pickle it "
                         f"({type(exc).__name__}: {exc}); define it at the top level of an importable module and "
                         f"pass 'module:callable'") from None
    module = getattr(fn, "__module__", None) or "__main__"
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return ByValue(f"{module}:{qualname}", payload)


def load(spec: object, what: str = "--candidate") -> Callable[..., Any]:
    """The candidate in the process that runs it: unpickled from a ``ByValue``, imported by
    name otherwise (``gatecheck.core.candidate.load``). CandidateError if it does not load."""
    if not isinstance(spec, ByValue):
        return load_by_name(spec, what)
    try:
        fn = pickle.loads(spec.payload)
    except Exception as exc:  # a module its globals name that this process cannot import, ...
        raise CandidateError(f"{what} {str(spec)!r}: it does not unpickle in the process that runs it: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not callable(fn):
        raise CandidateError(f"{what} {str(spec)!r}: it unpickled as a {type(fn).__name__}, not a callable")
    return fn

