"""Results files: what a battery run measured, case by case and quantity by quantity,
as JSON (never pickle), written atomically.

A file holds ``meta`` (gatecheck's format version, framework versions, the Keras backend,
platform, the CPU (``cpu``: model, logical cores, vector instruction sets), thread settings, profile,
shard, candidate, time) and ``cases``: for every case that ran its
coordinates, its ``status`` (the outcome every front end shows: gatecheck.run.outcome), ``ok``
(every quantity compared matched: the comparison alone, as files without a status have it),
and per quantity the largest absolute and relative error, the largest fraction of the
allowance used (``ratio``), and per slice the absolute error and the ratio, which the reports
plot, with each slice's coordinate as data: ``steps`` (the time step of each slice) or
``gates`` (its gate name), never a label to parse back.

Format 2 added the family and the structured slice coordinates; a format-1 file (the
baselines made before) holds per-quantity maxima only and still loads. A case's layer
options (gatecheck.model.options) are the list ``options``, written only for a case that has
some: a file without the field (every file written before options) means none. The Keras
backend (``keras_backend``: tensorflow, jax or torch) is that of the whole run; a file without it
was written when the Keras oracles ran on TensorFlow only. A file without ``status`` was written
before it; its readers go by ``ok`` and ``deviation``.
"""

import json
import math
import os
import platform
import re
import stat
import tempfile
import time

from gatecheck.engines import current
from gatecheck.engines import frameworks as fw
from gatecheck.model.options import OPTIONS
from gatecheck.run.outcome import BEYOND, MISMATCH, STATUSES
from gatecheck.truth import deviations

FORMAT = 2
# The candidate label of a run whose candidates are the families' own references: the label
# the committed baselines carry (drift compares like with like by it).
REFERENCE_LABEL = "reference.lstm:run"
READABLE = (1, 2)  # formats load() accepts


class ResultsError(Exception):
    """A results or baseline file that cannot be used; the message says why."""


def summarize(outcome):
    """One case's record, from its ``Outcome`` (gatecheck.run.outcome): its status, and the errors its
    comparison measured (none where it gave no comparison: a candidate error)."""
    case, report = outcome.case, outcome.report
    record = dict(id=case.id, family=outcome.family, oracle=case.oracle, dtype=case.dtype, B=case.B, T=case.T,
                  D=case.D, H=case.H, seed=case.seed, regime=case.regime, status=outcome.status,
                  **({"options": list(case.options)} if case.options else {}))
    if report is None:
        return dict(record, ok=False, error=outcome.reason, quantities={})
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
    # the deviation is named where it accounts for the case's differences (not on a failure beyond it)
    return dict(record, ok=report.ok, error=None if report.ok else report.message().splitlines()[1]
                if len(report.message().splitlines()) > 1 else report.message(), quantities=quantities,
                **({"warnings": list(report.warnings)} if report.warnings else {}),
                **({"deviation": deviations.describe(outcome.deviation)} if outcome.deviation
                   and outcome.status not in (MISMATCH, BEYOND) else {}))


def options_of(case):
    """A case record's layer options as a tuple ((): a record without the field)."""
    return tuple(case.get("options", ()))


def keras_backend_of(meta):
    """The Keras backend a results file's run used (tensorflow for a file written before the field)."""
    return meta.get("keras_backend") or "tensorflow"


# The CPU's vector instruction sets that decide which floating-point kernels the engines run
# (the order of a sum, fused multiply-adds): the last digits of an error can change with them.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile",
              "asimd", "sve", "sve2")
CPUINFO = "/proc/cpuinfo"


def cpu(cpuinfo=CPUINFO):
    """The machine's CPU as results record it: ``model`` (the vendor's name), ``cores`` (logical
    CPUs) and ``simd`` (those of SIMD_FLAGS it has). Where ``/proc/cpuinfo`` is missing (macOS,
    Windows) the model is ``platform.processor()`` and ``simd`` is empty: not read there."""
    model, flags = "", set()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "cpu model", "hardware") and not model:
                    model = value.strip()
                elif key in ("flags", "features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return dict(model=model or platform.processor() or platform.machine() or "unknown",
                cores=os.cpu_count() or 0, simd=[f for f in SIMD_FLAGS if f in flags])


def cpus_of(meta):
    """The CPUs a results file's run used, as a list ([] for a file written before the field)."""
    found = meta.get("cpu")
    return list(found) if isinstance(found, list) else [found] if found else []


def host_of(meta):
    """A results file's CPU in words ("not recorded" for a file written before the field; the
    shards of a merged run on different CPUs are joined with " + ")."""
    return " + ".join(f"{c.get('model', '?')} ({c.get('cores', '?')} logical CPUs; "
                      f"{', '.join(c.get('simd', [])) or 'no vector sets read'})"
                      for c in cpus_of(meta)) or "not recorded"


def metadata(config_like):

    return dict(
        format=FORMAT,
        versions=fw.installed_versions(),
        keras_backend=fw.keras_backend(),
        platform=platform.platform(),
        cpu=cpu(),
        python=platform.python_version(),
        threads={k: os.environ.get(k, "unset") for k in (fw.THREADS_ENV, "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")},
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **config_like,
    )


# --- writing ----------------------------------------------------------------------

TEMP_PREFIX = ".results-"
# Our temporary files (tempfile's 8 random characters): only these are ever cleaned up.
_TEMP_NAME = re.compile(r"\.results-[a-z0-9_]{8}\.(?:json|tmp)\Z")
STALE_SECONDS = 24 * 3600  # a temporary file this old is left by a killed write, never one in progress


def _folder_of(path, what):
    """The folder ``path`` goes into, created if missing; a ResultsError if it cannot be."""
    if os.path.isdir(path):
        raise ResultsError(f"{what} {path}: is a folder; expected a file path")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ResultsError(f"{what} {path}: {folder} is not a folder") from None
    except OSError as exc:
        raise ResultsError(f"{what} {path}: cannot create the folder {folder}: {exc.strerror or exc}") from None
    return folder


def clean_stale(folder, now=None):
    """Remove our temporary files older than STALE_SECONDS from ``folder`` (a write killed
    where no cleanup can run, SIGKILL or a power cut, leaves one). Returns their names."""
    now = time.time() if now is None else now
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not _TEMP_NAME.match(name):
            continue
        tmp = os.path.join(folder, name)
        try:
            info = os.lstat(tmp)
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_SECONDS:
                os.unlink(tmp)
                removed.append(name)
        except OSError:
            pass  # gone meanwhile, or not ours to remove
    return removed


def check_writable(path, what="results"):
    """Fail before a long run, not after it: ``path`` must be a file path in a folder that
    exists (or can be made) and takes a new file."""
    folder = _folder_of(path, what)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ResultsError(f"{what} {path}: cannot write in {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(tmp)


def atomic_write(path, write_to, what="results", binary=False):
    """Write ``path`` atomically: ``write_to(file)`` fills a temporary file in the same folder,
    which then replaces ``path``. On any failure or interruption (KeyboardInterrupt and
    SystemExit included) the temporary file is removed and ``path`` is left as it was; an
    OSError is a ResultsError naming ``what`` and ``path``."""
    folder = _folder_of(path, what)
    clean_stale(folder)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write_to(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would otherwise survive the rename
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ResultsError(f"{what} {path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def write(path, meta, cases, what="results"):
    """Write a results file atomically (``atomic_write``), its cases sorted by id."""
    data = dict(meta=meta, cases=sorted(cases, key=lambda c: c["id"]))
    return atomic_write(path, lambda f: json.dump(data, f, separators=(",", ":"), sort_keys=True), what)


# --- reading ------------------------------------------------------------------------

def _text(v):
    return isinstance(v, str) and v != ""


def _size(v):
    return type(v) is int and v >= 1


def _count(v):
    return type(v) is int and v >= 0


def _amount(v):
    """A finite non-negative number (NaN fails both comparisons; bool is no number here)."""
    return type(v) in (int, float) and 0 <= v < math.inf


def _list_of(check):
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


AMOUNT = "a finite non-negative number"
# field: (required, check, what is expected)
META_FIELDS = {
    "profile": (True, _text, "a profile name"),
    "candidate": (True, _text, "the candidate's label, a string"),
    "families": (False, _list_of(_text), "a list of family names"),
    "versions": (False, lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                 "an object of version strings"),
    "shard": (False, lambda v: v is None or isinstance(v, str), "'i/n' or null"),
    "keras_backend": (False, _text, "the Keras backend's name (tensorflow, jax, torch)"),
    "cpu": (False, lambda v: isinstance(v, dict) or (isinstance(v, list) and all(isinstance(c, dict) for c in v)),
            "an object (model, cores, simd), or a list of them for a merge of shards run on different CPUs"),
}
CASE_FIELDS = {
    "id": (True, _text, "a non-empty string"),
    "family": (False, lambda v: isinstance(v, str), "a family name"),
    "oracle": (True, _text, "an oracle name"),
    "dtype": (True, lambda v: v in ("f32", "f64"), "'f32' or 'f64'"),
    "B": (True, _size, "a positive integer"),
    "T": (True, _size, "a positive integer"),
    "D": (True, _size, "a positive integer"),
    "H": (True, _size, "a positive integer"),
    "seed": (True, _count, "a non-negative integer"),
    "regime": (True, _text, "a regime name"),
    "options": (False, lambda v: isinstance(v, list) and all(isinstance(o, str) and o in OPTIONS for o in v)
                and len(set(v)) == len(v), f"a list of distinct option names from {list(OPTIONS)}"),
    "ok": (True, lambda v: v is True or v is False, "true or false"),
    "status": (False, lambda v: v in STATUSES, f"one of {list(STATUSES)} (gatecheck.run.outcome)"),
    "error": (False, lambda v: v is None or isinstance(v, str), "a string or null"),
    "warnings": (False, _list_of(lambda v: isinstance(v, str)), "a list of strings"),
    "deviation": (False, _text, "a sentence (the oracle's known deviation on the case)"),
    "quantities": (True, lambda v: isinstance(v, dict), "an object: quantity -> its errors"),
}
QUANTITY_FIELDS = {
    "max_abs": (True, _amount, AMOUNT),
    "max_rel": (True, _amount, AMOUNT),
    "ratio": (True, _amount, AMOUNT),
    "abs": (False, _list_of(_amount), f"a list, each {AMOUNT}"),
    "ratios": (False, _list_of(_amount), f"a list, each {AMOUNT}"),
    "steps": (False, _list_of(_count), "a list of time steps (non-negative integers)"),
    "gates": (False, _list_of(_text), "a list of gate names"),
}


def _shown(value):
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_fields(record, fields, where, prefix=""):
    for name, (required, check, expected) in fields.items():
        if name not in record:
            if required:
                raise ResultsError(f"{where}: field '{prefix}{name}' is missing; expected {expected}")
        elif not check(record[name]):
            raise ResultsError(f"{where}: field '{prefix}{name}': expected {expected}, got {_shown(record[name])}")


def _check_slices(v, where, prefix):
    """The per-slice lists of a quantity: 'abs' and 'ratios' one entry per slice, and the
    slices' coordinates ('steps' or 'gates', not both) one per slice too."""
    if "steps" in v and "gates" in v:
        raise ResultsError(f"{where}: field '{prefix}gates': expected 'steps' or 'gates', not both")
    lists = [k for k in ("abs", "ratios", "steps", "gates") if k in v]
    if not lists:
        return
    for k in ("abs", "ratios"):
        if k not in v:
            raise ResultsError(f"{where}: field '{prefix}{k}' is missing; expected one entry per slice, as "
                               f"'{lists[0]}' has")
    for k in lists[1:]:
        if len(v[k]) != len(v["abs"]):
            raise ResultsError(f"{where}: field '{prefix}{k}': {len(v[k])} entries, expected {len(v['abs'])} "
                               "(one per slice, as 'abs' has)")


def validate(data, where):
    """Every field a command uses has the type and range it needs; a ResultsError naming
    ``where`` (the file), the case id and the field otherwise. Unknown fields are kept."""
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or not isinstance(data.get("cases"), list):
        raise ResultsError(f"{where}: expected an object with 'meta' and 'cases' (a gatecheck results file)")
    meta = data["meta"]
    if type(meta.get("format")) is not int or meta["format"] not in READABLE:
        raise ResultsError(f"{where}: format {_shown(meta.get('format'))}, expected one of {list(READABLE)}")
    _check_fields(meta, META_FIELDS, where, "meta.")
    seen = set()
    for n, case in enumerate(data["cases"]):
        if not isinstance(case, dict):
            raise ResultsError(f"{where}: case #{n + 1}: expected an object, got {_shown(case)}")
        if not _text(case.get("id")):
            _check_fields(case, {"id": CASE_FIELDS["id"]}, f"{where}: case #{n + 1}")
        cid = case["id"]
        here = f"{where}: case {cid}"
        if cid in seen:
            raise ResultsError(f"{here}: appears twice (case ids are unique)")
        seen.add(cid)
        _check_fields(case, CASE_FIELDS, here)
        for q, v in case["quantities"].items():
            if not isinstance(v, dict):
                raise ResultsError(f"{here}: field 'quantities.{q}': expected an object of errors, got {_shown(v)}")
            _check_fields(v, QUANTITY_FIELDS, here, f"quantities.{q}.")
            _check_slices(v, here, f"quantities.{q}.")
    return data


def load(path, what="results"):
    """Read and check a results (or baseline) file (``validate``); a clear ResultsError
    otherwise."""
    if os.path.isdir(path):
        raise ResultsError(f"{what} {path}: is a folder; expected a results file (JSON)")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ResultsError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise ResultsError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ResultsError(f"{what} {path}: not valid JSON ({exc})") from None
    return current_ids(validate(data, f"{what} {path}"))


def current_ids(data):
    """A results file's cases under the oracle ids of now (``gatecheck.engines.ALIASES``: a file written
    before every oracle id named its family holds 'keras-cell', 'reference'): each case's oracle and
    its id, which starts with it. Returns ``data``, changed in place."""
    for case in data["cases"]:
        old = case.get("oracle")
        new = current(old) if isinstance(old, str) else old
        if new != old:
            case["oracle"] = new
            if case["id"].startswith(old + "-"):
                case["id"] = new + case["id"][len(old):]
    return data


def merge(paths, out_path):
    """One results file from the shards of one run (same profile, candidate and families,
    disjoint cases); written atomically to ``out_path``."""
    if not paths:
        raise ResultsError("expected at least one results file to merge")
    _folder_of(out_path, "output")  # a bad output path fails before the shards are read
    parts = [load(p) for p in paths]
    first = parts[0]["meta"]
    seen, cases = {}, []
    for path, part in zip(paths, parts, strict=True):
        for key in ("profile", "candidate", "families"):
            if part["meta"].get(key) != first.get(key):
                raise ResultsError(f"results {path} has {key} {part['meta'].get(key)!r}, {paths[0]} has "
                                   f"{first.get(key)!r}; merge the shards of one run")
        if keras_backend_of(part["meta"]) != keras_backend_of(first):
            raise ResultsError(f"results {path} ran Keras on {keras_backend_of(part['meta'])!r}, {paths[0]} on "
                               f"{keras_backend_of(first)!r}; merge the shards of one run")
        for case in part["cases"]:
            if case["id"] in seen:
                raise ResultsError(f"case {case['id']} is in both {seen[case['id']]} and {path}; "
                                   "merge the disjoint shards of one run")
            seen[case["id"]] = path
            cases.append(case)
    cpus = []
    for part in parts:  # shards may run on different machines: the merge keeps every CPU
        for c in cpus_of(part["meta"]):
            if c not in cpus:
                cpus.append(c)
    meta = dict(first, shard=None, merged_from=[str(p) for p in paths])
    if cpus:
        meta["cpu"] = cpus[0] if len(cpus) == 1 else cpus
    if any("versions" in part["meta"] for part in parts):
        meta["versions"] = merged_versions(paths, [part["meta"].get("versions", {}) for part in parts])
    write(out_path, meta, cases, "output")
    return len(cases)


def merged_versions(paths, versions):
    """The framework versions of a run from its shards' (``versions``: each shard's, in ``paths``' order): each
    package at the version the shards that have it installed agree on ('not installed' only where none has it:
    a shard run where an engine is missing ran none of its cases). Two installed versions of one package are a
    ResultsError naming both shards."""
    found: dict[str, tuple[str, str]] = {}
    for path, table in zip(paths, versions, strict=True):
        for name, version in table.items():
            if version == fw.NOT_INSTALLED:
                found.setdefault(name, (version, path))
            elif found.get(name, (fw.NOT_INSTALLED,))[0] == fw.NOT_INSTALLED:
                found[name] = (version, path)
            elif found[name][0] != version:
                raise ResultsError(f"results {path} ran {name} {version}, {found[name][1]} ran {name} {found[name][0]}; "
                                   f"merge the shards of one run (one version of each framework)")
    return {name: found[name][0] for name in sorted(found)}
