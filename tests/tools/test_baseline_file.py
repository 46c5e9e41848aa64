"""Baseline files as JSON Lines (gatecheck.tools.baseline_file): one case per line, sorted, holding
every figure drift reads; the old single-JSON baselines still load and convert without a loss; a
change of one case is a change of one line; a malformed file is a one-line error naming the line."""

import copy
import difflib
import json
import math

import pytest

from gatecheck.core import exit_codes as ec
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.frontends.cli import main
from gatecheck.run import outcome
from gatecheck.tools import baseline_file as bf
from gatecheck.tools import drift
from gatecheck.tools import results as res
from gatecheck.truth import deviations

META = dict(profile="nightly", candidate=res.REFERENCE_LABEL, families=["lstm"], shard=None)
CASES = [Case("reference-lstm", 2, T, 3, 4, dtype, seed) for T in (1, 4) for dtype in ("f32", "f64")
         for seed in (0, 1)]
DEVIATION = next(d for d in deviations.DEVIATIONS if d.oracle == "flax-gru")


@pytest.fixture(scope="module")
def records():
    """Results records of the reference, and three records the way the committed baseline had them:
    one with layer options, one failing as a recorded deviation (its prose), one under an old oracle id."""
    recs = [res.summarize(outcome.run(c, ORACLES["reference-lstm"])) for c in CASES]
    for n, r in enumerate(recs):  # non-round, non-zero figures (the reference against itself has none)
        for k, v in enumerate(r["quantities"].values()):
            v["ratio"] = 0.0123456789 * (1 + n) * (1 + k)
    with_options = copy.deepcopy(recs[0])
    with_options.update(id=recs[0]["id"] + "-rev", options=["rev"])
    deviating = copy.deepcopy(recs[1])
    deviating.update(id="flax-gru" + recs[1]["id"][len("reference-lstm"):], oracle="flax-gru", family="gru", ok=False,
                     error="first divergence: h t=0: ...", deviation=deviations.describe(DEVIATION))
    old_id = copy.deepcopy(recs[2])
    old_id.update(id="keras-cell" + recs[2]["id"][len("reference-lstm"):], oracle="keras-cell")
    return recs + [with_options, deviating, old_id]


def old_baseline(records, path):
    """A baseline the way `baseline` wrote it before JSON Lines: one JSON object, per quantity the
    maxima to three digits (no per-slice lists), the deviation's prose."""
    keep = ("max_abs", "max_rel", "ratio")
    cases = [dict(c, quantities={q: {k: bf.rounded(v[k]) for k in keep} for q, v in c["quantities"].items()})
             for c in records]
    res.write(str(path), res.metadata(META), cases, "baseline")
    return path


def what_drift_reads(data):
    """Every field of a baseline drift reads, per case id."""
    return {c["id"]: (c["ok"], res.options_of(c), deviations.key_of(c.get("deviation")) or c.get("deviation"),
                      {q: v["ratio"] for q, v in c["quantities"].items()}) for c in data["cases"]}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def cli(capsys, *argv):
    try:
        code = main(list(map(str, argv)))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# --- the deviation's key ---------------------------------------------------------------

def test_every_deviation_has_a_key_its_description_gives_back():
    keys = [deviations.key(d) for d in deviations.DEVIATIONS]
    assert len(set(keys)) == len(keys) and all(deviations.KEY.match(k) for k in keys)
    assert [deviations.key_of(deviations.describe(d)) for d in deviations.DEVIATIONS] == keys
    assert deviations.key_of("a sentence about something else") is None and deviations.key_of(None) is None
    with pytest.raises(ValueError, match=r"deviations \['flax-gru'\]: more than one entry for an oracle"):
        deviations.check_table([DEVIATION, DEVIATION._replace(cases="another set of cases")])


# --- old -> new -> load ---------------------------------------------------------------------

def test_an_old_baseline_converts_with_every_figure_drift_reads(records, tmp_path):
    old_path = old_baseline(records, tmp_path / "b.json")
    path, n = bf.convert(str(old_path))
    assert path == str(tmp_path / "b.jsonl") and n == len(records) and old_path.exists()
    old, new = res.load(str(old_path), "baseline"), bf.load(path)
    assert bf.load(str(old_path)) == old  # the loader reads both formats
    assert what_drift_reads(new) == what_drift_reads(old)
    assert "keras-lstm-cell" + records[-1]["id"][len("keras-cell"):] in what_drift_reads(new)  # ids of now
    assert what_drift_reads(new)[records[-2]["id"]][2] == "flax-gru"
    assert new["meta"] == {k: v for k, v in old["meta"].items() if k != "format"}
    assert drift.drift(old, new, 1 + 1e-9) == ([], [], []) == drift.drift(new, old, 1 + 1e-9)
    # and nothing else is kept: a case is its id, ok, options, deviation and ratios
    lines = [json.loads(line) for line in read(path).splitlines()[1:]]
    assert {k for line in lines for k in line} == set(bf.CASE_KEYS)
    with pytest.raises(res.ResultsError, match=r"b\.jsonl exists: not replaced \(--force replaces it\)"):
        bf.convert(str(old_path))


def test_update_writes_json_lines_that_drift_reads(records, tmp_path, capsys):
    run = tmp_path / "run.json"
    res.write(str(run), res.metadata(META), records)
    path = drift.update(str(run), "nightly", folder=str(tmp_path))
    assert path == str(tmp_path / "nightly.jsonl")
    assert cli(capsys, "drift", run, "--baseline", path)[0] == ec.PASS
    # a figure of the file itself, lowered: drift, read from the baseline, flags that case and no other
    text = read(path)
    case = records[3]
    line = next(line for line in text.splitlines() if f'"id": "{case["id"]}"' in line)
    ratio = bf.rounded(case["quantities"]["dh"]["ratio"])
    lowered = line.replace(f'"dh": {ratio!r}', '"dh": 0.0')
    assert lowered != line
    (tmp_path / "lowered.jsonl").write_text(text.replace(line, lowered))
    code, out, _ = cli(capsys, "drift", run, "--baseline", tmp_path / "lowered.jsonl")
    assert code == ec.FAIL and "1 errors grown" in out and f"{case['id']}: dh used" in out, out


def test_update_beside_an_old_baseline_of_that_name(records, tmp_path, capsys, monkeypatch):
    """An old NAME.json is the baseline NAME.jsonl replaces: it refuses as the old one would, and it is
    left (said so), never removed."""
    monkeypatch.setattr(drift, "BASELINES", str(tmp_path))
    old = old_baseline(records, tmp_path / "nightly.json")
    fewer = tmp_path / "fewer.json"
    res.write(str(fewer), res.metadata(META), records[1:])
    code, _, err = cli(capsys, "baseline", fewer, "--name", "nightly")
    assert code == ec.USAGE and f"baseline {old} exists and 1 of its 11 cases would be lost" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fewer.json", "nightly.json"]
    code, out, _ = cli(capsys, "baseline", old, "--name", "nightly")
    assert code == ec.PASS and out.splitlines() == [f"baseline written: {tmp_path / 'nightly.jsonl'}",
                                                    f"(the baseline {old} of the old format is left: remove it)"]


# --- one case per line, sorted; one case changed, one line changed ---------------------------

def test_one_case_per_line_sorted_by_id(records, tmp_path):
    shuffled = records[::-1][1:] + records[::-1][:1]
    path = bf.write(str(tmp_path / "b.jsonl"), res.metadata(META), shuffled)
    lines = read(path).split("\n")
    assert lines[-1] == "" and len(lines) == 1 + len(records) + 1  # header, one line per case, final newline
    header = json.loads(lines[0])
    assert list(header) == ["gatecheck", "format", "cases", "meta"] and header["cases"] == len(records)
    ids = [json.loads(line)["id"] for line in lines[1:-1]]
    assert ids == sorted(c["id"] for c in records)
    assert all(list(json.loads(line)) == [k for k in bf.CASE_KEYS if k in json.loads(line)] for line in lines[1:-1])
    assert read(bf.write(str(tmp_path / "again.jsonl"), res.metadata(META), records)).split("\n")[1:] == \
        lines[1:]  # the same cases in any order: the same lines
    with pytest.raises(res.ResultsError, match=r"case reference-lstm-\S+: appears twice"):
        bf.write(str(tmp_path / "twice.jsonl"), res.metadata(META), records + records[:1])


def _changed_lines(a, b):
    return [line for line in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_a_change_of_one_case_is_a_change_of_one_line(records, tmp_path):
    meta = res.metadata(META)
    before = read(bf.write(str(tmp_path / "before.jsonl"), meta, records))
    changed = copy.deepcopy(records)
    changed[4]["quantities"]["dW"]["ratio"] *= 3
    after = read(bf.write(str(tmp_path / "after.jsonl"), meta, changed))
    diff = _changed_lines(before, after)
    assert len(diff) == 2 and diff[0].startswith(f'-{{"id": "{records[4]["id"]}"') \
        and diff[1].startswith(f'+{{"id": "{records[4]["id"]}"'), diff
    newer = dict(meta, versions=dict(meta["versions"], numpy="9.9.9"))
    diff = _changed_lines(before, read(bf.write(str(tmp_path / "newer.jsonl"), newer, records)))
    assert len(diff) == 2 and diff[0].startswith('-{"gatecheck": "baseline"') and '"numpy": "9.9.9"' in diff[1]


# --- malformed files: one line, naming the file, the line and what was expected ----------------

def _good(records, tmp_path):
    return read(bf.write(str(tmp_path / "good.jsonl"), res.metadata(META), records)).split("\n")


def _edit_line(n, edit):
    def change(lines):
        record = json.loads(lines[n])
        edit(record)
        lines[n] = json.dumps(record)
        return lines
    return change


MALFORMED = [
    ("empty", lambda lines: [], "empty; expected a header line"),
    ("not JSON", lambda lines: ["{not json"] + lines[1:], "line 1: not valid JSON"),
    ("no header", lambda lines: lines[1:], "line 1: expected the header {\"gatecheck\": \"baseline\""),
    ("old format", lambda lines: [json.dumps(dict(meta={}, cases=[]))], "the old single-JSON format (convert it"),
    ("format", _edit_line(0, lambda h: h.update(format=2)), "line 1: format 2, expected one of [1]"),
    ("meta", _edit_line(0, lambda h: h["meta"].update(profile=3)), "line 1: field 'meta.profile': expected"),
    ("cut short", lambda lines: lines[:-2] + [""], "10 cases, the header says 11: expected every case"),
    ("blank line", lambda lines: lines[:2] + [""] + lines[2:], "line 3: empty; expected one case per line"),
    ("unsorted", lambda lines: lines[:1] + [lines[2], lines[1]] + lines[3:], "line 3: case "),
    ("twice", lambda lines: lines[:2] + lines[1:-2] + [""], "expected the cases sorted by id, each once"),
    ("not an object", lambda lines: lines[:1] + ["[1, 2]"] + lines[2:], "line 2: expected a case (an object)"),
    ("unknown field", _edit_line(1, lambda c: c.update(max_abs=1.0)), "line 2: field 'max_abs' is not a baseline"),
    ("no ok", _edit_line(1, lambda c: c.pop("ok")), "field 'ok' is missing; expected true or false"),
    ("ok", _edit_line(1, lambda c: c.update(ok="yes")), "field 'ok': expected true or false, got \"yes\""),
    ("no id", _edit_line(1, lambda c: c.pop("id")), "line 2: field 'id' is missing"),
    ("ratio", _edit_line(1, lambda c: c["ratio"].update(h=-1)), "field 'ratio.h': expected a finite non-negative"),
    ("nan", _edit_line(1, lambda c: c["ratio"].update(h=math.nan)), "field 'ratio.h': expected a finite"),
    ("ratios", _edit_line(1, lambda c: c.update(ratio=[1.0])), "field 'ratio': expected an object: quantity"),
    ("prose", _edit_line(1, lambda c: c.update(deviation="known deviation of x on h (...)")),
     "field 'deviation': expected a deviation's key"),
    ("options", _edit_line(1, lambda c: c.update(options=["sideways"])), "field 'options': expected a list"),
]


@pytest.mark.parametrize("name, edit, expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_baseline_is_a_one_line_error(records, tmp_path, capsys, name, edit, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(edit(_good(records, tmp_path)[:-1] + [""]) if name != "empty" else []))
    with pytest.raises(res.ResultsError) as info:
        bf.load(str(path))
    message = str(info.value)
    assert message.startswith(f"baseline {path}: ") and expected in message and "\n" not in message, message
    run = tmp_path / "run.json"
    res.write(str(run), res.metadata(META), records)
    code, _, err = cli(capsys, "drift", run, "--baseline", path)
    assert code == ec.USAGE and err.strip() == f"drift: {message}"


def test_convert_names_its_argument_and_what_it_expected(records, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = cli(capsys, "baseline", "--convert", bad)
    assert code == ec.USAGE and err.strip().startswith(f"baseline: --convert {bad}: not valid JSON"), err
    new = bf.write(str(tmp_path / "new.jsonl"), res.metadata(META), records)
    code, _, err = cli(capsys, "baseline", "--convert", new)
    assert code == ec.USAGE and "expected a single-JSON baseline" in err and "converted already" in err, err
    code, _, err = cli(capsys, "baseline", "--convert", tmp_path / "none.json")
    assert code == ec.USAGE and err.strip() == f"baseline: --convert {tmp_path / 'none.json'}: no such file"
    old = old_baseline(records, tmp_path / "old.json")
    code, _, err = cli(capsys, "baseline", old, "--name", "x", "--convert", old)
    assert code == ec.USAGE and "--convert: expected an old single-JSON baseline alone" in err.splitlines()[-1]
    code, _, err = cli(capsys, "baseline", old)
    assert code == ec.USAGE and "expected RESULTS and --name NAME" in err.splitlines()[-1]
    code, out, _ = cli(capsys, "baseline", "--convert", old)
    assert code == ec.PASS and out.strip() == f"baseline written: {tmp_path / 'old.jsonl'} ({len(records)} cases, " \
                                              f"from {old})"
