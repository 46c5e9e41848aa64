"""One case of the battery: the candidate and an oracle on the same inputs, compared
under the tolerance policy, with the family's reference providing scale and yardstick."""

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gatecheck.core import candidate as cand
from gatecheck.core.cases import Case
from gatecheck.core.compare import Report, compare, contract_value, undefined_entries
from gatecheck.core.family import Arrays, Family
from gatecheck.engines.base import Oracle
from gatecheck.run import cache
from gatecheck.truth import deviations
from gatecheck.truth.views import coordinates, family_of, reference_view, under, view

# A case's (inputs, float64 truth, float32 yardstick), as gatecheck.truth.views gives it.
View = tuple[Arrays, Mapping[str, np.ndarray], Mapping[str, np.ndarray]]


def expected_of(case: Case, oracle: Oracle, family: Family, view_: View | None = None) -> dict[str, Any]:
    """The oracle's quantities on a case (driven with the case's options): from the cache of oracle outputs where
    a front end judging a candidate turned it on (gatecheck.run.cache), else computed."""
    observes = oracle.observing(under(case, family))

    def compute() -> dict[str, Any]:
        v = view_ or view(case, family)
        return oracle.run({k: a.copy() for k, a in v[0].items()}, case.options, observes)

    return dict(cache.expected(case, oracle, observes, compute))


def cached(case: Case, oracle: Oracle) -> bool:
    """Whether the cache of oracle outputs (on) holds the oracle's output on a case."""
    return cache.directory_in_use() is not None and cache.held(case, oracle,
                                                               oracle.observing(under(case, family_of(oracle))))


def run_case(case: Case, oracle: Oracle, candidate: Callable[..., Any] | None = None,
             candidate_name: str = "reference") -> Report:
    """Return the comparison ``Report`` of candidate (default: the family's reference) vs
    ``oracle`` on ``case``. Raises ``CandidateError`` when the candidate breaks the contract."""
    family = family_of(oracle)
    v = view(case, family)
    expected = expected_of(case, oracle, family, v)
    return judge(case, oracle, v, expected, candidate or under(case, family).run, candidate_name, family)


def explained(case: Case, oracle: Oracle, deviation: deviations.Deviation) -> Report:
    """The oracle on the case's own inputs compared with the reference on the inputs of the deviation's
    model (``Deviation.explained_by``: what the engine computes instead), the truth computed there in
    float64 as for any case. It matches when the entry explains the whole difference; a wrong remap
    of the oracle fails it."""
    family = family_of(oracle)
    base = deviation.model(family) if deviation.model else family  # (the record of what the engine computes)
    record = under(case, base)
    inputs64, yard = coordinates(record, case.B, case.T, case.D, case.H, case.seed, case.regime)
    if deviation.explained_by is None:  # (what calling None raised)
        raise TypeError(f"explained: the deviation of {oracle.name} has no explained_by model")
    modelled = deviation.explained_by({k: a.copy() for k, a in inputs64.items()})
    model, dropped = record, set()
    if deviation.computes is not None:  # the engine computes the model of other options (one it ignores dropped)
        model = under(case._replace(options=deviation.computes(case.options)), base)
        dropped = set(record.keywords) - set(model.keywords)
    # The run is called as a candidate, with the case's keywords: those the model has no use for are dropped, and
    # its own keywords (an activation of its own: LSTM_FLUSHED's relu with the kink moved) replace the case's.
    run = functools.partial(_as_model, model.run, dropped, dict(model.keywords))
    return judge(case, oracle, reference_view(modelled, case.np_dtype.name, model, yard),
                 expected_of(case, oracle, family), run, "reference", family)


def _as_model(run: Callable[..., Any], dropped: set[str], own: Mapping[str, Any], **kwargs: Any) -> Any:
    """``run`` called with the case's keywords less ``dropped``, and the model's ``own`` keywords over them."""
    return run(**{**{k: v for k, v in kwargs.items() if k not in dropped}, **own})


def judge(case: Case, oracle: Oracle, view_: View, expected: Mapping[str, Any], candidate: Callable[..., Any],
          candidate_name: str, family: Family) -> Report:
    """The candidate on a case's inputs, compared with the oracle's output ``expected``;
    ``view_`` is the case's (inputs, truth, yardstick). Raises ``CandidateError``."""
    family = under(case, family)
    inputs, truth, yard = view_
    quantities, _ = cand.coverage(oracle.observing(family), candidate, family)
    result = cand.call(candidate, inputs, family, candidate_name)
    actual = {q: contract_value(result, q, family.quantities) for q in quantities}
    report = compare(case.id, actual, expected, truth, yard, quantities, case.np_dtype, case.B, case.T, family,
                     actual_name=candidate_name, expected_name=oracle.name,
                     undefined=undefined_entries(family, inputs, quantities))
    report.warnings = list(result.warnings)
    report.deviation = deviations.for_case(case)
    return report

