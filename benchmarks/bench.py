"""Benchmarks, printed as ratios measured in one run (never as timed tests).

1. reference float64 forward+backward vs torch.nn.LSTM float64 forward+backward at
   B=32 T=100 D=64 H=128 (target: the reference is no slower), with torch at 1 thread
   and at every core, and NumPy's BLAS as it is.
2. the ci profile: wall time of `pytest -n auto` on the battery, and the battery's
   per-case cost split into the oracles' own compute and gatecheck's overhead
   (inputs, the reference and its float32 yardstick, the candidate call, the comparison).

    python benchmarks/bench.py            # both
    python benchmarks/bench.py --skip-ci  # only the first
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from gatecheck.core.cases import Case, rounded  # noqa: E402
from gatecheck.engines import frameworks as fw  # noqa: E402
from gatecheck.families.lstm.record import make_inputs  # noqa: E402
from gatecheck.reference import lstm  # noqa: E402


def best_of(fns, repeat, rounds=3):
    """Best time of each function: ``rounds`` rounds, each running every function in a
    block of ``repeat`` consecutive calls after one warm-up call. Blocks, not single calls,
    are alternated: NumPy's OpenBLAS threads and torch's OpenMP threads spin for a while
    after their work, and on 2 cores one runtime's spinning slows the other's next call."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            fn()
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                best[k] = min(best[k], time.perf_counter() - t0)
    return best


def blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    return ", ".join(f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info()) or "none"


def reference_vs_torch(repeat):
    torch = fw.import_torch()
    from gatecheck.engines.torch import lstm as torch_oracle

    case = Case("bench", 32, 100, 64, 128, "f64", 0)
    inputs = rounded(make_inputs(case), np.float64)
    print(f"== reference vs torch.nn.LSTM, float64 forward+backward, {case.id[6:]}")
    print(f"   cores: {os.cpu_count()}; NumPy BLAS: {blas_threads()}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    fwd_bwd = torch_fwd_bwd(torch, inputs)
    for n in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(n)  # once per group: switching the pool inside a round would cost torch
        contenders = [
            ("reference (NumPy)", lambda: lstm.run(**inputs)),
            (f"torch.nn.LSTM fwd+bwd, {torch.get_num_threads()} thread(s)", fwd_bwd),
            (f"torch oracle call, {torch.get_num_threads()} thread(s)", lambda: torch_oracle.run_layer(inputs)),
        ]
        times = best_of([fn for _, fn in contenders], repeat)
        print(f"   -- torch at {n} thread(s); best of 3 alternating blocks of {repeat} calls:")
        for (name, _), t in zip(contenders, times):
            print(f"   {name:<36} {t * 1e3:8.1f} ms")
        for (name, _), t in zip(contenders[1:], times[1:]):
            print(f"   ratio {name} / reference: {t / times[0]:.2f}  (>= 1: the reference is no slower)")
    torch.set_num_threads(fw.threads())


def torch_fwd_bwd(torch, inputs):
    """torch.nn.LSTM's forward and backward alone: module, weights and leaves made once."""
    from gatecheck.engines.torch import layout as torch_layout

    B, T, D = inputs["x"].shape
    H = inputs["h0"].shape[1]
    lstm_mod = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, value in torch_layout.to_torch(inputs).items():
            getattr(lstm_mod, name + "_l0").copy_(torch.from_numpy(value))
    x, h0, c0 = (torch.from_numpy(inputs[k]).requires_grad_() for k in ("x", "h0", "c0"))
    gh, gc = torch.from_numpy(inputs["gh"]), torch.from_numpy(inputs["gc"])

    def once():
        lstm_mod.zero_grad()
        x.grad = h0.grad = c0.grad = None
        seq, (_, c_n) = lstm_mod(x, (h0[None], c0[None]))
        ((gh * seq).sum() + (gc * c_n[0]).sum()).backward()

    once()  # warm-up
    return once


def ci_profile(workers):
    from gatecheck.engines import ORACLES
    from gatecheck.families import FAMILIES
    from gatecheck.run import battery
    from gatecheck.run.grid import grid

    cases = [(case, family) for family in FAMILIES.values() for case in grid("ci", family)]
    print(f"\n== ci profile: {len(cases)} battery cases, every family")
    t_oracle = t_total = 0.0
    for case, family in cases:
        oracle = ORACLES[case.oracle]
        battery.run_case(case, oracle)  # first call traces / warms caches
        t0 = time.perf_counter()
        inputs = battery.case_inputs(case, family)
        observes = oracle.observing(battery.under(case, family))
        t1 = time.perf_counter()
        oracle.run(inputs, case.options, observes)
        t2 = time.perf_counter()
        battery.run_case(case, oracle)
        t3 = time.perf_counter()
        t_oracle += t2 - t1
        t_total += (t3 - t2) + (t1 - t0)
    overhead = t_total - t_oracle
    print(f"   warm, in one process: oracles' own compute {t_oracle:.1f} s, whole battery {t_total:.1f} s")
    print(f"   per case: oracle {t_oracle / len(cases) * 1e3:.1f} ms, gatecheck overhead "
          f"{overhead / len(cases) * 1e3:.1f} ms (overhead / oracle compute = {overhead / t_oracle:.2f})")
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", workers, "-p", "no:randomly", os.path.join(ROOT, "tests")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    print(f"   `pytest -n {workers}` (whole suite, cold: imports and tf.function tracing included): "
          f"{wall:.0f} s wall -> {last}")
    print(f"   cold wall per battery case: {wall / len(cases) * 1e3:.0f} ms vs warm oracle compute "
          f"{t_oracle / len(cases) * 1e3:.1f} ms")
    return proc.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10, help="timing rounds (best of)")
    ap.add_argument("--skip-ci", action="store_true", help="skip the ci-profile timing")
    ap.add_argument("--workers", default="auto", help="pytest-xdist -n value for the ci-profile run")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat: expected a positive integer, got {args.repeat}")
    reference_vs_torch(args.repeat)
    return 0 if args.skip_ci else ci_profile(args.workers)


if __name__ == "__main__":
    sys.exit(main())
