"""pytest wiring for gatecheck: options, markers, the case grid, framework gating."""

import os

import pytest

from gatecheck import candidate as cand
from gatecheck.cases import PROFILES, grid, parse_shard, shard
from oracles import ORACLES
from oracles import _frameworks as fw

pytest_plugins = ["pytester"]

PROFILE_ENV = "GATECHECK_PROFILE"


def pytest_addoption(parser):
    group = parser.getgroup("gatecheck")
    group.addoption(
        "--profile",
        default=None,
        help=(
            "size of the case grid: "
            + "; ".join(f"'{k}': {v['description']}" for k, v in PROFILES.items())
            + f". Default: ${PROFILE_ENV} or 'ci'."
        ),
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
        help="write the battery's measurements (per case and quantity) to PATH as JSON (gatecheck.results)",
    )
    group.addoption(
        "--candidate",
        default=None,
        metavar="MODULE:CALLABLE",
        help=(
            "run the battery with this LSTM in place of the reference "
            f"(default {cand.REFERENCE_SPEC}); the module must be importable from the "
            "current directory and follow the contract of reference.lstm.run"
        ),
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "keras: needs TensorFlow with Keras 3")
    config.addinivalue_line("markers", "torch: needs PyTorch")
    profile = config.getoption("--profile") or os.environ.get(PROFILE_ENV) or "ci"
    if profile not in PROFILES:
        raise pytest.UsageError(
            f"--profile / ${PROFILE_ENV}: unknown profile {profile!r}; expected one of {sorted(PROFILES)}"
        )
    config.gatecheck_profile = profile
    try:
        config.gatecheck_shard = parse_shard(config.getoption("--shard")) if config.getoption("--shard") else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        config.gatecheck_required = fw.required()
        fw.threads()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    spec = config.getoption("--candidate")
    config.gatecheck_candidate_spec = spec or cand.REFERENCE_SPEC
    # A candidate that does not load fails every battery test with the reason; the rest of
    # the suite (the reference's own proofs, remaps, ...) still runs and reports.
    config.gatecheck_candidate_error = None
    config.gatecheck_candidate, config.gatecheck_not_compared = None, {}
    try:
        config.gatecheck_candidate = cand.load(config.gatecheck_candidate_spec)
        config.gatecheck_not_compared = cand.cannot_observe(config.gatecheck_candidate)
    except cand.CandidateError as exc:
        config.gatecheck_candidate_error = str(exc)


def pytest_report_header(config):
    versions = fw.installed_versions()
    required = sorted(config.gatecheck_required) or "none"
    threads = ", ".join(
        f"{k}={os.environ.get(k, 'unset')}"
        for k in (fw.THREADS_ENV, "OMP_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")
    )
    not_compared = [
        f"gatecheck: not compared: {key} (the candidate cannot observe it: {why})"
        for key, why in config.gatecheck_not_compared.items()
    ]
    if config.gatecheck_candidate_error:
        not_compared.append(f"gatecheck: CANDIDATE ERROR: {config.gatecheck_candidate_error}")
    return [
        "gatecheck: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"gatecheck: threads per framework {fw.threads()} ({threads})",
        f"gatecheck: profile {config.gatecheck_profile} ({len(grid(config.gatecheck_profile))} cases"
        + (f", shard {config.gatecheck_shard[0]}/{config.gatecheck_shard[1]}" if config.gatecheck_shard else "")
        + "); "
        f"candidate {config.gatecheck_candidate_spec}; required frameworks ({fw.REQUIRE_ENV}): {required}",
    ] + not_compared


def pytest_generate_tests(metafunc):
    if "battery_case" in metafunc.fixturenames:
        cases = grid(metafunc.config.gatecheck_profile)
        if metafunc.config.gatecheck_shard:
            cases = shard(cases, *metafunc.config.gatecheck_shard)
        metafunc.parametrize(
            "battery_case",
            [
                pytest.param(c, id=c.id, marks=getattr(pytest.mark, ORACLES[c.oracle].framework))
                for c in cases
            ],
        )


def require_framework(config, framework):
    """Import a framework for a test: skip with the reason, or fail where required."""
    importer = {"torch": fw.import_torch, "keras": fw.import_keras}[framework]
    try:
        return importer()
    except fw.Unavailable as exc:
        if framework in config.gatecheck_required:
            pytest.fail(f"{framework} is required ({fw.REQUIRE_ENV}) but unavailable: {exc}", pytrace=False)
        pytest.skip(f"{framework} unavailable: {exc}")


@pytest.fixture
def oracle(battery_case, request):
    o = ORACLES[battery_case.oracle]
    require_framework(request.config, o.framework)
    return o


@pytest.fixture
def candidate(request):
    """(callable, spec) of the LSTM under test; fails the test if it did not load."""
    if request.config.gatecheck_candidate_error:
        pytest.fail(request.config.gatecheck_candidate_error, pytrace=False)
    return request.config.gatecheck_candidate, request.config.gatecheck_candidate_spec


def pytest_runtest_logreport(report):
    """Collect the battery's records (they travel from xdist workers as user_properties)."""
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "gatecheck":
            _collected.append(value)


_collected = []


def pytest_sessionfinish(session):
    config = session.config
    path = config.getoption("--results")
    if not path or hasattr(config, "workerinput"):
        return
    from gatecheck import results

    shard_ = config.gatecheck_shard
    meta = results.metadata(dict(profile=config.gatecheck_profile, candidate=config.gatecheck_candidate_spec,
                                 shard=f"{shard_[0]}/{shard_[1]}" if shard_ else None))
    results.write(path, meta, _collected)
