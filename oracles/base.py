"""What an oracle is: a framework's LSTM driven with canonical inputs.

An oracle's ``run(inputs)`` takes the canonical arrays (x, h0, c0, W, U, b, gh, gc,
all of one dtype) and returns the quantities it can observe, remapped to the
canonical layout and kept in that dtype. ``observes`` lists them; ``cannot_observe``
says, for each contract quantity it does not return, why not.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Oracle:
    name: str
    framework: str  # "keras" or "torch": the key of oracles._frameworks.SUPPORTED
    description: str
    observes: tuple
    cannot_observe: dict = field(default_factory=dict)
    runner: object = None  # callable(inputs) -> dict

    def run(self, inputs):
        out = self.runner(inputs)
        missing = set(self.observes) - set(out)
        if missing:  # an oracle bug, not a candidate's
            raise RuntimeError(f"oracle {self.name} did not return {sorted(missing)}")
        return {k: out[k] for k in self.observes}
