"""Cost growth with T and the longest sequences that run: one battery case per (oracle, T),
each in a fresh process, printing its wall time and the process's peak memory.

    python benchmarks/long_sequences.py [--T 100,1000,3000,10000] [--oracles ...]

By default every battery oracle with per-step deltas (it observes dh), of every family. The
Keras ones run a symbolic loop traced once, whatever T; the slope printed per oracle, the
cost per step between the two longest sequences, says whether the cost stays linear in T.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
from gatecheck.run.battery import run_case
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
case = Case({oracle!r}, 2, {T}, 3, 4, "f64", 0)
t0 = time.perf_counter()
report = run_case(case, ORACLES[case.oracle])
wall = time.perf_counter() - t0
print(json.dumps(dict(ok=report.ok, wall=wall, worst=report.worst_ratio(),
                      peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def main():
    sys.path.insert(0, ROOT)
    from gatecheck.engines import ORACLES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", default="100,1000,3000,10000")
    per_step = [name for name, o in ORACLES.items() if o.battery and "dh" in o.observes]
    ap.add_argument("--oracles", default=",".join(per_step))
    args = ap.parse_args()
    try:
        Ts = [int(v) for v in args.T.split(",")]
    except ValueError:
        ap.error(f"--T: expected a comma list of positive integers, got {args.T!r}")
    print(f"{'oracle':<22} {'T':>6} {'wall s':>8} {'peak MiB':>9} {'worst/allowed':>14}  (B=2 D=3 H=4 f64; "
          "the case includes the reference, its float32 yardstick and the comparison)")
    unknown = sorted(set(args.oracles.split(",")) - set(ORACLES))
    if unknown:
        ap.error(f"--oracles: unknown {unknown}; expected names from {sorted(ORACLES)}")
    for oracle in args.oracles.split(","):
        walls = {}
        for T in Ts:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            proc = subprocess.run([sys.executable, "-c", CHILD.format(root=ROOT, oracle=oracle, T=T)],
                                  capture_output=True, text=True, env=env)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                print(f"{oracle:<22} {T:>6} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:80]}")
                continue
            r = json.loads(lines[-1])
            walls[T] = r["wall"]
            print(f"{oracle:<22} {T:>6} {r['wall']:>8.1f} {r['peak_mib']:>9.0f} {r['worst']:>14.3f}"
                  + ("" if r["ok"] else "  FAILED"), flush=True)
        if len(walls) >= 2:  # the cost per step between the two longest sequences: linear if it holds
            lo, hi = sorted(walls)[-2:]
            print(f"{oracle:<22} slope T={lo}..{hi}: {1000 * (walls[hi] - walls[lo]) / (hi - lo):.2f} ms per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
