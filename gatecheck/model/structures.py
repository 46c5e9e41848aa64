"""Family records of layers built from a family's own model (``gatecheck.reference.layers``):
bidirectional with a merge mode, and two stacked layers. ``gatecheck.model.options.under`` builds
them for the structural options; nothing here names a family.

A record needs of its family only what ``Family`` states for every model: its inputs, its
output sequence (``output``) and that output's upstream gradient (``upstream``), its quantity
table and shapes, its finite-difference hooks (``fd_loss``, ``fd_state_loss`` and ``fd_output``:
the output sequence with one step's state moved) and its ``make_inputs``. From those come the
composite's reference, contract, quantity table, inputs (the extra direction's and layer's
weights and initial states drawn from their own random streams, so they never equal the
first's) and finite-difference hooks (the composite's loss from its parts' forward passes only),
and its mutants (edits of ``gatecheck.reference.layers``). A record under an option of the family's
own (the LSTM's projection) may have its option's mutants carried into the layer (``carried``: the
layer built on the mutated model) and the inputs the option adds read from the wrong direction or
layer (``added``).
"""

import dataclasses
import zlib
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from gatecheck.core.cases import Case
from gatecheck.core.family import Arrays, Family, Quantity
from gatecheck.core.finite_diff import loss_scale
from gatecheck.core.mutants import Mutant, candidate
from gatecheck.reference import layers

# The seed offsets of the extra draws (reverse direction, second layer): the same model's inputs
# of the same case at another seed, a stream of their own.
REVERSE_SEED = 1_000_003
LAYER_SEED = 2_000_003

# A state moved for finite differences: (step t, state name, offset array).
Moved = tuple[int, str, np.ndarray]
# A structure's finite-difference parts: (inputs, moved or None) -> (output, [final states' terms, magnitude]).
Parts = Callable[..., tuple[np.ndarray, np.ndarray]]


def timeless(family: Family) -> tuple[str, ...]:
    """The contract keys without a time axis (parameter and initial-state gradients)."""
    per_step = {q.source for q in family.quantities.values() if q.split == "time" or q.last_step}
    return tuple(k for k in family.contract if k not in per_step)


def layer_inputs(family: Family) -> tuple[str, ...]:
    """The inputs that belong to one direction or layer: all but x, the upstream gradient and
    the inputs every direction and layer shares (a mask)."""
    return tuple(k for k in family.inputs if k not in ("x", family.upstream) + family.shared)


def initial_of(family: Family) -> dict[str, str]:
    """state -> its initial-state input, for a record's model: h -> h0, c -> c0, and their twins
    (state h_r: h0_r)."""
    found: dict[str, str] = {}
    for state in family.states:
        base, _, tail = state.partition("_")
        name = base + "0" + ("_" + tail if tail else "")
        if name in family.inputs:
            found[state] = name
    return found


def initial_states(family: Family) -> tuple[str, ...]:
    """The initial-state inputs of a record's model: h0, c0, and their twins (state h_r: h0_r)."""
    return tuple(initial_of(family).values())


def _twins(keys: Iterable[str], suffix: str, skip: tuple[str, ...] = ("dx",)) -> tuple[str, ...]:
    return tuple(k + suffix for k in keys if k not in skip)


def _quantities(table: Mapping[str, Quantity], suffix: str, reverse: bool = False,
                layer: int = 0) -> dict[str, Quantity]:
    """A quantity table's copies for another direction or layer (dx is the layer's input's, once); ``layer``:
    how many layers below the copy's (``Quantity.layer``)."""
    return {q.name + suffix: dataclasses.replace(q, name=q.name + suffix, source=q.source + suffix,
                                                 final=0 if reverse and q.last_step else q.final,
                                                 reverse=q.reverse or reverse, layer=q.layer + layer)
            for q in table.values() if q.source != "dx"}


def _first(family: Family, phase: int) -> str:
    """The first per-step quantity of a phase in a record's table (where a divergence shows first)."""
    return next(q.name for q in family.quantities.values() if q.phase == phase and q.split == "time")


def _final_part(family: Family, inputs: Arrays, moved: Moved | None,
                width_of: tuple[int, ...]) -> tuple[float, float]:
    """(the loss of a record's model with a zero upstream gradient: the final states' terms alone
    (an LSTM's gc . C_T; 0 for models whose loss is on the output only), with a state moved; the
    magnitude of those terms, ``finite_diff.loss_scale``)."""
    zero = dict(inputs, **{family.upstream: np.zeros(width_of, inputs["x"].dtype)})
    return (family.hook("fd_state_loss")(zero, *moved) if moved else family.hook("fd_loss")(zero),
            loss_scale(family, zero))


def _flip(inputs: Arrays, shared: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Inputs with x and the shared sequences (a mask) in reversed time."""
    return dict(inputs, **{k: inputs[k][:, ::-1] for k in ("x",) + tuple(shared)})


# --- masks -----------------------------------------------------------------------------------------------

# How a masked record draws its mask: "right" (each row a prefix of valid steps: lengths, as packed
# sequences need), "any" (rows in turn right-padded, left-padded, and with gaps).
PADDINGS = ("right", "any")
MASK_SEED = "mask-"


def draw_mask(case: Case, padding: str) -> np.ndarray:
    """A case's mask (B, T) of 1.0 (valid) and 0.0 (masked): a function of B, T, the seed and the
    padding alone (every direction and layer of the case shares it). Every row has a valid step and,
    where T > 1, a masked one, but for the first row of a right-padded batch (its longest, of length
    T). "any": the rows are, in turn from (seed % 3), gapped (masked at t = 0, and, where T >= 4, a
    masked step between valid ones; the rest at random), right-padded and left-padded (a single row
    is gapped)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding: expected one of {list(PADDINGS)}, got {padding!r}")
    B, T = case.B, case.T
    rng = np.random.default_rng([zlib.crc32(f"{MASK_SEED}{padding}".encode()), B, T, case.seed])
    mask = np.ones((B, T))
    if T == 1:
        return mask
    for b in range(B):
        n = int(rng.integers(1, T))  # the valid steps of a padded row: 1 .. T-1
        kind = "right" if padding == "right" else ("gaps", "right", "left")[(b + case.seed) % 3 if B > 1 else 0]
        if kind == "right":
            if not (padding == "right" and b == 0 and B > 1):  # a right-padded batch's first row: its longest
                mask[b, n:] = 0
        elif kind == "left":
            mask[b, : T - n] = 0
        else:
            gaps = rng.random(T) < 0.4
            gaps[0] = True
            if T < 4:  # [0, 1] or [0, 1, 0]
                gaps[1:] = [False, True][: T - 1]
            else:  # a valid step k, masked k + 1, a valid step after: a gap between valid steps
                k = 1 + int(rng.integers(T - 3))
                gaps[k], gaps[k + 1], gaps[k + 2 + int(rng.integers(T - k - 2))] = False, True, False
            mask[b, gaps] = 0
    return mask


def masked_mutants(family: Family, outputs: str) -> tuple[Mutant, ...]:
    """The mutants of a masked layer: edits of gatecheck.reference.layers."""
    found = [
        Mutant("mask-steps-update-state", "a masked step runs the model: its x updates the state the next valid "
               "step starts from and its upstream gradient reaches the weights (only the states returned at masked "
               "steps are held)", "the mask applied to the returned sequence only, after a loop over every step",
               old="steps = np.flatnonzero(keep[b])", new="steps = np.arange(keep.shape[1])", first=""),
    ]
    if outputs == "zero":
        found.append(Mutant(
            "mask-padding-gradient", "the upstream gradient of a masked step's output (a constant 0) is added to the "
            "last valid step's", "the gradient at padded positions not dropped (gradient leaking through padding)",
            old='if outputs == "carry":', new='if outputs in ("carry", "zero"):', first="dh"))
    else:
        found.append(Mutant(
            "mask-initial-output", "before a row's first valid step the output is the initial state h0, not 0",
            "the previous output taken as the initial state (Keras starts it at zeros: its output and state "
            "differ there)", old="found[b, before] = inputs[states[k]][b] if k in states else 0",
            new="found[b, before] = inputs[states[k if k in states else output]][b]", first="out"))
    return tuple(found)


def masked(family: Family, outputs: str, padding: str) -> Family:
    """The record of ``family``'s model under a mask (``gatecheck.reference.layers.masked``): masked
    steps output ``outputs`` ("zero" or "carry") and keep the state; masks drawn with ``padding``."""
    if outputs not in layers.MASKED_OUTPUTS:
        raise ValueError(f"outputs: expected one of {list(layers.MASKED_OUTPUTS)}, got {outputs!r}")
    up, out, keys = family.upstream, family.output, family.contract
    initial = initial_of(family)
    rows = ("x", up) + tuple(initial.values()) + tuple(family.final_upstreams)
    per_row = tuple("d" + k for k in initial.values())
    held = timeless(family)

    def build(module: ModuleType) -> Callable[..., Any]:
        return module.masked(family.run, outputs, rows, per_row, held, initial, keys, out, up)

    def parts(inputs: Arrays, moved: Moved | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(the masked output, the final states' loss terms) with one produced state moved (none if
        its step is masked: that step produces none)."""
        keep = layers.valid(inputs[layers.MASK])
        steps_held = layers.held_steps(keep)
        common = {k: v for k, v in inputs.items() if k not in rows + (layers.MASK,)}
        found: np.ndarray | None = None
        final = np.zeros(2)
        for b in range(keep.shape[0]):
            steps = np.flatnonzero(keep[b])
            row = dict(common, **{k: inputs[k][b:b + 1] for k in rows if k in inputs})
            row["x"] = inputs["x"][b:b + 1, steps]
            mine: Moved | None = None
            if moved and keep[b, moved[0]]:
                mine = (int(np.searchsorted(steps, moved[0])), moved[1], moved[2][b:b + 1])
            y = family.hook("fd_output")(row, mine)
            final += _final_part(family, row, mine, y.shape)
            if found is None:
                found = np.zeros(keep.shape + y.shape[2:], y.dtype)
            found[b, steps] = y[0]
            if outputs == "carry":
                after = ~keep[b] & (steps_held[b] >= 0)
                found[b, after] = found[b, steps_held[b][after]]
        assert found is not None  # set on the first row (B >= 1)
        return found, final

    def make_inputs(case: Case) -> dict[str, np.ndarray]:
        return dict(family.make_inputs(case), **{layers.MASK: draw_mask(case, padding)})

    def shapes(inputs: Arrays) -> dict[str, tuple[int, ...]]:
        found = dict(family.shapes(inputs))
        found["out"] = found[out]
        return found

    def undefined(inputs: Arrays) -> dict[str, np.ndarray]:
        gap = ~layers.valid(inputs[layers.MASK])[..., None]
        return {"d" + s: gap for s in family.states}

    finals = {q.source for q in family.quantities.values() if q.last_step}
    quantities = dict(family.quantities)
    quantities["out"] = Quantity("out", 0, "time", ("b", "t", "j"), "out", meaning=f"the layer's output sequence "
                                 f"under the mask ({outputs} at masked steps)")
    quantities.update({s + "T": Quantity(s + "T", 0, "", ("b", "j"), s, last_step=True,
                                         meaning=f"final state {s} (the last valid step's)")
                       for s in family.states if s not in finals})
    what = {"zero": "0", "carry": "the previous step's (0 before the first valid step)"}[outputs]
    return dataclasses.replace(
        family,
        **_built(family, build, parts),
        inputs=family.inputs + (layers.MASK,),
        contract=keys + ("out",),
        shapes=shapes,
        quantities=quantities,
        make_inputs=make_inputs,
        contract_doc=family.contract_doc + f"\nmasked: mask (B,T) of 1.0 (valid) and 0.0 (masked) steps "
        f"({'each row a prefix: lengths = mask.sum(1)' if padding == 'right' else 'any pattern'}); a row's model "
        f"consumes its valid steps only; a masked step keeps the state (h, c: the last valid step's, the initial "
        f"state before any) and outputs {what}; returns the above and out (B,T,{out} width), the output, whose "
        f"upstream gradient is {up}; dx and the deltas are 0 at masked steps (the deltas there are not compared); "
        f"called with masked_output={outputs!r}",
        mutants=masked_mutants(family, outputs),
        output="out",
        shared=family.shared + (layers.MASK,),
        undefined=undefined,
        keywords=dict(family.keywords, masked_output=outputs),
    )


def _carry(family: Family, names: Iterable[str],
           around: Callable[[Callable[..., Any]], Callable[..., Any]]) -> tuple[Mutant, ...]:
    """``family``'s mutants ``names`` as mutants of a layer built from it: each the layer ``around`` (a run of
    ``family``'s model -> the layer's run) built on the mutated model (a wrapper mutant: the layer's own run is
    not edited)."""
    return tuple(m._replace(old="", new="", wrap=lambda _run, m=m: around(candidate(family, m)))
                 for m in family.mutants if m.name in names)


def _read_own(old: str, suffix: str, added: Iterable[str]) -> str:
    """The edit of ``old`` (a line reading each input of a direction or layer as ``inputs[k + suffix]``)
    that reads the inputs ``added`` without the suffix: the first direction's or layer's."""
    return old.replace(f"inputs[k + {suffix}]", f"inputs[k if k in {tuple(added)!r} else k + {suffix}]")


# --- bidirectional ---------------------------------------------------------------------------------------

def bidirectional_mutants(family: Family, merge: str, added: tuple[str, ...] = ()) -> tuple[Mutant, ...]:
    """The mutants of a bidirectional layer: edits of gatecheck.reference.layers (``added``: inputs an
    option of the model adds, which one mutant reads from the forward direction for both)."""
    f, b = _first(family, 0), _first(family, 1)
    flip_in = "out = run(**{k: v[:, ::-1] if k in flipped else v for k, v in inputs.items()}, ulps=ulps)"
    flip_out = "return {k: v if k in timeless else v[:, ::-1] for k, v in out.items()}"
    split = "forward, reverse = directions(inputs, layer_inputs, shared)"
    found = [
        Mutant("bi-reverse-reads-forwards", "the reverse direction reads x forwards (x[:, 0] first) with its own "
               "weights", "the backward layer is built without go_backwards, or its input is never flipped",
               old=f"{flip_in}\n        {flip_out}", new="return run(**inputs, ulps=ulps)", first=f"{f}_r t=T-1"),
        Mutant("bi-processing-order", "the reverse direction's per-step outputs stay in processing order (index 0 "
               "the state after x[:, T-1])", "the backward layer's sequence is not flipped back before the merge "
               "(Keras' go_backwards returns it so: tensorflow#40345)", old=flip_out, new="return out",
               first=f"{f}_r t=T-1"),
        Mutant("bi-weights-swapped", "the forward and reverse directions' weights and initial states are exchanged",
               "a checkpoint's weight_*_l0 and weight_*_l0_reverse (forward_layer / backward_layer) loaded "
               "into each other", old="    forward = {k: inputs[k] for k in (\"x\",) + tuple(layer_inputs)}\n"
               "    reverse = {\"x\": inputs[\"x\"], **{k: inputs[k + REVERSE] for k in layer_inputs}}",
               new="    forward = {\"x\": inputs[\"x\"], **{k: inputs[k + REVERSE] for k in layer_inputs}}\n"
               "    reverse = {k: inputs[k] for k in (\"x\",) + tuple(layer_inputs)}", first=f"{f} t=0"),
        Mutant("bi-initial-states-swapped", "the two directions' initial states are exchanged (the forward one "
               "starts from h0_r)", "h_0 of shape (2, B, H) read in the wrong direction order (pytorch#3587)",
               old=split, new=split + "; forward, reverse = ({**forward, **{k: reverse[k] for k in initial}}, "
               "{**reverse, **{k: forward[k] for k in initial}})", first=f"{f} t=0"),
        Mutant("bi-dx-forward-only", "dx is the forward direction's alone", "the reverse direction's gradient "
               "of the shared input is dropped", old='out["dx"] = out_f["dx"] + out_r["dx"]',
               new='out["dx"] = out_f["dx"]', first="dx t=T-1"),
    ]
    if layers.MASK in family.shared:
        found.append(Mutant("bi-mask-not-flipped", "the reverse direction reads the mask in time order while it "
                            "consumes x from T-1 down", "go_backwards applied to the inputs and not to the mask",
                            old="flipped = tuple(sequences) + (MASK,)", new="flipped = tuple(sequences)", first=""))
    reverse = "    reverse = {\"x\": inputs[\"x\"], **{k: inputs[k + REVERSE] for k in layer_inputs}}"
    if added:
        found.append(Mutant(f"bi-shared-{'-'.join(added)}", f"the reverse direction reads the forward direction's "
                            f"{', '.join(added)} (one for both directions)", f"the option's weight is created once "
                            f"per layer, not per direction ({', '.join(added)}_r never read)",
                            old=reverse, new=_read_own(reverse, "REVERSE", added),
                            first=f"{family.output}_r t=T-1"))  # (the added input is read on the way out)
    if merge in ("concat", "none"):
        found += [
            Mutant("bi-output-order", "the output is [h_r, h] instead of [h, h_r]", "the two halves of the "
                   "concatenation in the wrong order", old="return np.concatenate([y_f, y_r], axis=-1)",
                   new="return np.concatenate([y_r, y_f], axis=-1)", first="y t=0"),
            Mutant("bi-upstream-halves-swapped", "the forward direction gets the reverse half of the upstream "
                   "gradient, and the reverse the forward half", "the split of the concatenated gradient in the "
                   "wrong order", old="return gy[..., :H], gy[..., H:]", new="return gy[..., H:], gy[..., :H]",
                   first=f"{b} t=T-1"),
        ]
    if merge == "mul":
        found.append(Mutant("bi-mul-own-output", "each direction's upstream share is scaled by its own output, not "
                            "the other's", "d(y_f * y_r)/dy_f taken as y_f", old="return gy * y_r, gy * y_f",
                            new="return gy * y_f, gy * y_r", first=f"{b} t=T-1"))
    if merge == "ave":
        found += [
            Mutant("bi-ave-not-halved", "each direction's upstream share is the whole gradient, not half",
                   "the average's backward taken as the sum's", old="return gy / 2, gy / 2", new="return gy, gy",
                   first=f"{b} t=T-1"),
            Mutant("bi-ave-output-sum", "the output is the sum of the directions, not their average",
                   "the 1/2 of the average forgotten", old="return (y_f + y_r) / 2", new="return y_f + y_r",
                   first="y t=0"),
        ]
    if merge == "sum":
        found.append(Mutant("bi-sum-gradient-halved", "each direction's upstream share is half the gradient",
                            "the sum's backward taken as the average's", old="return gy, gy",
                            new="return gy / 2, gy / 2", first=f"{b} t=T-1"))
    return tuple(found)


def bidirectional(family: Family, merge: str, carried: tuple[str, ...] = (),
                  added: tuple[str, ...] = ()) -> Family:
    """The record of a bidirectional layer of ``family``'s model, merged by ``merge``; ``carried``: the
    names of ``family``'s mutants that are mutants of the layer too (built on the mutated model);
    ``added``: inputs an option of the model adds (one mutant reads the forward direction's for both)."""
    if merge not in layers.MERGES:
        raise ValueError(f"merge: expected one of {list(layers.MERGES)}, got {merge!r}")
    own = layer_inputs(family)
    up, out, keys = family.upstream, family.output, family.contract
    initial = initial_states(family)
    concat = merge in ("concat", "none")

    def build(module: ModuleType, run: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """The layer's run from a module of the layers' reference (itself, or a mutant of it) and a run
        of the model (by default its reference, or the same module's mutant of a masked model, so that
        a masked model's mutants apply in both directions; a carried mutant's run)."""
        if run is None:
            run = family.hook("mutant_bind")(module) if family.mutant_source is layers else family.run
        run_r = module.reversed_run(run, timeless(family), ("x", up))
        return module.bidirectional(run, run_r, merge, own, keys, out, up, initial, family.shared)

    def parts(inputs: Arrays, moved: Moved | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(merged output, the final states' loss terms) with one state of either direction moved."""
        forward, reverse = layers.directions(inputs, own, family.shared)
        T = inputs["x"].shape[1]
        outputs: list[np.ndarray] = []
        final = np.zeros(2)
        for din, backwards in ((forward, False), (reverse, True)):
            mine = moved if moved and moved[1].endswith(layers.REVERSE) == backwards else None
            if mine and backwards:
                mine = (T - 1 - mine[0], mine[1][: -len(layers.REVERSE)], mine[2])
            din = _flip(din, family.shared) if backwards else din
            y = family.hook("fd_output")(din, mine)
            final += _final_part(family, din, mine, y.shape)
            outputs.append(y[:, ::-1] if backwards else y)
        return layers.merged(merge, *outputs), final

    def make_inputs(case: Case) -> dict[str, np.ndarray]:
        a = family.make_inputs(case)
        b = family.make_inputs(case._replace(seed=case.seed + REVERSE_SEED))
        inputs = dict(a, **{k + layers.REVERSE: b[k] for k in own})
        if concat:
            inputs[up] = np.concatenate([a[up], b[up]], axis=-1)
        return inputs

    def shapes(inputs: Arrays) -> dict[str, tuple[int, ...]]:
        forward, reverse = layers.directions(inputs, own, family.shared)
        found = dict(family.shapes(forward))
        found.update({k + layers.REVERSE: s for k, s in family.shapes(reverse).items() if k != "dx"})
        B, T, width = found[out]
        found["y"] = (B, T, 2 * width if concat else width)
        return found

    y = Quantity("y", 0, "time", ("b", "t", "j"), "y", meaning=f"the merged output (merge {merge})")
    contract = keys + ("y",) + _twins(keys, layers.REVERSE)
    return _composite(
        family, layers.REVERSE, build, parts,
        contract=contract,
        shapes=shapes,
        quantities={**family.quantities, **_quantities(family.quantities, layers.REVERSE, reverse=True), "y": y},
        make_inputs=make_inputs,
        contract_doc=family.contract_doc + f"\nbidirectional, merge {merge}: every input but x and {up} again for the "
        f"reverse direction (suffix _r), {up} the upstream gradient of y; returns the above, the same with suffix _r "
        f"for the reverse direction (per-step arrays indexed by the original t), y and dx (both directions' sum); "
        f"called with merge_mode={merge!r}",
        mutants=bidirectional_mutants(family, merge, added) + _inner(family, carried)
        + _carry(family, carried, lambda run: build(layers, run)),
        output="y",
        keywords=dict(family.keywords, merge_mode=merge),
    )


def _composite(family: Family, suffix: str, build: Callable[[ModuleType], Callable[..., Any]], parts: Parts,
               **fields: Any) -> Family:
    """A layer built from ``family``'s model whose extra direction or layer is named by ``suffix``:
    its reference from ``build`` (a module of gatecheck.reference.layers -> the run), its
    finite-difference hooks from ``parts`` (inputs, moved state -> (output, (final states' terms,
    their magnitude))), the record's inputs, gated inputs, states and removed keys with their
    twins, no family hypotheses (the diagnosis tries them per direction and layer: gatecheck.model.parts);
    ``fields``: what each structure states itself."""
    return dataclasses.replace(
        family,
        **_built(family, build, parts),
        inputs=family.inputs + _twins(layer_inputs(family), suffix, ()),
        gated=family.gated + _twins(family.gated, suffix, ()),
        states=family.states + _twins(family.states, suffix, ()),
        undefined=(lambda inputs: _twin_map(family.hook("undefined")(inputs), suffix)) if family.undefined else None,
        removed=family.removed + _twins(family.removed, suffix),
        **fields,
    )


def _inner(family: Family, carried: tuple[str, ...] = ()) -> tuple[Mutant, ...]:
    """The mutants of the layer a structure is built from, where they are edits of the same module
    (a masked or bidirectional layer's) and not ``carried`` otherwise: they apply in every direction
    and layer of the structure, where they first show there is not stated (dx of the second layer is
    the first's upstream, say)."""
    return tuple(m._replace(first="") for m in family.mutants
                 if m.name not in carried) if family.mutant_source is layers else ()


def _built(family: Family, build: Callable[[ModuleType], Callable[..., Any]], parts: Parts) -> dict[str, Any]:
    """The fields every layer built from ``family``'s model states alike: its reference from ``build``
    (a module of gatecheck.reference.layers -> the run) and its mutants as edits of that module, its
    finite-difference hooks from ``parts`` (inputs, moved state -> (output, (final states' terms, their
    magnitude))), no family hypotheses, layouts or examples, and no option of its own."""
    up = family.upstream
    return dict(
        run=build(layers),
        swappable=(),
        forward=(),
        mutant_source=layers,
        mutant_bind=build,
        hypotheses=(),
        isolating=None,
        step_parts=None,
        examples={},
        fd_loss=lambda inputs: _loss(inputs, up, parts(inputs)),
        fd_state_loss=lambda inputs, t, which, offset: _loss(inputs, up, parts(inputs, (t, which, offset))),
        fd_output=lambda inputs, moved=None: parts(inputs, moved)[0],
        fd_scale=lambda inputs: _scale(inputs, up, parts(inputs)),
        options={},
    )


def _twin_map(found: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    """A mapping of contract keys with its copies for another direction or layer (dx once)."""
    return {**found, **{k + suffix: v for k, v in found.items() if k != "dx"}}


def _loss(inputs: Arrays, upstream: str, parts: tuple[np.ndarray, np.ndarray]) -> float:
    """A composite's loss from its (output, (final states' terms, their magnitude)): sum(gh * y) + the terms."""
    output, (final, _) = parts
    return np.sum(inputs[upstream] * output) + final


def _scale(inputs: Arrays, upstream: str, parts: tuple[np.ndarray, np.ndarray]) -> float:
    """The magnitude of a composite's loss terms (finite_diff.loss_scale)."""
    output, (_, magnitude) = parts
    return np.sum(np.abs(inputs[upstream] * output)) + magnitude


# --- stacked ----------------------------------------------------------------------------------------------

def stacked_mutants(family: Family, bidirectional: bool, added: tuple[str, ...] = ()) -> tuple[Mutant, ...]:
    """The mutants of a stack of two layers: edits of gatecheck.reference.layers (and, for
    bidirectional layers, every mutant of one); ``added``: inputs an option of the model adds
    (with their reverse twins), which one mutant reads from the first layer for both."""
    f, b = _first(family, 0), _first(family, 1)
    split = "first, second = layers(inputs, layer_inputs, shared)"
    found = [
        Mutant("L2-no-gradient-from-above", "the first layer's backward pass gets no gradient from the second "
               "(its output treated as a constant)", "the first layer's output detached, or its upstream "
               "gradient taken from the loss alone", old='out0 = run(**first, **{upstream: out1["dx"]}, ulps=ulps)',
               new="out0 = run(**first, **{upstream: np.zeros(gy.shape, gy.dtype)}, ulps=ulps)",
               first=f"{b} t=T-1"),
        Mutant("L2-initial-states-swapped", "the two layers' initial states are exchanged (layer 0 starts from "
               "layer 1's)", "h_0 of shape (num_layers, B, H) read in the wrong layer order",
               old=split, new=split + "; first, second = ({**first, **{k: second[k] for k in initial}}, "
               "{**second, **{k: first[k] for k in initial}})", first=f"{f} t=0"),
    ]
    if layers.MASK in family.shared:
        found.append(Mutant("L2-mask-not-handed-on", "the second layer runs every step: the mask is not handed on",
                            "a layer between them that does not propagate the mask (Keras' compute_mask), or a "
                            "hand-written stack masking its first layer only",
                            old="second.update({k: inputs[k] for k in shared})", new="second.update({})", first=""))
    second = "    second = {k: inputs[k + LAYER] for k in layer_inputs}"
    if added:
        names = ", ".join(added)
        found.append(Mutant(f"L2-shared-{'-'.join(k for k in added if not k.endswith(layers.REVERSE))}",
                            f"the second layer reads the first layer's {names} (one for both layers)",
                            f"the option's weight is created once per stack, not per layer ({names} with suffix _l1 "
                            f"never read)", old=second, new=_read_own(second, "LAYER", added), first=""))
    if bidirectional:
        found.append(Mutant(
            "L2-states-direction-major", "layer 0's reverse initial states and layer 1's forward ones are exchanged",
            "h_0 (num_layers * 2, B, H) read direction-major, [l0 fwd, l1 fwd, l0 rev, l1 rev], when PyTorch "
            "orders it layer-major, [l0 fwd, l0 rev, l1 fwd, l1 rev] (pytorch#3587)", old=split,
            new=split + "; first, second = ({**first, **{k: second[k[:-2]] for k in initial if k.endswith('_r')}}, "
            "{**second, **{k[:-2]: first[k] for k in initial if k.endswith('_r')}})", first=f"{f}_r t=T-1"))
    return tuple(found)


def stacked(family: Family, carried: tuple[str, ...] = (), added: tuple[str, ...] = ()) -> Family:
    """The record of two stacked layers of ``family``'s model (each bidirectional if ``family`` is);
    ``carried``: the names of ``family``'s mutants that are mutants of the stack too (built on the
    mutated layer); ``added``: inputs an option of the model adds (one mutant reads the first layer's
    for both layers; with their reverse twins in a bidirectional layer)."""
    own = layer_inputs(family)
    up, out, keys = family.upstream, family.output, family.contract
    initial = initial_states(family)
    bidirectional = "merge_mode" in family.keywords
    added = tuple(k for k in own if k in added or bidirectional and k.endswith(layers.REVERSE)
                  and k[: -len(layers.REVERSE)] in added)

    def build(module: ModuleType, layer: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """The stack's run from a module of the layers' reference (itself, or a mutant of it): the layer
        itself is built from the same module, so a bidirectional layer's mutants apply in a stack too
        (``layer``: a run of the layer given outright, a carried mutant's)."""
        if layer is None:
            layer = family.hook("mutant_bind")(module) if family.mutant_source is layers else family.run
        return module.stacked(layer, own, keys, out, up, initial, family.shared)

    def parts(inputs: Arrays, moved: Moved | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(the second layer's output, the final states' loss terms) with one state of either layer moved."""
        first, second = layers.layers(inputs, own, family.shared)
        in_first = moved if moved and not moved[1].endswith(layers.LAYER) else None
        in_second = moved and (moved[0], moved[1][: -len(layers.LAYER)], moved[2]) if not in_first else None
        y0 = family.hook("fd_output")(first, in_first)
        second = dict(second, x=y0)
        y1 = family.hook("fd_output")(second, in_second)
        final = np.add(_final_part(family, first, in_first, y0.shape), _final_part(family, second, in_second, y1.shape))
        return y1, final

    def make_inputs(case: Case) -> dict[str, np.ndarray]:
        first = family.make_inputs(case)
        width = family.shapes(first)[out][2]
        second = family.make_inputs(case._replace(D=width, seed=case.seed + LAYER_SEED))
        return dict(first, **{k + layers.LAYER: second[k] for k in own})

    def shapes(inputs: Arrays) -> dict[str, tuple[int, ...]]:
        first, second = layers.layers(inputs, own, family.shared)
        found = dict(family.shapes(first))
        B, T, width = found[out]
        second["x"] = np.broadcast_to(np.zeros((), inputs["x"].dtype), (B, T, width))
        found.update({k + layers.LAYER: s for k, s in family.shapes(second).items() if k != "dx"})
        return found

    return _composite(
        family, layers.LAYER, build, parts,
        contract=keys + _twins(keys, layers.LAYER),
        shapes=shapes,
        quantities={**family.quantities, **_quantities(family.quantities, layers.LAYER, layer=1)},
        make_inputs=make_inputs,
        contract_doc=family.contract_doc + f"\ntwo stacked layers: every input but x and {up} again for the second "
        f"layer (suffix _l1), whose input is the first's output {out}; {up} the upstream gradient of the second's "
        f"{out}; returns the above for the first layer (its dh includes what flows back from the second), the same "
        f"with suffix _l1 for the second (no dx_l1), and dx; called with num_layers=2",
        mutants=stacked_mutants(family, bidirectional, added) + _inner(family, carried)
        + _carry(family, carried, lambda run: build(layers, run)),
        output=out + layers.LAYER,
        keywords=dict(family.keywords, num_layers=2),
    )
