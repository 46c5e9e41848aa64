"""One case's outcome, decided in one place.

``decide`` turns what running a case gave (a comparison ``Report``, or the reason it gave none)
into an ``Outcome``; every front end only shows it: ``python -m gatecheck check`` and
``verify`` (gatecheck.tools.check), the pytest battery and its terminal summary
(gatecheck.frontends.pytest_plugin), results files (gatecheck.tools.results), the kill matrix and the power
commands. None of them decides again, so none can disagree with another.

The statuses and what each means are one table, ``STATUSES``. Three of them are for the
family's own reference only (``reference=True``: the battery without a candidate), where a
known deviation of an oracle (gatecheck.truth.deviations) must reproduce exactly as recorded; a
candidate is instead not judged on the deviation's quantities against that oracle.
"""

from collections.abc import Callable
from typing import Any, NamedTuple, Optional

from gatecheck.core.candidate import CandidateError
from gatecheck.core.cases import Case
from gatecheck.core.compare import Report
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import FRAMEWORKS, Unavailable
from gatecheck.model import options as opts
from gatecheck.run.battery import cached, explained, run_case
from gatecheck.truth import deviations
from gatecheck.truth.views import family_of

MATCH = "match"
MISMATCH = "mismatch"
AS_RECORDED = "as recorded"
NOT_REPRODUCED = "not reproduced"
BEYOND = "beyond"
NOT_JUDGED = "not judged"
UNIMPLEMENTED = "unimplemented"
DECLINED = "declined"
UNAVAILABLE = "unavailable"
CANDIDATE_ERROR = "candidate error"

STATUSES = {
    MATCH: "every quantity judged is within its allowance",
    MISMATCH: "a quantity judged is beyond its allowance, or has the wrong shape or dtype",
    AS_RECORDED: "the reference run reproduces the oracle's known deviation exactly, on its quantities only",
    NOT_REPRODUCED: "the reference run matches where the oracle has a known deviation: the engine changed, or "
                    "the entry is too wide",
    BEYOND: "the reference run differs beyond the quantities of the oracle's known deviation",
    NOT_JUDGED: "the oracle's known deviation covers every quantity compared: nothing was judged",
    UNIMPLEMENTED: "the candidate does not declare the case's layer options",
    DECLINED: "the oracle declines the case's set of options or its dtype",
    UNAVAILABLE: "the oracle's framework is missing or unsupported",
    CANDIDATE_ERROR: "the candidate raised, broke the contract, ran out of time or left nothing to compare",
}
FAILING = (MISMATCH, NOT_REPRODUCED, BEYOND, CANDIDATE_ERROR)  # a failure of the run
NOT_RUN = (UNIMPLEMENTED, DECLINED, UNAVAILABLE)  # nothing was run: nothing measured


class Unimplemented(Exception):
    """A case whose layer options the candidate does not declare; ``str(exc)`` says what to declare."""


class Declined(Exception):
    """A case whose set of options or dtype its oracle declines; ``str(exc)`` is the oracle's reason."""


# What a case that gave no comparison gave instead, and its status (the first type that matches).
_NO_REPORT = ((CandidateError, CANDIDATE_ERROR), (Unavailable, UNAVAILABLE), (Unimplemented, UNIMPLEMENTED),
              (Declined, DECLINED))


class Outcome(NamedTuple):
    case: Case
    oracle: str  # its oracle's registry name
    family: str  # the oracle's family name
    status: str  # a key of STATUSES
    reason: str  # why, in words: the comparison's message for a failure; "" for a plain match
    report: Optional[Report] = None  # the compare.Report, or None where nothing was compared
    deviation: Optional[deviations.Deviation] = None  # the oracle's known deviation on the case, if any
    ratio: float = 0.0  # the largest fraction of the allowance used over the quantities judged
    compared: tuple[str, ...] = ()  # the quantities compared, in the family's order
    warnings: tuple[str, ...] = ()  # what the candidate warned, as sentences

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def ran(self) -> bool:
        return self.status not in NOT_RUN


def unimplemented_reason(case_options: tuple[str, ...]) -> str:
    """Why a case with layer options was not run: the candidate does not declare each of its options."""
    name = opts.label(case_options)
    return (f"the candidate does not implement {name} (once it does, add its options to run.options, e.g. "
            f"run.options = {{{', '.join(repr(o) for o in case_options)}}}: declaring options declares every "
            f"combination of them; docs/guide/contracts.md)")


def decide(case: Case, oracle: Oracle, result: Report | BaseException, reference: bool = False) -> Outcome:
    """The outcome of ``case`` on ``oracle`` (an ``Oracle``) from ``result``: the comparison
    ``Report`` of the candidate with the oracle, or the exception that stopped the case before one
    (``CandidateError``, ``Unavailable``, ``Unimplemented``, ``Declined``). ``reference``: the
    candidate is the family's own reference, which must reproduce a known deviation exactly."""

    family = family_of(oracle)
    base: dict[str, Any] = dict(case=case, oracle=oracle.name, family=family.name)
    if isinstance(result, BaseException):
        status = next((s for kind, s in _NO_REPORT if isinstance(result, kind)), None)
        if status is None:
            raise TypeError(f"result: expected a compare.Report or one of "
                            f"{[kind.__name__ for kind, _ in _NO_REPORT]}, got {type(result).__name__}: {result}")
        return Outcome(status=status, reason=str(result), **base)
    report, dev = result, result.deviation
    judged = deviations.judged(report)
    order = list(opts.every_quantity(family))
    compared = {r.quantity for r in report.results}
    base.update(report=report, deviation=dev, ratio=max((r.ratio for r in judged), default=0.0),
                compared=tuple(sorted(compared, key=lambda q: order.index(q) if q in order else len(order))),
                warnings=tuple(report.warnings))
    if dev is None:
        return Outcome(status=MATCH if report.ok else MISMATCH, reason="" if report.ok else report.message(), **base)
    how = deviations.outcome(report, dev)
    if not reference:  # the oracle does not judge a candidate on the deviation's quantities
        if how == "beyond":
            return Outcome(status=MISMATCH, reason=report.message(), **base)
        if not judged:
            return Outcome(status=NOT_JUDGED, reason=f"the {deviations.describe(dev)} covers every quantity "
                           f"{oracle.name} compares on this case", **base)
        return Outcome(status=MATCH, reason="", **base)
    if how == "not reproduced":
        return Outcome(status=NOT_REPRODUCED, reason=(
            f"{case.id}: matches, but {deviations.describe(dev)}; it did not reproduce: the engine changed, or the "
            f"entry is too wide (bound its cases or its version range in gatecheck/truth/deviations.py)"), **base)
    if how == "beyond":
        return Outcome(status=BEYOND, reason=report.message() + f"\nbeyond the {deviations.describe(dev)}", **base)
    if dev.explained_by is not None and (dev.modelled is None or dev.modelled(case)):  # (the model's own cases)
        # the entry's model must explain the whole difference

        model = explained(case, oracle, dev)
        if not model.ok:
            return Outcome(status=MISMATCH, reason=model.message() + (
                f"\non the inputs of the entry's model (explained_by), the {deviations.describe(dev)}: it does not "
                f"explain the difference"), **base)
    return Outcome(status=AS_RECORDED, reason=deviations.describe(dev), **base)


def run(case: Case, oracle: Oracle, candidate: Callable[..., Any] | None = None, name: str = "reference",
        reference: bool | None = None, offered: frozenset[tuple[str, ...]] | None = None,
        unavailable: dict[str, str] | None = None) -> Outcome:
    """Run one case and decide it (``decide``): ``candidate`` (None: the family's reference) against
    ``oracle``. ``reference``: judge as the family's own reference (default: whether ``candidate`` is
    None). ``offered``: the layer options the candidate declares (None: every one). ``unavailable``: a
    dict framework -> reason that this fills and reads, so a missing framework is imported once."""

    reference = candidate is None if reference is None else reference
    try:
        if offered is not None and not opts.implements(offered, case.options):
            raise Unimplemented(unimplemented_reason(case.options))
        why = oracle.declined(case.options, case.dtype)
        if why:
            raise Declined(why)
        if unavailable is not None and oracle.framework in unavailable:
            raise Unavailable(unavailable[oracle.framework])
        try:  # (an output read from the cache needs no framework: its key holds the versions that computed it)
            if not cached(case, oracle):
                FRAMEWORKS[oracle.framework].importer()
        except Unavailable as exc:
            if unavailable is not None:
                unavailable[oracle.framework] = str(exc)
            raise
        result: Report | BaseException = run_case(case, oracle, candidate, candidate_name=name)
    except (CandidateError, Unavailable, Unimplemented, Declined) as exc:
        result = exc
    return decide(case, oracle, result, reference)
