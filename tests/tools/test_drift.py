"""Results files, baselines and drift: written atomically, read with clear errors, and a
planted drift is flagged (no framework needed: the reference is its own oracle here)."""

import copy
import json

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.core.mutants import candidate
from gatecheck.engines import ORACLES
from gatecheck.families.lstm.record import LSTM
from gatecheck.run import outcome
from gatecheck.tools import baseline_file as bf
from gatecheck.tools import drift
from gatecheck.tools import results as res

REFERENCE = ORACLES["reference-lstm"]
BY_NAME = LSTM.mutants_by_name

CASES = [Case("reference-lstm", 2, 5, 3, 4, dtype, seed) for dtype in ("f32", "f64") for seed in (0, 1)]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """A results file of four cases: the reference (in each dtype) against float64 truth."""
    records = [res.summarize(outcome.run(c, REFERENCE)) for c in CASES]
    path = tmp_path_factory.mktemp("results") / "run.json"
    res.write(str(path), res.metadata(dict(profile="ci", candidate="gatecheck.reference.lstm:run", shard=None)), records)
    return path


def test_results_file_round_trip(run_file):
    data = res.load(str(run_file))
    assert [c["id"] for c in data["cases"]] == sorted(c.id for c in CASES)
    case = data["cases"][0]
    assert case["ok"] and set(case["quantities"]) >= {"h", "c", "dh", "dc", "dW"}
    assert len(case["quantities"]["dh"]["abs"]) == 5  # one entry per time step
    assert case["quantities"]["dh"]["steps"] == [4, 3, 2, 1, 0]  # coordinates as data, in BPTT order
    assert case["quantities"]["dW"]["gates"] == ["i", "f", "g", "o"] and case["family"] == "lstm"
    assert data["meta"]["format"] == res.FORMAT and "numpy" in data["meta"]["versions"]


def test_same_run_has_no_drift(run_file):
    data = res.load(str(run_file))
    assert drift.drift(data, data) == ([], [], [])


def test_planted_drift_is_flagged(run_file):
    baseline = res.load(str(run_file))
    current = copy.deepcopy(baseline)
    grown = current["cases"][1]
    grown["quantities"]["dU"]["ratio"] = max(baseline["cases"][1]["quantities"]["dU"]["ratio"], 0.01) * 10 + 0.05
    failed = current["cases"][2]
    failed.update(ok=False, error="first divergence: dh t=3: ...")
    failures, missing, growth = drift.drift(current, baseline, factor=4)
    assert failures == [f"{failed['id']}: fails now (first divergence: dh t=3: ...)"]
    assert missing == []
    assert len(growth) == 1 and growth[0].startswith(f"{grown['id']}: dU used")


def test_a_recorded_deviation_is_not_a_new_failure(run_file):
    """A case that fails as its oracle's recorded deviation (gatecheck/truth/deviations.py) says why itself."""
    baseline = res.load(str(run_file))
    current = copy.deepcopy(baseline)
    current["cases"][2].update(ok=False, error="first divergence: h t=0: ...", deviation="known deviation of ...")
    current["cases"][3].update(ok=False, error="first divergence: h t=0: ...")
    failures, _, _ = drift.drift(current, baseline)
    assert failures == [f"{current['cases'][3]['id']}: fails now (first divergence: h t=0: ...)"]


def test_a_real_bug_is_flagged_as_new_failure(run_file, tmp_path):
    """A mutant's run against the clean baseline: every failing case is a new failure."""
    records = [res.summarize(outcome.run(c, REFERENCE, candidate(LSTM, BY_NAME["no-recurrent-dh"]), "m")) for c in CASES]
    path = tmp_path / "mutant.json"
    res.write(str(path), res.metadata(dict(profile="ci", candidate="gatecheck.reference.lstm:run", shard=None)), records)
    lines = []
    assert drift.report_drift(str(path), str(run_file), out=lines.append) == 1
    assert "4 new failures" in lines[0]


def test_corrupt_and_mismatched_baselines_are_named(run_file, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(res.ResultsError, match="baseline .*bad.json: not valid JSON"):
        drift.report_drift(str(run_file), str(bad))
    other = json.loads(run_file.read_text())
    other["meta"]["profile"] = "nightly"
    mismatched = tmp_path / "nightly.json"
    mismatched.write_text(json.dumps(other))
    with pytest.raises(res.ResultsError, match="profile 'nightly' does not match the results' 'ci'"):
        drift.report_drift(str(run_file), str(mismatched))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"cases": []}))
    with pytest.raises(res.ResultsError, match="expected an object with 'meta' and 'cases'"):
        res.load(str(wrong))
    with pytest.raises(res.ResultsError, match="no such file"):
        res.load(str(tmp_path / "missing.json"))


def test_baseline_update_is_compact_and_explicit(run_file, tmp_path):
    path = drift.update(str(run_file), "test-env", folder=str(tmp_path))
    assert path.endswith("test-env.jsonl")
    data = bf.load(path)
    assert set(data["cases"][0]["quantities"]["dh"]) == {"ratio"}  # what drift reads, and no more
    with pytest.raises(res.ResultsError, match="--name: expected a plain file stem"):
        drift.update(str(run_file), "../escape", folder=str(tmp_path))


def test_baseline_keeps_digits_and_rounding_never_reads_as_drift(run_file, tmp_path):
    """The reference against itself has zero error; give every quantity a non-round one."""
    full = res.load(str(run_file))
    rng = np.random.default_rng(0)
    for case in full["cases"]:
        for v in case["quantities"].values():
            v.update(max_abs=float(rng.uniform(1, 10) * 10.0 ** rng.integers(-15, -5)),
                     max_rel=float(rng.uniform(1, 10) * 10.0 ** rng.integers(-15, -5)),
                     ratio=float(rng.uniform(drift.FLOOR, 1)))
    path = tmp_path / "errors.json"
    res.write(str(path), full["meta"], full["cases"])
    kept = bf.load(drift.update(str(path), "rounded", folder=str(tmp_path)))
    for after, before in zip(kept["cases"], full["cases"], strict=True):
        for q, v in after["quantities"].items():
            for k, x in v.items():  # DIGITS significant digits, nothing else lost
                assert x == float(f"{x:.{drift.DIGITS}g}") and x != before["quantities"][q][k]
                assert x == pytest.approx(before["quantities"][q][k], rel=10.0 ** (1 - drift.DIGITS), abs=0)
    assert drift.drift(full, kept) == ([], [], [])


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failed write leaves the previous file intact and no temporary file behind."""
    path = tmp_path / "r.json"
    res.write(str(path), {"format": res.FORMAT}, [])
    before = path.read_text()

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(RuntimeError):
        res.write(str(path), {"format": res.FORMAT}, [])
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_shards_merge_into_one_run(run_file, tmp_path):
    data = res.load(str(run_file))
    paths = []
    for k in range(2):
        path = tmp_path / f"shard{k}.json"
        res.write(str(path), dict(data["meta"], shard=f"{k + 1}/2"), data["cases"][k::2])
        paths.append(str(path))
    out = tmp_path / "merged.json"
    assert res.merge(paths, str(out)) == len(data["cases"])
    assert [c["id"] for c in res.load(str(out))["cases"]] == [c["id"] for c in data["cases"]]
    with pytest.raises(res.ResultsError, match="is in both"):
        res.merge([paths[0], paths[0]], str(out))


def test_a_file_with_the_old_oracle_ids_loads_under_the_ids_of_now(run_file, tmp_path):
    """A baseline written before every oracle id named its family ('reference', 'keras-cell') loads with the
    ids of now (gatecheck.engines.ALIASES), so drift compares it case by case with a run of today."""
    from gatecheck.engines import ALIASES

    now = res.load(str(run_file))["cases"]
    old = json.loads(run_file.read_text())
    back = {new: name for name, new in ALIASES.items()}
    for case in old["cases"]:
        name = back[case["oracle"]]
        case["id"] = name + case["id"][len(case["oracle"]):]
        case["oracle"] = name
    assert {c["oracle"] for c in old["cases"]} == {"reference"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    loaded = res.load(str(tmp_path / "old.json"))
    assert [(c["id"], c["oracle"]) for c in loaded["cases"]] == [(c["id"], c["oracle"]) for c in now]
    assert set(ALIASES.values()) <= set(ORACLES) and not set(ALIASES) & set(ORACLES)


def test_committed_baselines_load_and_cover_their_profile():
    """Every file in baselines/ is a valid baseline whose cases are exactly its profile's
    grid (a grid change without a baseline update fails here); a baseline of another Keras
    backend than this process's is checked on its own backend's runs (the Keras oracles'
    grid depends on the backend)."""
    import glob
    import os

    from gatecheck.engines.frameworks import keras_backend
    from gatecheck.families import FAMILIES
    from gatecheck.run.grid import grid
    from gatecheck.truth import deviations

    paths = sorted(glob.glob(os.path.join(drift.BASELINES, "*")))
    assert paths, "no committed baseline"
    assert [p for p in paths if not p.endswith(bf.SUFFIX)] == [], "a baseline of the old format: convert it"
    for path in paths:
        data = bf.load(path)
        if res.keras_backend_of(data["meta"]) != keras_backend():
            continue
        ids = {c["id"] for c in data["cases"]}
        families = data["meta"].get("families", ["lstm"])  # format-1 baselines hold the LSTM only
        assert ids == {c.id for f in families for c in grid(data["meta"]["profile"], FAMILIES[f])
                       if ORACLES[c.oracle].battery and ORACLES[c.oracle].framework != "numpy"}, path
        # every case matches, or differs only as its oracle's recorded deviation (gatecheck/truth/deviations.py)
        assert all(c["ok"] or c.get("deviation") for c in data["cases"]), path
        # and it names the deviation by a key of the table
        keys = {deviations.key(d) for d in deviations.DEVIATIONS}
        assert {c["deviation"] for c in data["cases"] if "deviation" in c} <= keys, path



def test_results_of_one_keras_backend_are_not_compared_with_another(run_file, tmp_path):
    """A results file records the run's Keras backend (KERAS_BACKEND); drift refuses a baseline of another
    backend by name, merge refuses shards of two, baseline does not silently replace one, and a file written
    before the field reads as TensorFlow (the Keras oracles' only backend then)."""
    from gatecheck.engines.frameworks import keras_backend

    data = json.loads(run_file.read_text())
    assert data["meta"]["keras_backend"] == keras_backend()
    paths = {}
    for backend in ("tensorflow", "jax"):
        paths[backend] = tmp_path / f"{backend}.json"
        paths[backend].write_text(json.dumps(dict(data, meta=dict(data["meta"], keras_backend=backend))))
    older = tmp_path / "older.json"
    older.write_text(json.dumps(dict(data, meta={k: v for k, v in data["meta"].items() if k != "keras_backend"})))
    assert res.keras_backend_of(res.load(str(older))["meta"]) == "tensorflow"
    assert drift.report_drift(str(paths["tensorflow"]), str(older), out=lambda line: None) == 0
    with pytest.raises(res.ResultsError, match=r"jax.json: its run used the Keras backend 'jax', the results' "
                                               r"'tensorflow' \(KERAS_BACKEND\).*a baseline of the 'tensorflow'"):
        drift.report_drift(str(paths["tensorflow"]), str(paths["jax"]))
    with pytest.raises(res.ResultsError, match="ran Keras on 'jax'.* on 'tensorflow'; merge the shards of one run"):
        res.merge([str(paths["tensorflow"]), str(paths["jax"])], str(tmp_path / "merged.json"))
    drift.update(str(paths["tensorflow"]), "one-backend", folder=str(tmp_path))
    with pytest.raises(res.ResultsError, match="its Keras backend 'tensorflow' would become 'jax'"):
        drift.update(str(paths["jax"]), "one-backend", folder=str(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(data, meta=dict(data["meta"], keras_backend=3))))
    with pytest.raises(res.ResultsError, match="field 'meta.keras_backend': expected the Keras backend's name"):
        res.load(str(bad))


def test_cpu_is_read_from_cpuinfo(tmp_path):
    """The CPU a run used: the model and the vector instruction sets that pick the engines' kernels."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n"
                    "processor\t: 1\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n")
    found = res.cpu(str(info))
    assert found["model"] == "Example CPU 9000" and found["simd"] == ["sse4_2", "avx", "avx2", "fma", "avx512f"]
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve\nCPU part\t: 0xd0c\n")
    assert res.cpu(str(arm))["simd"] == ["asimd", "sve"]
    missing = res.cpu(str(tmp_path / "absent"))
    assert missing["simd"] == [] and missing["model"]  # not read there: said, not invented
    assert res.host_of({}) == "not recorded"
    assert res.host_of({"cpu": found}) == "Example CPU 9000 (%d logical CPUs; sse4_2, avx, avx2, fma, avx512f)" % found["cores"]


def test_a_host_change_is_named_and_guards_the_baseline(run_file, tmp_path):
    """Results of another CPU are compared (the code may be at fault), but drift names the host change
    first; merge keeps the CPU of every shard; baseline does not silently replace one of another CPU."""
    data = json.loads(run_file.read_text())
    assert data["meta"]["cpu"] == res.cpu()  # the results record the machine they ran on
    one = dict(model="Example CPU 9000", cores=2, simd=["avx2"])
    two = dict(model="Example CPU 9500", cores=64, simd=["avx2", "avx512f"])
    paths = {}
    for name, cpu in (("one", one), ("two", two)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(dict(data, meta=dict(data["meta"], cpu=cpu))))
    said = []
    assert drift.report_drift(str(paths["two"]), str(paths["one"]), out=said.append) == 0
    assert said[0] == ("CPU changed since the baseline: Example CPU 9000 (2 logical CPUs; avx2) -> "
                       "Example CPU 9500 (64 logical CPUs; avx2, avx512f)")
    said = []
    drift.report_drift(str(paths["one"]), str(paths["one"]), out=said.append)
    assert not any("changed" in line for line in said)
    older = tmp_path / "older.json"
    older.write_text(json.dumps(dict(data, meta={k: v for k, v in data["meta"].items() if k != "cpu"})))
    said = []
    drift.report_drift(str(paths["one"]), str(older), out=said.append)
    assert said[0] == "CPU changed since the baseline: not recorded -> Example CPU 9000 (2 logical CPUs; avx2)"
    drift.update(str(older), "host", folder=str(tmp_path))
    drift.update(str(paths["one"]), "host", folder=str(tmp_path))  # a baseline without a CPU: nothing to guard
    with pytest.raises(res.ResultsError, match=r"its CPU Example CPU 9000 \(2 logical CPUs; avx2\) would become "
                                               r"Example CPU 9500"):
        drift.update(str(paths["two"]), "host", folder=str(tmp_path))
    drift.update(str(paths["two"]), "host", folder=str(tmp_path), force=True)
    assert bf.load(str(tmp_path / "host.jsonl"))["meta"]["cpu"] == two
    halves = []
    for name, cpu, cases in (("a", one, data["cases"][:2]), ("b", two, data["cases"][2:])):
        halves.append(tmp_path / f"half-{name}.json")
        halves[-1].write_text(json.dumps(dict(meta=dict(data["meta"], cpu=cpu), cases=cases)))
    res.merge([str(p) for p in halves], str(tmp_path / "merged.json"))
    assert res.load(str(tmp_path / "merged.json"))["meta"]["cpu"] == [one, two]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(data, meta=dict(data["meta"], cpu="fast"))))
    with pytest.raises(res.ResultsError, match="field 'meta.cpu': expected an object"):
        res.load(str(bad))


def test_a_merge_keeps_each_framework_version_some_shard_ran(run_file, tmp_path):
    """A shard run where an engine is not installed ran none of its cases: the merged run states the version of
    the shard that ran it; two installed versions of one package are refused, naming both shards."""
    data = res.load(str(run_file))
    versions = dict(data["meta"].get("versions", {}), openvino="not installed", mlx="0.32.4")
    paths = []
    for k, table in enumerate((versions, dict(versions, openvino="2026.4.1"))):
        path = tmp_path / f"shard{k}.json"
        res.write(str(path), dict(data["meta"], shard=f"{k + 1}/2", versions=table), data["cases"][k::2])
        paths.append(str(path))
    out = tmp_path / "merged.json"
    res.merge(paths, str(out))
    merged = res.load(str(out))["meta"]["versions"]
    assert merged["openvino"] == "2026.4.1" and merged["mlx"] == "0.32.4"
    res.write(paths[1], dict(data["meta"], shard="2/2", versions=dict(versions, mlx="0.31.0")), data["cases"][1::2])
    with pytest.raises(res.ResultsError, match="ran mlx 0.31.0, .* ran mlx 0.32.4"):
        res.merge(paths, str(out))
