"""The generated docs (gatecheck.tools.docs): current in the checkout, and the machinery that keeps them so."""

import os
import shutil

import pytest

from gatecheck.core import exit_codes as ec
from gatecheck.engines.frameworks import OPTIONAL, required
from gatecheck.frontends import cli
from gatecheck.tools import docs

ROOT = docs.ROOT


def test_every_generated_page_and_region_is_current():
    """`python -m gatecheck docs` was run after the last change to a registry, a record, the grid, the
    baseline, the command line or the shipped examples' output (this runs it and compares). The pages
    also read the installed engines (their inventories) and Python's help formatting: in an environment
    other than the one they were generated in, the comparison means nothing and is skipped with the
    difference, except where every engine is required (CI, whose pins are the docs')."""
    recorded, now = docs.recorded_environment(ROOT), docs.environment()
    if recorded != now:
        differ = {k: (recorded.get(k) if recorded else None, now.get(k)) for k in sorted(set(now) | set(recorded or {}))
                  if (recorded or {}).get(k) != now.get(k)}
        why = (f"the docs were generated in another environment ({docs.ENVIRONMENT}; generated, here): {differ}")
        if required() == set(OPTIONAL):
            pytest.fail(f"{why}; CI requires every engine at the pins the docs are generated with: run "
                        "`python -m gatecheck docs` in CI's environment and commit what it writes")
        pytest.skip(why)
    found = docs.stale(ROOT, cli.parser())
    assert not found, f"out of date: {found}; run `python -m gatecheck docs` and commit what it writes"


def test_the_readme_and_the_guides_show_generated_output():
    readme = docs._read(os.path.join(ROOT, "README.md"))
    assert len(readme.splitlines()) <= 200, "the README is the first run's page: at most 200 lines"
    shown = {m.group(2) for p in docs.with_regions(ROOT) for m in docs.REGION.finditer(docs._read(p))}
    assert {"check-pass", "check-fail", "exit-codes", "statuses"} <= shown


def _stubbed(monkeypatch, tmp_path, regions):
    """A checkout of docs/ and the baseline in ``tmp_path``, with command output stubbed (no subprocess)."""
    shutil.copytree(os.path.join(ROOT, "baselines"), tmp_path / "baselines")
    (tmp_path / "docs").mkdir()
    monkeypatch.setattr(docs, "regions", lambda root: regions)
    monkeypatch.setattr(docs, "pictures", lambda: {"p.png": b"png"})
    monkeypatch.setattr(docs, "PICTURES", (("p.png", docs.PASSING, "a picture"),))
    return str(tmp_path)


def test_write_then_check_finds_nothing_and_an_edit_is_found(monkeypatch, tmp_path):
    root = _stubbed(monkeypatch, tmp_path, {"demo": "```\nPASS: all 860 cases match (worst 0.15 of the allowance)\n```\n"})
    (tmp_path / "README.md").write_text("# x\n\n<!-- generated: demo -->\nold\n<!-- /generated -->\n\nend\n")
    parser = cli.parser()
    assert docs.stale(root, parser)  # nothing written yet: every page is missing
    written = docs.write(root, parser, out=lambda line: None)
    assert "README.md" in written and os.path.join("docs", "images", "p.png") in written
    assert docs.stale(root, parser) == []
    text = (tmp_path / "README.md").read_text()
    assert "PASS: all 860 cases match" in text and "old" not in text and text.endswith("\nend\n")
    # floats follow the machine's arithmetic and are masked; counts are not
    (tmp_path / "README.md").write_text(text.replace("0.15", "0.16"))
    assert docs.stale(root, parser) == []
    (tmp_path / "README.md").write_text(text.replace("860", "861"))
    assert docs.stale(root, parser) == ["README.md"]
    page = tmp_path / "docs" / "reference" / "exit-codes.md"
    page.write_text(page.read_text().replace("success", "succes"))
    assert os.path.join("docs", "reference", "exit-codes.md") in docs.stale(root, parser)


def test_an_unknown_region_is_an_error_naming_it():
    with pytest.raises(docs.DocsError, match=r"x.md: unknown generated region 'nope'; expected one of \['a'\]"):
        docs.fill("<!-- generated: nope -->\n-\n<!-- /generated -->", {"a": "A"}, "x.md")


def test_masked_hides_floats_not_counts_or_names():
    assert docs.masked("172 of 172 cases; worst 0.12 (1.07e+05x allowed) reference-lstm-B1-T1-D1-H1-f32-s0") == \
        "172 of 172 cases; worst # (# allowed) reference-lstm-B1-T1-D1-H1-f32-s0"


def test_pages_are_the_registries():
    """A spot check that the pages say what the registries say (the rest is the same code)."""
    pages = docs.pages(ROOT, cli.parser())
    assert all(text.startswith(docs.NOTICE) for rel, text in pages.items() if rel.endswith(".md"))
    assert docs.ENVIRONMENT in pages
    assert ec.markdown_table() in pages[os.path.join(docs.REFERENCE, "exit-codes.md")]
    from gatecheck.families import FAMILIES

    families = pages[os.path.join(docs.REFERENCE, "families.md")]
    for f in FAMILIES.values():
        assert f"## `{f.name}`" in families and f.contract_doc in families


def test_anchors_are_mkdocs_ids():
    assert docs._anchor("ort-lstm:microsoft/onnxruntime#22557") == "ort-lstmmicrosoftonnxruntime22557"
    assert docs._anchor("`lstm` and GRU") == "lstm-and-gru"


def test_a_folder_without_docs_is_a_clear_error(tmp_path):
    with pytest.raises(docs.DocsError, match=r"--root: .* has no docs/ folder"):
        docs.stale(str(tmp_path), cli.parser())
    assert cli.main(["docs", "--check", "--root", str(tmp_path)]) == ec.USAGE


def test_the_inventory_page_renders_what_the_engines_say_and_which_are_missing(monkeypatch):
    """Per engine its counts at the top, per API each introspected parameter with its kind and by/why (an option
    with its case-id suffix; a parameter without an entry shown so); an engine not installed is said to be."""
    from gatecheck.engines import inventory as inv
    from gatecheck.engines.frameworks import Unavailable

    def missing():
        raise Unavailable("flax is not installed (here)")

    toy = inv.Inventory("toy", "torch", "toylib", (inv.Api("toy.Layer", (
        inv.exercised("units", ("H",), "the case's H"), inv.exercised("use_bias", ("nobias",), "False under nobias"),
        inv.declined("seed", "dropout's"), inv.open_("gone", "a parameter this version lacks"))),),
        introspect=lambda: ((3, 1), {"toy.Layer": ("units", "use_bias", "seed", "new")}))
    gone = inv.Inventory("flax", "flax", "flax", (), introspect=missing)
    monkeypatch.setattr(docs, "INVENTORIES", (toy, gone))
    page = docs.inventory_page()
    assert "| [toy](#toy) | toylib 3.1 | 4 | 2 | 0 | 1 | 0 |" in page
    assert "| [flax](#flax) | not installed |" in page
    assert "Not installed where these docs were generated (flax is not installed (here))" in page
    assert "| `use_bias` | exercised | by `nobias` (`-nobias`): False under nobias |" in page
    assert "| `units` | exercised | by H (the grid's hidden width): the case's H |" in page
    assert "| `new` | **unclassified** | no entry |" in page
    assert "`gone`" not in page


def test_the_skeleton_takes_the_call_of_every_combination_and_returns_its_keys():
    """The families page's skeleton, called as a case of every combination of its family's options is called (its
    inputs by keyword and its keywords), returns exactly the keys the contract under the combination requires;
    it declares every option the family defines."""
    from gatecheck.core.cases import Case
    from gatecheck.families import FAMILIES
    from gatecheck.model import options as opts

    for f in FAMILIES.values():
        if not opts.every_set(f):
            continue
        space = {}
        exec(docs.skeleton(f), space)  # the generated text itself is what is checked
        run = space["run"]
        assert run.options == set(opts.defined(f))
        every = opts.combinations(f, opts.implemented(run))
        assert set(opts.every_set(f)) <= set(every)
        for s in every:
            r = opts.under(f, s)
            inputs = r.make_inputs(Case("-", 2, 3, 2, 2, "f64", 0, "std", s))
            assert set(run(**{k: inputs[k] for k in r.inputs}, **r.keywords)) == set(r.contract), (f.name, s)
