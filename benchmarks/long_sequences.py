"""Cost growth with T and the longest sequences that run: one battery case per (oracle, T),
each in a fresh process, printing its wall time and the process's peak memory.

    python benchmarks/long_sequences.py [--T 100,1000,3000,10000] [--oracles ...]

keras-cell unrolls T steps into one traced graph: its trace time grows with T (147 s at
T=1000 on 2 cores), so by default it runs only up to T=1000 and the table says so.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNROLLED_MAX_T = 1000

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from gatecheck.battery import run_case
from gatecheck.cases import Case
from gatecheck.oracles import ORACLES
case = Case({oracle!r}, 2, {T}, 3, 4, "f64", 0)
t0 = time.perf_counter()
report = run_case(case, ORACLES[case.oracle])
wall = time.perf_counter() - t0
print(json.dumps(dict(ok=report.ok, wall=wall, worst=report.worst_ratio(),
                      peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def main():
    sys.path.insert(0, ROOT)
    from gatecheck.oracles import ORACLES, battery_oracles

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", default="100,1000,3000,10000")
    ap.add_argument("--oracles", default=",".join(battery_oracles("lstm")))
    args = ap.parse_args()
    try:
        Ts = [int(v) for v in args.T.split(",")]
    except ValueError:
        ap.error(f"--T: expected a comma list of positive integers, got {args.T!r}")
    print(f"{'oracle':<12} {'T':>6} {'wall s':>8} {'peak MiB':>9} {'worst/allowed':>14}  (B=2 D=3 H=4 f64; "
          "the case includes the reference, its float32 yardstick and the comparison)")
    for oracle in args.oracles.split(","):
        walls = {}
        for T in Ts:
            if ORACLES[oracle].trace_ms_per_step and T > UNROLLED_MAX_T:
                print(f"{oracle:<12} {T:>6} {'skipped: unrolled graph, trace time grows with T':>34}")
                continue
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            proc = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT, oracle=oracle, T=T)],
                                  capture_output=True, text=True, env=env)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                print(f"{oracle:<12} {T:>6} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:80]}")
                continue
            r = json.loads(lines[-1])
            walls[T] = r["wall"]
            print(f"{oracle:<12} {T:>6} {r['wall']:>8.1f} {r['peak_mib']:>9.0f} {r['worst']:>14.3f}"
                  + ("" if r["ok"] else "  FAILED"), flush=True)
        if len(walls) >= 2:  # the cost per step between the two longest sequences: linear if it holds
            lo, hi = sorted(walls)[-2:]
            print(f"{oracle:<12} slope T={lo}..{hi}: {1000 * (walls[hi] - walls[lo]) / (hi - lo):.2f} ms per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
