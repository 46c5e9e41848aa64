"""The diagnosis' rate over the mutant catalogues: how many mutants the diagnosis names.

    python benchmarks/diagnosis_rate.py [--families lstm,gru,gru-reset-before,rnn] [--options ,mask,maskz,len,rev,bi,L2]

Every mutant of each family's catalogue, and the own mutants of each option set, is diagnosed
(``gatecheck.tools.diagnose.diagnose``, no localisation) on a B=3 T=7 D=4 H=5 float64 case (T=25
or D=H where the mutant needs it); it counts as named when a finding gives its own name ("matches
the known bug '...'") or, for a gate order, a gate layout. Prints one line per mutant and the rate;
exits non-zero when a failing mutant is not named.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.engines import reference_oracle
from gatecheck.families import FAMILIES
from gatecheck.model.options import under
from gatecheck.tools.diagnose import diagnose


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default="lstm,gru,gru-reset-before,rnn")
    ap.add_argument("--options", default=",mask,maskz,len,rev,bi,L2",
                    help="comma list of option sets ('' for none, 'bi+L2' for a set)")
    args = ap.parse_args()
    total = named = 0
    t0 = time.perf_counter()
    for name in args.families.split(","):
        family = FAMILIES[name]
        own = {m.name for m in family.mutants}
        for spec in args.options.split(","):
            options = tuple(o for o in spec.split("+") if o)
            try:
                record = under(family, options)
            except ValueError as exc:
                print(f"{name} {spec}: skipped ({exc})")
                continue
            for m in (m for m in record.mutants if not options or m.name not in own):
                T = 25 if m.needs == "T>20" else 7
                D = 5 if m.needs == "D==H" else 4
                case = Case(reference_oracle(name).name, 3, T, D, 5, "f64", 0, "std", options)
                report, text = diagnose(mutants.candidate(record, m), case, family, m.name, localise=False)
                if report is None or report.ok:  # it cannot run here, or does not fail on this case
                    continue
                findings = [line[4:] for line in text.splitlines() if line.startswith("  - ")]
                ok = any(f"'{m.name}'" in f for f in findings) or \
                    (m.family == "gate-order" and any("your gates look ordered" in f for f in findings))
                total += 1
                named += ok
                print(f"{name}{'+'.join(('',) + options)} {m.name}: {'named' if ok else 'NOT NAMED'}")
    print(f"\ndiagnosis rate: {named}/{total} mutants named ({time.perf_counter() - t0:.0f}s)")
    return 0 if named == total else 1


if __name__ == "__main__":
    sys.exit(main())
