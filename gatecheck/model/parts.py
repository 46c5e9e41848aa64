"""A case under layer options (``gatecheck.model.options``) as cases of the family's own model, for
the diagnosis: the family's hypotheses and mutants are stated for its own contract, and each
option's model is that model on other inputs, or is built from it.

- no bias: the model on the inputs with the bias filled in (``Variant.fill``: zeros);
- reverse: the model on the time-flipped inputs (``Variant.flips``), the candidate's per-step
  outputs flipped likewise, so a part's step t is the t-th step processed (t = 0 on x[:, T-1]);
- a bidirectional layer: its forward direction and its reverse one (suffix ``_r``, a reverse
  model as above), each fed its share of the upstream gradient (``layers.split_upstream``;
  under "mul" a share is scaled by the candidate's own output of the other direction);
- a stack: the first layer and the second (suffix ``_l1``), whose x is the candidate's own output
  of the first layer; the first layer's upstream gradient is the second layer's dx, which the
  contract does not return: the reference's, on the candidate's x.

What a part cannot supply is left out of its candidate outputs, so a hypothesis that needs it
finds no key and is skipped (never fed a stand-in): dx of a bidirectional layer is both
directions' sum and a second layer's dx is internal, so no direction and no second layer has a
dx of its own; a first layer below a second layer keeps its forward states only where its
upstream gradient (the second layer's dx) is not known to be the reference's: where the second
layer's states or deltas differ, or where the one step of it that the contract shows differs (at
the last step processed, the first layer's delta of its output is that gradient alone).

An option whose model is not the family's on other inputs (``Variant.replace``: the projection)
has no parts; ``split`` says so, and the diagnosis prints it. Nothing here names a family.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from gatecheck.core.compare import close
from gatecheck.core.family import Arrays, Family
from gatecheck.model import options as opts
from gatecheck.model import structures
from gatecheck.reference import layers


class Part(NamedTuple):
    """One direction or layer of a case under options, as a case of the family's own model."""

    label: str  # how the diagnosis names it: "reverse direction (_r)"; "" for the whole layer
    suffix: str  # its keys' suffix in the contract under the options ("_r", "_r_l1"; "" for none)
    inputs: dict[str, np.ndarray]  # the family's own inputs (the bias filled in, time flipped where reversed)
    ref: dict[str, Any]  # the family's reference on them, internals included (gates, deltas)
    got: dict[str, Any]  # the candidate's outputs of this part under the family's names (time flipped likewise)
    reversed: bool  # its steps are counted in processing order (t = 0: the step on x[:, T-1])
    withheld: str  # why its gradients are left out of ``got`` ('' when they are not)


class Scope(NamedTuple):
    """Inputs a gate layout is tried on (``gatecheck.tools.diagnose.gate_layout``): a part's, or every part's."""

    label: str  # "" for the whole layer
    gated: tuple[str, ...]  # the inputs with the gate axis first
    swaps: tuple[tuple[str, ...], ...]  # pairs of inputs a swapped concatenation exchanges
    forward: tuple[str, ...]  # the contract keys its forward pass must match


_UNKNOWN = ("its gradients are not diagnosed: its upstream gradient is the second layer's dx, which the contract "
            "does not return")


def differs(part: Part) -> list[str]:
    """The candidate's outputs of a part that differ from its reference (float64 precision)."""
    return [k for k, v in part.got.items() if not close(v, part.ref[k])]


def _structure(options: tuple[str, ...]) -> tuple[tuple[str, ...], str | None, int]:
    """(own options, merge mode or None, number of layers)."""
    own = tuple(o for o in options if not opts.OPTIONS[o].structural)
    return own, opts.merge(options), 2 if "L2" in options else 1


def _label(layer: int, depth: int, reverse: int, merge: str | None, suffix: str) -> str:
    layer_name = ("first layer", "second layer")[layer] if depth == 2 else ""
    direction = ("reverse direction" if reverse else "forward direction") if merge else ""
    name = f"{layer_name}'s {direction}" if layer_name and direction else layer_name or direction
    return f"{name} ({suffix})" if suffix else name


def everywhere(options: Iterable[str]) -> str:
    """How the diagnosis names every part at once: "both directions", "both layers", ..."""
    _, merge, depth = _structure(opts.canonical(options))
    return {(True, 1): "both directions", (False, 2): "both layers",
            (True, 2): "both layers and directions"}.get((bool(merge), depth), "")


def _under_mask(family: Family, options: Iterable[str]) -> str | None:
    """Why ``family``'s hypotheses and mutants are not tried under a mask among ``options`` (None: none)."""
    masked = [o for o in options if o in opts.MASKS]
    if masked:
        return (f"the {family.name} hypotheses and mutants are not tried under {masked[0]}: a row's model runs on "
                f"its valid steps only, not on the case's inputs (the mask's own mutants are)")
    return None


def scopes(family: Family, options: Iterable[str]) -> list[Scope]:
    """The gate-layout scopes of ``family`` (its own record) under ``options``: the whole layer;
    for a bidirectional layer or a stack, every part at once, then each part alone; under a mask,
    every part at once only (a part's inputs are not its model's: ``split``)."""
    options = opts.canonical(options)
    own, merge, depth = _structure(options)
    record, whole = opts.under(family, own), opts.under(family, options)
    forward = tuple(dict.fromkeys(q.source for q in whole.quantities.values()
                                  if q.phase == 0 and q.source in whole.contract))
    if _under_mask(family, options):
        return [Scope(everywhere(options), whole.gated, (), forward)]
    if not merge and depth == 1:
        return [Scope("", record.gated, (record.swappable,) if record.swappable else (), record.forward)]
    found: list[Scope] = []
    for n, s in enumerate(layers.suffixes(bool(merge), depth)):
        label = _label(n // (2 if merge else 1), depth, s.startswith(layers.REVERSE), merge, s)
        found.append(Scope(label, tuple(k + s for k in record.gated),
                           ((record.swappable[0] + s, record.swappable[1] + s),) if record.swappable else (),
                           tuple(k + s for k in record.forward)))
    every = Scope(everywhere(options), tuple(k for p in found for k in p.gated),
                  tuple(pair for p in found for pair in p.swaps), forward)
    return [every] + found


def split(family: Family, options: Iterable[str], inputs: Arrays, ref: Arrays,
          got: Arrays) -> tuple[list[Part], str]:
    """(the parts of a case of ``family`` (its own record) under ``options``, each as a case of
    the family's own model; a sentence when there are none: an option whose model is not the
    family's on other inputs). ``inputs``, ``ref``, ``got``: the case's inputs, reference and
    candidate outputs under the options."""
    options = opts.canonical(options)
    untried = _under_mask(family, options)
    if untried:
        return [], untried
    own, merge, depth = _structure(options)
    if own and family.options[own[0]].replace:
        return [], (f"the {family.name} hypotheses and mutants are not tried under {own[0]}: its model is not the "
                    f"{family.name} model on other inputs (its own mutants are)")
    record = opts.under(family, own)
    timeless = structures.timeless(record)

    def make(label: str, suffix: str, part_inputs: Arrays, part_got: Arrays, reverse: bool,
             withheld: str = "") -> Part:
        variant = family.options[own[0]] if own else None
        flips = set(variant.flips if variant else ()) | ({"x", record.upstream} if reverse else set())
        full = dict(part_inputs, **variant.fill(part_inputs)) if variant else dict(part_inputs)
        full = {k: v[:, ::-1] if k in flips else v for k, v in full.items()}
        mine = {k: v[:, ::-1] if flips and k not in timeless else v for k, v in part_got.items()}
        return Part(label, suffix, full, family.run(**full), mine, bool(flips), withheld)

    if not merge and depth == 1:
        return [make("", "", inputs, got, False)], ""

    own_keys, up, out = structures.layer_inputs(record), record.upstream, record.output
    layer_record = opts.under(family, own + ((next(o for o in options if o in opts.MERGES),) if merge else ()))
    forward_keys = {q.source for q in record.quantities.values() if q.phase == 0}

    def value(key: str) -> np.ndarray:  # the candidate's own output where it returned it (what its next step consumed)
        return got[key] if key in got else ref[key]

    found: list[list[Part]] = []  # per layer, from the top down
    gy = inputs[up]
    for layer in reversed(range(depth)):
        tail = layers.LAYER if layer else ""
        x = inputs["x"] if layer == 0 else value("y" if merge else out)
        below = layer < depth - 1  # its upstream gradient is the second layer's dx
        withheld = ""
        if below:
            second = {k: inputs[k + layers.LAYER] for k in layer_record.inputs if k not in ("x", up)}
            gy = layer_record.run(x=value("y" if merge else out), **{up: inputs[up]}, **second)["dx"]
            # that dx comes from the second layer's states and deltas (its parameter and initial-state
            # gradients feed nothing)
            wrong = [k + p.suffix for p in found[-1] for k in differs(p) if k not in timeless]
            if wrong:
                withheld = f"{_UNKNOWN}, and the second layer differs ({', '.join(wrong)})"
        shares = layers.split_upstream(merge, gy, value(out + tail), value(out + layers.REVERSE + tail)) \
            if merge else (gy,)
        here: list[Part] = []
        for reverse, share in enumerate(shares):
            s = (layers.REVERSE if reverse else "") + tail
            part_inputs = {"x": x, up: share, **{k: inputs[k + s] for k in own_keys}}
            keys = [k for k in record.contract if k != "dx" and k + s in got]
            if layer == 0 and not merge and "dx" in got:  # a first layer of one direction: dx is its own
                keys.append("dx")
            part = make(_label(layer, depth, reverse, merge, s), s, part_inputs, {k: got[k + s] for k in keys},
                        bool(reverse), withheld)
            # Where the second layer matches, the one step of that dx the contract shows: at the last step
            # processed the output's delta is the upstream gradient alone.
            delta = "d" + out
            if below and not withheld and delta in part.got \
                    and not close(part.got[delta][:, -1], part.inputs[up][:, -1]):
                part = part._replace(withheld=f"{_UNKNOWN}, and its {delta} at the last step processed (that "
                                              f"gradient alone) is not the reference's: the second layer passes down "
                                              f"something else, or this layer drops it")
            if part.withheld:
                part = part._replace(got={k: v for k, v in part.got.items() if k in forward_keys})
            here.append(part)
        found.append(here)
    return [p for here in reversed(found) for p in here], ""
