"""The Python API, for notebooks and scripts: ``python -m gatecheck check`` as a function.

    import gatecheck

    result = gatecheck.check(run, family="lstm", oracles=["reference", "torch-cell"])
    result.exit_code   # 0 pass, 1 fail, ... (gatecheck.exit_codes, as the command's exit status)
    result.verdict     # 'PASS: all 86 cases match (worst 0.097 of the allowance)'
    print(result)      # the report, exactly as the command prints it; in Jupyter, an HTML table

``run`` is the candidate: a callable (a function defined in a notebook cell or in a script's
``__main__`` included: it is sent by value to the process it runs in, ``gatecheck.byvalue``)
or a ``'module:callable'`` string. The cases, the verdict and the report are the command's
own (``gatecheck.check``): the same candidate and arguments give the same verdict and exit
code. A request that the command answers with exit 2 before running anything (an unknown
family, oracle or option, a bad ``n`` or ``timeout``, a candidate that does not load) raises
``ValueError`` with the same message, naming the argument.
"""

import html
from collections import defaultdict

from gatecheck.exit_codes import EXIT_CODES, FAIL, PASS

DTYPE_NAMES = ("f32", "f64")


def _names(value, what):
    """A comma string or an iterable of strings -> a list of names."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    try:
        names = list(value)
    except TypeError:
        raise ValueError(f"{what}: expected names as a list or a comma string, got {value!r}") from None
    if not all(isinstance(name, str) for name in names):
        raise ValueError(f"{what}: expected names as a list or a comma string, got {value!r}")
    return names


def _family(name):
    from gatecheck.families import FAMILIES, get

    if name not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {name!r}")
    return get(name)


def _oracles(value, family):
    """The oracles to run: the family's battery by default, as on the command line."""
    from gatecheck.oracles import battery_oracles, of_family

    if value is None:
        return battery_oracles(family.name)
    names = _names(value, "oracles")
    valid = of_family(family.name)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"oracles: unknown for the {family.name} family: {unknown}; expected names from {valid}")
    return names or battery_oracles(family.name)


def _dtypes(value):
    """None (both) or a subset of DTYPE_NAMES."""
    if value is None:
        return None
    names = _names(value, "dtypes")
    unknown = sorted(set(names) - set(DTYPE_NAMES))
    if unknown or not names:
        raise ValueError(f"dtypes: expected names from {list(DTYPE_NAMES)}, got {value!r}")
    return set(names)


def _option_set(value, cases, family, profile):
    """None (every set) or one set of layer options as cases hold it; () is the cases without
    options. The set must be one the family's profile has cases for."""
    from gatecheck.options import OPTIONS, canonical, label

    if value is None:
        return None
    try:
        wanted = canonical(_names(value, "options"))
    except ValueError:
        raise ValueError(f"options: expected option names from {list(OPTIONS)} (a list or a comma string), "
                         f"got {value!r}") from None
    sets = list(dict.fromkeys(c.options for c in cases))
    if wanted not in sets:
        raise ValueError(f"options: the {profile} profile of the {family.name} family has no case with "
                         f"{label(wanted)}; its sets: {'; '.join(label(s) for s in sets)}")
    return wanted


def _implements(fn, wanted):
    """A filter on a set of options the candidate does not declare would leave no case to run."""
    from gatecheck.options import implemented, label

    try:
        offered = implemented(fn)
    except ValueError:  # a malformed declaration: each case reports it (gatecheck.check.run_cases)
        return
    if wanted and not set(wanted) <= offered:
        raise ValueError(f"options: the candidate does not implement {label(wanted)}, so no case would run; declare "
                         f"what it implements as run.options = {set(wanted)!r} (README, Contracts)")


def _workers(n):
    from gatecheck.check import workers

    try:
        return workers(str(n))
    except ValueError:
        raise ValueError(f"n: expected a positive integer or 'auto', got {n!r}") from None


def _timeout(timeout):
    from gatecheck.isolation import DEFAULT_TIMEOUT, timeout_value

    if timeout is None:
        return DEFAULT_TIMEOUT
    try:
        return timeout_value(timeout)
    except ValueError:
        raise ValueError(f"timeout: expected a number of seconds > 0, got {timeout!r}") from None


def _battery(fn, spec, family, cases, n, timeout):
    """``cases`` (a filtered part of a profile's grid) for the candidate, in n processes as
    ``gatecheck.check.battery`` runs a whole grid."""
    from gatecheck import check as chk
    from gatecheck.cases import shard

    if n <= 1 or len(cases) < 2:
        return chk.run_cases(fn, spec, family, cases)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    parts = [shard(cases, i, n) for i in range(1, n + 1)]
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(chk._worker, spec, family.name, [tuple(c) for c in part], timeout)
                   for part in parts if part]
        done = {r["id"]: r for f in futures for r in f.result()}
    return [done[c.id] for c in cases]


def check(fn, family="lstm", profile="ci", options=None, dtypes=None, oracles=None, n=1, timeout=None):
    """Run the ``family``'s battery for the candidate ``fn``; a ``Result``.

    fn: a callable following the family's contract (README, "Contracts"), or 'module:callable'.
    family: a family name ('lstm', 'gru', 'rnn', ...). profile: 'ci' or 'nightly'.
    options: None (every case), or one set of layer options (['nobias'], 'proj,bi'; () for the
      cases without options): only the cases under exactly that set.
    dtypes: None (both), or some of 'f32', 'f64' (a list or a comma string): only those cases.
    oracles: None (the family's battery, as the command), or a list / comma string of names.
    n: processes to run the cases in (a positive integer or 'auto'); timeout: seconds one call
      of the candidate may take (default that of the command, 120).
    """
    from gatecheck import byvalue
    from gatecheck import candidate as cand
    from gatecheck import check as chk
    from gatecheck.cases import Case, check_profile, grid
    from gatecheck.isolation import Isolated

    record = _family(family)
    check_profile(profile)
    names = _oracles(oracles, record)
    workers, seconds, wanted_dtypes = _workers(n), _timeout(timeout), _dtypes(dtypes)
    cases, wanted = None, None
    if options is not None or wanted_dtypes is not None:
        cases = grid(profile, record, names)
        wanted = _option_set(options, cases, record, profile)
        cases = [c for c in cases if (wanted is None or c.options == wanted)
                 and (wanted_dtypes is None or c.dtype in wanted_dtypes)]
    spec = byvalue.spec(fn, "fn")
    try:
        isolated = Isolated(spec, record, seconds, what="fn")
    except cand.CandidateError as exc:
        raise ValueError(str(exc)) from None
    try:
        try:
            cand.cannot_observe(isolated, record)
        except cand.CandidateError as exc:
            raise ValueError(str(exc)) from None
        _implements(isolated, wanted)
        if cases is None:  # the command's own path
            records = chk.battery(isolated, spec, record, profile, names, workers, isolated.timeout)
        else:
            records = _battery(isolated, spec, record, cases, workers, isolated.timeout)
        diagnoses = {}

        def diagnosis(failing):
            from gatecheck.diagnose import diagnose

            diagnoses[failing["id"]] = diagnose(isolated, Case(*failing["case"]), record, spec)[1]
            return diagnoses[failing["id"]]

        code, lines = chk.render(records, record, isolated, spec, profile, diagnosis, False, names)
    finally:
        isolated.close()
    compared = [q for q in chk.quantity_table(record) if any(q in r.get("compared", ()) for r in records)]
    return Result(str(spec), record.name, profile, names, code, records, "\n".join(lines), diagnoses,
                  compared, dict(isolated.cannot_observe))


class Result:
    """What ``check`` found.

    verdict: the headline ('PASS: all 86 cases match ...'); exit_code: the command's exit code
    (``gatecheck.exit_codes``), with its ``meaning``; records: one dict per case (id, oracle,
    dtype, status, ...); table: {oracle: {dtype: {status: count}}}; failure: the first failing
    case's record (None when none fails), divergence: its comparison, from the first divergence
    on, or the candidate error; diagnosis: the diagnosis of that case in float64 (None when it
    is a candidate error or nothing fails); compared: the quantities compared; not_compared:
    those the candidate declares it cannot observe, with its reasons; text: the report, exactly
    as the command prints it. candidate, family, profile, oracles: what was checked, and how.
    """

    def __init__(self, candidate, family, profile, oracles, exit_code, records, text, diagnoses, compared,
                 not_compared):
        self.candidate, self.family, self.profile, self.oracles = candidate, family, profile, list(oracles)
        self.exit_code, self.records, self.text = exit_code, records, text
        self.compared, self.not_compared = compared, not_compared
        self.verdict = text.splitlines()[0]
        table = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        for r in records:
            table[r["oracle"]][r["dtype"]][r["status"]] += 1
        self.table = {o: {d: dict(counts) for d, counts in by_dtype.items()} for o, by_dtype in table.items()}
        self.failure = next((r for r in records if r["status"] in ("fail", "error")), None)
        self.divergence = None if self.failure is None else (
            self.failure.get("message") or f"{self.failure['id']}: {self.failure['reason']}")
        self.diagnosis = None if self.failure is None else diagnoses.get(self.failure["id"])

    @property
    def meaning(self):
        return EXIT_CODES[self.exit_code]

    @property
    def passed(self):
        """A plain pass (exit 0): every case compared matches and a gradient was compared."""
        return self.exit_code == PASS

    def __str__(self):
        return self.text

    def __repr__(self):
        return self.text

    def _cell(self, oracle, dtype):
        counts = self.table.get(oracle, {}).get(dtype)
        if not counts:
            return "no case"
        judged = sum(counts.get(s, 0) for s in ("pass", "fail", "error"))
        text = f"{counts.get('pass', 0)}/{judged} match" if judged else ""
        others = [f"{counts[s]} {label}" for s, label in (("fail", "fail"), ("error", "error"), ("skip", "not run"),
                                                          ("unjudged", "not judged"),
                                                          ("unimplemented", "not implemented")) if counts.get(s)]
        return (text + (f" ({', '.join(others)})" if others else "")) if text else ", ".join(others)

    def _repr_html_(self):
        e = html.escape
        colour = {PASS: "#1a7f37", FAIL: "#cf222e"}.get(self.exit_code, "#9a6700")
        dtypes = [d for d in DTYPE_NAMES if any(d in by_dtype for by_dtype in self.table.values())]
        rows = "".join(f"<tr><td>{e(o)}</td>" + "".join(f"<td>{e(self._cell(o, d))}</td>" for d in dtypes) + "</tr>"
                       for o in self.table)
        parts = [
            '<div class="gatecheck-result">',
            f'<p style="color:{colour};font-weight:bold">{e(self.verdict)}</p>',
            f"<p>{e(self.candidate)} as the {e(self.family)} family; profile {e(self.profile)}; "
            f"exit code {self.exit_code} ({e(self.meaning)})</p>",
            "<table><thead><tr><th>oracle</th>" + "".join(f"<th>{e(d)}</th>" for d in dtypes)
            + f"</tr></thead><tbody>{rows}</tbody></table>",
            f"<p>compared: {e(', '.join(self.compared)) if self.compared else 'nothing'}</p>",
        ]
        parts += [f"<p>not compared: {e(key)} (the candidate cannot observe it: {e(str(why))})</p>"
                  for key, why in self.not_compared.items()]
        if self.failure is not None:
            parts += [f"<p>first failing case: {e(self.failure['id'])}</p>", f"<pre>{e(self.divergence)}</pre>"]
        if self.diagnosis:
            parts += ["<p>diagnosis</p>", f"<pre>{e(self.diagnosis)}</pre>"]
        parts += ["<details><summary>the whole report (as the command prints it)</summary>",
                  f"<pre>{e(self.text)}</pre></details>", "</div>"]
        return "\n".join(parts)
