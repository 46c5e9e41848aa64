"""What an oracle is: an engine's recurrent model driven with canonical inputs.

An oracle's ``run(inputs)`` takes the canonical arrays of its family (all of one dtype)
and returns the quantities it can observe, remapped to the canonical layout and kept in
that dtype. ``observes`` lists them; ``cannot_observe`` says, for each contract quantity
it does not return, why not. Each oracle is one entry of the registry
(``oracles.ORACLES``), from which the grid, the markers, the framework gating, the cost
model and every command-line choice derive.
"""

from dataclasses import dataclass, field

from gatecheck.core.cases import DTYPES
from gatecheck.model.options import OPTIONS

_DTYPE_NAMES = {t.__name__: name for name, t in DTYPES.items()}  # "float32" -> "f32": a case's dtype names


@dataclass(frozen=True)
class Oracle:
    name: str
    family: str  # the model family it computes (gatecheck.families)
    framework: str  # a key of oracles.frameworks.FRAMEWORKS
    description: str
    observes: tuple
    cannot_observe: dict = field(default_factory=dict)
    runner: object = None  # callable(inputs) -> dict
    battery: bool = True  # in the family's battery grid (the reference's own oracles are not)
    trace_ms: float = 0.0  # one-off cost per (D, H, dtype, options) in a process: tracing its graph
    trace_per_shape: bool = False  # that cost comes again for every (B, T) too (XLA compiles static shapes)
    # Layer options it offers (gatecheck.model.options); its runner then takes them: runner(inputs, options).
    options: frozenset = frozenset()
    # What it returns under structural options (bidirectional, stacked: a layer's structure
    # changes which quantities leave the framework): options -> quantity names; None: ``observes``.
    observes_structured: object = None
    # options -> why it does not run that set although it offers each of its options (None: it runs it).
    declines: object = None
    # (options, dtype "f32" or "f64") -> why it does not run that dtype under those options (None: it runs it).
    declines_dtype: object = None

    def offers(self, options, dtype=None):
        """Whether it runs a set of options (in ``dtype``, when given): it offers each, and declines
        neither the set nor the dtype under it."""
        return set(options) <= self.options and not self.declined(options, dtype)

    def declined(self, options, dtype=None):
        """Why it does not run a set of options it offers (in ``dtype``, when given); None: it runs it."""
        options = tuple(options)
        return ((self.declines and self.declines(options))
                or (dtype is not None and self.declines_dtype and self.declines_dtype(options, dtype)) or None)

    def observing(self, family):
        """What it observes of a family record (under options, a quantity the option removes is gone)."""
        return tuple(q for q in self.returns(family.applied) if q in family.quantities)

    def returns(self, options):
        """The quantities its runner returns under ``options``."""

        if self.observes_structured and any(OPTIONS[o].structural for o in options):
            return tuple(self.observes_structured(options))
        return self.observes

    def run(self, inputs, options=(), observes=None):
        """Its quantities (``observes``, default all) on canonical inputs, under ``options``."""
        if not set(options) <= self.options:
            raise ValueError(f"oracle {self.name} does not offer option(s) {sorted(set(options) - self.options)}")
        declined = self.declined(options)
        if declined:
            raise ValueError(f"oracle {self.name} does not run options {list(options)} together: {declined}")
        x = inputs.get("x")
        dtype = _DTYPE_NAMES.get(x.dtype.name) if hasattr(x, "dtype") else None
        declined = dtype and self.declined(options, dtype)  # (the set alone is run: what is left is the dtype's)
        if declined:
            raise ValueError(f"oracle {self.name} does not run {dtype} under options {list(options)}: {declined}")
        out = self.runner(inputs, options) if options else self.runner(inputs)
        wanted = self.returns(options) if observes is None else observes
        missing = set(wanted) - set(out)
        if missing:  # an oracle bug, not a candidate's
            raise RuntimeError(f"oracle {self.name} did not return {sorted(missing)}")
        return {k: out[k] for k in wanted}
