"""What the engine knows of a recurrent model: one ``Family`` record per model.

Everything specific to a model lives in its record (``gatecheck/families/``): the
reference, the candidate contract and its shapes, the quantity table, the inputs and
regimes, the grids, the mutant catalogue, the diagnosis hypotheses. The battery, the
comparison, the candidate checks, results, drift, reports, the kill matrix and the
diagnosis take a family and never name one.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

# A family's inputs, a reference's or a candidate's outputs: contract key (or input name) -> array.
Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Quantity:
    """One compared quantity. ``split`` cuts it into slices: "time" (one per step, axis 1),
    "gate" (one per gate, axis 0) or "" (the whole array); ``phase`` orders the slices as
    the computation runs: 0 forward, 1 backward, 2 parameter gradient."""

    name: str
    phase: int
    split: str
    axes: tuple[str, ...]  # index names, for messages
    source: str  # the contract key it is read from in the reference / candidate
    last_step: bool = False  # read the final state source[:, final] (C_T)
    final: int = -1  # the final state's index along time: -1, or 0 under reverse (gatecheck.model.options)
    meaning: str = ""
    # Its direction runs t = T-1 .. 0 (a reverse layer; a bidirectional layer's reverse direction): its
    # per-step slices are ordered as that direction computes them (gatecheck.core.compare.slices).
    reverse: bool = False
    # The layer of a stack it belongs to (0 the first; the second's, suffix _l1, 1): the whole of a layer's forward
    # pass comes after the layers below it and its backward pass before them (gatecheck.core.compare.slices).
    layer: int = 0


def quantity_table(*quantities: Quantity) -> dict[str, Quantity]:
    return {q.name: q for q in quantities}


@dataclass(frozen=True)
class Variant:
    """What a layer option (``gatecheck.model.options``) changes in a family: the reference under it
    (a run over the remaining inputs), the inputs the candidate no longer gets (``drops``),
    the contract keys it no longer returns (``drops_keys``), ``fill(inputs)``: the values
    the dropped inputs stand for in the full model (no bias: zeros; finite differences run
    the full model's loss on them), the inputs whose time axis it reverses (``flips``: the
    option's model is the family's on those inputs flipped, with every per-step state indexed
    by the original t and the final state at t = 0), the keyword arguments a candidate is called
    with under it (``keywords``: reverse, whose inputs are the forward model's, adds
    ``reverse=True``), the option's own mutants, bound like the family's, and ``replace``:
    fields of the derived record an option states outright."""

    run: Callable[..., Any]
    drops: tuple[str, ...] = ()
    drops_keys: tuple[str, ...] = ()
    fill: Callable[[Arrays], dict[str, np.ndarray]] = lambda inputs: {}
    flips: tuple[str, ...] = ()
    keywords: dict[str, Any] = field(default_factory=dict)
    mutants: tuple[Any, ...] = ()  # gatecheck.core.mutants.Mutant (that module imports this one)
    mutant_bind: Callable[[ModuleType], Callable[..., Any]] | None = None
    # Family fields the option replaces outright, after the derivation above (for an option
    # that changes shapes or adds inputs: its own inputs, contract, shapes, quantities,
    # make_inputs, finite-difference hooks, ...). Names must be Family fields.
    replace: dict[str, Any] = field(default_factory=dict)
    # Its mutants are bugs of a layer built on its model too (gatecheck.model.structures carries them into
    # bidirectional and stacked layers, each built on the mutated model): proj's are; no bias' are not
    # (a layer's contract drops the bias gradient a mutant would still return).
    in_layers: bool = False


class Factor(NamedTuple):
    """One factor of a gate's dL/dz on a one-step case (``Family.local``): what it is, its value
    (B, H), and its usual slips as (words, the value the slip computes)."""

    name: str  # "the sigmoid's derivative f_t (1 - f_t)"
    value: np.ndarray
    slips: tuple[tuple[str, np.ndarray], ...] = ()


class Local(NamedTuple):
    """A gate's dL/dz on a one-step case as the product of ``factors``, and ``blocks``: dz (B, H) ->
    the gate's blocks of the parameter gradients it makes ({"dW": (D, H), "dU": (H, H), "db": (H,)})."""

    factors: tuple[Factor, ...]
    blocks: Callable[[np.ndarray], dict[str, np.ndarray]]


@dataclass(frozen=True, eq=False)  # hashed by identity: one record per family
class Family:
    name: str
    description: str
    run: Callable[..., Any]  # the reference: run(**inputs, ulps=0) -> mapping (contract keys and more)
    inputs: tuple[str, ...]  # argument names of run, in order
    contract: tuple[str, ...]  # the keys a candidate returns
    shapes: Callable[[Arrays], dict[str, tuple[int, ...]]]  # inputs -> {contract key: shape}
    quantities: dict[str, Quantity]  # name -> Quantity (see quantity_table)
    regimes: dict[str, str]  # name -> what it means
    make_inputs: Callable[..., dict[str, np.ndarray]]  # case -> float64 inputs (a function of shape, seed and regime)
    profiles: dict[str, list[dict[str, Any]]]  # profile name -> list of blocks (see gatecheck.core.cases.expand)
    contract_doc: str  # the contract as the docs (docs/reference/families.md) and `check --help` state it
    gates: tuple[str, ...] = ()  # names along the gate axis of "gate"-split quantities
    gated: tuple[str, ...] = ()  # inputs with the gate axis first (a gate order permutes these)
    swappable: tuple[str, ...] = ()  # two inputs a swapped concatenation exchanges (when D == H)
    forward: tuple[str, ...] = ()  # the forward quantities (a layout hypothesis must match these)
    mutants: tuple[Any, ...] = ()  # the catalogue (gatecheck.core.mutants.Mutant, which imports this module)
    mutant_source: ModuleType | None = None  # the module textual mutants edit
    mutant_bind: Callable[[ModuleType], Callable[..., Any]] | None = None  # module -> its run as this family's candidate
    hypotheses: tuple[Callable[..., Any], ...] = ()  # diagnosis: fn(inputs, ref, got) -> sentence or None
    isolating: Callable[..., Any] | None = None  # (inputs, ref) -> [(label, inputs)]: localisation cases
    step_parts: Callable[..., Any] | None = None  # (inputs, ref, t) -> inputs of one step fed the reference's state
    # (inputs, ref) of a one-step case -> {gate: Local}: each gate's dL/dz as a product of factors with
    # their usual slips, for the local-derivative tests of gatecheck.tools.localise
    local: Callable[..., Any] | None = None
    examples: dict[str, int] = field(default_factory=dict)  # 'module:callable' -> expected exit code of `check`
    # Finite differences (gatecheck.core.finite_diff): the loss from the forward pass alone, the
    # loss with state ``which`` at step t moved by an offset, the per-step states whose
    # deltas the contract holds ("d" + state), and the cases ((B, T, D, H), seed, regime).
    fd_loss: Callable[[Arrays], float] | None = None
    fd_state_loss: Callable[..., float] | None = None
    # The magnitude the loss's rounding error scales with, where its terms cancel (a layer built
    # from the model: gatecheck.model.structures); None: |fd_loss| (gatecheck.core.finite_diff.loss_scale).
    fd_scale: Callable[[Arrays], float] | None = None
    states: tuple[str, ...] = ()
    fd_points: tuple[Any, ...] = ()
    # Layer options this family defines (option name -> Variant); gatecheck.model.options.under
    # derives the record under them, whose ``removed`` lists the contract keys they took away.
    options: dict[str, Variant] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()  # the options this record is under (() for a family's own record)
    keywords: dict[str, Any] = field(default_factory=dict)  # what every candidate call gets besides the inputs
    # Layer structure (bidirectional, stacked: gatecheck.model.options, gatecheck.reference.layers) is built
    # from the model itself, for a family that names its output sequence (a contract key, (B, T, width)),
    # that output's upstream gradient (an input) and gives, for finite differences, the output sequence
    # with state ``which`` at step t moved by an offset: fd_output(inputs, moved=(t, which, offset) or None).
    output: str = ""
    upstream: str = "gh"
    fd_output: Callable[..., np.ndarray] | None = None
    # The inputs that are upstream gradients of final states (an LSTM's gc: a batch axis, no time).
    final_upstreams: tuple[str, ...] = ()
    # Inputs every direction and layer of a layer built from the model shares, time on axis 1
    # (a mask: gatecheck.model.structures.masked), and the contract entries the contract leaves undefined:
    # undefined(inputs) -> {contract key: bool array broadcasting to it} (compared nowhere).
    shared: tuple[str, ...] = ()
    undefined: Callable[[Arrays], dict[str, np.ndarray]] | None = None

    @property
    def mutants_by_name(self) -> dict[str, Any]:  # name -> gatecheck.core.mutants.Mutant
        return {m.name: m for m in self.mutants}

    def hook(self, name: str) -> Callable[..., Any]:
        """A hook field that may be None (``fd_loss``, ``fd_output``, ...), where it is about to be called:
        a TypeError naming it when the record has none (what calling None raised)."""
        fn = getattr(self, name)
        if fn is None:
            raise TypeError(f"the {self.name} record has no {name}")
        return fn

    def quantity(self, name: str) -> Quantity:
        return self.quantities[name]

    def per_step(self) -> list[Quantity]:
        """Time-split quantities in the table's order."""
        return [q for q in self.quantities.values() if q.split == "time"]
