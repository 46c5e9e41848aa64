"""Results files: what a battery run measured, case by case and quantity by quantity,
as JSON (never pickle), written atomically.

A file holds ``meta`` (gatecheck's format version, framework versions, platform, thread
settings, profile, shard, candidate, time) and ``cases``: for every case its coordinates,
whether it passed, and per quantity the largest absolute and relative error, the largest
fraction of the allowance used (``ratio``), and per slice the absolute error and the ratio,
which the reports plot, with each slice's coordinate as data: ``steps`` (the time step of
each slice) or ``gates`` (its gate name), never a label to parse back.

Format 2 added the family and the structured slice coordinates; a format-1 file (the
baselines made before) holds per-quantity maxima only and still loads.
"""

import json
import os
import platform
import tempfile
import time

FORMAT = 2
# The candidate label of a run whose candidates are the families' own references: the label
# the committed baselines carry (drift compares like with like by it).
REFERENCE_LABEL = "reference.lstm:run"
READABLE = (1, 2)  # formats load() accepts


class ResultsError(Exception):
    """A results or baseline file that cannot be used; the message says why."""


def summarize(case, report=None, error=None, family=""):
    """One case's record, from its comparison ``Report`` (or the error that stopped it)."""
    record = dict(id=case.id, family=family, oracle=case.oracle, dtype=case.dtype, B=case.B, T=case.T, D=case.D,
                  H=case.H, seed=case.seed, regime=case.regime)
    if report is None:
        return dict(record, ok=False, error=error, quantities={})
    quantities = {}
    for r in report.results:
        q = quantities.setdefault(r.quantity, dict(max_abs=0.0, max_rel=0.0, ratio=0.0, abs=[], ratios=[]))
        q["max_abs"] = max(q["max_abs"], r.abs_err)
        q["max_rel"] = max(q["max_rel"], r.rel_err if r.rel_err != float("inf") else 0.0)
        q["ratio"] = max(q["ratio"], r.ratio)
        if r.step is not None:
            q.setdefault("steps", []).append(r.step)
        elif r.gate is not None:
            q.setdefault("gates", []).append(r.gate)
        q["abs"].append(r.abs_err)
        q["ratios"].append(r.ratio)
    return dict(record, ok=report.ok, error=None if report.ok else report.message().splitlines()[1]
                if len(report.message().splitlines()) > 1 else report.message(), quantities=quantities,
                **({"warnings": list(report.warnings)} if report.warnings else {}))


def metadata(config_like):
    from gatecheck.oracles import frameworks as fw

    return dict(
        format=FORMAT,
        versions=fw.installed_versions(),
        platform=platform.platform(),
        python=platform.python_version(),
        threads={k: os.environ.get(k, "unset") for k in (fw.THREADS_ENV, "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")},
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **config_like,
    )


def write(path, meta, cases):
    """Write atomically: a temporary file in the same folder, then a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    data = dict(meta=meta, cases=sorted(cases, key=lambda c: c["id"]))
    fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, separators=(",", ":"), sort_keys=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would otherwise survive the rename
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path, what="results"):
    """Read and check a results (or baseline) file; a clear ResultsError otherwise."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ResultsError(f"{what} {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{what} {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or not isinstance(data.get("cases"), list):
        raise ResultsError(f"{what} {path}: expected an object with 'meta' and 'cases' (a gatecheck results file)")
    if data["meta"].get("format") not in READABLE:
        raise ResultsError(f"{what} {path}: format {data['meta'].get('format')!r}, expected one of {list(READABLE)}")
    for c in data["cases"]:
        if not isinstance(c, dict) or not {"id", "ok", "quantities"} <= set(c):
            raise ResultsError(f"{what} {path}: a case record lacks 'id', 'ok' or 'quantities': {str(c)[:120]}")
    return data


def merge(paths, out_path):
    """One results file from the shards of one run (same profile and candidate, disjoint
    cases); written atomically to ``out_path``."""
    if not paths:
        raise ResultsError("merge: expected at least one results file")
    parts = [load(p) for p in paths]
    first = parts[0]["meta"]
    seen, cases = {}, []
    for path, part in zip(paths, parts, strict=True):
        for key in ("profile", "candidate"):
            if part["meta"].get(key) != first.get(key):
                raise ResultsError(f"merge: {path} has {key} {part['meta'].get(key)!r}, {paths[0]} has {first.get(key)!r}")
        for case in part["cases"]:
            if case["id"] in seen:
                raise ResultsError(f"merge: case {case['id']} is in both {seen[case['id']]} and {path}")
            seen[case["id"]] = path
            cases.append(case)
    write(out_path, dict(first, shard=None, merged_from=[str(p) for p in paths]), cases)
    return len(cases)
