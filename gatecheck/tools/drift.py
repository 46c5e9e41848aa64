"""Drift: a results file against a committed baseline (baselines/NAME.jsonl: gatecheck.tools.baseline_file).

Results and a baseline of different Keras backends (``KERAS_BACKEND``: the Keras oracles' numbers
differ by backend) are not compared: a baseline holds one backend's run, and drift refuses the pair.
A change of host (the CPU, the platform) is compared but named first: errors near rounding move
with the CPU's kernels, so a grown error after a host change may be the host's, not the code's.

Flagged: a case that fails now but did not in the baseline (or is new and fails), a case
of the baseline that the results lack (a partial run must not read as "no drift"), a case
whose layer options (the records' ``options`` field, none when absent) differ from the
baseline's under the same id, and a quantity whose fraction of the allowance used grew by
more than ``factor`` for the same case (below ``FLOOR`` of the allowance, growth is noise
and is not flagged).

    python -m gatecheck drift RESULTS --baseline baselines/NAME.jsonl [--factor 4]
    python -m gatecheck baseline RESULTS --name NAME      # the explicit update
    python -m gatecheck baseline --convert OLD.json       # a single-JSON baseline as JSON Lines
"""

import math
import os
import re

from gatecheck.tools import baseline_file as bf
from gatecheck.tools import results as res

FACTOR = 4.0
FLOOR = 0.02  # of the allowance: growth below this is rounding noise, not drift
MISSING_LISTED = 20  # missing cases listed by name (a results file of one shard lacks thousands)
# The committed baselines of a checkout (beside the gatecheck package). An installed
# gatecheck has none: `baseline` then writes to ./baselines, and drift takes any path.
BASELINES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "baselines")


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
    now, then = res.keras_backend_of(current["meta"]), res.keras_backend_of(baseline["meta"])
    if now != then:
        raise res.ResultsError(
            f"baseline {path}: its run used the Keras backend {then!r}, the results' {now!r} (KERAS_BACKEND); "
            f"the Keras oracles' numbers differ by backend: compare with a baseline of the {now!r} backend")
    ids = {c["id"] for c in current["cases"]} & {c["id"] for c in baseline["cases"]}
    if not ids:
        raise res.ResultsError(f"baseline {path}: no case in common with the results")


def check_factor(factor):
    """``factor`` must be a finite number > 1: NaN or infinity would flag no growth at all."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 < factor < math.inf:
        raise ValueError(f"--factor: expected a finite number > 1, got {factor!r}")
    return float(factor)


def drift(current, baseline, factor=FACTOR):
    """(new failures, missing cases, grown errors) as lists of sentences."""
    factor = check_factor(factor)
    base = {c["id"]: c for c in baseline["cases"]}
    failures, grown = [], []
    for case in current["cases"]:
        before = base.get(case["id"])
        # (a failure that is an oracle's recorded deviation, gatecheck.truth.deviations, is not new: the table says why)
        if not case["ok"] and not case.get("deviation") and (before is None or before["ok"]):
            failures.append(f"{case['id']}: fails now ({case.get('error')})"
                            + ("" if before else " [not in the baseline]"))
        if before is None:
            continue
        if res.options_of(case) != res.options_of(before):
            failures.append(f"{case['id']}: options {list(res.options_of(case))}, baseline "
                            f"{list(res.options_of(before))} (not the same case)")
            continue
        for q, now in case["quantities"].items():
            then = before["quantities"].get(q)
            if then is None:
                continue
            if now["ratio"] > FLOOR and now["ratio"] > factor * max(then["ratio"], FLOOR / factor):
                grown.append(f"{case['id']}: {q} used {now['ratio']:.3g} of the allowance, "
                             f"baseline {then['ratio']:.3g} (x{now['ratio'] / max(then['ratio'], 1e-300):.3g} > x{factor:g})")
    have = {c["id"] for c in current["cases"]}
    missing = [f"{cid}: in the baseline, missing from the results" for cid in sorted(base) if cid not in have]
    return failures, missing, grown


DIGITS = bf.DIGITS  # significant digits a baseline keeps (of each quantity's ratio)

# A baseline's name is a plain file stem: no folder, no hidden file, no ".json" or ".jsonl" of its own.
NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")


def check_name(name):
    if not isinstance(name, str) or not NAME.match(name) or ".json" in name.lower():
        suffix = next((s for s in (bf.SUFFIX, bf.OLD_SUFFIX) if isinstance(name, str) and name.lower().endswith(s)), "")
        hint = f"; give the stem: {name[:-len(suffix)]!r}" if suffix else ""
        raise res.ResultsError(f"--name: expected a plain file stem (ASCII letters, digits, '-', '_', and '.' only "
                               f"between them; written as NAME{bf.SUFFIX}), got {name!r}{hint}")
    return name


def _families(meta):
    return meta.get("families", ["lstm"])  # format-1 baselines hold the LSTM only


def refusals(new, old):
    """Why a baseline made from ``new`` must not silently replace the baseline ``old``."""
    reasons = [f"{key} {old['meta'].get(key)!r} would become {new['meta'].get(key)!r}"
               for key in ("profile", "candidate") if new["meta"].get(key) != old["meta"].get(key)]
    if _families(new["meta"]) != _families(old["meta"]):
        reasons.append(f"families {_families(old['meta'])} would become {_families(new['meta'])}")
    if res.keras_backend_of(new["meta"]) != res.keras_backend_of(old["meta"]):
        reasons.append(f"its Keras backend {res.keras_backend_of(old['meta'])!r} would become "
                       f"{res.keras_backend_of(new['meta'])!r}")
    if res.cpus_of(old["meta"]) and res.cpus_of(new["meta"]) != res.cpus_of(old["meta"]):
        reasons.append(f"its CPU {res.host_of(old['meta'])} would become {res.host_of(new['meta'])}")
    if new["meta"].get("shard"):
        reasons.append(f"the results are shard {new['meta']['shard']} only (merge the shards first)")
    lost = {c["id"] for c in old["cases"]} - {c["id"] for c in new["cases"]}
    if lost:
        reasons.append(f"{len(lost)} of its {len(old['cases'])} cases would be lost (e.g. {min(lost)})")
    return reasons


def update(results_path, name, folder=None, force=False):
    """Write baselines/NAME.jsonl from a results file (the explicit baseline update). An
    existing baseline of another profile, candidate or families, or with cases the results
    lack, is replaced only with ``force``; so is, in its place, a baseline NAME.json of the
    old format (which is left: remove it)."""
    check_name(name)
    data = res.load(results_path)
    if not data["cases"]:
        raise res.ResultsError(f"results {results_path}: no case; a baseline of nothing would flag nothing")
    folder = folder or baselines_folder()
    path = os.path.join(folder, name + bf.SUFFIX)
    existing = next((p for p in (path, os.path.join(folder, name + bf.OLD_SUFFIX)) if os.path.lexists(p)), None)
    if existing and not force:
        try:
            reasons = refusals(data, bf.load(existing))
        except res.ResultsError as exc:
            reasons = [f"it cannot be read ({exc})"]
        if reasons:
            raise res.ResultsError(f"baseline {existing} exists and " + "; ".join(reasons)
                                   + ": not replaced (--force replaces it)")
    bf.write(path, data["meta"], data["cases"])
    return path


def host_changes(now, then):
    """Sentences naming how the machine changed since the baseline: the CPU (its vector
    instruction sets pick the engines' kernels, whose sums round differently in the last digits)
    and the platform. A grown error after a host change may be the host's, not the code's."""
    lines = []
    if res.cpus_of(now) != res.cpus_of(then):
        lines.append(f"CPU changed since the baseline: {res.host_of(then)} -> {res.host_of(now)}")
    if now.get("platform") != then.get("platform"):
        lines.append(f"platform changed since the baseline: {then.get('platform')} -> {now.get('platform')}")
    if lines:
        lines.append("  (errors near rounding can move with the host; if the code did not change, "
                     "regenerate the baseline on the machine that runs the comparison: `gatecheck baseline`)")
    return lines


def report_drift(results_path, baseline_path, factor=FACTOR, out=print, current=None):
    """Print the drift of a results file against a baseline; 1 if any, 0 otherwise.
    ``current``: the results file's content, when already loaded."""
    factor = check_factor(factor)
    current = res.load(results_path, "results") if current is None else current
    baseline = bf.load(baseline_path)
    check_match(current, baseline, baseline_path)
    failures, missing, grown = drift(current, baseline, factor)
    versions = baseline["meta"].get("versions", {})
    changed = {k: (versions.get(k), v) for k, v in current["meta"].get("versions", {}).items()
               if versions.get(k) != v}
    if changed:
        out("versions changed since the baseline: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
    for line in host_changes(current["meta"], baseline["meta"]):
        out(line)
    out(f"{len(current['cases'])} cases against {len(baseline['cases'])} in the baseline: "
        f"{len(failures)} new failures, {len(missing)} cases of the baseline missing, "
        f"{len(grown)} errors grown by more than x{factor:g}")
    with_options = {}
    for case in current["cases"]:
        if res.options_of(case):
            key = ",".join(res.options_of(case))
            with_options[key] = with_options.get(key, 0) + 1
    if with_options:
        out("  with layer options: " + ", ".join(f"{n} {key}" for key, n in with_options.items()))
    shard = current["meta"].get("shard")
    if missing and shard:
        out(f"  (the results are shard {shard} only: merge the shards, then compare)")
    shown = missing if len(missing) <= MISSING_LISTED + 1 else missing[:MISSING_LISTED] + [
        f"... and {len(missing) - MISSING_LISTED} more cases of the baseline missing"]
    for line in failures + shown + grown:
        out("  " + line)
    return 1 if failures or missing or grown else 0
