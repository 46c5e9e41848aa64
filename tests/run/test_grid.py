"""The battery grid's backstop (gatecheck.run.grid): every option set's backward pass is judged by some oracle
of the grid; where every engine that offers a set is forward only (ONNX's clip), the family's reference judges
it, and only there."""

import pytest

from gatecheck.core.cases import PROFILES
from gatecheck.engines import ORACLES, battery_oracles, reference_oracle
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.run.grid import backstopped, grid
from gatecheck.tools import killmatrix


def _observes_backward(case, family):
    record = opts.under(family, case.options)
    backward = {q.source for q in record.quantities.values() if q.phase > 0}
    return bool(backward & set(ORACLES[case.oracle].returns(case.options)))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_option_set_of_the_grid_has_its_backward_pass_judged(name, profile):
    family = FAMILIES[name]
    cases = grid(profile, family)
    for options in dict.fromkeys(c.options for c in cases):
        judging = {c.oracle for c in cases if c.options == options and _observes_backward(c, family)}
        assert judging, f"{name} {profile} {opts.label(options) or 'no options'}: no oracle observes a gradient"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_reference_joins_the_sets_no_gradient_engine_offers_and_no_other(name, profile):
    family = FAMILIES[name]
    reference = reference_oracle(name).name
    if reference in battery_oracles(name):
        pytest.skip(f"{reference} is the {name} family's battery itself (no framework offers the model)")
    engines = battery_oracles(name)
    cases = grid(profile, family)
    joined = {c.options for c in cases if c.oracle == reference}
    sets = {c.options for c in cases if c.oracle != reference}
    assert joined == {s for s in sets if backstopped(family, s, engines)}
    for s in joined:  # each such set: only forward-only engines run it
        runs = [n for n in engines if ORACLES[n].offers(s)]
        assert runs and not any(_observes_backward(c, family) for c in cases
                                if c.options == s and c.oracle != reference), (name, s, runs)
    # an explicit choice of oracles is run as chosen
    assert not any(c.oracle == reference for c in grid(profile, family, engines[:3]))


def test_clip_is_backstopped_and_its_backward_mutants_are_killed_there():
    """Every engine offering clip is an inference runtime: without the reference in the grid, a backward pass
    that forgets the clip passes every case (the kill matrix found both GRU survivors so)."""
    family = FAMILIES["gru"]
    cases = [c for c in grid("ci", family) if c.oracle == "reference-gru" and "clip" in c.options]
    assert {c.options for c in cases} == {("clip",), ("clip", "bi", "L2"), ("clip", "len")}
    chosen = [(o, m) for o, m in killmatrix.catalogue(family) if m.name == "clip-forgotten-in-backward"
              and o in {c.options for c in cases}]
    assert {o for o, _ in chosen} == {("clip",), ("clip", "bi", "L2")}
    result = killmatrix.matrix(cases, ORACLES, chosen, family)
    assert result[killmatrix.REFERENCE_ROW] == []
    for o, m in chosen:
        assert result[killmatrix.row(o, m)], killmatrix.row(o, m)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_block_of_a_profile_gives_cases(name, profile):
    """A block whose set of options no oracle offers gives no case: it reads as covered and checks nothing. (An
    oracle that offers a set may decline it in some versions: Keras 2's hard_sigmoid; those blocks stay.)"""
    family = FAMILIES[name]
    sets = {opts.canonical(b.get("options", ())) for b in family.profiles[profile]}
    dead = sorted(s for s in sets if not any(set(s) <= ORACLES[n].options for n in battery_oracles(name)))
    assert not dead, f"{name} {profile}: blocks no oracle offers: {dead}"
