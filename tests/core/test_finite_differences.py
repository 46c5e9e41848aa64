"""Every family's reference proven on its own: every gradient of the contract (each gate's
block on its own) and every per-step delta against central finite differences of the
family's loss, in float64, on random directions (gatecheck.core.finite_diff, with the hooks of
each Family record). Each layer option a family defines (gatecheck.model.options) is proven the
same way on the family's record under it: its contract and its finite-difference hooks."""

import numpy as np
import pytest

from gatecheck.core import finite_diff as fd
from gatecheck.core.cases import Case
from gatecheck.families import FAMILIES
from gatecheck.families.lstm.record import LSTM
from gatecheck.model.options import OPTIONS, defined, under

# Every option a family's record can be put under, alone, and the combinations of a bidirectional
# layer with stacking (and with no bias), and of the LSTM's projection with each (h of width P feeds the
# second layer: 2P wide when bidirectional), and of ONNX's coupled gates and peepholes (each direction and layer
# with its own P). Under an option, the regimes that move a bias (longmem)
# mean nothing without one; a structural option (a composition of the proven model) runs on the
# family's first three points and its first T >= 5 one.
COMBINED = [("bi", "L2"), ("nobias", "bimul", "L2"), ("proj", "bi"), ("proj", "L2"), ("proj", "bi", "L2"),
            ("len", "bi", "L2"), ("mask", "L2"), ("nobias", "maskz", "bimul"), ("proj", "len", "bi"),
            ("coupled", "bi", "L2"), ("peep", "bi", "L2"), ("peep", "len", "bi")]


def _points(f, opts):
    """An option's finite-difference points: its record's (an option may have its own: proj needs H >= 2)."""
    points = [p for p in under(f, opts).fd_points if not (opts and p[2] == "longmem")]
    if not any(OPTIONS[o].structural for o in opts):
        return points
    return points[:3] + [next(p for p in points if p[0][1] >= 5)]


POINTS = [pytest.param(name, Case("fd", *shape, "f64", seed, regime, opts),
                       id=f"{name}-{Case('fd', *shape, 'f64', seed, regime, opts).id[3:]}")
          for name, f in FAMILIES.items()
          for opts in [()] + [(o,) for o in defined(f)] + [c for c in COMBINED if set(c) <= set(defined(f))]
          for shape, seed, regime in _points(f, opts)]


def _family(name, case):
    return under(FAMILIES[name], case.options)


def _setup(family, case):
    inputs = family.make_inputs(case)
    return inputs, family.run(**inputs), fd.loss_scale(family, inputs)


def _per_gate(direction, k):
    masked = np.zeros_like(direction)
    masked[k] = direction[k]
    return masked


def test_every_family_has_finite_difference_hooks_and_cases():
    for name, f in FAMILIES.items():
        assert f.fd_loss and f.fd_state_loss and f.states and f.fd_points, name
        assert {"d" + s for s in f.states} <= set(f.contract), name
        shapes = [p[0] for p in f.fd_points]
        assert (1, 1, 1, 1) in shapes and any(d != h for _, _, d, h in shapes), name  # B=1, T=1, D != H


@pytest.mark.parametrize("family,case", POINTS)
def test_every_gradient_matches_finite_differences(family, case):
    f = _family(family, case)
    inputs, out, base = _setup(f, case)
    for name in f.inputs:
        if "d" + name not in f.contract:
            continue  # an upstream gradient or a target: an input, not a parameter
        grad = out["d" + name]
        for n, direction in enumerate(fd.directions(case, name, inputs[name].shape)):
            if name in f.gated:  # each gate's block on its own
                for k, gate in enumerate(f.gates):
                    v = _per_gate(direction, k)
                    fd.check(fd.wrt_input(f, inputs, name, v), np.sum(grad * v), base,
                             f"{family} {case.id}: d{name} gate {gate} (direction {n})")
            else:
                fd.check(fd.wrt_input(f, inputs, name, direction), np.sum(grad * direction), base,
                         f"{family} {case.id}: d{name} (direction {n})")


@pytest.mark.parametrize("family,case", POINTS)
def test_every_per_step_delta_matches_finite_differences(family, case):
    f = _family(family, case)
    inputs, out, base = _setup(f, case)
    for which in f.states:
        delta = out["d" + which]
        for t in range(case.T):
            # the state's own width (H, or an option's: proj's h has P units)
            for n, direction in enumerate(fd.directions(case, which + str(t), delta[:, t].shape)):
                fd.check(fd.wrt_state(f, inputs, t, which, direction), np.sum(delta[:, t] * direction), base,
                         f"{family} {case.id}: d{which} at t={t} (direction {n})")


def test_finite_differences_see_a_wrong_gradient():
    """The check is not vacuous: a gradient off by 1e-4 in one gate fails, and so does a
    per-step delta without what flows back from later steps."""
    case = Case("fd", 3, 5, 2, 4, "f64", 3)
    inputs, out, base = _setup(LSTM, case)
    v = _per_gate(fd.directions(case, "U", out["dU"].shape)[0], 1)
    with pytest.raises(AssertionError, match="dU gate f"):
        fd.check(fd.wrt_input(LSTM, inputs, "U", v), np.sum(out["dU"] * v) * (1 + 1e-4), base, "dU gate f")
    v = fd.directions(case, "h1", (case.B, case.H))[0]
    local_only = np.sum(inputs["gh"][:, 1] * v)
    with pytest.raises(AssertionError, match="dh at t=1"):
        fd.check(fd.wrt_state(LSTM, inputs, 1, "h", v), local_only, base, "dh at t=1")


def test_the_head_loss_hook_is_the_reference_loss():
    f = FAMILIES["lstm-head"]
    inputs = f.make_inputs(Case("fd", 2, 5, 3, 4, "f64", 3))
    assert f.fd_loss(inputs) == pytest.approx(f.run(**inputs)["loss"], rel=1e-14)
