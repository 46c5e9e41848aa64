"""Drift: a results file against a committed baseline (baselines/NAME.json).

Flagged: a case that fails now but did not in the baseline (or is new and fails), and a
quantity whose fraction of the allowance used grew by more than ``factor`` for the same
case (below ``FLOOR`` of the allowance, growth is noise and is not flagged).

    python -m gatecheck drift RESULTS --baseline baselines/NAME.json [--factor 4]
    python -m gatecheck baseline RESULTS --name NAME      # the explicit update
"""

import os

from gatecheck import results as res

FACTOR = 4.0
FLOOR = 0.02  # of the allowance: growth below this is rounding noise, not drift
# The committed baselines of a checkout (beside the gatecheck package). An installed
# gatecheck has none: `baseline` then writes to ./baselines, and drift takes any path.
BASELINES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "baselines")


def baselines_folder():
    """Where `baseline` writes: the checkout's baselines/ when gatecheck runs from one,
    otherwise ./baselines in the current directory."""
    return BASELINES if os.path.isdir(BASELINES) else os.path.join(os.getcwd(), "baselines")


def check_match(current, baseline, path):
    for key in ("profile", "candidate"):
        if current["meta"].get(key) != baseline["meta"].get(key):
            raise res.ResultsError(
                f"baseline {path}: {key} {baseline['meta'].get(key)!r} does not match the results' "
                f"{current['meta'].get(key)!r}; compare like with like, or update the baseline")
    ids = {c["id"] for c in current["cases"]} & {c["id"] for c in baseline["cases"]}
    if not ids:
        raise res.ResultsError(f"baseline {path}: no case in common with the results")


def drift(current, baseline, factor=FACTOR):
    """(new failures, grown errors) as lists of sentences."""
    base = {c["id"]: c for c in baseline["cases"]}
    failures, grown = [], []
    for case in current["cases"]:
        before = base.get(case["id"])
        if not case["ok"] and (before is None or before["ok"]):
            failures.append(f"{case['id']}: fails now ({case.get('error')})"
                            + ("" if before else " [not in the baseline]"))
        if before is None:
            continue
        for q, now in case["quantities"].items():
            then = before["quantities"].get(q)
            if then is None:
                continue
            if now["ratio"] > FLOOR and now["ratio"] > factor * max(then["ratio"], FLOOR / factor):
                grown.append(f"{case['id']}: {q} used {now['ratio']:.3g} of the allowance, "
                             f"baseline {then['ratio']:.3g} (x{now['ratio'] / max(then['ratio'], 1e-300):.3g} > x{factor:g})")
    return failures, grown


DIGITS = 3  # significant digits a baseline keeps: drift is judged by factors of 2 and more


def _round(value):
    return float(f"{value:.{DIGITS}g}")


def compact(data):
    """A baseline keeps per-quantity maxima only (no per-slice arrays), to DIGITS
    significant digits: a nightly baseline stays a few MB."""
    keep = ("max_abs", "max_rel", "ratio")
    cases = [dict(c, quantities={q: {k: _round(v[k]) for k in keep} for q, v in c["quantities"].items()})
             for c in data["cases"]]
    return dict(data, cases=cases)


def update(results_path, name, folder=None):
    """Write baselines/NAME.json from a results file (the explicit baseline update)."""
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise res.ResultsError(f"--name: expected letters, digits, '-', '_' or '.', got {name!r}")
    data = compact(res.load(results_path))
    path = os.path.join(folder or baselines_folder(), name + ".json")
    res.write(path, data["meta"], data["cases"])
    return path


def report_drift(results_path, baseline_path, factor=FACTOR, out=print):
    current = res.load(results_path, "results")
    baseline = res.load(baseline_path, "baseline")
    check_match(current, baseline, baseline_path)
    failures, grown = drift(current, baseline, factor)
    changed = {k: (baseline["meta"]["versions"].get(k), v) for k, v in current["meta"].get("versions", {}).items()
               if baseline["meta"].get("versions", {}).get(k) != v}
    if changed:
        out("versions changed since the baseline: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
    out(f"{len(current['cases'])} cases against {len(baseline['cases'])} in the baseline: "
        f"{len(failures)} new failures, {len(grown)} errors grown by more than x{factor:g}")
    for line in failures + grown:
        out("  " + line)
    return 1 if failures or grown else 0
