"""The Python API, for notebooks and scripts: ``python -m gatecheck check`` as a function.

    import gatecheck

    result = gatecheck.check(run, family="lstm")  # oracles=[...] runs some of them
    result.exit_code   # 0 pass, 1 fail, ... (gatecheck.core.exit_codes, as the command's exit status)
    result.verdict     # 'PASS: all 86 cases match (worst 0.097 of the allowance)'
    print(result)      # the report, exactly as the command prints it; in Jupyter, an HTML table

``run`` is the candidate: a callable (a function defined in a notebook cell or in a script's
``__main__`` included: it is sent by value to the process it runs in, ``gatecheck.run.byvalue``)
or a ``'module:callable'`` string. The cases, the verdict and the report are the command's
own (``gatecheck.tools.check``): the same candidate and arguments give the same verdict and exit
code. A request that the command answers with exit 2 before running anything (an unknown
family, oracle or option, a bad ``n`` or ``timeout``, a candidate that does not load) raises
``ValueError`` with the same message, naming the argument.
"""

import html
import os

from gatecheck.core import candidate as cand
from gatecheck.core.cases import Case, check_profile
from gatecheck.core.exit_codes import EXIT_CODES, FAIL, PASS
from gatecheck.engines import battery_oracles
from gatecheck.families import FAMILIES, get
from gatecheck.model import options as opts
from gatecheck.run import byvalue
from gatecheck.run import cache as oracle_cache
from gatecheck.run import outcome as oc
from gatecheck.run.grid import grid
from gatecheck.run.isolation import DEFAULT_TIMEOUT, Isolated, timeout_value
from gatecheck.tools import check as chk
from gatecheck.tools.check import workers
from gatecheck.tools.diagnose import diagnose

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

    if name not in FAMILIES:
        raise ValueError(f"family: expected one of {sorted(FAMILIES)}, got {name!r}")
    return get(name)


def _oracles(value, family):
    """The oracles to run: the family's battery by default, as on the command line."""

    if value is None:
        return battery_oracles(family.name)
    return chk.oracle_names(_names(value, "oracles"), family)


def _workers(n):

    try:
        return workers(str(n))
    except ValueError:
        raise ValueError(f"n: expected a positive integer or 'auto', got {n!r}") from None


def _timeout(timeout):

    if timeout is None:
        return DEFAULT_TIMEOUT
    try:
        return timeout_value(timeout)
    except ValueError:
        raise ValueError(f"timeout: expected a number of seconds > 0, got {timeout!r}") from None


def check(fn, family="lstm", profile="ci", options=None, dtypes=None, oracles=None, n=1, timeout=None, cache=True):
    """Run the ``family``'s battery for the candidate ``fn``; a ``Result``.

    fn: a callable following the family's contract (docs/guide/contracts.md), or 'module:callable'.
    family: a family name ('lstm', 'gru', 'rnn', ...). profile: 'ci' or 'nightly'.
    options: None (every case), or the sets of layer options to run, as ``check --options`` takes
      them: a comma string ('none,nobias,bi+L2') or a list of sets, each 'none' (the cases without
      options), an option name, a combination 'bi+L2' or a tuple of names.
    dtypes: None (both), or some of 'f32', 'f64' (a list or a comma string): only those cases.
    oracles: None (the family's battery, as the command), or a list / comma string of names.
    n: processes to run the cases in (a positive integer or 'auto'); timeout: seconds one call
      of the candidate may take (default that of the command, 120).
    cache: True (the platform's cache folder), a folder, or False: where the oracles' outputs are kept, so a
      re-run reads them instead of recomputing them (gatecheck.run.cache; the command's --cache-dir and
      --no-cache).
    """

    record = _family(family)
    check_profile(profile)
    names = _oracles(oracles, record)
    workers, seconds = _workers(n), _timeout(timeout)
    try:  # the selection is checked before the candidate loads, as the command checks it
        selected = chk.select(grid(profile, record, names), options, dtypes)
    except ValueError as exc:
        raise ValueError(str(exc).replace("dtype:", "dtypes:", 1)) from None
    if not (isinstance(cache, (bool, str, os.PathLike))):
        raise ValueError(f"cache: expected True, False or a folder, got {cache!r}")
    spec = byvalue.spec(fn, "fn")
    try:
        isolated = Isolated(spec, record, seconds, what="fn")
    except cand.CandidateError as exc:
        raise ValueError(str(exc)) from None
    try:
        try:
            opts.declared(isolated, record)
        except cand.CandidateError as exc:
            raise ValueError(str(exc)) from None
        if options is not None:
            chk.declares_some(isolated, selected)
        with oracle_cache.using(cache):
            records = chk.battery(isolated, spec, record, profile, names, workers, isolated.timeout, options, dtypes)
        diagnoses = {}

        def diagnosis(failing):

            diagnoses[failing["id"]] = diagnose(isolated, Case(*failing["case"]), record, spec)[1]
            return diagnoses[failing["id"]]

        not_run = chk.unexercised(isolated, record, records, profile, options)
        code, lines = chk.render(records, record, isolated, spec, profile, diagnosis, False, names, not_run)
    finally:
        isolated.close()
    compared = [q for q in chk.quantity_table(record) if any(q in r.get("compared", ()) for r in records)]
    return Result(str(spec), record.name, profile, names, code, records, "\n".join(lines), diagnoses,
                  compared, dict(isolated.cannot_observe),
                  {opts.label(s): why for s, why in not_run},
                  chk.unexercised_lines(not_run, record, profile, str(spec), verbose=True))


class Result:
    """What ``check`` found.

    verdict: the headline ('PASS: all 86 cases match ...'); exit_code: the command's exit code
    (``gatecheck.core.exit_codes``), with its ``meaning``; records: one dict per case (id, oracle,
    dtype, status, ...); table: {oracle: {dtype: {status: count}}}; failure: the first failing
    case's record (None when none fails), divergence: its comparison, from the first divergence
    on, or the candidate error; diagnosis: the diagnosis of that case in float64 (None when it
    is a candidate error or nothing fails); compared: the quantities compared; not_compared:
    those the candidate declares it cannot observe, with its reasons; not_run: each combination of the
    options the candidate declares that no case ran ('bisum+L2'), with why (``gatecheck.tools.check.unexercised``:
    'nightly', the profile that has it, 'no-grid', ...), which makes a pass partial; text: the report, exactly
    as the command prints it. candidate, family, profile, oracles: what was checked, and how.
    """

    def __init__(self, candidate, family, profile, oracles, exit_code, records, text, diagnoses, compared,
                 not_compared, not_run=None, not_run_lines=()):
        self.candidate, self.family, self.profile, self.oracles = candidate, family, profile, list(oracles)
        self.not_run, self._not_run_lines = dict(not_run or {}), list(not_run_lines)
        self.exit_code, self.records, self.text = exit_code, records, text
        self.compared, self.not_compared = compared, not_compared
        self.verdict = text.splitlines()[0]
        self.table = {o: {d: dict(counts) for d, counts in by_dtype.items()} for o, by_dtype in chk.table(records).items()}
        self.failure = next((r for r in records if r["status"] in oc.FAILING), None)
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
        return chk.cell(counts, oracle, dtype) if counts else "no case"

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
        parts += [f"<p>{e(line)}</p>" for line in self._not_run_lines]
        if self.failure is not None:
            parts += [f"<p>first failing case: {e(self.failure['id'])}</p>", f"<pre>{e(self.divergence)}</pre>"]
        if self.diagnosis:
            parts += ["<p>diagnosis</p>", f"<pre>{e(self.diagnosis)}</pre>"]
        parts += ["<details><summary>the whole report (as the command prints it)</summary>",
                  f"<pre>{e(self.text)}</pre></details>", "</div>"]
        return "\n".join(parts)
