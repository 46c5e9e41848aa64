"""Each oracle's one-off cost in a process: its first call for a D, H and dtype (a traced
graph, for the Keras oracles) against a second call with the same shapes. The medians are
the ``trace_ms`` of the registry (``gatecheck.engines``), which the shard cost model uses.

    python benchmarks/trace_cost.py [--oracles A,B]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, frameworks
from gatecheck.families import FAMILIES
from gatecheck.truth.views import case_inputs

SHAPES = [(4, 5), (3, 3), (1, 4), (2, 6)]  # (D, H), each new to the process


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--oracles", default=",".join(ORACLES), help="comma-separated oracle names")
    args = ap.parse_args(argv)
    names = args.oracles.split(",")
    unknown = sorted(set(names) - set(ORACLES))
    if unknown:
        ap.error(f"--oracles: unknown {unknown}; expected names from {sorted(ORACLES)}")
    print(f"{'oracle':22s} {'first call':>11s} {'again':>8s} {'trace_ms':>9s} {'registry':>9s}")
    for name in names:
        oracle = ORACLES[name]
        try:
            frameworks.FRAMEWORKS[oracle.framework].importer()
        except frameworks.Unavailable as exc:
            print(f"{name:22s} skipped: {exc}")
            continue
        family = FAMILIES[oracle.family]
        first, again = [], []
        for D, H in SHAPES:
            for dtype in ("f32", "f64"):
                if not oracle.offers((), dtype):  # a dtype it declines (Oracle.declines_dtype)
                    continue
                inputs = case_inputs(Case(name, 2, 7, D, H, dtype, 0), family)
                t0 = time.perf_counter()
                oracle.run(inputs)
                t1 = time.perf_counter()
                oracle.run(inputs)
                t2 = time.perf_counter()
                first.append(t1 - t0)
                again.append(t2 - t1)
        f, a = statistics.median(first) * 1e3, statistics.median(again) * 1e3
        print(f"{name:22s} {f:9.1f}ms {a:6.1f}ms {f - a:9.0f} {oracle.trace_ms:9.0f}")


if __name__ == "__main__":
    main()
