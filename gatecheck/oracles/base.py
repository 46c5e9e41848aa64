"""What an oracle is: an engine's recurrent model driven with canonical inputs.

An oracle's ``run(inputs)`` takes the canonical arrays of its family (all of one dtype)
and returns the quantities it can observe, remapped to the canonical layout and kept in
that dtype. ``observes`` lists them; ``cannot_observe`` says, for each contract quantity
it does not return, why not. Each oracle is one entry of the registry
(``oracles.ORACLES``), from which the grid, the markers, the framework gating, the cost
model and every command-line choice derive.
"""

from dataclasses import dataclass, field


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
    trace_ms: float = 0.0  # one-off cost per (D, H, dtype) in a process: tracing its graph

    def run(self, inputs):
        out = self.runner(inputs)
        missing = set(self.observes) - set(out)
        if missing:  # an oracle bug, not a candidate's
            raise RuntimeError(f"oracle {self.name} did not return {sorted(missing)}")
        return {k: out[k] for k in self.observes}
