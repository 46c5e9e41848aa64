"""The inventory of the engines' recurrent APIs: every parameter of every API an oracle calls, read
from the installed version (``inspect.signature``, ONNX's operator schemas) and classified by hand.

Each engine's folder holds its inventory (``gatecheck/engines/<engine>/inventory.py``): an
``Inventory`` with one ``Api`` per callable (a constructor, a ``call``/``forward``, an ONNX
operator's attributes, inputs or outputs) whose ``Entry`` records classify its parameters:

exercised  an oracle sets it from a case: ``by`` names the layer options (gatecheck.model.options:
           ``nobias``, ``rev``, ...) and the case axes (``AXES``: the grid's B, T, D, H, the dtype, the
           case's arrays, the family, the oracle) that drive it; ``why`` cites the function
fixed      set to one value by the contract; ``why`` says which and why
declined   not exercised, with the reason (stochastic at training time, GPU only, an initializer,
           regularizer or constraint that is not part of the forward and backward pass, device
           placement, a file to write, ...)
open       a numerical parameter gatecheck does not exercise yet; ``why`` says what exercising it needs

``problems`` compares an inventory with what its engine's introspection found: a parameter with no
entry (unclassified) and an entry whose parameter the installed version lacks (stale) are named with
the engine and the API. An entry may hold a version range (``since``, ``until``) where a release
adds or removes its parameter; outside it the entry is not expected. The registry of every
inventory is ``gatecheck.engines.INVENTORIES``; nothing else lists them.
"""

import ast
import inspect
import textwrap
from dataclasses import dataclass
from typing import Callable

from gatecheck.model.options import OPTIONS

EXERCISED, FIXED, DECLINED, OPEN = "exercised", "fixed", "declined", "open"
KINDS = (EXERCISED, FIXED, DECLINED, OPEN)

# The case axes an exercised parameter can be driven by, besides the layer options.
AXES = {
    "B": "the grid's batch size",
    "T": "the grid's number of steps",
    "D": "the grid's input width",
    "H": "the grid's hidden width",
    "dtype": "the case's dtype (the f32/f64 axis)",
    "inputs": "the case's arrays (drawn per seed and regime): x, the initial states, the weights, the upstream gradients",
    "family": "the family the oracle models (e.g. gru and gru-reset-before)",
    "oracle": "the oracle (one engine's variant, e.g. its layout or exporter)",
}


@dataclass(frozen=True)
class Entry:
    """One parameter of an API and its kind (``KINDS``)."""

    parameter: str
    kind: str
    why: str  # exercised: which function sets it from the case; fixed: the value and why; declined: why; open: what it needs
    by: tuple = ()  # exercised only: the options (OPTIONS) and case axes (AXES) that drive it
    since: tuple = None  # the first (major, minor) of the engine's version with the parameter (None: any)
    until: tuple = None  # the first (major, minor) without it (None: still there)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"{self.parameter}: kind {self.kind!r}; expected one of {KINDS}")
        if (self.kind == EXERCISED) != bool(self.by):
            raise ValueError(f"{self.parameter}: an exercised entry, and only one, names what drives it (by)")
        if not self.why:
            raise ValueError(f"{self.parameter}: no why")

    def applies(self, version):
        """Whether the parameter is expected in ``version`` (a (major, minor) tuple)."""
        return ((self.since is None or tuple(version) >= self.since)
                and (self.until is None or tuple(version) < self.until))

    def options(self):
        """The layer options among ``by``."""
        return tuple(b for b in self.by if b not in AXES)

    def unknown(self):
        """What ``by`` names that is neither a layer option (OPTIONS) nor a case axis (AXES)."""
        return tuple(b for b in self.by if b not in AXES and b not in OPTIONS)


def exercised(parameter, by, why, **kw):
    return Entry(parameter, EXERCISED, why, tuple(by), **kw)


def fixed(parameter, why, **kw):
    return Entry(parameter, FIXED, why, **kw)


def declined(parameter, why, **kw):
    return Entry(parameter, DECLINED, why, **kw)


def open_(parameter, why, **kw):
    return Entry(parameter, OPEN, why, **kw)


@dataclass(frozen=True)
class Api:
    """One callable of an engine (or one part of an ONNX operator) and its entries."""

    name: str
    entries: tuple
    oracles: tuple = ()  # the oracles that call it: one of them offers each option an entry is exercised by


@dataclass(frozen=True)
class Inventory:
    engine: str  # its folder, gatecheck/engines/<engine>/
    framework: str  # a key of gatecheck.engines.frameworks.FRAMEWORKS (its importer, its pytest marker)
    package: str  # the distribution whose version ``introspect`` returns (the one the APIs are read from)
    apis: tuple
    # () -> (the installed version, (major, minor); {api name: tuple of its parameter names}); imports the
    # framework through gatecheck.engines.frameworks' importers (Unavailable, with the reason, where it cannot)
    introspect: Callable
    what: str = ""  # what the inventory covers, and what not

    def api(self, name):
        return next(a for a in self.apis if a.name == name)


def version_tuple(text):
    """(major, minor) of a version string ("2.13.0+cpu" -> (2, 13))."""
    parts = []
    for piece in str(text).split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


def parameters(fn, skip=("self",)):
    """The parameter names of a callable, in order (``*args``, ``**kwargs`` as written so)."""
    out = []
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip:
            continue
        out.append({inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(p.kind, "") + name)
    return tuple(out)


def overloaded_parameters(cls, method="__init__", skip=("self",)):
    """The parameters of the first ``typing.overload`` of ``cls.method`` that names them (not only
    ``*args, **kwargs``), read from the class's source: where the method itself takes ``*args, **kwargs``
    (torch.nn.LSTM, GRU, RNN), its overloads are what documents the arguments (``typing.get_overloads``
    needs Python 3.11; the source reads the same on 3.10)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    for node in body:
        if not isinstance(node, ast.FunctionDef) or node.name != method:
            continue
        if not any(getattr(d, "id", getattr(d, "attr", None)) == "overload" for d in node.decorator_list):
            continue
        args = node.args
        names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        if [n for n in names if n not in skip]:
            return tuple(n for n in names if n not in skip)
    raise LookupError(f"{cls.__qualname__}.{method}: no overload names its parameters")


def unclassified(inventory, found, version):
    """(api, parameter) of every introspected parameter without an entry that applies to ``version``
    (an API introspected but not in the inventory: each of its parameters)."""
    out = []
    for name, params in found.items():
        known = {e.parameter for a in inventory.apis if a.name == name for e in a.entries if e.applies(version)}
        out += [(name, p) for p in params if p not in known]
    return out


def stale(inventory, found, version):
    """(api, parameter) of every entry that applies to ``version`` whose parameter the installed version
    lacks (an API of the inventory not introspected: each of its entries)."""
    return [(a.name, e.parameter) for a in inventory.apis for e in a.entries
            if e.applies(version) and e.parameter not in found.get(a.name, ())]


def problems(inventory, found, version):
    """Every difference between an inventory and what its engine's introspection found, as messages that
    name the engine, the API and the parameter; duplicate entries too."""
    where = f"engine {inventory.engine} ({inventory.package} {'.'.join(map(str, version))})"
    out = [f"{where}: {api}: parameter {p!r} is not classified (no entry in "
           f"gatecheck/engines/{inventory.engine}/inventory.py)" for api, p in unclassified(inventory, found, version)]
    out += [f"{where}: {api}: entry {p!r} names a parameter the installed version does not have (stale; a "
            f"version range, since/until, where a release removed it)" for api, p in stale(inventory, found, version)]
    for a in inventory.apis:
        names = [e.parameter for e in a.entries if e.applies(version)]
        out += [f"{where}: {a.name}: parameter {p!r} has {names.count(p)} entries"
                for p in sorted(set(names)) if names.count(p) > 1]
    return out


def counts(inventory, version=None):
    """{kind: number of entries} (those that apply to ``version``, when given), in ``KINDS`` order."""
    entries = [e for a in inventory.apis for e in a.entries if version is None or e.applies(version)]
    return {k: sum(e.kind == k for e in entries) for k in KINDS}
