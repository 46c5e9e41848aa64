"""The whole suite's wall time, an older commit against this checkout, measured in one run.

    python benchmarks/suite_speed.py [--old COMMIT] [--profiles ci,nightly] [--repeat N] [-n auto]
                                     [--new-family NAME]

Checks COMMIT out into a temporary git worktree, then runs ``pytest -n N`` in both trees,
profile by profile: for ci the whole suite (as the README says), for nightly the battery
(tests/battery/test_battery.py, as the nightly workflow runs it), alternating old and new ``--repeat``
times (the best of each is kept: the machine is shared, and a slow run is noise, never a
faster suite). Each tree runs with itself first on PYTHONPATH, so its own packages are
imported. Prints each run, then per profile the best wall times, the tests and battery cases
each side ran, and the ratio new / old.

``--new-family lstm`` runs only that family's battery in this checkout (the older commit's
battery had the LSTM alone): the same cases on both sides, for the nightly profile.

The default COMMIT, 00fcb0c, is the suite before the Keras cell oracles ran in a symbolic
loop: its nightly profile was the 6,432 LSTM cases, and keras-lstm-cell traced an unrolled graph
per shape.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OLD = "00fcb0c"


def worktree(commit, folder):
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", folder, commit], check=True,
                   capture_output=True, text=True)


WHAT = {"ci": [], "nightly": ["tests/battery/test_battery.py"]}  # the whole suite; the battery


def run_suite(tree, profile, workers, extra=()):
    """(wall seconds, tests passed, battery cases, the summary line) of one run."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", GATECHECK_PROFILE=profile,
               PYTHONPATH=os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")]))
    env.pop("GATECHECK_REQUIRE", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", workers, "-p", "no:cacheprovider", *WHAT[profile], *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = proc.stdout.strip().splitlines() or [proc.stderr[-300:]]
    summary = lines[-1]
    passed = re.search(r"(\d+) passed", summary)
    battery = re.search(r"(\d+) battery cases", proc.stdout)
    if proc.returncode != 0:
        summary += f" (exit {proc.returncode})"
    return wall, int(passed.group(1)) if passed else 0, int(battery.group(1)) if battery else 0, summary


def _cases(n):
    return f", {n} battery cases" if n else ""  # older commits print no battery summary line


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", default=DEFAULT_OLD, help=f"the commit to compare with (default {DEFAULT_OLD})")
    ap.add_argument("--profiles", default="ci,nightly", help="comma-separated profiles (default ci,nightly)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tree per profile, alternated (best kept)")
    ap.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers (default auto)")
    ap.add_argument("--new-family", help="run only this family's battery in this checkout")
    args = ap.parse_args(argv)
    profiles = args.profiles.split(",")
    if not set(profiles) <= {"ci", "nightly"}:
        ap.error(f"--profiles: expected names from ['ci', 'nightly'], got {args.profiles!r}")
    if args.repeat < 1:
        ap.error(f"--repeat: expected a positive integer, got {args.repeat}")
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    only = f" (--gatecheck-family {args.new_family})" if args.new_family else ""
    print(f"old: {args.old} (temporary worktree); new: this checkout, {head}{' with local changes' if dirty else ''}"
          f"{only}; "
          f"pytest -n {args.workers}; {os.cpu_count()} cores; best of {args.repeat}")
    folder = tempfile.mkdtemp(prefix="gatecheck-old-")
    os.rmdir(folder)
    worktree(args.old, folder)
    failed = False
    try:
        best = {}
        for profile in profiles:
            for round_ in range(args.repeat):
                new_extra = ("--gatecheck-family", args.new_family) if args.new_family else ()
                for side, tree, extra in (("old", folder, ()), ("new", ROOT, new_extra)):
                    wall, passed, cases, summary = run_suite(tree, profile, args.workers, extra)
                    failed |= "exit" in summary
                    print(f"  {profile:8s} {side} run {round_ + 1}: {wall:6.1f} s  {summary}", flush=True)
                    key = (profile, side)
                    if key not in best or wall < best[key][0]:
                        best[key] = (wall, passed, cases)
        print()
        for profile in profiles:
            (old, old_tests, old_cases), (new, new_tests, new_cases) = best[(profile, "old")], best[(profile, "new")]
            print(f"{profile:8s} old {old:6.1f} s ({old_tests} tests{_cases(old_cases)})   "
                  f"new {new:6.1f} s ({new_tests} tests{_cases(new_cases)})   new / old = {new / old:.2f}")
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", folder], capture_output=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
