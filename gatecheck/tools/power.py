"""How much the battery sees, and that it sees nothing where nothing is wrong.

sensitivity  for each dtype, the smallest relative perturbation of one weight block, bias
             or initial state (the candidate is the reference with that block scaled by
             1 + r) that the battery detects, found by bisection on log10 r
specificity  the correct reference over many seeds (each seed a shape of the ci grid and an
             input regime in turn), every oracle, both dtypes: no failure allowed; prints
             the largest fraction of the allowance used (headroom = 1 / that); with
             --diagnosis instead the diagnosis on correct code over as many seeds: no
             hypothesis may be named

    python -m gatecheck sensitivity
    python -m gatecheck specificity --seeds 1000 [--options relu]
    python -m gatecheck specificity --seeds 1000 --diagnosis [--options mask]
"""

import math
import time

import numpy as np

from gatecheck.core import candidate as cand
from gatecheck.core.cases import Case, expand
from gatecheck.engines import reference_oracle
from gatecheck.engines.frameworks import Unavailable
from gatecheck.model.options import label, under
from gatecheck.run import outcome as oc
from gatecheck.tools.diagnose import examine
from gatecheck.truth.views import family_of

SENSITIVITY_CASES = [(3, 7, 4, 5, "std"), (3, 64, 4, 5, "std")]


def _outcome(case, oracle, candidate=None, name="reference"):
    """A case's outcome (gatecheck.run.outcome); a framework that is missing stops the command (exit 2, the reason)."""
    o = oc.run(case, oracle, candidate, name)
    if o.status == oc.UNAVAILABLE:

        raise Unavailable(o.reason)
    return o


def targets(family):
    """(input name, gate index or None): each gate's block of every gated input, then each
    other input the contract differentiates (weights, initial states) whole, x aside."""
    whole = [k for k in family.inputs if k not in family.gated and k != "x" and "d" + k in family.contract]
    return [(name, k) for name in family.gated for k in range(len(family.gates))] + [(n, None) for n in whole]


def scaled(family, name, k, rel):
    """The family's reference with one block scaled by (1 + rel)."""
    def run(**kw):
        value = kw[name].copy()
        if k is None:
            value *= 1 + rel
        else:
            value[k] *= 1 + rel
        return family.run(**dict(kw, **{name: value}))
    return run


def detected(name, k, rel, dtype, oracles):
    for B, T, D, H, regime in SENSITIVITY_CASES:
        for oracle in oracles:
            if not oracle.offers((), dtype):  # it has no case in that dtype (gatecheck.run.grid.grid)
                continue
            case = Case(oracle.name, B, T, D, H, dtype, 0, regime)
            if _outcome(case, oracle, scaled(family_of(oracle), name, k, rel), "perturbed").failed:
                return True
    return False


def smallest_detected(name, k, dtype, oracles, lo=-15.0, hi=-1.0, steps=12):
    """Bisection on log10(rel) between 10^lo (not detected) and 10^hi (detected)."""
    if not detected(name, k, 10**hi, dtype, oracles):
        return math.inf
    for _ in range(steps):
        mid = (lo + hi) / 2
        if detected(name, k, 10**mid, dtype, oracles):
            hi = mid
        else:
            lo = mid
    return 10**hi


def sensitivity(oracles, family, out=print):
    out(f"{'block':<10} {'f32':>10} {'f64':>10}   (smallest relative perturbation detected; cases "
        f"{[c[:4] for c in SENSITIVITY_CASES]}, oracles {[o.name for o in oracles]})")
    worst = {"f32": 0.0, "f64": 0.0}
    for name, k in targets(family):
        label = name if k is None else f"{name}[{family.gates[k]}]"
        row = {}
        for dtype in ("f32", "f64"):
            row[dtype] = smallest_detected(name, k, dtype, oracles)
            worst[dtype] = max(worst[dtype], row[dtype])
        out(f"{label:<10} {row['f32']:>10.2g} {row['f64']:>10.2g}")
    out(f"\nworst block: float32 {worst['f32']:.2g} (target <= 1e-4), float64 {worst['f64']:.2g} (target <= 1e-9)")
    return 0 if worst["f32"] <= 1e-4 and worst["f64"] <= 1e-9 else 1


def points(family, options=()):
    """The (shape, regime) pairs specificity takes its cases from, in turn: without options every shape of
    the family's ci grid in every regime; under a set of options the (shape, regime) points of the family's
    grid blocks of that set (every profile: the regimes an option's cases are drawn in are its own, e.g.
    relu has no sat). A set no block of the family has is an error."""
    if not options:
        shapes = list(dict.fromkeys(shape for block in family.profiles["ci"] for shape, _, _ in expand(block)))
        return [(shape, regime) for regime in family.regimes for shape in shapes]
    found = list(dict.fromkeys((shape, regime) for blocks in family.profiles.values() for block in blocks
                               if tuple(block.get("options", ())) == tuple(options) for shape, _, regime in expand(block)))
    if not found:
        raise ValueError(f"--options: the {family.name} family's grids have no cases of {'+'.join(options)}")
    return found


def specificity(oracles, seeds, family, out=print, options=()):
    """The correct reference over ``seeds`` seeds on every oracle that runs ``options``, both dtypes: no failure
    allowed; the seeds take the ``points`` in turn."""
    chosen = points(family, options)
    oracles = [o for o in oracles if o.offers(options)]
    if not oracles:
        raise ValueError(f"--options: none of the oracles runs {'+'.join(options)}")
    worst, failures, n = (0.0, ""), [], 0
    t0 = time.perf_counter()
    for seed in range(seeds):
        shape, regime = chosen[seed % len(chosen)]
        for oracle in oracles:
            for dtype in ("f32", "f64"):
                if not oracle.offers(options, dtype):
                    continue
                case = Case(oracle.name, *shape, dtype, seed, regime, options)
                o = _outcome(case, oracle)  # the reference: a known deviation must reproduce as recorded
                n += 1
                if o.ratio > worst[0]:
                    worst = (o.ratio, case.id)
                if o.failed:
                    failures.append(o.reason)
        if (seed + 1) % 100 == 0:
            print(f"# {seed + 1}/{seeds} seeds, {n} cases, {time.perf_counter() - t0:.0f}s", flush=True)
    under = f" under {'+'.join(options)}" if options else ""
    out(f"{n} cases{under} ({seeds} seeds x oracles {[o.name for o in oracles]} x f32, f64): {len(failures)} failing")
    out(f"largest fraction of the allowance used: {worst[0]:.3f} at {worst[1]} "
        f"(headroom {1 / worst[0] if worst[0] else np.inf:.1f}x)")
    for message in failures[:10]:
        out("\n" + message)
    return 0 if not failures else 1


def correct_candidates(family, options=()):
    """(name, candidate) of correct code for ``family`` under ``options``: the reference, the reference with
    its activations moved by 4 ulps either way (near-identical numbers: what another correct implementation
    gives), and, without options, the family's correct examples (``Family.examples`` expecting exit 0)."""
    record = under(family, options)
    found = []
    for ulps in (0, 4, -4):
        def run(ulps=ulps, **inputs):
            return record.run(**inputs, ulps=ulps)
        if options:
            run.options = {label(options)}
        found.append(("reference" if not ulps else f"reference, activations {ulps:+d} ulps", run))
    if not options:
        found += [(spec, cand.load(spec)) for spec, code in family.examples.items() if code == 0]
    return found


def diagnosis_specificity(seeds, family, out=print, options=()):
    """The diagnosis' hypotheses (``gatecheck.tools.diagnose.examine``, run whether or not the candidate
    fails) on correct code (``correct_candidates``) over ``seeds`` seeds, float64, the seeds taking the
    ``points`` in turn: no precision finding, named hypothesis or partial explanation allowed."""
    chosen = points(family, options)
    candidates = correct_candidates(family, options)
    oracle = reference_oracle(family.name).name
    named, n, failing = [], 0, 0
    t0 = time.perf_counter()
    for seed in range(seeds):
        shape, regime = chosen[seed % len(chosen)]
        case = Case(oracle, *shape, "f64", seed, regime, options)
        for name, fn in candidates:
            examined = examine(fn, case, family, name)
            n += 1
            if examined[0] is None:
                named.append(f"{case.id} {name}: {examined[1]}")
                continue
            failing += not examined.report.ok
            said = ([examined.precise] if examined.precise else []) + examined.findings + examined.partial
            if said:
                named.append(f"{case.id} {name}: " + " | ".join(said))
        if (seed + 1) % 100 == 0:
            print(f"# {seed + 1}/{seeds} seeds, {n} diagnoses, {time.perf_counter() - t0:.0f}s", flush=True)
    under_ = f" under {'+'.join(options)}" if options else ""
    out(f"{n} diagnoses of correct code{under_} ({seeds} seeds x {[c for c, _ in candidates]}, float64): "
        f"{len(named)} with a hypothesis named ({failing} failing the float64 comparison)")
    for line in named[:10]:
        out("\n" + line)
    return 0 if not named else 1
