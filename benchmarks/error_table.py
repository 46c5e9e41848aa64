"""Measure the error behind the tolerance policy (gatecheck/core/tolerance.py).

For every case of a grid this runs each oracle and the reference in the case's dtype
and prints, per oracle x dtype x regime x quantity:

  oracle err   max |oracle - ref_f64| / (eps * scale)       (eps of the case's dtype)
  ref err      max |ref_dtype - ref_f64| / (eps * scale)    (the reference's own error)
  used         worst |reference - oracle| / allowed          (<= 1 passes; 1/used = headroom)

where scale = max |ref_f64| on each slice (one time step, one gate, or a whole state).

    python benchmarks/error_table.py                  # the ci grid plus T = 250, 1000
    python benchmarks/error_table.py --grid nightly
    python benchmarks/error_table.py --family gru      # any family (default: lstm)
"""

import argparse
import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from gatecheck.core.cases import Case
from gatecheck.core.compare import contract_value, slices
from gatecheck.core.tolerance import EPS
from gatecheck.engines import ORACLES, battery_oracles
from gatecheck.engines.frameworks import Unavailable
from gatecheck.families import FAMILIES
from gatecheck.run import battery
from gatecheck.run.grid import grid

LONG = [(2, 250, 3, 4), (2, 1000, 3, 4)]


def long_cases(oracles, family):
    out = []
    for oracle in oracles:
        for dtype in ("f32", "f64"):
            for shape in LONG:
                for regime in (r for r in ("std", "longmem", "sat") if r in family.regimes):
                    out.append(Case(oracle, *shape, dtype, 0, regime))
    return out


def err_in_eps(values, truth, name, T, eps, family):
    worst = 0.0
    for _, _, _, index in slices(name, T, family.quantities, family.gates):
        scale = float(np.max(np.abs(truth[index])))
        err = float(np.max(np.abs(values[index].astype(np.float64) - truth[index])))
        if err:
            worst = max(worst, err / (eps * max(scale, np.finfo(np.float64).tiny)))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", choices=("ci", "nightly"), default="ci")
    ap.add_argument("--no-long", action="store_true", help="skip the T=250/1000 cases")
    ap.add_argument("--family", choices=sorted(FAMILIES), default="lstm")
    ap.add_argument("--oracles", help="comma-separated names (default: the family's battery oracles)")
    args = ap.parse_args()
    family = FAMILIES[args.family]
    names = [n for n in (args.oracles or ",".join(battery_oracles(family.name))).split(",") if n]
    unknown = sorted(set(names) - set(ORACLES))
    if unknown:
        ap.error(f"--oracles: unknown {unknown}; expected names from {sorted(ORACLES)}")
    cases = grid(args.grid, family, oracles=names) + ([] if args.no_long else long_cases(names, family))
    rows = defaultdict(lambda: [0.0, 0.0, 0.0])  # (oracle, dtype, regime, Tclass, q) -> maxima
    failures = []
    t0 = time.perf_counter()
    for n, case in enumerate(cases, 1):
        oracle = ORACLES[case.oracle]
        try:
            report = battery.run_case(case, oracle)
        except Unavailable as exc:
            sys.exit(f"{case.oracle}: {exc}")
        inputs, truth, _ = battery.view(case, family)
        own = battery.under(case, family).run(**inputs)
        expected = battery.expected_of(case, oracle, family)
        eps = EPS[case.np_dtype]
        tclass = "T<=80" if case.T <= 80 else f"T={case.T}"
        for q in expected:
            row = rows[(case.oracle, case.dtype, case.regime + "".join("-" + o for o in case.options), tclass, q)]
            row[0] = max(row[0], err_in_eps(expected[q], truth[q], q, case.T, eps, family))
            own_q = contract_value(own, q, family.quantities)
            row[1] = max(row[1], err_in_eps(own_q, truth[q], q, case.T, eps, family))
            row[2] = max(row[2], report.worst_ratio(q))
        if not report.ok:
            failures.append(report.message())
        if n % 50 == 0 or n == len(cases):
            print(f"# {n}/{len(cases)} cases, {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    w = max([12] + [len(n) + 1 for n in names])
    print(f"{'oracle':<{w}} {'dtype':<5} {'regime':<8} {'T':<7} {'quantity':<6} "
          f"{'oracle err':>11} {'ref err':>9} {'used':>7}   (errors in eps*scale)")
    for key in sorted(rows, key=lambda k: (k[0], k[1], k[2], k[3], list(family.quantities).index(k[4]))):
        o, r, u = rows[key]
        print(f"{key[0]:<{w}} {key[1]:<5} {key[2]:<8} {key[3]:<7} {key[4]:<6} {o:11.3g} {r:9.3g} {u:7.3f}")
    worst = max(rows.values(), key=lambda v: v[2])[2]
    print(f"\n{len(cases)} cases, {len(failures)} failing; greatest fraction of allowed used: "
          f"{worst:.3f} (headroom {1 / worst if worst else float('inf'):.1f}x)")
    for msg in failures:
        print("\n" + msg)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
