"""gatecheck's pytest plugin: options, markers, the case grid, framework gating, the summary.

Installed with gatecheck, it is loaded by pytest from the ``pytest11`` entry point (named
``gatecheck``), so that in any folder, with no clone of gatecheck,

    pytest --gatecheck-candidate my_lstm:run --gatecheck-family lstm

runs the family's battery with the candidate and ends with the battery's own summary. The
battery is one test in the package, ``gatecheck/frontends/pytest_battery.py``. Where a candidate is
given and the paths pytest was given hold no battery test, this plugin adds that module to the
collection (``pytest_collection_modifyitems``, before ``-k`` and ``-m`` select): with a
candidate only the battery runs, and every other test collected is deselected, which the
summary says. Without a candidate the battery runs where it is collected: from a test module
that imports it (gatecheck's own ``tests/battery/test_battery.py``), or ``pytest --pyargs
gatecheck.frontends.pytest_battery`` (the families' references against every oracle).

The plugin is inert where gatecheck is not in use: it adds its options and nothing else (no
marker, header line, summary, collection change or xdist scheduler, and no import beyond this
module). It is in use where a ``--gatecheck-*`` option is given, where the ini option
``gatecheck = true`` opts in (gatecheck's own pyproject.toml), or once the battery is collected.

Everything derives from the registries: families (gatecheck.families), oracles and frameworks
(gatecheck.engines). A case's outcome is decided by gatecheck.run.outcome; this plugin shows it
(``show``: the pytest mapping) and counts it in the summary, in the words of
``python -m gatecheck check``.
"""

import os

import pytest

PROFILE_ENV = "GATECHECK_PROFILE"
# option (without --gatecheck-) -> metavar; every one is ``config.getoption("gatecheck_" + name)``
OPTIONS = ("profile", "family", "candidate", "shard", "results", "candidate_timeout")


def pytest_addoption(parser):
    group = parser.getgroup("gatecheck", "gatecheck: the battery of a recurrent layer (python -m gatecheck --help)")
    group.addoption(
        "--gatecheck-profile", dest="gatecheck_profile", default=None, metavar="NAME",
        help=f"size of the case grid: 'ci' (small shapes, every oracle and quantity) or 'nightly' (many seeds, "
        f"larger shapes); gatecheck.core.cases.PROFILES. Default: ${PROFILE_ENV} or 'ci'.",
    )
    group.addoption(
        "--gatecheck-shard", dest="gatecheck_shard", default=None, metavar="I/N",
        help="run shard I of N of the battery's cases (deterministic; the N shards together are the whole grid)",
    )
    group.addoption(
        "--gatecheck-results", dest="gatecheck_results", default=None, metavar="PATH",
        help="write the battery's measurements (per case: its status, and per quantity its errors) to PATH as "
        "JSON (gatecheck.tools.results)",
    )
    group.addoption(
        "--gatecheck-family", dest="gatecheck_family", default=None, metavar="NAME",
        help="the battery of one model family (default: every family; with --gatecheck-candidate: lstm); "
        "python -m gatecheck check --help lists them",
    )
    group.addoption(
        "--gatecheck-candidate", dest="gatecheck_candidate", default=None, metavar="MODULE:CALLABLE",
        help="run the family's battery with this implementation in place of the reference (importable from "
        "the current directory, following the family's contract: docs/guide/contracts.md); only the battery runs",
    )
    group.addoption(
        "--gatecheck-cache-dir", dest="gatecheck_cache_dir", default=None, metavar="DIR",
        help="with --gatecheck-candidate: the cache of the oracles' outputs (default: the platform's cache folder, "
        "as python -m gatecheck check); the battery without a candidate computes every engine afresh",
    )
    group.addoption(
        "--gatecheck-no-cache", dest="gatecheck_no_cache", action="store_true", default=False,
        help="with --gatecheck-candidate: compute every oracle's output afresh, and store none",
    )
    group.addoption(
        "--gatecheck-candidate-timeout", dest="gatecheck_candidate_timeout", default=None, metavar="SECONDS",
        help="the longest one call of the candidate may take (it runs in a process of its own); default "
        "that of python -m gatecheck check",
    )
    parser.addini("gatecheck", type="bool", default=False,
                  help="use gatecheck's pytest plugin (markers, header, summary) without a --gatecheck-* option")


def option(config, name):
    """A ``--gatecheck-*`` option's value (``name`` without the prefix, as in OPTIONS)."""
    return config.getoption("gatecheck_" + name)


def in_use(config):
    """Whether this session uses gatecheck: an option given, the ini opt-in, or the battery collected."""
    return configured(config) or config.getini("gatecheck") or any(option(config, o) is not None for o in OPTIONS)


def configured(config):
    return hasattr(config, "gatecheck_profile")


def pytest_configure(config):
    if in_use(config):
        configure(config)


def configure(config):
    """Read and check the options (a usage error names the option and lists the valid values),
    register the markers, and load the candidate (in a process of its own); once per session."""
    if configured(config):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow
    from gatecheck.core import candidate as cand
    from gatecheck.core.cases import PROFILES, check_profile
    from gatecheck.engines import frameworks as fw
    from gatecheck.families import FAMILIES
    from gatecheck.model import options
    from gatecheck.run.grid import parse_shard

    for name, framework in fw.FRAMEWORKS.items():
        if framework.marker:
            config.addinivalue_line("markers", f"{framework.marker}: needs {name} (oracles of that framework)")
    profile = option(config, "profile") or os.environ.get(PROFILE_ENV) or "ci"
    try:
        check_profile(profile)
    except ValueError:
        raise pytest.UsageError(
            f"--gatecheck-profile / ${PROFILE_ENV}: unknown profile {profile!r}; expected one of {sorted(PROFILES)}"
        ) from None
    try:
        shard_ = parse_shard(option(config, "shard")) if option(config, "shard") else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc).replace("--shard", "--gatecheck-shard")) from None
    if option(config, "results") and not hasattr(config, "workerinput"):  # fail now, not after the run
        from gatecheck.tools import results

        try:
            results.check_writable(option(config, "results"), "--gatecheck-results")
        except results.ResultsError as exc:
            raise pytest.UsageError(str(exc)) from None
    try:
        required = fw.required()
        fw.threads()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    spec = option(config, "candidate")
    family = option(config, "family")
    if family is not None and family not in FAMILIES:
        raise pytest.UsageError(f"--gatecheck-family: unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    if not spec and (option(config, "cache_dir") or option(config, "no_cache")):
        raise pytest.UsageError("--gatecheck-cache-dir / --gatecheck-no-cache: expected with --gatecheck-candidate "
                                "(the battery without a candidate computes every engine afresh, and reads no cache)")
    from gatecheck.run import cache

    # The cache of oracle outputs: with a candidate, on for the session (its xdist workers included); without one,
    # off (this run is the engines' check). Put back as it was when the session ends (pytest_unconfigure).
    config.gatecheck_cache = cache.using(False if not spec or option(config, "no_cache")
                                         else option(config, "cache_dir"))
    config.gatecheck_cache.__enter__()
    config.gatecheck_required = required
    config.gatecheck_shard = shard_
    config.gatecheck_families = [family or "lstm"] if spec else [family] if family else list(FAMILIES)
    config.gatecheck_candidate_spec = spec
    config.gatecheck_candidate_error = None  # a candidate that does not load fails every battery test with it
    config.gatecheck_candidate, config.gatecheck_not_compared = None, {}
    config.gatecheck_deselected = 0
    config.gatecheck_profile = profile  # (last: the session is configured from here on)
    config.pluginmanager.register(Collected(), "gatecheck-collected")
    if shard_ and not battery_cases(config):  # an empty shard would run nothing, and pass
        from gatecheck.run.grid import group

        i, n = shard_
        config.gatecheck_shard = None
        whole = battery_cases(config)
        raise pytest.UsageError(
            f"--gatecheck-shard {i}/{n}: shard {i} holds no case: the grid has {len(whole)} battery cases in "
            f"{len({group(c) for c in whole})} groups (one oracle, D, H and dtype each, kept in one shard); "
            "use at most that many shards")
    if spec:
        from gatecheck.run.isolation import DEFAULT_TIMEOUT, Isolated, timeout_value

        try:
            timeout = timeout_value(option(config, "candidate_timeout") or DEFAULT_TIMEOUT)
        except ValueError as exc:
            raise pytest.UsageError(str(exc).replace("--timeout", "--gatecheck-candidate-timeout")) from None
        record = FAMILIES[config.gatecheck_families[0]]
        try:  # in a process of its own (gatecheck.run.isolation), started here and in each xdist worker
            config.gatecheck_candidate = Isolated(spec, record, timeout, what="--gatecheck-candidate")
            config.gatecheck_not_compared = options.declared(config.gatecheck_candidate, record)
            config.gatecheck_candidate_options = options.implemented(config.gatecheck_candidate)
        except cand.CandidateError as exc:
            config.gatecheck_candidate_error = str(exc)
        except ValueError as exc:  # a bad ``options`` attribute
            config.gatecheck_candidate_error = f"{spec}: {exc}"


def battery_cases(config, unimplemented=False):
    """The battery's cases: every selected family's grid (the reference's own oracles only
    where a candidate is given: the reference against itself proves nothing), less the cases
    whose layer options a loaded candidate does not implement (``unimplemented=True``: those)."""
    from gatecheck.engines import ORACLES
    from gatecheck.families import FAMILIES
    from gatecheck.model import options
    from gatecheck.run.grid import grid, shard

    cases = []
    for name in config.gatecheck_families:
        for case in grid(config.gatecheck_profile, FAMILIES[name]):
            if config.gatecheck_candidate_spec or ORACLES[case.oracle].framework != "numpy":
                cases.append(case)
    offered = getattr(config, "gatecheck_candidate_options", None)  # None: every option (the references)
    if offered is not None:
        cases = [c for c in cases if options.implements(offered, c.options) != unimplemented]
    elif unimplemented:
        cases = []
    if config.gatecheck_shard:
        cases = shard(cases, *config.gatecheck_shard)
    return cases


def parametrize(metafunc):
    """The battery's cases as the parameter ``battery_case`` (called by the battery module's own
    ``pytest_generate_tests``), each marked with its framework's marker."""
    from gatecheck.engines import ORACLES
    from gatecheck.engines import frameworks as fw

    configure(metafunc.config)
    params = []
    for c in battery_cases(metafunc.config):
        marker = fw.FRAMEWORKS[ORACLES[c.oracle].framework].marker
        params.append(pytest.param(c, id=c.id, marks=[getattr(pytest.mark, marker)] if marker else []))
    metafunc.parametrize("battery_case", params)


def _candidate_line(config):
    spec = config.gatecheck_candidate_spec
    families = ", ".join(config.gatecheck_families)
    if not spec:
        return f"candidate: each family's reference ({families})"
    return f"candidate {spec} as the {families} family"


def pytest_report_header(config):
    if not configured(config):
        return None
    from gatecheck.engines import frameworks as fw

    versions = fw.installed_versions()
    required = sorted(config.gatecheck_required) or "none"
    threads = ", ".join(
        f"{k}={os.environ.get(k, 'unset')}"
        for k in (fw.THREADS_ENV, "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")
    )
    lines = [
        "gatecheck: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"gatecheck: threads per framework {fw.threads()} ({threads}); keras backend {fw.keras_backend()} "
        f"({fw.KERAS_BACKEND_ENV}, fixed for the whole run)",
        f"gatecheck: profile {config.gatecheck_profile} ({len(battery_cases(config))} battery cases"
        + (f", shard {config.gatecheck_shard[0]}/{config.gatecheck_shard[1]}" if config.gatecheck_shard else "")
        + f"); {_candidate_line(config)}; required frameworks ({fw.REQUIRE_ENV}): {required}",
    ]
    return lines + [f"gatecheck: {line}" for line in _not_compared(config)]


def _not_compared(config):
    from gatecheck.tools.check import unimplemented_lines

    lines = [f"not compared: {key} (the candidate cannot observe it: {why})"
             for key, why in config.gatecheck_not_compared.items()]
    skipped = {}
    for case in battery_cases(config, unimplemented=True):
        skipped[case.options] = skipped.get(case.options, 0) + 1
    lines += unimplemented_lines(skipped)
    if config.gatecheck_candidate_error:
        lines.append(f"CANDIDATE ERROR: {config.gatecheck_candidate_error}")
    return lines


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under xdist (``-n``), the battery cases of one oracle, D, H and dtype (one traced Keras
    graph, ``gatecheck.run.grid.group``) are one unit of work for one worker, so the graph is
    traced once rather than once per worker; every other test is a unit of its own. Units are
    dealt out largest first to the worker that runs out of work (xdist's LoadScopeScheduling,
    whose scope is here the case's group). Where gatecheck is not in use, xdist's own."""
    if not configured(config):
        return None
    from xdist.scheduler import LoadScopeScheduling

    scopes = group_scopes(config)

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return xdist_scope(scopes, nodeid)

    return ByGroup(config, log)


def group_scopes(config):
    """Battery case id -> its group's name (``gatecheck.run.grid.group_name``)."""
    from gatecheck.run.grid import group_name

    return {c.id: group_name(c) for c in battery_cases(config)}


def xdist_scope(scopes, nodeid):
    """A test's unit of work: its case's group (``scopes``: case id -> group name) if its
    parameter is a battery case, else the test itself."""
    param_id = nodeid[nodeid.rfind("[") + 1:-1] if nodeid.endswith("]") else None
    return scopes.get(param_id, nodeid)


def _is_battery(item):
    return "battery_case" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """With --gatecheck-candidate, only the battery runs: the packaged battery is added where the
    paths given hold none (before -k and -m select), and every other test is deselected, which
    the terminal summary counts."""
    if not configured(config) or not config.gatecheck_candidate_spec:
        return
    if not any(_is_battery(item) for item in items):
        from importlib.util import find_spec
        from pathlib import Path

        path = Path(find_spec("gatecheck.frontends.pytest_battery").origin)  # (found, not imported: it imports this)
        # outside the rootdir (an installed gatecheck) its test ids read as in gatecheck's own tree
        where = {} if path.is_relative_to(config.rootpath) else {"nodeid": "gatecheck/frontends/pytest_battery.py"}
        items.extend(session.genitems(pytest.Module.from_parent(session, path=path, **where)))
    dropped = [item for item in items if not _is_battery(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if _is_battery(item)]
    config.gatecheck_deselected = len(dropped)


def require_framework(config, framework):
    """Import a framework for a test: skip with the reason, or fail where required."""
    from gatecheck.engines import frameworks as fw

    try:
        return fw.FRAMEWORKS[framework].importer()
    except fw.Unavailable as exc:
        required = config.gatecheck_required if configured(config) else fw.required()
        if framework in required:
            pytest.fail(f"{framework} is required ({fw.REQUIRE_ENV}) but unavailable: {exc}", pytrace=False)
        pytest.skip(f"{framework} unavailable: {exc}")


def show(outcome, oracle, config, family):
    """A battery case's outcome as pytest's: match passes; a failure (mismatch, candidate error, not
    reproduced, beyond) fails with its message; as recorded is an expected failure with the deviation;
    not judged and not run (unimplemented, declined) skip with the reason, never a pass; unavailable
    skips, or fails where the framework is required."""
    __tracebackhide__ = True
    from gatecheck.engines import frameworks as fw
    from gatecheck.run import outcome as oc

    case, status = outcome.case, outcome.status
    if status == oc.MATCH:
        return
    if status == oc.AS_RECORDED:
        pytest.xfail(outcome.reason)
    if status == oc.NOT_JUDGED:
        pytest.skip(f"{case.id}: {oc.NOT_JUDGED}: {outcome.reason}")
    if status == oc.UNAVAILABLE:
        if oracle.framework in config.gatecheck_required:
            pytest.fail(f"{oracle.framework} is required ({fw.REQUIRE_ENV}) but unavailable: {outcome.reason}",
                        pytrace=False)
        pytest.skip(f"{oracle.framework} unavailable: {outcome.reason}")
    if status in oc.NOT_RUN:
        pytest.skip(f"{case.id}: {status}: {outcome.reason}")
    spec = config.gatecheck_candidate_spec
    if status == oc.MISMATCH and spec:
        # A candidate's failure: the case and its first divergence (hundreds of cases may fail; the summary
        # diagnoses the first one).
        from gatecheck.tools.check import rerun_command

        lines = outcome.reason.splitlines()[:2]
        pytest.fail("\n".join(lines + [f"whole comparison: {rerun_command(spec, family, case)}"]), pytrace=False)
    if status == oc.CANDIDATE_ERROR:
        pytest.fail(f"{case.id}: {outcome.reason}", pytrace=False)
    pytest.fail(outcome.reason, pytrace=False)  # the reference failing: a framework changed; every detail counts


class Collected:
    """The battery's records of one session (they travel from xdist workers as
    user_properties), kept by a plugin of that session's own."""

    def __init__(self):
        self.records = []

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "gatecheck":
                self.records.append(value)


def collected(config):
    """The records of the session's battery cases so far (``results.summarize`` of each outcome)."""
    return config.pluginmanager.get_plugin("gatecheck-collected").records


def counts(records):
    """'3 match, 1 mismatch': each status present, in the order of gatecheck.run.outcome.STATUSES."""
    from gatecheck.run.outcome import STATUSES

    n = {s: sum(1 for r in records if r["status"] == s) for s in STATUSES}
    return ", ".join(f"{n[s]} {s}" for s in STATUSES if n[s]) or "none ran"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A line of its own for the battery's cases (shown with -q too): how many of each status
    (the words of python -m gatecheck check), what was not compared, and the diagnosis of the
    first mismatching candidate case."""
    if not configured(config):
        return
    from gatecheck.run import outcome as oc

    records = collected(config)
    if not records and not config.gatecheck_candidate_spec:
        return
    write = terminalreporter.write_line
    terminalreporter.section("gatecheck", sep="-")
    write(f"gatecheck: {_candidate_line(config)}: {len(records)} battery cases: {counts(records)}")
    for status, meaning in oc.STATUSES.items():
        if status not in (oc.MATCH, oc.MISMATCH) and any(r["status"] == status for r in records):
            write(f"gatecheck: {status}: {meaning}")
    for line in _not_compared(config):
        write(f"gatecheck: {line}")
    warned = {}
    for r in records:
        for w in r.get("warnings", ()):
            warned[w] = warned.get(w, 0) + 1
    for w, n in list(warned.items())[:5]:
        write(f"gatecheck: the candidate warned (in {n} case{'' if n == 1 else 's'}): {w}")
    if config.gatecheck_candidate is not None:  # a pass must not imply the declared sets that did not run
        from gatecheck.families import get
        from gatecheck.tools import check

        family = get(config.gatecheck_families[0])
        for line in check.unexercised_lines(check.unexercised(config.gatecheck_candidate, family, records,
                                                              config.gatecheck_profile),
                                            family, config.gatecheck_profile, config.gatecheck_candidate_spec):
            write(f"gatecheck: {line}")
    if config.gatecheck_deselected:
        write(f"gatecheck: {config.gatecheck_deselected} tests that do not use the candidate were deselected")
    if config.gatecheck_candidate_spec:
        write(f"gatecheck: the same battery as a short report: python -m gatecheck check "
              f"{config.gatecheck_candidate_spec} --family {config.gatecheck_families[0]}")
    # The first mismatch (a candidate error says all there is in its own failure).
    first = next((r for r in sorted(records, key=lambda r: r["id"]) if r["status"] == oc.MISMATCH), None)
    if first and config.gatecheck_candidate is not None:
        from gatecheck.core.cases import Case
        from gatecheck.families import get
        from gatecheck.tools.diagnose import diagnose

        case = Case(first["oracle"], first["B"], first["T"], first["D"], first["H"], first["dtype"], first["seed"],
                    first["regime"], tuple(first.get("options", ())))
        text = diagnose(config.gatecheck_candidate, case, get(first["family"]), config.gatecheck_candidate_spec)[1]
        write(f"gatecheck: first failing case {first['id']}; its diagnosis:")
        for line in text.splitlines():
            write("  " + line)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    """Write --gatecheck-results last, after the terminal summary: a failed write is then the last
    line of the output, and the exit status is pytest's usage error (4). The file holds the cases
    that ran (a case not run measured nothing)."""
    outcome = yield
    config = session.config
    path = option(config, "results")
    if not path or not configured(config) or hasattr(config, "workerinput"):
        return outcome
    import sys

    from gatecheck.run.outcome import NOT_RUN
    from gatecheck.tools import results

    shard_ = config.gatecheck_shard
    meta = results.metadata(dict(profile=config.gatecheck_profile,
                                 candidate=config.gatecheck_candidate_spec or results.REFERENCE_LABEL,
                                 families=config.gatecheck_families,
                                 shard=f"{shard_[0]}/{shard_[1]}" if shard_ else None))
    try:
        results.write(path, meta, [r for r in collected(config) if r["status"] not in NOT_RUN],
                      "--gatecheck-results")
    except results.ResultsError as exc:
        message = f"gatecheck: ERROR: {exc}; the run's results are not saved"
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    return outcome


def pytest_unconfigure(config):
    """The cache of oracle outputs as it was before the session (``configure`` turned it on or off)."""
    used = getattr(config, "gatecheck_cache", None)
    if used is not None:
        config.gatecheck_cache = None
        used.__exit__(None, None, None)
