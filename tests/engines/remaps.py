"""What the engine test modules share to show a wrong remap caught: the oracle's ci case of one fixed
coordinate, and the check that the oracle matches the reference there and fails from the expected first
divergence once its remap is replaced by a wrong one."""

from gatecheck.engines import ORACLES
from gatecheck.families import FAMILIES
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid


def ci_case(name, options=()):
    """The oracle's ci case B=3 T=7 D=4 H=5 seed 0, standard regime, under ``options`` (float64 where it runs it)."""
    o = ORACLES[name]
    dtype = "f32" if o.declined(options, "f64") else "f64"
    return next(c for c in grid("ci", FAMILIES[o.family], [name])
                if (c.B, c.T, c.D, c.H, c.dtype, c.seed, c.regime, c.options) == (3, 7, 4, 5, dtype, 0, "std", options))


def wrong_remap_fails(name, layout, wrong, monkeypatch, compare=run_case):
    """``wrong``: (the remap's name in ``layout``, the wrong remap, what it gets wrong, the first divergence).
    ``compare``: (case, oracle) -> the comparison's report (an oracle with a deviation compares on its model's
    inputs: gatecheck.run.battery.explained)."""
    o = ORACLES[name]
    remap, bad, what, first = wrong
    case = ci_case(name)
    report = compare(case, o)
    assert report.ok, report.message()
    monkeypatch.setattr(layout, remap, bad)
    report = compare(case, o)
    assert not report.ok, f"{name}: {what} went unnoticed"
    found = f"{report.failures[0].quantity} {report.failures[0].label}"
    assert found == first, (what, report.message())
