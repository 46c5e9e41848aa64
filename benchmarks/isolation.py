"""The cost of running the candidate in a process of its own (gatecheck.run.isolation).

    python benchmarks/isolation.py [--family lstm] [--candidate examples.course:run] [--profile ci]

For every case of the profile: the oracle runs once, then the candidate is judged in this
process and in its own process, alternately (each with warm caches), and the times are
summed. Prints the candidate-and-comparison time of each way, the whole-case time of each
(oracle included, as `check` spends it), and their ratios, measured in this one run.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gatecheck.core import candidate as cand
from gatecheck.engines import ORACLES
from gatecheck.families import FAMILIES
from gatecheck.model import options
from gatecheck.run.battery import expected_of, judge
from gatecheck.run.grid import grid
from gatecheck.run.isolation import Isolated
from gatecheck.truth.views import view


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="lstm", choices=sorted(FAMILIES))
    ap.add_argument("--candidate", default="examples.course:run")
    ap.add_argument("--profile", default="ci")
    args = ap.parse_args()
    family = FAMILIES[args.family]
    sys.path.insert(0, os.getcwd())
    plain = cand.load(args.candidate)
    t0 = time.perf_counter()
    isolated = Isolated(args.candidate, family)
    start = time.perf_counter() - t0
    cases = [c for c in grid(args.profile, family) if options.implements(options.implemented(plain), c.options)]
    t_oracle = t_plain = t_isolated = 0.0
    for n, case in enumerate(cases):
        oracle = ORACLES[case.oracle]
        v = view(case, family)
        t0 = time.perf_counter()
        expected = expected_of(case, oracle, family, v)
        t_oracle += time.perf_counter() - t0
        ways = [(plain, "plain"), (isolated, "isolated")]
        for fn, which in ways if n % 2 else ways[::-1]:  # alternate which goes first
            t0 = time.perf_counter()
            report = judge(case, oracle, v, expected, fn, args.candidate, family)
            dt = time.perf_counter() - t0
            if which == "plain":
                t_plain += dt
            else:
                t_isolated += dt
            assert report.ok, report.message()
    isolated.close()
    whole_plain, whole_isolated = t_oracle + t_plain, t_oracle + t_isolated + start
    print(f"{len(cases)} cases of the {args.profile} profile, {args.candidate} as the {family.name} family")
    print(f"  oracles' own compute:                {t_oracle:8.2f} s")
    print(f"  candidate + comparison, in-process:  {t_plain:8.2f} s")
    print(f"  candidate + comparison, isolated:    {t_isolated:8.2f} s  (+ {start:.2f} s to start its process)")
    print(f"  isolated / in-process, candidate and comparison: {(t_isolated + start) / t_plain:.3f}")
    print(f"  isolated / in-process, whole cases (as check):   {whole_isolated / whole_plain:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
