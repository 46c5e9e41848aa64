"""The suite's power, proven on its own catalogue of LSTM bugs (gatecheck.core.mutants): the
test slice of the battery kills every mutant and never the correct reference.

``python -m gatecheck kill-matrix`` runs the whole ci profile against every mutant and
prints, besides the matrix, that this slice kills the same set as the full matrix."""

import itertools

import pytest

from gatecheck.core import mutants as mut
from gatecheck.engines import ORACLES
from gatecheck.families import FAMILIES
from gatecheck.families.lstm.record import LSTM
from gatecheck.model.options import every_set, under
from gatecheck.reference.lstm import GATES
from gatecheck.run.grid import grid
from gatecheck.tools import killmatrix


def test_catalogue_is_data_and_complete():
    names = [m.name for m in LSTM.mutants]
    assert len(names) == len(set(names)) and len(names) >= 40
    orders = {m.name for m in LSTM.mutants if m.family == "gate-order"}
    assert orders == {"gate-order-" + "".join(p) for p in itertools.permutations(GATES) if p != GATES}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_catalogue_entry_applies(family):
    f = FAMILIES[family]
    names = [m.name for m in f.mutants]
    assert len(names) == len(set(names))
    for m in f.mutants:
        assert m.wrong and m.why, m.name
        assert (m.wrap is None) == bool(m.old), f"{m.name}: exactly one of a textual edit or a wrapper"
        assert callable(mut.candidate(f, m)), m.name  # every textual snippet still applies


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_option_mutant_applies(family):
    """The mutants of every option set a family's record can be put under (its own options' and the layers'):
    each textual snippet still applies to the reference (an edit of a line an option shares, as the LSTM's step,
    can leave another option's mutant without its snippet)."""
    f = FAMILIES[family]
    for options in every_set(f):
        record = under(f, options)
        for m in record.mutants:
            assert callable(mut.candidate(record, m)), (options, m.name)


def test_a_snippet_that_no_longer_applies_is_an_error():
    broken = mut.Mutant("gone", "w", "y", old="this line is not in the reference", new="x")
    with pytest.raises(ValueError, match="gone: snippet 'this line is not in the reference' occurs 0 times"):
        mut.load(LSTM, broken)


def test_slice_kills_every_mutant_and_not_the_reference(request):
    from conftest import require_framework

    require_framework(request.config, "torch")
    cases = [c for c in grid("ci", LSTM) if c.id in killmatrix.CI_SLICE]
    assert [c.id for c in cases] == sorted(killmatrix.CI_SLICE)
    result = killmatrix.matrix(cases, ORACLES, LSTM.mutants, LSTM)
    assert result.pop(killmatrix.REFERENCE_ROW) == [], "the correct reference was killed"
    survivors = [name for name, ids in result.items() if not ids]
    assert survivors == [], f"mutants not killed by the slice: {survivors}"


@pytest.mark.parametrize("dtype,target", [("f32", 1e-4), ("f64", 1e-9)])
def test_battery_sees_a_small_perturbation_of_one_block(dtype, target, request):
    """Sensitivity: the g gate's recurrent block scaled by 1 + r is detected for
    r within the issue's targets (``python -m gatecheck sensitivity`` prints every block)."""
    from conftest import require_framework
    from gatecheck.tools import power

    require_framework(request.config, "torch")
    smallest = power.smallest_detected("U", 2, dtype, [ORACLES["torch-lstm-cell"]])
    assert smallest <= target, f"U[g] perturbation first detected at {smallest:.2g} in {dtype}"
    assert not power.detected("U", 2, smallest / 100, dtype, [ORACLES["torch-lstm-cell"]])


def test_specificity_command_runs_clean(capsys, request):
    from conftest import require_framework
    from gatecheck.frontends.cli import main

    require_framework(request.config, "torch")
    assert main(["specificity", "--family", "lstm", "--seeds", "4", "--oracles", "torch-lstm-cell"]) == 0
    out = capsys.readouterr().out
    assert "8 cases (4 seeds x oracles ['torch-lstm-cell'] x f32, f64): 0 failing" in out


# A slice of each other family's ci grid that kills its whole catalogue: the longest shape,
# seed 0, both dtypes, one oracle (the identity model's only oracle is its reference).
SLICES = {"rnn": ("torch-rnn-cell", (2, 40, 3, 4)), "lstm-identity": ("reference-lstm-identity", (3, 64, 4, 5)),
          "gru": ("torch-gru-cell", (2, 24, 4, 5)), "gru-reset-before": ("keras-gru-cell-before", (2, 24, 4, 5))}


def test_every_catalogue_has_a_slice():
    assert set(SLICES) == {f for f in FAMILIES if FAMILIES[f].mutants and f != "lstm"}


@pytest.mark.parametrize("family", sorted(SLICES))
def test_other_families_kill_their_catalogue(family, request):
    """The kill matrix takes any family: each catalogue is killed by a slice of its ci
    battery, and the correct reference by nothing."""
    from conftest import require_framework

    f = FAMILIES[family]
    oracle, shape = SLICES[family]
    require_framework(request.config, ORACLES[oracle].framework)
    for dtype in ("f32", "f64"):  # (a silent float32 needs a float64 case to show)
        why = ORACLES[oracle].declined((), dtype)
        if why:
            pytest.skip(f"{oracle} declines {dtype} in this process, and the catalogue needs both dtypes: {why}")
    cases = [c for c in grid("ci", f, oracles=[oracle]) if (c.B, c.T, c.D, c.H) == shape and c.seed == 0
             and c.regime == "std"]
    assert len(cases) == 2
    result = killmatrix.matrix(cases, ORACLES, f.mutants, f)
    assert result.pop(killmatrix.REFERENCE_ROW) == [], "the correct reference was killed"
    assert [name for name, ids in result.items() if not ids] == []
    assert len(result) == len(f.mutants)


def test_kill_matrix_command_takes_a_family(capsys, request):
    from conftest import require_framework
    from gatecheck.frontends.cli import main

    require_framework(request.config, "torch")
    assert main(["kill-matrix", "--family", "rnn", "--oracles", "torch-rnn-cell"]) == 0
    out = capsys.readouterr().out
    # Its own and the no-bias option's (on the 6 no-bias cases); PyTorch offers no reverse layer,
    # and a cell no layer structure, so those options' mutants have no case here and are not run.
    n = len([m for o, m in killmatrix.catalogue(FAMILIES["rnn"]) if set(o) <= ORACLES["torch-rnn-cell"].options])
    cases = len(grid("ci", FAMILIES["rnn"], oracles=["torch-rnn-cell"]))
    assert f"{n}/{n} rnn mutants killed over {cases} cases" in out and "(no false alarm)" in out
    assert "not run: the mutants of option rev: no case with it" in out
