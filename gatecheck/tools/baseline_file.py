"""Baseline files: what ``drift`` compares a results file with, written to be reviewed as a diff.

A baseline is JSON Lines (``baselines/NAME.jsonl``): line 1 is the header, every other line one
case, sorted by case id, with its keys in a fixed order and its figures rounded, so that a change
of one case is a change of one line::

    {"gatecheck": "baseline", "format": 1, "cases": 2, "meta": {"candidate": "reference.lstm:run", ...}}
    {"id": "flax-gru-B1-T1-D1-H1-f32-s0", "ok": false, "deviation": "<the oracle: its entry's key>", "ratio": {"dU": 1990.0, ...}}
    {"id": "keras-gru-layer-B2-T3-D2-H3-f32-s0-len", "ok": true, "options": ["len"], "ratio": {"h": 0.031, ...}}

- the header: the file's kind and format, its number of cases (a file cut short is an error, not
  a smaller baseline) and the run's ``meta`` (gatecheck.tools.results: versions, Keras backend,
  profile, candidate, families, ...), keys sorted;
- a case: its ``id`` (which spells its oracle and coordinates: gatecheck.core.cases.Case.id),
  ``ok``, its layer ``options`` (only where it has some), the ``deviation`` it fails as (the key of
  the oracle's recorded deviation, gatecheck.truth.deviations.key; only where there is one) and,
  per quantity, ``ratio``: the largest fraction of the allowance used, to DIGITS significant digits.

That is all ``drift`` reads of a baseline (``report`` reads a baseline through drift only). A
results record's other fields (coordinates, the largest absolute and relative errors, the
per-slice lists, the error text, the deviation's prose) are not kept.

A baseline written before this format is one JSON object, a results file with per-quantity maxima
(``baselines/NAME.json``); ``load`` still reads it, and ``convert`` writes it as JSON Lines.
"""

import json
import os
import re

from gatecheck.tools import results as res
from gatecheck.truth import deviations

KIND = "baseline"
FORMAT = 1
READABLE = (1,)
SUFFIX = ".jsonl"
OLD_SUFFIX = ".json"  # the single-JSON baselines written before
DIGITS = 3  # significant digits a baseline keeps: drift is judged by factors of 2 and more
HEADER_KEYS = ("gatecheck", "format", "cases", "meta")
CASE_KEYS = ("id", "ok", "options", "deviation", "ratio")
HEADER_SHAPE = '{"gatecheck": "baseline", "format": 1, "cases": N, "meta": {...}}'
# A case id: ORACLE-B..-T..-D..-H..-DTYPE-sSEED[-REGIME][-OPTION...] (gatecheck.core.cases.Case.id)
CASE_ID = re.compile(r"(?P<oracle>.+?)-B\d+-T\d+-D\d+-H\d+-(?P<dtype>f32|f64)-s\d+(?:-|\Z)")


def rounded(value):
    """``value`` to DIGITS significant digits (a float; rounding twice changes nothing)."""
    return float(f"{value:.{DIGITS}g}")


def _sorted(value):
    """``value`` with every object's keys sorted (lists keep their order)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _dumps(value):
    return json.dumps(value, separators=(", ", ": "), allow_nan=False)


def deviation_key(text, where):
    """The key of the deviation a case record names: a results file holds the deviation's description
    (gatecheck.truth.deviations.describe), a baseline its key already."""
    key = deviations.key_of(text)
    if key is None and isinstance(text, str) and deviations.KEY.match(text):
        key = text
    if key is None:
        raise res.ResultsError(f"{where}: field 'deviation': expected a known deviation's description "
                               f"('known deviation of ORACLE on ...') or its key, got {res._shown(text)}")
    return key


def case_line(case, where):
    """One case's line (a dict, its keys in CASE_KEYS order) from a results or baseline record."""
    line = {"id": case["id"], "ok": case["ok"]}
    if res.options_of(case):
        line["options"] = list(res.options_of(case))
    if case.get("deviation"):
        line["deviation"] = deviation_key(case["deviation"], f"{where}: case {case['id']}")
    line["ratio"] = {q: rounded(case["quantities"][q]["ratio"]) for q in sorted(case["quantities"])}
    return line


def dumps(meta, cases, where="baseline"):
    """The text of a baseline: the header, then one line per case, sorted by id (each id once)."""
    lines = sorted((case_line(c, where) for c in cases), key=lambda line: line["id"])
    for before, after in zip(lines, lines[1:]):
        if before["id"] == after["id"]:
            raise res.ResultsError(f"{where}: case {after['id']}: appears twice (case ids are unique)")
    meta = _sorted({k: v for k, v in meta.items() if k != "format"})  # (the results' format: not this file's)
    header = dict(gatecheck=KIND, format=FORMAT, cases=len(lines), meta=meta)
    return "".join(_dumps(v) + "\n" for v in [header] + lines)


def write(path, meta, cases, what="baseline"):
    """Write a baseline atomically (gatecheck.tools.results.atomic_write)."""
    text = dumps(meta, cases, f"{what} {path}")
    return res.atomic_write(path, lambda f: f.write(text), what)


# --- reading ------------------------------------------------------------------------

LINE_FIELDS = {
    "id": res.CASE_FIELDS["id"],
    "ok": res.CASE_FIELDS["ok"],
    "options": res.CASE_FIELDS["options"],
    "deviation": (False, lambda v: isinstance(v, str) and bool(deviations.KEY.match(v)),
                  "a deviation's key (gatecheck.truth.deviations.key: its oracle's name)"),
    "ratio": (True, lambda v: isinstance(v, dict) and all(isinstance(q, str) and q for q in v),
              "an object: quantity -> the largest fraction of the allowance used"),
}


def _parse(text, here):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise res.ResultsError(f"{here}: not valid JSON ({exc})") from None


def _unknown(record, known, here, what):
    extra = sorted(set(record) - set(known))
    if extra:
        raise res.ResultsError(f"{here}: field '{extra[0]}' is not {what}; expected the fields {list(known)}")


def _header(first, where):
    here = f"{where}: line 1"
    if not isinstance(first, dict) or first.get("gatecheck") != KIND:
        got = res._shown(first if not isinstance(first, dict) else {k: first[k] for k in list(first)[:2]})
        hint = ("; it holds 'meta' and 'cases': a baseline of the old single-JSON format (convert it: "
                "python -m gatecheck baseline --convert FILE)" if isinstance(first, dict) and "cases" in first else "")
        raise res.ResultsError(f"{here}: expected the header {HEADER_SHAPE}, got {got}{hint}")
    if type(first.get("format")) is not int or first["format"] not in READABLE:
        raise res.ResultsError(f"{here}: format {res._shown(first.get('format'))}, expected one of {list(READABLE)}")
    _unknown(first, HEADER_KEYS, here, "a header field")
    if not res._count(first.get("cases")):
        raise res.ResultsError(f"{here}: field 'cases': expected the number of cases (a non-negative integer), "
                               f"got {res._shown(first.get('cases'))}")
    if not isinstance(first.get("meta"), dict):
        raise res.ResultsError(f"{here}: field 'meta': expected an object (the run's metadata), "
                               f"got {res._shown(first.get('meta'))}")
    res._check_fields(first["meta"], res.META_FIELDS, here, "meta.")
    return first


def _case(line, here, previous):
    if not isinstance(line, dict):
        raise res.ResultsError(f"{here}: expected a case (an object), got {res._shown(line)}")
    _unknown(line, CASE_KEYS, here, "a baseline case's field")
    res._check_fields(line, {"id": LINE_FIELDS["id"]}, here)
    here = f"{here}: case {line['id']}"
    res._check_fields(line, LINE_FIELDS, here)
    for q, v in line["ratio"].items():
        if not res._amount(v):
            raise res.ResultsError(f"{here}: field 'ratio.{q}': expected {res.AMOUNT}, got {res._shown(v)}")
    if previous is not None and line["id"] <= previous:
        raise res.ResultsError(f"{here}: comes after {previous}; expected the cases sorted by id, each once")
    record = dict(id=line["id"], ok=line["ok"], quantities={q: {"ratio": r} for q, r in line["ratio"].items()})
    match = CASE_ID.match(line["id"])
    if match:
        record["oracle"] = match["oracle"]  # (for gatecheck.tools.results.current_ids)
    for key in ("options", "deviation"):
        if key in line:
            record[key] = line[key]
    return record


def parse(text, where):
    """A JSON Lines baseline's content, as ``load`` returns it; a ResultsError naming ``where`` (the
    file), the line and the field otherwise."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the last line's newline
    if not lines:
        raise res.ResultsError(f"{where}: empty; expected a header line {HEADER_SHAPE}, then one case per line")
    header = _header(_parse(lines[0], f"{where}: line 1"), where)
    cases, previous = [], None
    for n, line in enumerate(lines[1:], start=2):
        here = f"{where}: line {n}"
        if not line.strip():
            raise res.ResultsError(f"{here}: empty; expected one case per line, no blank line")
        cases.append(_case(_parse(line, here), here, previous))
        previous = cases[-1]["id"]
    if len(cases) != header["cases"]:
        raise res.ResultsError(f"{where}: {len(cases)} cases, the header says {header['cases']}: expected every "
                               "case the header counts (a file cut short, or cases added or removed by hand)")
    return res.current_ids(dict(meta=header["meta"], cases=cases))


def _read(path, what):
    if os.path.isdir(path):
        raise res.ResultsError(f"{what} {path}: is a folder; expected a baseline file ({SUFFIX}, or {OLD_SUFFIX})")
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise res.ResultsError(f"{what} {path}: no such file") from None
    except OSError as exc:
        raise res.ResultsError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise res.ResultsError(f"{what} {path}: not UTF-8 text ({exc})") from None


def is_old(text):
    """Whether a file's text is a single-JSON baseline (the format before JSON Lines): one object with
    'meta' and 'cases'. (A JSON Lines baseline's first line is its header, never the whole file.)"""
    first = text.lstrip().split("\n", 1)[0]
    return first.startswith("{") and '"gatecheck"' not in first[:200]


def load(path, what="baseline"):
    """Read and check a baseline, either format: {"meta": ..., "cases": [...]} with, for each case,
    at least its id, ok, options, deviation and per quantity its ratio (what drift reads). A file
    named ``*.jsonl`` is read as JSON Lines; another is read as JSON Lines when its first line is a
    baseline's header, and as the old single-JSON format (gatecheck.tools.results.load) otherwise."""
    text = _read(path, what)
    where = f"{what} {path}"
    if not path.endswith(SUFFIX) and is_old(text):
        data = _parse(text, where)
        return res.current_ids(res.validate(data, where))
    return parse(text, where)


def convert(old_path, new_path=None, force=False, what="--convert"):
    """Write the single-JSON baseline ``old_path`` as JSON Lines (default: the same name, ending in
    .jsonl instead of .json); returns (the path written, the number of cases). ``old_path`` is left."""
    text = _read(old_path, what)
    where = f"{what} {old_path}"
    if not is_old(text):
        raise res.ResultsError(f"{where}: expected a single-JSON baseline (one object with 'meta' and 'cases'), "
                               "got a file that is not one (a JSON Lines baseline is converted already)")
    data = res.current_ids(res.validate(_parse(text, where), where))
    if new_path is None:
        stem = old_path[:-len(OLD_SUFFIX)] if old_path.endswith(OLD_SUFFIX) else old_path
        new_path = stem + SUFFIX
    if os.path.lexists(new_path) and not force:
        raise res.ResultsError(f"{where}: {new_path} exists: not replaced (--force replaces it)")
    text = dumps(data["meta"], data["cases"], where)
    res.atomic_write(new_path, lambda f: f.write(text), "output")
    return new_path, len(data["cases"])

