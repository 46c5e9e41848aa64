"""The results-file tools and settings under careless or hostile input: every command's
errors use the one table of exit codes (gatecheck.core.exit_codes), a file or path problem is a
one-line message and 2 (never a traceback, never 1), results files are checked field by
field, and writes are atomic and leave nothing behind."""

import json
import math
import os
import re
import time
from pathlib import Path

import pytest

from gatecheck.core import exit_codes as ec
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.engines import frameworks as fw
from gatecheck.frontends.cli import main
from gatecheck.run import outcome
from gatecheck.tools import baseline_file as bf
from gatecheck.tools import drift
from gatecheck.tools import results as res
from tests import inprocess

REPO = Path(__file__).resolve().parents[2]
CASES = [Case("reference-lstm", 2, T, 3, 4, dtype, 0) for T in (3, 5) for dtype in ("f32", "f64")]
META = dict(profile="ci", candidate=res.REFERENCE_LABEL, families=["lstm"], shard=None)


@pytest.fixture(scope="module")
def records():
    return [res.summarize(outcome.run(c, ORACLES["reference-lstm"])) for c in CASES]


@pytest.fixture
def files(records, tmp_path, monkeypatch):
    """A results file, its baseline in a baselines/ folder of its own, and helpers to write
    variants of the results."""
    monkeypatch.setattr(drift, "BASELINES", str(tmp_path / "baselines"))
    os.mkdir(drift.BASELINES)
    run = tmp_path / "run.json"
    res.write(str(run), res.metadata(META), records)
    base = Path(drift.update(str(run), "base"))

    def variant(name, edit=None, meta=None, cases=None):
        data = json.loads(run.read_text())
        data["meta"].update(meta or {})
        if cases is not None:
            data["cases"] = cases(data["cases"])
        if edit:
            edit(data["cases"][0])
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return str(path)
    return run, base, variant


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``python -m gatecheck ARGV``."""
    try:
        code = main(list(map(str, argv)))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys, *argv, says):
    """The command exits 2 with one line (the last, after argparse's usage) that says ``says``."""
    code, out, err = cli(capsys, *argv)
    assert code == ec.USAGE, (argv, code, out, err)
    assert "Traceback" not in err and says in err.strip().splitlines()[-1], err
    return err


def one_line(err):
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


# --- the table ----------------------------------------------------------------------

def test_one_table_of_exit_codes_for_every_command():
    """check and verify take their codes from the shared table, which has a row for every command's
    outcomes (docs/reference/exit-codes.md is rendered from it: tests/tools/test_docs.py)."""
    from gatecheck.tools import check as chk

    assert sorted(ec.EXIT_CODES) == [0, 1, 2, 3, 4] == [ec.PASS, ec.FAIL, ec.USAGE, ec.FORWARD_ONLY, ec.PARTIAL]
    assert chk.EXIT_CODES is ec.EXIT_CODES
    assert (chk.PASS, chk.FAIL, chk.USAGE, chk.FORWARD_ONLY, chk.PARTIAL) == (0, 1, 2, 3, 4)
    assert ec.markdown_table().splitlines()[2:] == [f"| {c} | {m} |" for c, m in ec.EXIT_CODES.items()]
    for word in ("drift", "mutant", "file"):  # every command's outcomes have their row
        assert any(word in meaning for meaning in ec.EXIT_CODES.values()), word


# --- drift ----------------------------------------------------------------------------

@pytest.mark.parametrize("factor", ["nan", "inf", "-inf", "1", "0.5", "-3"])
def test_drift_factor_must_be_finite_and_above_one(files, capsys, factor):
    run, base, _ = files
    usage_error(capsys, "drift", run, "--baseline", base, f"--factor={factor}", says="--factor: expected a finite")
    with pytest.raises(ValueError, match="--factor"):
        drift.drift(res.load(str(run)), bf.load(str(base)), float(factor))


def test_drift_without_drift_is_a_pass(files, capsys):
    run, base, _ = files
    code, out, _ = cli(capsys, "drift", run, "--baseline", base, "--factor", "2.5")
    assert code == ec.PASS and "0 new failures, 0 cases of the baseline missing, 0 errors grown" in out


def test_cases_missing_from_the_results_are_drift(files, capsys):
    _, base, variant = files
    partial = variant("partial.json", cases=lambda cases: cases[:1])
    code, out, _ = cli(capsys, "drift", partial, "--baseline", base)
    assert code == ec.FAIL and "3 cases of the baseline missing" in out, out
    missing = sorted(c.id for c in CASES)[1:]
    assert [line.strip() for line in out.splitlines()[1:]] == [
        f"{cid}: in the baseline, missing from the results" for cid in missing]
    shard = variant("shard.json", meta=dict(shard="1/4"), cases=lambda cases: cases[:1])
    _, out, _ = cli(capsys, "drift", shard, "--baseline", base)
    assert "(the results are shard 1/4 only: merge the shards, then compare)" in out


def test_a_long_list_of_missing_cases_is_capped(records, tmp_path):
    many = [dict(records[0], id=f"case-{k:04d}") for k in range(drift.MISSING_LISTED + 30)]
    base = res.write(str(tmp_path / "b.json"), dict(META, format=res.FORMAT), many, "baseline")
    current = dict(meta=dict(META), cases=many[:1])
    lines = []
    assert drift.report_drift("run.json", base, out=lines.append, current=current) == ec.FAIL
    assert len(lines) == 1 + drift.MISSING_LISTED + 1
    assert lines[-1].strip() == f"... and {len(many) - 1 - drift.MISSING_LISTED} more cases of the baseline missing"


# --- results files, field by field -------------------------------------------------------

def _set(path, value):
    def edit(case):
        *keys, last = path.split(".")
        target = case
        for key in keys:
            target = target[key]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return edit


DELETE = object()
BAD_FIELDS = [
    ("ok", "false", "expected true or false"),
    ("ok", 1, "expected true or false"),
    ("ok", DELETE, "is missing"),
    ("quantities.h.ratio", math.nan, "expected a finite non-negative number, got nan"),
    ("quantities.h.ratio", math.inf, "got inf"),
    ("quantities.h.ratio", -0.5, "got -0.5"),
    ("quantities.h.ratio", "0.1", 'got "0.1"'),
    ("quantities.h.max_abs", DELETE, "is missing"),
    ("quantities.h.max_rel", True, "got true"),
    ("quantities.dh.abs", [0.0, math.nan, 0.0], "a list, each a finite non-negative number"),
    ("quantities.dh.steps", [2, 1], "2 entries, expected 3 (one per slice"),
    ("quantities.dh.abs", DELETE, "is missing; expected one entry per slice"),
    ("quantities.dW.gates", [1, 2, 3, 4], "a list of gate names"),
    ("quantities.h", 3, "expected an object of errors"),
    ("quantities", [], "an object: quantity -> its errors"),
    ("oracle", DELETE, "is missing; expected an oracle name"),
    ("dtype", "f16", "'f32' or 'f64'"),
    ("B", 0, "a positive integer"),
    ("T", 2.0, "a positive integer"),
    ("H", "4", "a positive integer"),
    ("seed", -1, "a non-negative integer"),
    ("regime", None, "a regime name"),
    ("error", 3, "a string or null"),
]


@pytest.mark.parametrize("field, value, expected", BAD_FIELDS, ids=[f"{f}=<deleted>" if v is DELETE else f"{f}={v!r}" for f, v, _ in BAD_FIELDS])
def test_every_field_is_checked_on_load(files, field, value, expected):
    _, _, variant = files
    path = variant("bad.json", edit=_set(field, value))
    case_id = min(c.id for c in CASES)
    with pytest.raises(res.ResultsError) as info:
        res.load(path)
    message = str(info.value)
    assert message.startswith(f"results {path}: case {case_id}: field '{field}") and expected in message, message
    assert "\n" not in message


@pytest.mark.parametrize("meta, expected", [
    (dict(profile=None), "field 'meta.profile': expected a profile name"),
    (dict(candidate=7), "field 'meta.candidate'"),
    (dict(versions=["torch"]), "field 'meta.versions'"),
    (dict(families="lstm"), "field 'meta.families'"),
    (dict(format="2"), "format \"2\", expected one of [1, 2]"),
])
def test_the_header_is_checked_on_load(files, meta, expected):
    _, _, variant = files
    with pytest.raises(res.ResultsError, match=f"results .*: {re.escape(expected)}"):
        res.load(variant("bad.json", meta=meta))


def test_ids_are_strings_and_unique(files):
    _, _, variant = files
    with pytest.raises(res.ResultsError, match=r"case #1: field 'id': expected a non-empty string, got 5"):
        res.load(variant("bad.json", edit=_set("id", 5)))
    with pytest.raises(res.ResultsError, match=r"case reference-\S+: appears twice"):
        res.load(variant("twice.json", cases=lambda cases: cases + cases[:1]))


def test_the_committed_baseline_and_a_fresh_results_file_pass_the_checks(files):
    import glob

    run, base, _ = files
    res.load(str(run))
    for path in [str(base)] + glob.glob(str(REPO / "baselines" / "*")):
        bf.load(path)


# --- files and paths: one line, exit 2 -------------------------------------------------------

def test_drift_file_problems(files, capsys, tmp_path):
    run, base, variant = files
    one_line(usage_error(capsys, "drift", tmp_path, "--baseline", base, says="is a folder; expected a results file"))
    one_line(usage_error(capsys, "drift", run, "--baseline", tmp_path, says="baseline"))
    one_line(usage_error(capsys, "drift", tmp_path / "none.json", "--baseline", base, says="no such file"))
    one_line(usage_error(capsys, "drift", variant("s.json", edit=_set("ok", "false")), "--baseline", base,
                         says="field 'ok': expected true or false"))


def test_merge_file_problems(files, capsys, tmp_path):
    run, _, variant = files
    (tmp_path / "afile").write_text("x")
    one_line(usage_error(capsys, "merge", tmp_path / "m.json", tmp_path, says="is a folder"))
    one_line(usage_error(capsys, "merge", tmp_path, run, says="merge: output"))
    one_line(usage_error(capsys, "merge", tmp_path / "afile" / "m.json", run, says="is not a folder"))
    nightly = variant("n.json", meta=dict(profile="nightly"), cases=lambda cases: cases[:1])
    other = variant("o.json", cases=lambda cases: cases[1:])
    one_line(usage_error(capsys, "merge", tmp_path / "m.json", other, nightly, says="has profile 'nightly'"))
    assert not (tmp_path / "m.json").exists()


def test_report_file_problems(files, capsys, tmp_path):
    run, _, variant = files
    (tmp_path / "afile").write_text("x")
    one_line(usage_error(capsys, "report", variant("no-oracle.json", edit=_set("oracle", DELETE)), "--out",
                         tmp_path / "out", says="field 'oracle' is missing"))
    one_line(usage_error(capsys, "report", run, "--out", tmp_path / "afile",
                         says=f"--out {tmp_path / 'afile'}: is a file; expected a folder"))
    one_line(usage_error(capsys, "report", run, "--out", tmp_path / "afile" / "sub",
                         says=f"--out {tmp_path / 'afile' / 'sub'}: cannot create the folder"))
    one_line(usage_error(capsys, "report", run, "--out", tmp_path / "out", "--baseline", tmp_path,
                         says="is a folder"))
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_report_writes_every_file_atomically(files, capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[report]'")
    run, base, _ = files
    code, out, _ = cli(capsys, "report", run, "--out", tmp_path / "out", "--baseline", base)
    assert code == ec.PASS and out.count("written: ") == 3
    names = sorted(os.listdir(tmp_path / "out"))
    assert not [n for n in names if n.startswith(".")] and "report.html" in names
    written = []
    real = res.atomic_write
    monkeypatch.setattr(res, "atomic_write", lambda path, *a, **k: written.append(os.path.basename(path))
                        or real(path, *a, **k))
    cli(capsys, "report", run, "--out", tmp_path / "out")
    assert sorted(written) == names


@pytest.mark.parametrize("name", [".", "..", ".hidden", "a..b", "a.", "x.json", "x.jsonl", "x.JSON.bak", "../up",
                                  "a/b", "", "sp ace", "naïve"])
def test_baseline_names_are_plain_file_stems(files, capsys, name):
    run, _, _ = files
    before = sorted(os.listdir(drift.BASELINES))
    one_line(usage_error(capsys, "baseline", run, "--name", name, says="--name: expected a plain file stem"))
    assert sorted(os.listdir(drift.BASELINES)) == before


@pytest.mark.parametrize("name", ["nightly", "py311-tf2.21-torch2.13-np2.4", "a_b", "-x"])
def test_plain_names_are_taken(files, capsys, name):
    run, _, _ = files
    code, out, _ = cli(capsys, "baseline", run, f"--name={name}")
    assert code == ec.PASS and sorted(os.listdir(drift.BASELINES)) == sorted(["base.jsonl", name + ".jsonl"]), out


@pytest.mark.parametrize("meta, cases, says", [
    (dict(profile="nightly"), None, "profile 'ci' would become 'nightly'"),
    (dict(candidate="mine:run"), None, "candidate"),
    (dict(families=["lstm", "rnn"]), None, "families ['lstm'] would become ['lstm', 'rnn']"),
    (dict(shard="2/4"), lambda cases: cases[1:2], "the results are shard 2/4 only"),
    ({}, lambda cases: cases[:2], "2 of its 4 cases would be lost"),
])
def test_baseline_refuses_to_replace_another_kind_of_baseline(files, capsys, meta, cases, says):
    _, base, variant = files
    before = base.read_bytes()
    other = variant("other.json", meta=meta, cases=cases)
    err = one_line(usage_error(capsys, "baseline", other, "--name", "base", says=says))
    assert "not replaced (--force replaces it)" in err and base.read_bytes() == before
    code, _, _ = cli(capsys, "baseline", other, "--name", "base", "--force")
    assert code == ec.PASS and bf.load(str(base))["meta"]["profile"] == meta.get("profile", "ci")


def test_baseline_of_the_same_kind_replaces_and_junk_is_never_written(files, capsys):
    run, base, variant = files
    assert cli(capsys, "baseline", run, "--name", "base")[0] == ec.PASS
    before = base.read_bytes()
    one_line(usage_error(capsys, "baseline", variant("junk.json", edit=_set("quantities.h.max_abs", DELETE)),
                         "--name", "base", says="field 'quantities.h.max_abs' is missing"))
    one_line(usage_error(capsys, "baseline", variant("empty.json", cases=lambda cases: []), "--name", "new",
                         says="no case"))
    assert base.read_bytes() == before and sorted(os.listdir(drift.BASELINES)) == ["base.jsonl"]


# --- the other commands' usage errors ----------------------------------------------------

def test_kill_matrix_and_power_usage_errors(capsys):
    usage_error(capsys, "kill-matrix", "--mutants", "no-such-mutant", says="--mutants: unknown")
    usage_error(capsys, "kill-matrix", "--oracles", "no-such-oracle", says="--oracles: unknown")
    usage_error(capsys, "sensitivity", "--oracles", "no-such-oracle", says="--oracles: unknown")
    usage_error(capsys, "specificity", "--seeds", "0", says="--seeds: expected a positive integer")


def test_check_and_verify_usage_errors(capsys):
    usage_error(capsys, "verify", "gatecheck.reference.lstm:run", "--shape", "0,1,1,1", says="--shape")
    usage_error(capsys, "verify", "gatecheck.reference.lstm:run", "--regime", "nope", says="--regime: expected")
    usage_error(capsys, "check", "gatecheck.reference.lstm:run", says="--family")
    usage_error(capsys, "verify", "no_such_module_xyz:run", says="does not import")


def _commands(tmp_path):
    r = str(tmp_path / "r.json")
    return [["check", "gatecheck.reference.lstm:run", "--family", "lstm"], ["verify", "gatecheck.reference.lstm:run"],
            ["kill-matrix"], ["sensitivity"], ["specificity"], ["drift", r, "--baseline", r],
            ["baseline", r, "--name", "x"], ["merge", r, r], ["report", r, "--out", str(tmp_path)]]


def _cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", "too-many"])
def test_a_bad_thread_setting_is_a_usage_error_for_every_command(capsys, monkeypatch, tmp_path, value):
    value = str(_cores() + 1) if value == "too-many" else value
    monkeypatch.setenv(fw.THREADS_ENV, value)
    for argv in _commands(tmp_path):
        err = one_line(usage_error(capsys, *argv, says=f"{fw.THREADS_ENV}: expected an integer from 1 to"))
        assert err.startswith(f"{argv[0]}: ") and repr(value) in err


def test_threads_are_bounded_by_the_cores_available(monkeypatch):
    monkeypatch.setenv(fw.THREADS_ENV, str(_cores()))
    assert fw.threads() == _cores()
    monkeypatch.setenv(fw.THREADS_ENV, "100000")
    with pytest.raises(ValueError, match=f"from 1 to {_cores()} .*got '100000'"):
        fw.threads()


# --- writing: atomic, nothing left behind ------------------------------------------------------

@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, MemoryError])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch, interrupt):
    path = tmp_path / "r.json"
    res.write(str(path), dict(META, format=res.FORMAT), [])
    before = path.read_text()

    def killed(*a, **k):
        raise interrupt()
    monkeypatch.setattr(json, "dump", killed)
    with pytest.raises(interrupt):
        res.write(str(path), dict(META, format=res.FORMAT), [])
    assert path.read_text() == before and os.listdir(tmp_path) == ["r.json"]


def test_a_failed_write_is_a_results_error_naming_the_path(tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(res.ResultsError, match=r"output .*r\.json: cannot write: No space left on device"):
        res.write(str(tmp_path / "r.json"), {}, [], "output")
    assert os.listdir(tmp_path) == []


def test_stale_temporary_files_of_ours_are_removed(tmp_path):
    old = time.time() - res.STALE_SECONDS - 60
    names = {".results-abcd_123.json": old, ".results-zzzzzzzz.tmp": old,  # ours, stale
             ".results-fresh123.tmp": time.time(),  # ours, maybe a write in progress
             ".results-notours.json": old, "results-abcdefgh.json": old, ".results-ABCDEFGH.tmp": old}
    for name, mtime in names.items():
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (mtime, mtime))
    res.write(str(tmp_path / "r.json"), {}, [])
    assert sorted(os.listdir(tmp_path)) == sorted(["r.json", ".results-fresh123.tmp", ".results-notours.json",
                                                   "results-abcdefgh.json", ".results-ABCDEFGH.tmp"])


# --- under pytest ------------------------------------------------------------------------------

BREAK_FOLDER = """
import os, shutil

def pytest_collection_finish(session):  # the results' folder becomes a file during the run
    folder = os.environ["BREAK_FOLDER"]
    shutil.rmtree(folder)
    open(folder, "w").close()
"""


def battery(pytester, monkeypatch, *args, plugin=None):
    if plugin:
        folder = pytester.mkdir("plugins")
        (folder / "breakfolder.py").write_text(plugin)
        monkeypatch.syspath_prepend(str(folder))
        args += ("-p", "breakfolder")
    monkeypatch.delenv(fw.THREADS_ENV, raising=False)
    return inprocess.runpytest(pytester, monkeypatch, str(REPO / "tests" / "battery" / "test_battery.py"), *args)


def test_an_empty_shard_is_a_usage_error(pytester, monkeypatch):
    result = battery(pytester, monkeypatch, "--gatecheck-shard", "1000/1000", "--gatecheck-family", "rnn")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([("ERROR: --gatecheck-shard 1000/1000: shard 1000 holds no case: the grid has * battery cases "
                                  "in * groups*use at most that many shards")])


def test_an_unwritable_results_path_fails_before_the_run(pytester, monkeypatch, tmp_path):
    (tmp_path / "afile").write_text("x")
    for target, says in ((tmp_path / "afile" / "r.json", "is not a folder"), (tmp_path, "is a folder")):
        result = battery(pytester, monkeypatch, "--gatecheck-results", str(target), "-k", "B1-T1")
        assert result.ret == pytest.ExitCode.USAGE_ERROR and "passed" not in result.stdout.str()
        result.stderr.fnmatch_lines([f"ERROR: --gatecheck-results {target}: *{says}*"])


def test_a_failed_write_at_the_end_is_one_line_after_the_summary(pytester, monkeypatch, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setenv("BREAK_FOLDER", str(folder))
    result = battery(pytester, monkeypatch, "-q", "--gatecheck-results", str(folder / "r.json"), "-k",
                     "torch-lstm-cell-B1-T1-D1-H1-f64-s0 and not zero", plugin=BREAK_FOLDER)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = result.stdout.str().strip().splitlines()
    assert lines[-1] == f"gatecheck: ERROR: --gatecheck-results {folder / 'r.json'}: {folder} is not a folder; " \
                        "the run's results are not saved", lines[-3:]
    assert "gatecheck: candidate:" in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_results_are_written_under_pytest(pytester, monkeypatch, tmp_path):
    path = tmp_path / "new" / "r.json"
    result = battery(pytester, monkeypatch, "-q", "--gatecheck-results", str(path), "-k",
                     "torch-lstm-cell-B1-T1-D1-H1-f64-s0 and not zero")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    data = res.load(str(path))
    assert data["meta"]["profile"] == "ci" and len(data["cases"]) == 1 and os.listdir(path.parent) == ["r.json"]


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`python -m gatecheck ... | head -1`: the pipe closes before the report is written; the command ends
    quietly (no BrokenPipeError traceback on stderr)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    # `true` reads nothing and is gone long before the report is printed: every write meets a closed pipe
    done = subprocess.run(f"{sys.executable} -m gatecheck check gatecheck.reference.rnn:run --family rnn "
                          f"--oracles reference-rnn | true", shell=True, capture_output=True, text=True,
                          cwd=repo, timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr[-2000:]
    status = subprocess.run(["bash", "-c", "set -o pipefail; " + done.args], capture_output=True, cwd=repo,
                            timeout=300)
    assert status.returncode == 2  # the report could not be written: usage (exit_codes), never a pass
