"""Reports from a results file: Markdown (fit for a CI job summary) and HTML, with plots.

    python -m gatecheck report RESULTS --out DIR [--baseline baselines/NAME.jsonl]

writes DIR/report.md, DIR/report.html (self-contained), DIR/summary.md (report.md without
the image links, for $GITHUB_STEP_SUMMARY) and the plots as PNG files in DIR:
- summary: oracle x quantity x dtype, the worst fraction of the allowance used;
- drift against the baseline, when one is given;
- how error travels back through time: the error of dh_t and dc_t against the time step,
  for the longest case of each cell oracle and dtype;
- per-gate dW error; the largest fraction used against T.
Plots need matplotlib (the ``report`` extra).
"""

import base64
import html
import io
import os
from collections import defaultdict

from gatecheck.families import FAMILIES
from gatecheck.model.options import every_quantity, suffix
from gatecheck.tools import drift as drift_mod
from gatecheck.tools import results as res


def _order():
    """Every family's quantities, with those its options add, in their tables' order (the summary
    table's columns)."""

    return list(dict.fromkeys(q for f in FAMILIES.values() for q in every_quantity(f)))


def _where(case):
    """A case's oracle and its layer options, as rows and plot series keep them apart:
    ``keras-lstm-layer`` or ``keras-lstm-layer -bi-L2``."""

    options = res.options_of(case)
    return case["oracle"] + (f" {suffix(options)}" if options else "")


def summary_table(data):
    """{(oracle and options, dtype): {quantity: worst ratio}} and the quantities seen, in order."""
    cells = defaultdict(dict)
    for case in data["cases"]:
        for q, v in case["quantities"].items():
            key = (_where(case), case["dtype"])
            cells[key][q] = max(cells[key].get(q, 0.0), v["ratio"])
    quantities = [q for q in _order() if any(q in row for row in cells.values())]
    return cells, quantities


MAX_LISTED = 50  # failing cases listed by name: a job summary must stay small (GitHub caps it at 1 MiB)


def markdown(data, drift_lines, plots):
    cells, quantities = summary_table(data)
    meta = data["meta"]
    failing = [c for c in data["cases"] if not c["ok"]]
    lines = [
        "# gatecheck report",
        "",
        f"{len(data['cases'])} cases, {len(failing)} failing; profile {meta.get('profile')}, candidate "
        f"{meta.get('candidate')}; " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items())
        + f" (Keras backend {res.keras_backend_of(meta)}); {meta.get('platform')}, CPU {res.host_of(meta)}; {meta.get('time')}",
        "",
        "## Worst fraction of the allowance used (oracle and layer options x quantity x dtype; > 1 fails)",
        "",
        "| oracle | dtype | " + " | ".join(quantities) + " |",
        "|---|---|" + "---|" * len(quantities),
    ]
    for (oracle, dtype), row in sorted(cells.items()):
        lines.append(f"| {oracle} | {dtype} | " + " | ".join(
            f"{row[q]:.3f}" if q in row else "—" for q in quantities) + " |")
    if failing:
        lines += ["", "## Failing cases", ""] + [f"- `{c['id']}`: {c.get('error')}" for c in failing[:MAX_LISTED]]
        if len(failing) > MAX_LISTED:
            lines.append(f"- ... and {len(failing) - MAX_LISTED} more (all are in the results file)")
    if len(drift_lines) > MAX_LISTED + 1:
        drift_lines = drift_lines[: MAX_LISTED + 1] + [f"  ... and {len(drift_lines) - MAX_LISTED - 1} more"]
    lines += ["", "## Drift", ""] + ([f"    {line}" for line in drift_lines] if drift_lines else
                                     ["(no baseline given)"])
    if plots:
        lines += ["", "## Plots", ""] + [f"![{title}]({name})" for name, title, _ in plots]
    return "\n".join(lines) + "\n"


def _inline(text):
    """Markdown `code` spans as <code>, everything else escaped."""
    parts = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if k % 2 else html.escape(p) for k, p in enumerate(parts))


_BLOCKS = (("|", "table"), ("- ", "ul"), ("    ", "pre"))  # line prefix -> the HTML block it opens


def html_page(md_text, plots):
    """A self-contained page: the Markdown's headings, paragraphs, tables, lists and
    indented text as HTML, plots embedded."""
    body = []
    block = None  # the open <table>, <ul> or <pre>, if any
    for line in md_text.splitlines():
        kind = next((k for prefix, k in _BLOCKS if line.startswith(prefix)), None)
        if block and kind != block:
            body.append(f"</{block}>")
            block = None
        if kind and not block:
            body.append(f"<{kind}>")
            block = kind
        if kind == "table":
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if body[-1] == "<table>" else "td"  # the first row is the header
            body.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        elif kind == "ul":
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif kind == "pre":
            body.append(html.escape(line[4:]) + "\n")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip() and not line.startswith("!["):  # images: embedded below
            body.append(f"<p>{_inline(line)}</p>")
    if block:
        body.append(f"</{block}>")
    for _, title, png in plots:
        body.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,"
                    f"{base64.b64encode(png).decode()}'><figcaption>{html.escape(title)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>gatecheck report</title><style>{style}</style>" \
           f"</head><body>{''.join(body)}</body></html>\n"


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plots(data):
    """[(file name, title, PNG bytes)]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    # 1. error of dh_t and dc_t against t, for the longest std case of each cell oracle x dtype
    longest = {}
    for case in data["cases"]:
        if "steps" in case["quantities"].get("dh", {}) and case["regime"] in ("std", "longmem"):
            key = (case["oracle"], case["dtype"], case["regime"])
            if key not in longest or case["T"] > longest[key]["T"]:
                longest[key] = case
    if longest:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
        for ax, q in zip(axes, ("dh", "dc"), strict=True):
            for (oracle, dtype, regime), case in sorted(longest.items()):
                v = case["quantities"].get(q)
                if not v:
                    continue
                ts = v["steps"]
                # exact agreement (0) leaves a gap rather than a spike to an arbitrary floor
                ax.semilogy(ts, [a if a > 0 else float("nan") for a in v["abs"]],
                            label=f"{oracle} {dtype} {regime} T={case['T']}", lw=0.8)
            ax.set_xlabel("time step t (BPTT runs from t = T-1 down to 0)")
            ax.set_ylabel(f"max |{q}_t - oracle|")
            ax.set_title(f"error of {'δh_t' if q == 'dh' else 'δC_t'} along time")
        axes[1].legend(fontsize=6)
        out.append(("error_vs_step.png", "error of δh_t and δC_t against the time step", _png(fig)))
        plt.close(fig)
    # 2. per-gate dW error: worst fraction used per gate, per oracle x dtype
    per_gate = defaultdict(dict)
    gates = []  # in the order the results name them
    for case in data["cases"]:
        v = case["quantities"].get("dW")
        if v and "gates" in v:
            row = per_gate[(_where(case), case["dtype"])]
            for gate, r in zip(v["gates"], v["ratios"], strict=True):
                row[gate] = max(row.get(gate, 0.0), r)
                if gate not in gates:
                    gates.append(gate)
    if per_gate:
        fig, ax = plt.subplots(figsize=(9, 3.5))
        keys = sorted(per_gate)
        width = 0.8 / len(keys)
        for n, key in enumerate(keys):
            ax.bar([k + n * width for k in range(len(gates))], [per_gate[key].get(g, 0.0) for g in gates], width,
                   label=f"{key[0]} {key[1]}")
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(gates))], [f"gate {g}" for g in gates])
        ax.set_ylabel("worst fraction of the allowance")
        ax.set_title("dW error per gate")
        ax.legend(fontsize=6, ncol=2)
        out.append(("dW_per_gate.png", "per-gate dW error (worst fraction of the allowance used)", _png(fig)))
        plt.close(fig)
    # 3. worst fraction used against T
    fig, ax = plt.subplots(figsize=(9, 3.5))
    series = defaultdict(list)
    for case in data["cases"]:
        worst = max((v["ratio"] for v in case["quantities"].values()), default=0.0)
        series[(_where(case), case["dtype"])].append((case["T"], worst))
    shown = 0
    for key, pts in sorted(series.items()):
        pts = [p for p in pts if p[1] > 0]  # exact agreement has no place on a log axis
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=8, label=f"{key[0]} {key[1]}")
        shown += len(pts)
    if shown:
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:  # a log axis of nothing cannot be drawn
        ax.text(0.5, 0.5, "every case agrees exactly: no error to plot", transform=ax.transAxes, ha="center")
    ax.axhline(1.0, color="red", lw=0.8)
    ax.set_xlabel("T")
    ax.set_ylabel("worst fraction of the allowance")
    ax.set_title("error against sequence length (red: the allowance)")
    ax.legend(fontsize=6, ncol=2)
    out.append(("error_vs_T.png", "error against T", _png(fig)))
    plt.close(fig)
    return out


def _out_folder(out_dir):
    """The report's folder, made if missing; a ResultsError naming --out if it cannot be, or
    takes no file."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise res.ResultsError(f"--out {out_dir}: is a file; expected a folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise res.ResultsError(f"--out {out_dir}: cannot create the folder: {exc.strerror or exc}") from None
    res.check_writable(os.path.join(out_dir, "report.md"), "--out")


def build(results_path, out_dir, baseline_path=None):
    """Write the report's files into ``out_dir``, each atomically; everything is read and
    drawn before the first is written. Returns the paths of the text files."""
    data = res.load(results_path)
    drift_lines = []
    if baseline_path:
        drift_mod.report_drift(results_path, baseline_path, out=drift_lines.append, current=data)
    _out_folder(out_dir)
    try:
        figs = plots(data)
    except ImportError as exc:
        raise res.ResultsError(f"plots need matplotlib ({exc}): pip install 'gatecheck[report]'") from None
    md = markdown(data, drift_lines, figs)
    # A CI job summary cannot show files beside it: the same text, pointing at the plots.
    summary = markdown(data, drift_lines, []) + "\nPlots and the HTML page: " + ", ".join(
        [name for name, _, _ in figs] + ["report.html"]) + " (in the report folder or artifact).\n"
    for name, _, png in figs:
        res.atomic_write(os.path.join(out_dir, name), lambda f, png=png: f.write(png), "--out", binary=True)
    written = []
    for name, text in (("report.md", md), ("summary.md", summary), ("report.html", html_page(md, figs))):
        written.append(res.atomic_write(os.path.join(out_dir, name), lambda f, text=text: f.write(text), "--out"))
    return written
