"""What the engine knows of a recurrent model: one ``Family`` record per model.

Everything specific to a model lives in its record (``gatecheck/families/``): the
reference, the candidate contract and its shapes, the quantity table, the inputs and
regimes, the grids, the mutant catalogue, the diagnosis hypotheses. The battery, the
comparison, the candidate checks, results, drift, reports, the kill matrix and the
diagnosis take a family and never name one.
"""

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Quantity:
    """One compared quantity. ``split`` cuts it into slices: "time" (one per step, axis 1),
    "gate" (one per gate, axis 0) or "" (the whole array); ``phase`` orders the slices as
    the computation runs: 0 forward, 1 backward, 2 parameter gradient."""

    name: str
    phase: int
    split: str
    axes: tuple  # index names, for messages
    source: str  # the contract key it is read from in the reference / candidate
    last_step: bool = False  # read the final state source[:, final] (C_T)
    final: int = -1  # the final state's index along time: -1, or 0 under reverse (gatecheck.model.options)
    meaning: str = ""


def quantity_table(*quantities):
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

    run: Callable
    drops: tuple = ()
    drops_keys: tuple = ()
    fill: Callable = lambda inputs: {}
    flips: tuple = ()
    keywords: dict = field(default_factory=dict)
    mutants: tuple = ()
    mutant_bind: Callable = None
    # Family fields the option replaces outright, after the derivation above (for an option
    # that changes shapes or adds inputs: its own inputs, contract, shapes, quantities,
    # make_inputs, finite-difference hooks, ...). Names must be Family fields.
    replace: dict = field(default_factory=dict)
    # Its mutants are bugs of a layer built on its model too (gatecheck.model.structures carries them into
    # bidirectional and stacked layers, each built on the mutated model): proj's are; no bias' are not
    # (a layer's contract drops the bias gradient a mutant would still return).
    in_layers: bool = False


@dataclass(frozen=True, eq=False)  # hashed by identity: one record per family
class Family:
    name: str
    description: str
    run: Callable  # the reference: run(**inputs, ulps=0) -> mapping (contract keys and more)
    inputs: tuple  # argument names of run, in order
    contract: tuple  # the keys a candidate returns
    shapes: Callable  # inputs -> {contract key: shape}
    quantities: dict  # name -> Quantity (see quantity_table)
    regimes: dict  # name -> what it means
    make_inputs: Callable  # case -> float64 inputs (a function of shape, seed and regime)
    profiles: dict  # profile name -> list of blocks (see gatecheck.core.cases.expand)
    contract_doc: str  # the contract as the docs (docs/reference/families.md) and `check --help` state it
    gates: tuple = ()  # names along the gate axis of "gate"-split quantities
    gated: tuple = ()  # inputs with the gate axis first (a gate order permutes these)
    swappable: tuple = ()  # two inputs a swapped concatenation exchanges (when D == H)
    forward: tuple = ()  # the forward quantities (a layout hypothesis must match these)
    mutants: tuple = ()  # the catalogue (gatecheck.core.mutants.Mutant)
    mutant_source: object = None  # the module textual mutants edit
    mutant_bind: Callable = None  # module -> its run as this family's candidate
    hypotheses: tuple = ()  # diagnosis: fn(inputs, ref, got) -> sentence or None
    isolating: Callable = None  # (inputs, ref) -> [(label, inputs)]: localisation cases
    step_parts: Callable = None  # (inputs, ref, t) -> inputs of one step fed the reference's state
    examples: dict = field(default_factory=dict)  # 'module:callable' -> expected exit code of `check`
    # Finite differences (gatecheck.core.finite_diff): the loss from the forward pass alone, the
    # loss with state ``which`` at step t moved by an offset, the per-step states whose
    # deltas the contract holds ("d" + state), and the cases ((B, T, D, H), seed, regime).
    fd_loss: Callable = None
    fd_state_loss: Callable = None
    # The magnitude the loss's rounding error scales with, where its terms cancel (a layer built
    # from the model: gatecheck.model.structures); None: |fd_loss| (gatecheck.core.finite_diff.loss_scale).
    fd_scale: Callable = None
    states: tuple = ()
    fd_points: tuple = ()
    # Layer options this family defines (option name -> Variant); gatecheck.model.options.under
    # derives the record under them, whose ``removed`` lists the contract keys they took away.
    options: dict = field(default_factory=dict)
    removed: tuple = ()
    applied: tuple = ()  # the options this record is under (() for a family's own record)
    keywords: dict = field(default_factory=dict)  # what every candidate call gets besides the inputs
    # Layer structure (bidirectional, stacked: gatecheck.model.options, gatecheck.reference.layers) is built
    # from the model itself, for a family that names its output sequence (a contract key, (B, T, width)),
    # that output's upstream gradient (an input) and gives, for finite differences, the output sequence
    # with state ``which`` at step t moved by an offset: fd_output(inputs, moved=(t, which, offset) or None).
    output: str = ""
    upstream: str = "gh"
    fd_output: Callable = None
    # The inputs that are upstream gradients of final states (an LSTM's gc: a batch axis, no time).
    final_upstreams: tuple = ()
    # Inputs every direction and layer of a layer built from the model shares, time on axis 1
    # (a mask: gatecheck.model.structures.masked), and the contract entries the contract leaves undefined:
    # undefined(inputs) -> {contract key: bool array broadcasting to it} (compared nowhere).
    shared: tuple = ()
    undefined: Callable = None

    @property
    def mutants_by_name(self):
        return {m.name: m for m in self.mutants}

    def quantity(self, name):
        return self.quantities[name]

    def per_step(self):
        """Time-split quantities in the table's order."""
        return [q for q in self.quantities.values() if q.split == "time"]
