"""Family records of layers built from a family's own model (``gatecheck.reference.layers``):
bidirectional with a merge mode, and two stacked layers. ``gatecheck.options.under`` builds
them for the structural options; nothing here names a family.

A record needs of its family only what ``Family`` states for every model: its inputs, its
output sequence (``output``) and that output's upstream gradient (``upstream``), its quantity
table and shapes, its finite-difference hooks (``fd_loss``, ``fd_state_loss`` and ``fd_output``:
the output sequence with one step's state moved) and its ``make_inputs``. From those come the
composite's reference, contract, quantity table, inputs (the extra direction's and layer's
weights and initial states drawn from their own random streams, so they never equal the
first's) and finite-difference hooks (the composite's loss from its parts' forward passes only),
and its mutants (edits of ``gatecheck.reference.layers``).
"""

import dataclasses

import numpy as np

from gatecheck.family import Quantity
from gatecheck.finite_diff import loss_scale
from gatecheck.mutants import Mutant
from gatecheck.reference import layers

# The seed offsets of the extra draws (reverse direction, second layer): the same model's inputs
# of the same case at another seed, a stream of their own.
REVERSE_SEED = 1_000_003
LAYER_SEED = 2_000_003


def timeless(record):
    """The contract keys without a time axis (parameter and initial-state gradients)."""
    per_step = {q.source for q in record.quantities.values() if q.split == "time" or q.last_step}
    return tuple(k for k in record.contract if k not in per_step)


def layer_inputs(record):
    """The inputs that belong to one direction or layer: all but x and the upstream gradient."""
    return tuple(k for k in record.inputs if k not in ("x", record.upstream))


def initial_states(record):
    """The initial-state inputs of a record's model: h0, c0, and their twins (state h_r: h0_r)."""
    found = []
    for state in record.states:
        base, _, tail = state.partition("_")
        name = base + "0" + ("_" + tail if tail else "")
        if name in record.inputs:
            found.append(name)
    return tuple(found)


def _twins(keys, suffix, skip=("dx",)):
    return tuple(k + suffix for k in keys if k not in skip)


def _quantities(table, suffix, reverse=False):
    """A quantity table's copies for another direction or layer (dx is the layer's input's, once)."""
    return {q.name + suffix: dataclasses.replace(q, name=q.name + suffix, source=q.source + suffix,
                                                 final=0 if reverse and q.last_step else q.final)
            for q in table.values() if q.source != "dx"}


def _first(record, phase):
    """The first per-step quantity of a phase in a record's table (where a divergence shows first)."""
    return next(q.name for q in record.quantities.values() if q.phase == phase and q.split == "time")


def _final_part(record, inputs, moved, width_of):
    """(the loss of a record's model with a zero upstream gradient: the final states' terms alone
    (an LSTM's gc . C_T; 0 for models whose loss is on the output only), with a state moved; the
    magnitude of those terms, ``finite_diff.loss_scale``)."""
    zero = dict(inputs, **{record.upstream: np.zeros(width_of, inputs["x"].dtype)})
    return record.fd_state_loss(zero, *moved) if moved else record.fd_loss(zero), loss_scale(record, zero)


def _flip_x(inputs):
    return dict(inputs, x=inputs["x"][:, ::-1])


# --- bidirectional ---------------------------------------------------------------------------------------

def bidirectional_mutants(record, merge):
    """The mutants of a bidirectional layer: edits of gatecheck.reference.layers."""
    f, b = _first(record, 0), _first(record, 1)
    flip_in = "out = run(**{k: v[:, ::-1] if k in sequences else v for k, v in inputs.items()}, ulps=ulps)"
    flip_out = "return {k: v if k in timeless else v[:, ::-1] for k, v in out.items()}"
    split = "forward, reverse = directions(inputs, layer_inputs)"
    found = [
        Mutant("bi-reverse-reads-forwards", "the reverse direction reads x forwards (x[:, 0] first) with its own "
               "weights", "the backward layer is built without go_backwards, or its input is never flipped",
               old=f"{flip_in}\n        {flip_out}", new="return run(**inputs, ulps=ulps)", first=f"{f}_r t=0"),
        Mutant("bi-processing-order", "the reverse direction's per-step outputs stay in processing order (index 0 "
               "the state after x[:, T-1])", "the backward layer's sequence is not flipped back before the merge "
               "(Keras' go_backwards returns it so: tensorflow#40345)", old=flip_out, new="return out",
               first=f"{f}_r t=0"),
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


def bidirectional(record, merge):
    """The record of a bidirectional layer of ``record``'s model, merged by ``merge``."""
    if merge not in layers.MERGES:
        raise ValueError(f"merge: expected one of {list(layers.MERGES)}, got {merge!r}")
    own = layer_inputs(record)
    up, out, keys = record.upstream, record.output, record.contract
    initial = initial_states(record)
    concat = merge in ("concat", "none")

    def build(module):
        """The layer's run from a module of the layers' reference (itself, or a mutant of it)."""
        run_r = module.reversed_run(record.run, timeless(record), ("x", up))
        return module.bidirectional(record.run, run_r, merge, own, keys, out, up, initial)

    def parts(inputs, moved=None):
        """(merged output, the final states' loss terms) with one state of either direction moved."""
        forward, reverse = layers.directions(inputs, own)
        T = inputs["x"].shape[1]
        outputs, final = [], np.zeros(2)
        for din, backwards in ((forward, False), (reverse, True)):
            mine = moved if moved and moved[1].endswith(layers.REVERSE) == backwards else None
            if mine and backwards:
                mine = (T - 1 - mine[0], mine[1][: -len(layers.REVERSE)], mine[2])
            din = _flip_x(din) if backwards else din
            y = record.fd_output(din, mine)
            final += _final_part(record, din, mine, y.shape)
            outputs.append(y[:, ::-1] if backwards else y)
        return layers.merged(merge, *outputs), final

    def make_inputs(case):
        a = record.make_inputs(case)
        b = record.make_inputs(case._replace(seed=case.seed + REVERSE_SEED))
        inputs = dict(a, **{k + layers.REVERSE: b[k] for k in own})
        if concat:
            inputs[up] = np.concatenate([a[up], b[up]], axis=-1)
        return inputs

    def shapes(inputs):
        forward, reverse = layers.directions(inputs, own)
        found = dict(record.shapes(forward))
        found.update({k + layers.REVERSE: s for k, s in record.shapes(reverse).items() if k != "dx"})
        B, T, width = found[out]
        found["y"] = (B, T, 2 * width if concat else width)
        return found

    y = Quantity("y", 0, "time", ("b", "t", "j"), "y", meaning=f"the merged output (merge {merge})")
    contract = keys + ("y",) + _twins(keys, layers.REVERSE)
    return _composite(
        record, layers.REVERSE, build, parts,
        contract=contract,
        shapes=shapes,
        quantities={**record.quantities, **_quantities(record.quantities, layers.REVERSE, reverse=True), "y": y},
        make_inputs=make_inputs,
        contract_doc=record.contract_doc + f"\nbidirectional, merge {merge}: every input but x and {up} again for the "
        f"reverse direction (suffix _r), {up} the upstream gradient of y; returns the above, the same with suffix _r "
        f"for the reverse direction (per-step arrays indexed by the original t), y and dx (both directions' sum); "
        f"called with merge_mode={merge!r}",
        mutants=bidirectional_mutants(record, merge),
        output="y",
        keywords=dict(record.keywords, merge_mode=merge),
    )


def _composite(record, suffix, build, parts, **fields):
    """A layer built from ``record``'s model whose extra direction or layer is named by ``suffix``:
    its reference from ``build`` (a module of gatecheck.reference.layers -> the run), its
    finite-difference hooks from ``parts`` (inputs, moved state -> (output, (final states' terms,
    their magnitude))), the record's inputs, gated inputs, states and removed keys with their
    twins, no family hypotheses (the diagnosis tries them per direction and layer: gatecheck.parts);
    ``fields``: what each structure states itself."""
    up = record.upstream
    return dataclasses.replace(
        record,
        run=build(layers),
        inputs=record.inputs + _twins(layer_inputs(record), suffix, ()),
        gated=record.gated + _twins(record.gated, suffix, ()),
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
        states=record.states + _twins(record.states, suffix, ()),
        options={},
        removed=record.removed + _twins(record.removed, suffix),
        **fields,
    )


def _loss(inputs, upstream, parts):
    """A composite's loss from its (output, (final states' terms, their magnitude)): sum(gh * y) + the terms."""
    output, (final, _) = parts
    return np.sum(inputs[upstream] * output) + final


def _scale(inputs, upstream, parts):
    """The magnitude of a composite's loss terms (finite_diff.loss_scale)."""
    output, (_, magnitude) = parts
    return np.sum(np.abs(inputs[upstream] * output)) + magnitude


# --- stacked ----------------------------------------------------------------------------------------------

def stacked_mutants(record, bidirectional):
    """The mutants of a stack of two layers: edits of gatecheck.reference.layers (and, for
    bidirectional layers, every mutant of one)."""
    f, b = _first(record, 0), _first(record, 1)
    split = "first, second = layers(inputs, layer_inputs)"
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
    if bidirectional:
        found.append(Mutant(
            "L2-states-direction-major", "layer 0's reverse initial states and layer 1's forward ones are exchanged",
            "h_0 (num_layers * 2, B, H) read direction-major, [l0 fwd, l1 fwd, l0 rev, l1 rev], when PyTorch "
            "orders it layer-major, [l0 fwd, l0 rev, l1 fwd, l1 rev] (pytorch#3587)", old=split,
            new=split + "; first, second = ({**first, **{k: second[k[:-2]] for k in initial if k.endswith('_r')}}, "
            "{**second, **{k[:-2]: first[k] for k in initial if k.endswith('_r')}})", first=f"{f}_r t=0"))
    return tuple(found)


def stacked(record):
    """The record of two stacked layers of ``record``'s model (each bidirectional if ``record`` is)."""
    own = layer_inputs(record)
    up, out, keys = record.upstream, record.output, record.contract
    initial = initial_states(record)
    bidirectional = "merge_mode" in record.keywords

    def build(module):
        """The stack's run from a module of the layers' reference (itself, or a mutant of it): the layer
        itself is built from the same module, so a bidirectional layer's mutants apply in a stack too."""
        layer = record.mutant_bind(module) if record.mutant_source is layers else record.run
        return module.stacked(layer, own, keys, out, up, initial)

    def parts(inputs, moved=None):
        """(the second layer's output, the final states' loss terms) with one state of either layer moved."""
        first, second = layers.layers(inputs, own)
        in_first = moved if moved and not moved[1].endswith(layers.LAYER) else None
        in_second = moved and (moved[0], moved[1][: -len(layers.LAYER)], moved[2]) if not in_first else None
        y0 = record.fd_output(first, in_first)
        second = dict(second, x=y0)
        y1 = record.fd_output(second, in_second)
        final = np.add(_final_part(record, first, in_first, y0.shape), _final_part(record, second, in_second, y1.shape))
        return y1, final

    def make_inputs(case):
        first = record.make_inputs(case)
        width = record.shapes(first)[out][2]
        second = record.make_inputs(case._replace(D=width, seed=case.seed + LAYER_SEED))
        return dict(first, **{k + layers.LAYER: second[k] for k in own})

    def shapes(inputs):
        first, second = layers.layers(inputs, own)
        found = dict(record.shapes(first))
        B, T, width = found[out]
        second["x"] = np.broadcast_to(np.zeros((), inputs["x"].dtype), (B, T, width))
        found.update({k + layers.LAYER: s for k, s in record.shapes(second).items() if k != "dx"})
        return found

    return _composite(
        record, layers.LAYER, build, parts,
        contract=keys + _twins(keys, layers.LAYER),
        shapes=shapes,
        quantities={**record.quantities, **_quantities(record.quantities, layers.LAYER)},
        make_inputs=make_inputs,
        contract_doc=record.contract_doc + f"\ntwo stacked layers: every input but x and {up} again for the second "
        f"layer (suffix _l1), whose input is the first's output {out}; {up} the upstream gradient of the second's "
        f"{out}; returns the above for the first layer (its dh includes what flows back from the second), the same "
        f"with suffix _l1 for the second (no dx_l1), and dx; called with num_layers=2",
        # A bidirectional layer's mutants in both layers of the stack; where they first show there is
        # not stated (dx of the second layer is the first's upstream gradient, say).
        mutants=stacked_mutants(record, bidirectional)
        + (tuple(m._replace(first="") for m in record.mutants) if bidirectional else ()),
        output=out + layers.LAYER,
        keywords=dict(record.keywords, num_layers=2),
    )
