"""pytest wiring for gatecheck: options, markers, the case grid, framework gating.

Everything here derives from the registries: families (gatecheck.families), oracles and
frameworks (oracles). With ``--candidate``, only the battery runs (the tests that do not
call the candidate are deselected, and the summary says so).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

import pytest  # noqa: E402

from gatecheck.core import candidate as cand  # noqa: E402
from gatecheck.model import options  # noqa: E402
from gatecheck.core.cases import PROFILES, check_profile
from gatecheck.run.grid import grid, group_name, parse_shard, shard  # noqa: E402
from gatecheck.families import FAMILIES  # noqa: E402
from gatecheck.engines import ORACLES  # noqa: E402
from gatecheck.engines import frameworks as fw  # noqa: E402

pytest_plugins = ["pytester"]

PROFILE_ENV = "GATECHECK_PROFILE"


def pytest_addoption(parser):
    group = parser.getgroup("gatecheck")
    group.addoption(
        "--profile",
        default=None,
        help="size of the case grid: " + "; ".join(f"'{k}': {v}" for k, v in PROFILES.items())
        + f". Default: ${PROFILE_ENV} or 'ci'.",
    )
    group.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="run shard I of N of the battery's cases (deterministic; the N shards together are the whole grid)",
    )
    group.addoption(
        "--results",
        default=None,
        metavar="PATH",
        help="write the battery's measurements (per case and quantity) to PATH as JSON (gatecheck.tools.results)",
    )
    group.addoption(
        "--family",
        default=None,
        metavar="NAME",
        help=f"the battery of one model family, one of {sorted(FAMILIES)} (default: every family; "
        "with --candidate: lstm)",
    )
    group.addoption(
        "--candidate",
        default=None,
        metavar="MODULE:CALLABLE",
        help="run the family's battery with this implementation in place of the reference (importable from "
        "the current directory, following the family's contract: README, 'Contracts'); only the battery runs",
    )
    group.addoption(
        "--candidate-timeout",
        default=None,
        metavar="SECONDS",
        help="the longest one call of the candidate may take (it runs in a process of its own); default "
        "that of python -m gatecheck check",
    )


def pytest_configure(config):
    for name, framework in fw.FRAMEWORKS.items():
        if framework.marker:
            config.addinivalue_line("markers", f"{framework.marker}: needs {name} (oracles of that framework)")
    config.pluginmanager.register(Collected(), "gatecheck-collected")
    profile = config.getoption("--profile") or os.environ.get(PROFILE_ENV) or "ci"
    try:
        check_profile(profile)
    except ValueError:
        raise pytest.UsageError(
            f"--profile / ${PROFILE_ENV}: unknown profile {profile!r}; expected one of {sorted(PROFILES)}"
        ) from None
    config.gatecheck_profile = profile
    try:
        config.gatecheck_shard = parse_shard(config.getoption("--shard")) if config.getoption("--shard") else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("--results") and not hasattr(config, "workerinput"):  # fail now, not after the run
        from gatecheck.tools import results

        try:
            results.check_writable(config.getoption("--results"), "--results")
        except results.ResultsError as exc:
            raise pytest.UsageError(str(exc)) from None
    try:
        config.gatecheck_required = fw.required()
        fw.threads()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    spec = config.getoption("--candidate")
    family = config.getoption("--family")
    if family is not None and family not in FAMILIES:
        raise pytest.UsageError(f"--family: unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    config.gatecheck_families = [family or "lstm"] if spec else [family] if family else list(FAMILIES)
    config.gatecheck_candidate_spec = spec
    if config.gatecheck_shard and not battery_cases(config):  # an empty shard would run nothing, and pass
        from gatecheck.run.grid import group

        i, n = config.gatecheck_shard
        config.gatecheck_shard = None
        whole = battery_cases(config)
        raise pytest.UsageError(
            f"--shard {i}/{n}: shard {i} holds no case: the grid has {len(whole)} battery cases in "
            f"{len({group(c) for c in whole})} groups (one oracle, D, H and dtype each, kept in one shard); "
            "use at most that many shards")
    # A candidate that does not load fails every battery test with the reason.
    config.gatecheck_candidate_error = None
    config.gatecheck_candidate, config.gatecheck_not_compared = None, {}
    if spec:
        from gatecheck.run.isolation import DEFAULT_TIMEOUT, Isolated, timeout_value

        try:
            timeout = timeout_value(config.getoption("--candidate-timeout") or DEFAULT_TIMEOUT)
        except ValueError as exc:
            raise pytest.UsageError(str(exc).replace("--timeout", "--candidate-timeout")) from None
        family = FAMILIES[config.gatecheck_families[0]]
        try:  # in a process of its own (gatecheck.run.isolation), started here and in each xdist worker
            config.gatecheck_candidate = Isolated(spec, family, timeout)
            config.gatecheck_not_compared = options.declared(config.gatecheck_candidate, family)
            config.gatecheck_candidate_options = options.implemented(config.gatecheck_candidate)
        except cand.CandidateError as exc:
            config.gatecheck_candidate_error = str(exc)
        except ValueError as exc:  # a bad ``options`` attribute
            config.gatecheck_candidate_error = f"{spec}: {exc}"


def battery_cases(config, unimplemented=False):
    """The battery's cases: every selected family's grid (the reference's own oracles only
    where a candidate is given: the reference against itself proves nothing), less the cases
    whose layer options a loaded candidate does not implement (``unimplemented=True``: those)."""
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


def _candidate_line(config):
    spec = config.gatecheck_candidate_spec
    families = ", ".join(config.gatecheck_families)
    if not spec:
        return f"candidate: each family's reference ({families})"
    return f"candidate {spec} as the {families} family"


def pytest_report_header(config):
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
    lines = [f"not compared: {key} (the candidate cannot observe it: {why})"
             for key, why in config.gatecheck_not_compared.items()]
    skipped = {}
    for case in battery_cases(config, unimplemented=True):
        skipped[case.options] = skipped.get(case.options, 0) + 1
    from gatecheck.tools.check import unimplemented_reason

    lines += [f"not run: {n} cases with option {options.label(opts)}: {unimplemented_reason(opts)}"
              for opts, n in skipped.items()]
    if config.gatecheck_candidate_error:
        lines.append(f"CANDIDATE ERROR: {config.gatecheck_candidate_error}")
    return lines


def pytest_generate_tests(metafunc):
    if "battery_case" in metafunc.fixturenames:
        params = []
        for c in battery_cases(metafunc.config):
            marker = fw.FRAMEWORKS[ORACLES[c.oracle].framework].marker
            params.append(pytest.param(c, id=c.id, marks=[getattr(pytest.mark, marker)] if marker else []))
        metafunc.parametrize("battery_case", params)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under xdist (``-n``), the battery cases of one oracle, D, H and dtype (one traced Keras
    graph, ``gatecheck.core.cases.group``) are one unit of work for one worker, so the graph is
    traced once rather than once per worker; every other test is a unit of its own. Units are
    dealt out largest first to the worker that runs out of work (xdist's LoadScopeScheduling,
    whose scope is here the case's group)."""
    from xdist.scheduler import LoadScopeScheduling

    scopes = group_scopes(config)

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return xdist_scope(scopes, nodeid)

    return ByGroup(config, log)


def group_scopes(config):
    """Battery case id -> its group's name (``gatecheck.core.cases.group_name``)."""
    return {c.id: group_name(c) for c in battery_cases(config)}


def xdist_scope(scopes, nodeid):
    """A test's unit of work: its case's group (``scopes``: case id -> group name) if its
    parameter is a battery case, else the test itself."""
    param_id = nodeid[nodeid.rfind("[") + 1:-1] if nodeid.endswith("]") else None
    return scopes.get(param_id, nodeid)


def pytest_collection_modifyitems(session, config, items):
    """With --candidate, only the tests that call it run; the others are deselected, and
    the terminal summary counts them."""
    if not config.gatecheck_candidate_spec:
        return
    keep = [item for item in items if "battery_case" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if "battery_case" not in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    config.gatecheck_deselected = len(dropped)


def require_framework(config, framework):
    """Import a framework for a test: skip with the reason, or fail where required."""
    try:
        return fw.FRAMEWORKS[framework].importer()
    except fw.Unavailable as exc:
        if framework in config.gatecheck_required:
            pytest.fail(f"{framework} is required ({fw.REQUIRE_ENV}) but unavailable: {exc}", pytrace=False)
        pytest.skip(f"{framework} unavailable: {exc}")


def precise_dtype(oracle, options=()):
    """The most precise dtype an oracle runs a set of options in: "f64", or "f32" where it declines float64
    (the Keras oracles on JAX and PyTorch: gatecheck.engines.keras.backends). A test of a mechanism that
    shows in either dtype (a layout, a flip, a gross bug) takes it."""
    return "f64" if oracle.offers(options, "f64") else "f32"


def skip_where_deviating(case):
    """Skip a test of an oracle's exact agreement on a case where the oracle has a known deviation
    (gatecheck.truth.deviations: on this backend or version it differs there), with the entry as the reason."""
    from gatecheck.truth import deviations

    found = deviations.for_case(case)
    if found:
        pytest.skip(f"{case.id}: {deviations.describe(found)}")


@pytest.fixture
def oracle(battery_case, request):
    o = ORACLES[battery_case.oracle]
    require_framework(request.config, o.framework)
    return o


@pytest.fixture
def candidate(request):
    """(callable or None for the family's reference, name) of the implementation under test;
    fails the test if it did not load."""
    if request.config.gatecheck_candidate_error:
        pytest.fail(request.config.gatecheck_candidate_error, pytrace=False)
    return request.config.gatecheck_candidate, request.config.gatecheck_candidate_spec or "reference"


class Collected(list):
    """The battery's records of one session (they travel from xdist workers as
    user_properties), kept by a plugin of that session's own."""

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == "gatecheck":
                self.append(value)


def collected(config):
    return config.pluginmanager.get_plugin("gatecheck-collected")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """A line of its own for the battery's cases (shown with -q too), what was not compared,
    and the diagnosis of the first failing candidate case."""
    records = collected(config)
    if not records and not config.gatecheck_candidate_spec:
        return
    write = terminalreporter.write_line
    passed = sum(r["ok"] for r in records)
    errors = sum(1 for r in records if not r["ok"] and not r["quantities"])
    known = sum(1 for r in records if not r["ok"] and r["quantities"] and r.get("deviation"))
    failed = len(records) - passed - errors - known
    terminalreporter.section("gatecheck", sep="-")
    write(f"gatecheck: {_candidate_line(config)}: {len(records)} battery cases: {passed} matched, "
          f"{failed} differ, {errors} candidate errors"
          + (f", {known} differ only as a known deviation of the oracle (gatecheck/truth/deviations.py)" if known else ""))
    for line in _not_compared(config):
        write(f"gatecheck: {line}")
    warned = {}
    for r in records:
        for w in r.get("warnings", ()):
            warned[w] = warned.get(w, 0) + 1
    for w, n in list(warned.items())[:5]:
        write(f"gatecheck: the candidate warned (in {n} case{'' if n == 1 else 's'}): {w}")
    if getattr(config, "gatecheck_deselected", 0):
        write(f"gatecheck: {config.gatecheck_deselected} tests that do not use the candidate were deselected")
    if config.gatecheck_candidate_spec:
        write(f"gatecheck: the same battery as a short report: python -m gatecheck check "
              f"{config.gatecheck_candidate_spec} --family {config.gatecheck_families[0]}")
    # The first mismatch (a candidate error says all there is in its own failure).
    first = next((r for r in sorted(records, key=lambda r: r["id"]) if not r["ok"] and r["quantities"]
                  and not r.get("deviation")), None)
    if first and config.gatecheck_candidate is not None:
        from gatecheck.core.cases import Case
        from gatecheck.tools.diagnose import diagnose
        from gatecheck.families import get

        case = Case(first["oracle"], first["B"], first["T"], first["D"], first["H"], first["dtype"], first["seed"],
                    first["regime"], tuple(first.get("options", ())))
        text = diagnose(config.gatecheck_candidate, case, get(first["family"]), config.gatecheck_candidate_spec)[1]
        write(f"gatecheck: first failing case {first['id']}; its diagnosis:")
        for line in text.splitlines():
            write("  " + line)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    """Write --results last, after the terminal summary: a failed write is then the last
    line of the output, and the exit status is pytest's usage error (4)."""
    outcome = yield
    config = session.config
    path = config.getoption("--results")
    if not path or hasattr(config, "workerinput"):
        return outcome
    import sys

    from gatecheck.tools import results

    shard_ = config.gatecheck_shard
    meta = results.metadata(dict(profile=config.gatecheck_profile,
                                 candidate=config.gatecheck_candidate_spec or results.REFERENCE_LABEL,
                                 families=config.gatecheck_families,
                                 shard=f"{shard_[0]}/{shard_[1]}" if shard_ else None))
    try:
        results.write(path, meta, collected(config), "--results")
    except results.ResultsError as exc:
        message = f"gatecheck: ERROR: {exc}; the run's results are not saved"
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        else:
            print(message, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    return outcome
