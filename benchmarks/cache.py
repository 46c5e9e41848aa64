"""The cache of oracle outputs (gatecheck.run.cache): a warm `check` against the reference-only run of the same
family, measured in one run on this machine, and the cache's size per family and profile.

    python benchmarks/cache.py [--families lstm,gru,...] [--profile ci] [--workers 1,2]

For each family: the reference-only run (`check CANDIDATE --family F --oracles reference-F`), a cold run that fills
an empty cache (every oracle of the battery, every option set the candidate declares), then warm runs with and
without layer options (`--options none`), with each -n; each warm run's wall time over the reference-only run's
(the target is 2 or less). Each run is a fresh `python -m gatecheck check` process, as a user runs it: its wall
time includes starting Python and importing gatecheck. The cache folder is a temporary one, removed at the end.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A correct candidate per family that declares every option set of its grids (tests.layered: the family's reference
# records, chosen by what the candidate is called with); the head family's has no options (the course example).
CANDIDATES = {
    "lstm": "tests.layered:lstm",
    "gru": "tests.layered:gru",
    "rnn": "tests.layered:rnn",
    "lstm-head": "examples.course_head:run",
}


def timed(args, env):
    """(seconds, exit code, the verdict line) of one `python -m gatecheck` run."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gatecheck", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    first = (done.stdout.splitlines() or done.stderr.splitlines() or [""])[0]
    return seconds, done.returncode, first


def size(folder):
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", default=",".join(CANDIDATES))
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--workers", default="1,2", help="the -n of the warm runs (comma list)")
    args = ap.parse_args()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    total = 0
    with tempfile.TemporaryDirectory(prefix="gatecheck-cache-bench-") as scratch:
        for family in args.families.split(","):
            spec = CANDIDATES[family]
            folder = Path(scratch) / family
            base = ["check", spec, "--family", family, "--profile", args.profile]
            ref, code, verdict = timed(base + ["--oracles", f"reference-{family}", "--no-cache"], env)
            print(f"{family}: reference only  {ref:7.1f} s  exit {code}  {verdict}", flush=True)
            cold, code, verdict = timed(base + ["-n", "2", "--cache-dir", str(folder)], env)
            print(f"{family}: cold, -n 2      {cold:7.1f} s  exit {code}  {verdict}", flush=True)
            for n in args.workers.split(","):
                for options in ([], ["--options", "none"]):
                    warm, code, verdict = timed(base + ["-n", n, "--cache-dir", str(folder)] + options, env)
                    label = f"warm, -n {n}{', no options' if options else ''}"
                    print(f"{family}: {label:<22}{warm:7.1f} s  exit {code}  warm / reference only = "
                          f"{warm / ref:.2f}  {verdict}", flush=True)
            found = size(folder)
            total += found
            print(f"{family}: cache of the {args.profile} profile {found / 2**20:.1f} MiB", flush=True)
    print(f"every family: cache {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
