"""The Python API (gatecheck.frontends.api): ``gatecheck.check(fn, ...)`` gives the verdict, exit code and
report of ``python -m gatecheck check`` for the same candidate and arguments; a callable that is
not importable by name (a script's ``__main__``, a lambda, a closure) is sent by value to the
process it runs in, with its attributes (gatecheck.run.byvalue); every bad argument is a
ValueError that names it."""

import html
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import gatecheck
from gatecheck.core import candidate as cand
from gatecheck.core.exit_codes import EXIT_CODES, FAIL, FORWARD_ONLY, PARTIAL, PASS
from gatecheck.families.lstm.record import LSTM
from gatecheck.frontends import api
from gatecheck.frontends.cli import main
from gatecheck.reference import lstm
from gatecheck.run.byvalue import ByValue
from gatecheck.run.byvalue import spec as spec_of
from gatecheck.run.grid import grid
from gatecheck.run.isolation import Isolated

REPO = Path(__file__).resolve().parents[2]

# (candidate, --oracles): a pass, a bug the diagnosis names, forward only (3), and an oracle whose
# framework may be missing here (torch: then a partial pass, 4; with it, a pass)
SAME_AS_THE_COMMAND = [
    ("gatecheck.examples.course:run", "reference-lstm"),
    ("gatecheck.examples.course_buggy:run", "reference-lstm"),
    ("tests.tools.test_check:forward_only", "reference-lstm"),
    ("gatecheck.examples.course:run", "reference-lstm,torch-lstm-cell"),
]


def _steady(text, oracles):
    """A report as two runs give it: with a framework oracle, the worst ratio's last digits may move
    between runs (its kernels need not round alike twice); NumPy's reference gives the same digits."""
    return text if oracles == "reference-lstm" else re.sub(r"worst \S+ of the allowance", "worst ... of the allowance", text)


@pytest.mark.parametrize("spec,oracles", SAME_AS_THE_COMMAND, ids=[f"{s}-{o}" for s, o in SAME_AS_THE_COMMAND])
def test_the_api_gives_the_command_verdict_exit_code_and_report(spec, oracles, capsys):
    code = main(["check", spec, "--family", "lstm", "--oracles", oracles])
    printed = capsys.readouterr().out.rstrip("\n")
    result = gatecheck.check(spec, family="lstm", oracles=oracles.split(","))
    assert result.exit_code == code
    assert _steady(result.text, oracles) == _steady(printed, oracles)
    assert _steady(result.verdict, oracles) == _steady(printed.splitlines()[0], oracles)


def test_an_importable_function_travels_by_name_and_reports_as_the_command():
    from gatecheck.examples import course

    assert spec_of(course.run) == "gatecheck.examples.course:run"
    assert spec_of(lstm.run) == "gatecheck.reference.lstm:run"
    assert not isinstance(spec_of(lstm.run), ByValue)


def test_a_failure_carries_its_divergence_and_diagnosis():
    result = gatecheck.check("gatecheck.examples.course_buggy:run", oracles=["reference-lstm"], dtypes="f64")
    assert result.exit_code == FAIL and not result.passed
    first = next(r for r in result.records if r["status"] == "mismatch")
    assert result.failure is first and result.divergence == first["message"]
    assert "first divergence: " in result.divergence
    assert "matches the known bug 'tanh-derivative-of-g-wrong'" in result.diagnosis
    assert result.diagnosis.splitlines()[1].strip() in result.text  # the diagnosis the report shows


def test_the_table_counts_each_oracle_and_dtype():
    result = gatecheck.check("gatecheck.examples.course:run", oracles=["reference-lstm"])
    cases = grid("ci", LSTM, ["reference-lstm"])
    for dtype in ("f32", "f64"):
        counts = result.table["reference-lstm"][dtype]
        plain = sum(1 for c in cases if c.dtype == dtype and not c.options)
        assert counts == {"match": plain, "unimplemented": sum(1 for c in cases if c.dtype == dtype) - plain}
    assert result.passed and result.failure is None and result.diagnosis is None
    assert repr(result) == str(result) == result.text
    assert result.meaning == EXIT_CODES[result.exit_code]


def make(scale):
    """A closure: the reference with dW scaled (1: right; anything else: a bug)."""

    def run(**inputs):
        out = dict(lstm.run(**inputs))
        out["dW"] = out["dW"] * scale
        return out

    return run


def test_a_lambda_and_a_closure_are_sent_by_value_and_judged():
    same = lambda **inputs: lstm.run(**inputs)  # noqa: E731
    right = gatecheck.check(same, oracles="reference-lstm", dtypes="f64")
    assert right.exit_code == PASS and right.candidate == f"tests.frontends.test_api:{same.__qualname__}"
    assert gatecheck.check(make(1.0), oracles="reference-lstm", dtypes="f64").exit_code == PASS
    wrong = gatecheck.check(make(1.5), oracles="reference-lstm", dtypes="f64")
    assert wrong.exit_code == FAIL and wrong.candidate == "tests.frontends.test_api:make.<locals>.run"
    assert "first divergence: dW gate i" in wrong.divergence


def test_a_closure_reaches_the_processes_of_n_workers():
    result = gatecheck.check(make(1.5), oracles="reference-lstm", dtypes="f32", n=2)
    cases = [c for c in grid("ci", LSTM, ["reference-lstm"]) if c.dtype == "f32" and not c.options]
    assert result.exit_code == FAIL and sum(r["status"] == "mismatch" for r in result.records) == len(cases)


SCRIPT = textwrap.dedent('''
    import json
    import gatecheck
    from gatecheck.reference import lstm, rnn

    def run(**inputs):
        out = dict(lstm.run(**inputs))
        del out["dc"]
        return out

    run.cannot_observe = {"dc": "not returned"}  # without it, a candidate error: no "dc"

    def rnn_nobias(x, h0, W, U, gh):
        return rnn.run_nobias(x, h0, W, U, gh)

    rnn_nobias.options = {"nobias"}  # without it, no case under nobias would run

    def broken(**inputs):
        return dict(lstm.run(**inputs), dh0=0 * inputs["h0"])

    if __name__ == "__main__":
        found = {}
        for name, fn, kw in (("run", run, dict(oracles="reference-lstm")),
                             ("rnn_nobias", rnn_nobias, dict(family="rnn", oracles="reference-rnn", options="nobias")),
                             ("broken", broken, dict(oracles="reference-lstm"))):
            result = gatecheck.check(fn, dtypes="f64", **kw)
            found[name] = [result.exit_code, result.candidate, result.verdict]
        print(json.dumps(found))
''')


@pytest.mark.parametrize("how", [["my_script.py"], ["-m", "my_script"]], ids=["path", "module"])
def test_functions_defined_in_a_scripts_main_are_checked(how, tmp_path):
    """Run as a file or as a module (then ``__main__`` has a spec, and is still not importable by name)."""
    (tmp_path / "my_script.py").write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, *how], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["run"][:2] == [PASS, "__main__:run"], found
    assert found["rnn_nobias"][:2] == [PASS, "__main__:rnn_nobias"], found
    assert found["broken"][:2] == [FAIL, "__main__:broken"], found


def test_an_unpicklable_callable_is_a_clear_error_naming_the_argument():
    lock = threading.Lock()
    with pytest.raises(ValueError, match=r"^fn: .* cannot be sent to the process it runs in: cloudpickle cannot "
                                         r"pickle it \(TypeError: .*lock.*\); define it at the top level"):
        gatecheck.check(lambda **inputs: (lock, lstm.run(**inputs))[1], oracles="reference-lstm")
    with pytest.raises(ValueError, match=r"^fn: expected a callable or a 'module:callable' string, got a int"):
        gatecheck.check(3)


def test_a_payload_that_does_not_load_in_its_process_is_a_candidate_error():
    with pytest.raises(cand.CandidateError, match="'__main__:run': it does not unpickle in the process that runs it"):
        Isolated(ByValue("__main__:run", b"not a pickle"), LSTM, what="fn")
    with pytest.raises(cand.CandidateError, match="it unpickled as a int, not a callable"):
        Isolated(ByValue("__main__:run", pickle.dumps(3)), LSTM, what="fn")


def test_a_by_value_spec_keeps_its_payload_across_pickling():
    spec = spec_of(lambda **inputs: lstm.run(**inputs))
    back = pickle.loads(pickle.dumps(spec))
    assert isinstance(back, ByValue) and back == spec and back.payload == spec.payload


BAD_ARGUMENTS = [
    (dict(family="lstm2"), r"^family: expected one of \[.*'lstm'.*\], got 'lstm2'"),
    (dict(profile="weekly"), r"^profile: expected one of \['ci', 'nightly'\], got 'weekly'"),
    (dict(oracles=["torch-gru-cell"]), r"^oracles: unknown for the lstm family: \['torch-gru-cell'\]; expected names"),
    (dict(oracles=3), r"^oracles: expected names as a list or a comma string, got 3"),
    (dict(dtypes="f16"), r"^dtypes: expected f32 or f64 \(comma separated\), got 'f16'"),
    (dict(dtypes=[]), r"^dtypes: expected f32 or f64 \(comma separated\), got ''"),
    (dict(options="nobais"), r"^options: 'nobais': option: expected names from \[.*'nobias'.*\]"),
    (dict(options="nobias+rev"), r"^options: no case has the set nobias\+rev; expected sets from: none, nobias, rev, "),
    (dict(options="nobias"), r"^options: the candidate declares none of the sets selected \(nobias\); it declares none"),
    (dict(n=0), r"^n: expected a positive integer or 'auto', got 0"),
    (dict(timeout=-1), r"^timeout: expected a number of seconds > 0, got -1"),
    (dict(fn="no_such_module:run"), r"^fn 'no_such_module:run': module 'no_such_module' does not import"),
    (dict(fn="not a spec"), r"^fn: expected a callable or a 'module:callable' string, got 'not a spec'"),
]


@pytest.mark.parametrize("kw,says", BAD_ARGUMENTS, ids=[f"{next(iter(kw))}-{i}" for i, (kw, _) in
                                                        enumerate(BAD_ARGUMENTS)])
def test_a_bad_argument_is_a_value_error_that_names_it(kw, says):
    kw = dict(dict(fn="gatecheck.examples.course:run", oracles="reference-lstm"), **kw)
    with pytest.raises(ValueError, match=says):
        gatecheck.check(kw.pop("fn"), **kw)


def test_dtypes_and_options_select_cases_of_the_grid():
    cases = grid("ci", LSTM, ["reference-lstm"])
    result = gatecheck.check("gatecheck.examples.course:run", oracles="reference-lstm", dtypes=["f64"], options=["none"])
    assert [r["id"] for r in result.records] == [c.id for c in cases if c.dtype == "f64" and not c.options]
    assert result.exit_code == PASS


def forward_only(**inputs):
    out = lstm.run(**inputs)
    return {k: out[k] for k in ("h", "c")}


forward_only.cannot_observe = {k: "<b>no backward</b> & more" for k in lstm.CONTRACT_KEYS if k not in ("h", "c")}


def _verdict_colour(result):
    """The colour of the verdict, the page's first paragraph."""
    found = re.search(r'<p style="color:(#[0-9a-f]{6});font-weight:bold">(.*?)</p>', result._repr_html_())
    assert found and found.group(2) == html.escape(result.verdict), result._repr_html_()[:500]
    return found.group(1)


def test_the_html_shows_the_verdict_table_and_coverage_escaped():
    result = gatecheck.check(forward_only, oracles="reference-lstm", dtypes="f64")
    assert result.exit_code == FORWARD_ONLY
    page = result._repr_html_()
    assert "<b>" not in page and html.escape("<b>no backward</b> & more") in page
    assert _verdict_colour(result) != _verdict_colour(gatecheck.check(make(1.0), oracles="reference-lstm", dtypes="f64"))
    assert "<td>reference-lstm</td>" in page and "<th>f64</th>" in page and "<th>f32</th>" not in page
    assert f"compared: {', '.join(result.compared)}" in page and result.compared == ["c", "h"]


def test_the_html_of_a_failure_shows_the_divergence_and_diagnosis_in_pre():
    result = gatecheck.check(make(1.5), oracles="reference-lstm", dtypes="f64")
    page = result._repr_html_()
    assert f"<pre>{html.escape(result.divergence)}</pre>" in page
    assert f"<pre>{html.escape(result.diagnosis)}</pre>" in page
    assert _verdict_colour(result) != _verdict_colour(gatecheck.check(make(1.0), oracles="reference-lstm", dtypes="f64"))


def test_every_text_in_the_html_is_escaped():
    """Names, cells, the report, the divergence and the diagnosis: none of them is markup."""
    odd = "<i>&"
    records = [dict(id=f"{odd}-f64", oracle=odd, dtype="f64", status="mismatch", compared=["h"], message=f"{odd} diverges",
                    case=())]
    result = api.Result(odd, "lstm", odd, [odd], FAIL, records, f"FAIL {odd}\n{odd}", {f"{odd}-f64": odd},
                        ["h"], {"dc": odd})
    page = result._repr_html_()
    assert "<i>" not in page and page.count(html.escape(odd)) >= 8, page


def test_importing_gatecheck_imports_no_framework_and_check_is_the_api():
    code = ("import sys, gatecheck; light = sorted(m for m in sys.modules if m.startswith('gatecheck') or "
            "m.split('.')[0] in ('numpy', 'torch', 'tensorflow', 'keras', 'jax', 'onnx', 'cloudpickle')); "
            "from gatecheck import check; from gatecheck.frontends import api; "
            "print(light, check is api.check, gatecheck.check is api.check)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.split() == ["['gatecheck']", "True", "True"], done.stderr[-2000:]
    assert gatecheck.Result is api.Result



def test_a_declared_combination_no_case_ran_is_a_partial_pass_named_in_the_result():
    """The API says what check says: a candidate that declares bisum and L2 (and so their stack, which no grid has)
    gets exit 4, the combination in ``not_run`` with why, and its line in the text and the HTML."""
    from tests import layered

    def rnn_each(**kw):
        return layered.rnn(**kw)

    rnn_each.options = {"bisum", "L2"}
    result = gatecheck.check(rnn_each, family="rnn", oracles="reference-rnn", dtypes="f64")
    assert result.exit_code == PARTIAL and not result.passed
    assert result.not_run == {"bisum+L2": "no-grid"}
    line = "not run: declared combination of options bisum+L2: in no grid of gatecheck"
    assert line in result.text and html.escape(line) in result._repr_html_()
