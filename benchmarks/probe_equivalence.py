"""The probed Keras cell oracles (keras.layers.RNN loop, zero probes on c_t and h_t) against
the unrolled ones they replaced, on the whole ci grid: raw outputs, array by array.

    git worktree add /tmp/unrolled 91c6a0d     # the last commit with the unrolled oracles
    python benchmarks/probe_equivalence.py --old /tmp/unrolled

Runs each oracle of both checkouts on every ci case of its family in a fresh process, then
prints per oracle and dtype how many arrays are bit-identical and the largest difference in
eps x the array's scale.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORACLES = (("lstm", "keras-lstm-cell"), ("lstm-head", "keras-lstm-head-cell"), ("rnn", "keras-rnn-cell"))
DUMP = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from gatecheck.truth.views import view
from gatecheck.run.grid import grid
from gatecheck.families import FAMILIES
from gatecheck.engines import ORACLES
out = {{}}
for fam, oracle in {oracles!r}:
    for case in grid("ci", FAMILIES[fam], oracles=[oracle]):
        if getattr(case, "options", ()):  # layer options came later: the cases both checkouts have
            continue
        res = ORACLES[oracle].run({{k: v.copy() for k, v in view(case, FAMILIES[fam])[0].items()}})
        out.update({{f"{{case.id}}|{{q}}": v for q, v in res.items()}})
np.savez(sys.argv[1], **out)
"""


def dump(checkout, path):
    env = dict(os.environ, PYTHONPATH=checkout)
    subprocess.run([sys.executable, "-c", DUMP.format(oracles=ORACLES), path], env=env, check=True, cwd=checkout)
    return np.load(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="a checkout with the unrolled oracles")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old, new = dump(args.old, os.path.join(tmp, "old.npz")), dump(ROOT, os.path.join(tmp, "new.npz"))
        if set(old.files) != set(new.files):
            sys.exit("the two checkouts returned different arrays")
        worst, exact, count = defaultdict(float), Counter(), Counter()
        for key in old.files:
            case_id = key.split("|")[0]
            oracle, dtype = case_id.split("-B")[0], "f32" if "-f32-" in case_id else "f64"
            a, b = old[key].astype(np.float64), new[key].astype(np.float64)
            eps = np.finfo(np.float32 if dtype == "f32" else np.float64).eps
            diff = float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.finfo(np.float64).tiny) / eps)
            worst[(oracle, dtype)] = max(worst[(oracle, dtype)], diff)
            exact[(oracle, dtype)] += diff == 0
            count[(oracle, dtype)] += 1
    for key in sorted(worst):
        print(f"{key[0]:<16} {key[1]}  {count[key]:4d} arrays, {exact[key]:4d} bit-identical, "
              f"largest difference {worst[key]:.2f} eps x scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
