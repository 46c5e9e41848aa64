"""Candidates that implement every set of layer options of a family's grids, built from the
family's reference records: each reads its set from what it is called with (the keywords a
layer option adds, the inputs it removes or adds), as a user's code would, and declares every
set of the grids (``run.options``: with them every combination of their options). Loaded by spec (``tests.layered:gru``) where a test needs a
candidate in a process of its own (``check``, ``verify``)."""

from gatecheck.families import FAMILIES
from gatecheck.model import options as opts

_MERGE_OPTION = {merge: name for name, merge in opts.MERGES.items()}


def options_of(family, inputs, merge_mode=None, num_layers=1, masked_output=None, reverse=False, **activations):
    """The set of layer options a call means: the keywords say direction, merge, depth, mask
    semantics and activations (an option's ``activation_keywords``); an input the family's no-bias
    variant drops being absent means no bias; Wr means a projection. Zero output past a mask is taken
    as 'maskz' (the record of 'len' computes the same)."""
    names = ["rev"] if reverse else []
    names += [name for name in family.options if opts.activation_keywords((name,)) and
              opts.activation_keywords((name,)).items() <= activations.items()]
    nobias = family.options.get("nobias")
    if nobias and not set(nobias.drops) <= set(inputs):
        names.append("nobias")
    if "Wr" in inputs:
        names.append("proj")
    if masked_output:
        names.append("mask" if masked_output == "carry" else "maskz")
    if merge_mode:
        names.append(_MERGE_OPTION[merge_mode])
    if num_layers == 2:
        names.append("L2")
    return opts.canonical(names)


def candidate(name):
    """A candidate of family ``name`` that implements every set of its grids (declared exactly)."""
    family = FAMILIES[name]

    def run(*, merge_mode=None, num_layers=1, masked_output=None, reverse=False, activation=None,
            recurrent_activation=None, clip=None, **inputs):
        given = {k: v for k, v in dict(activation=activation, recurrent_activation=recurrent_activation,
                                        clip=clip).items() if v is not None}
        options = options_of(family, inputs, merge_mode, num_layers, masked_output, reverse, **given)
        return opts.under(family, options).run(**inputs)

    run.options = {opts.label(s) for s in opts.grid_sets(family)}
    return run


lstm = candidate("lstm")
rnn = candidate("rnn")
gru = candidate("gru")
