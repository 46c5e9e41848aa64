"""Reports from a results file: Markdown, HTML and plots (matplotlib, the 'report' extra)."""

from pathlib import Path

import pytest

from gatecheck.core.cases import Case
from gatecheck.core.mutants import candidate
from gatecheck.engines import ORACLES
from gatecheck.families.lstm.record import LSTM
from gatecheck.run import outcome
from gatecheck.tools import report
from gatecheck.tools import results as res

REFERENCE = ORACLES["reference-lstm"]
BY_NAME = LSTM.mutants_by_name


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install -e '.[report]'")
    folder = tmp_path_factory.mktemp("report")
    cases = [Case("reference-lstm", 2, T, 3, 4, dtype, 0) for T in (3, 9) for dtype in ("f32", "f64")]
    meta = res.metadata(dict(profile="ci", candidate="gatecheck.reference.lstm:run", shard=None))
    res.write(str(folder / "base.json"), meta, [res.summarize(outcome.run(c, REFERENCE)) for c in cases])
    bug = candidate(LSTM, BY_NAME["dc-without-forget"])
    records = [res.summarize(outcome.run(c, REFERENCE, bug, "m")) for c in cases[:2]]
    records += [res.summarize(outcome.run(c, REFERENCE)) for c in cases[2:]]
    res.write(str(folder / "run.json"), meta, records)
    md, summary, page = report.build(str(folder / "run.json"), str(folder / "out"), str(folder / "base.json"))
    assert Path(md).read_text().startswith(Path(summary).read_text().split("\nPlots and the HTML page")[0])
    return folder / "out", Path(md).read_text(), Path(page).read_text()


def test_markdown_has_the_summary_failures_and_drift(files):
    _, md, _ = files
    assert "| oracle | dtype | c | h | dh | dc | dx | dh0 | dc0 | dW | dU | db |" in md
    assert "| reference-lstm | f64 |" in md and "| reference-lstm | f32 |" in md
    assert "## Failing cases" in md and "`reference-lstm-B2-T3-D3-H4-f32-s0`: first divergence: dc t=1" in md
    assert "2 new failures" in md


def test_html_embeds_every_plot_and_the_tables(files):
    folder, _, page = files
    assert page.count("<img") == 3 and page.count("data:image/png;base64,") == 3
    assert "<table>" in page and "<th>oracle</th>" in page
    for name in ("error_vs_step.png", "dW_per_gate.png", "error_vs_T.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_job_summary_has_no_image_links(files):
    folder, _, _ = files
    summary = (folder / "summary.md").read_text()
    assert "![" not in summary and "2 new failures" in summary
    assert "error_vs_step.png, dW_per_gate.png, error_vs_T.png, report.html" in summary


def test_html_shows_failures_as_a_list_and_drift_as_text(files):
    _, _, page = files
    assert "<li><code>reference-lstm-B2-T3-D3-H4-f32-s0</code>: first divergence: dc t=1" in page
    assert "`" not in page.split("<figure>")[0]  # no raw Markdown left in the text
    assert "<pre>" in page and "2 new failures" in page.split("<pre>")[1].split("</pre>")[0]


def test_long_failure_and_drift_lists_are_capped():
    """A candidate that fails everywhere must not make a job summary of thousands of lines."""
    cases = [dict(id=f"case-{k}", ok=False, error="boom", quantities={}) for k in range(report.MAX_LISTED + 7)]
    data = dict(meta=dict(profile="nightly"), cases=cases)
    md = report.markdown(data, [f"line {k}" for k in range(200)], [])
    assert md.count("`: boom") == report.MAX_LISTED and "- ... and 7 more (all are in the results file)" in md
    assert "line 51" not in md and "... and 149 more" in md


def test_option_cases_have_rows_of_their_own_with_the_quantities_they_add():
    """A bidirectional stack's cases are a row of their own (oracle and options), and the quantities
    the options add (the reverse direction's, the merged output y) are columns, not dropped."""
    from gatecheck.model.options import under

    options = ("bi", "L2")
    f = under(LSTM, options)
    cases = [Case("reference-lstm", 2, 3, 3, 4, "f64", 0), Case("reference-lstm", 2, 3, 3, 4, "f64", 0, "std", options)]
    data = {"cases": [res.summarize(outcome.run(c, REFERENCE, under(LSTM, c.options).run)) for c in cases]}
    cells, quantities = report.summary_table(data)
    assert set(cells) == {("reference-lstm", "f64"), ("reference-lstm -bi-L2", "f64")}
    assert {"y", "h_r", "dW_r", "y_l1", "dh_r_l1"} <= set(quantities) <= set(report._order())
    assert set(cells[("reference-lstm -bi-L2", "f64")]) == {q for q in f.quantities if f.quantities[q].source == q}
