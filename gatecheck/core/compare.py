"""The one comparison helper: candidate vs oracle, quantity by quantity, slice by slice.

``compare`` returns a ``Report``; ``assert_matches`` raises with its message. A failure
names the case, the quantity, the gate or time step, the index, actual, expected, the
absolute and relative error and what was allowed, and points at the first divergence
in the order the computation happens: forward (t = 0 .. T-1), then backward
(t = T-1 .. 0, then dh0, dc0), then the parameter gradients gate by gate; a reverse
direction's steps in its own order (forward t = T-1 .. 0, backward t = 0 .. T-1); a stack's second
layer forward after the whole first layer, backward before it.
"""

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from gatecheck.core import tolerance
from gatecheck.core.family import Arrays, Family, Quantity

# A quantity table (``Family.quantities``): name -> Quantity, in divergence order.
Table = Mapping[str, Quantity]
# A slice's (sort key: phase, layer block, position, rank; step, gate, numpy index), as ``slices`` yields them.
Key = tuple[int, int, int, int]
Slice = tuple[Key, int | None, str | None, tuple[Any, ...]]


_PRECISION: contextvars.ContextVar[float] = contextvars.ContextVar("close_precision", default=tolerance.CLOSE)


def close(a: npt.ArrayLike, b: npt.ArrayLike) -> bool:
    """Whether ``a`` equals ``b`` to float64 precision (normwise, ``tolerance.CLOSE`` of b's
    scale; ``tolerance.CLOSE_F32`` inside ``at_float32``): how the diagnosis decides that a
    hypothesis explains a candidate's numbers."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, np.finfo(np.float64).tiny)
    return bool(np.all(np.isfinite(a))) and float(np.max(np.abs(a - b))) <= _PRECISION.get() * scale


@contextlib.contextmanager
def at_float32() -> Iterator[None]:
    """Within: ``close`` accepts agreement to float32 precision (``tolerance.CLOSE_F32``), for a
    candidate the diagnosis has found computing in float32."""
    token = _PRECISION.set(tolerance.CLOSE_F32)
    try:
        yield
    finally:
        _PRECISION.reset(token)


def _rank(name: str, table: Table) -> int:
    return list(table).index(name)


def contract_value(result: Mapping[str, Any], name: str, table: Table) -> Any:
    """The array for quantity ``name`` from a contract mapping (reference or candidate)."""
    q = table[name]
    value = result[q.source]
    return value[:, q.final] if q.last_step else value


def slices(name: str, T: int, table: Table, gates: Iterable[str] = ()) -> Iterator[Slice]:
    """(sort key, step, gate, numpy index) for every slice of a quantity, in divergence
    order: forward t = 0..T-1, backward t = T-1..0, then the parameters gate by gate; a
    quantity of a reverse direction (``Quantity.reverse``) in that direction's order: forward
    t = T-1..0, backward t = 0..T-1; a stack's layer (``Quantity.layer``) forward after the layers
    below it, backward before them."""
    q = table[name]
    rank = _rank(name, table)
    block = {0: q.layer, 1: -q.layer}.get(q.phase, 0)
    if q.split == "time":
        computed = range(T - 1, -1, -1) if q.reverse else range(T)
        steps = computed if q.phase == 0 else reversed(computed)
        for n, t in enumerate(steps):
            yield (q.phase, block, n, rank), t, None, (slice(None), t)
    elif q.split == "gate":
        for k, gate in enumerate(gates):
            yield (q.phase, block, rank, k), None, gate, (k,)
    else:
        # C_T sits with the forward pass's last step; dh0/dc0 after the backward's t=0;
        # an ungated parameter gradient in the parameters' phase.
        yield (q.phase, block, {0: T - 1, 1: T}.get(q.phase, rank), rank), None, None, (Ellipsis,)


@dataclass
class SliceResult:
    """One slice's comparison, with structured coordinates: ``quantity``, ``step`` (per-step
    quantities) or ``gate`` (per-gate ones), and the worst element's full ``index``."""

    quantity: str
    step: int | None
    gate: str | None
    key: Key
    n_bad: int
    n: int
    index: tuple[int, ...]  # full-array index of the worst element
    actual: float
    expected: float
    abs_err: float
    rel_err: float
    atol: float
    rtol: float
    ratio: float  # greatest abs_err / allowed on the slice (<= 1 passes)
    axes: tuple[str, ...] = ()  # index names of the quantity, for messages

    @property
    def ok(self) -> bool:
        return self.n_bad == 0

    @property
    def label(self) -> str:
        """How a message names the slice: "t=3", "gate f" or ""."""
        if self.step is not None:
            return f"t={self.step}"
        return f"gate {self.gate}" if self.gate is not None else ""

    def where(self) -> str:
        parts = []
        for ax, i in zip(self.axes, self.index, strict=False):
            parts.append(f"gate={self.gate}" if ax == "gate" else f"{ax}={i}")
        return "[" + ", ".join(parts) + "]"

    def describe(self) -> str:
        head = f"{self.quantity} {self.label}".strip()
        return (
            f"{head}: {self.n_bad}/{self.n} mismatched; greatest abs diff {self.abs_err:.3g} "
            f"at {self.where()}: actual {self.actual!r}, expected {self.expected!r}, "
            f"rel {self.rel_err:.3g} (allowed {self.atol:.3g} + {self.rtol:.3g}*|expected| "
            f"= {self.atol + self.rtol * abs(self.expected):.3g})"
        )


@dataclass
class Report:
    case_id: str
    actual_name: str
    expected_name: str
    T: int
    table: Table
    results: list[SliceResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # whole-quantity problems (shape, dtype)
    warnings: list[str] = field(default_factory=list)  # what the candidate warned, as sentences
    deviation: Any = None  # the known deviation of the oracle on this case (gatecheck.truth.deviations), if any

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)

    @property
    def failures(self) -> list[SliceResult]:
        return sorted((r for r in self.results if not r.ok), key=lambda r: r.key)

    def worst_ratio(self, quantity: str | None = None) -> float:
        rs = [r.ratio for r in self.results if quantity in (None, r.quantity)]
        return max(rs) if rs else 0.0

    def message(self) -> str:
        lines = [f"{self.case_id}: {self.actual_name} differs from {self.expected_name}"]
        lines += [f"  {p}" for p in self.problems]
        fails = self.failures
        if fails:
            lines.append(f"first divergence: {fails[0].describe()}")
            lines.append("mismatched (forward t=0..T-1, backward t=T-1..0, then parameters):")
            by_q: dict[str, list[SliceResult]] = {}
            for r in fails:
                by_q.setdefault(r.quantity, []).append(r)
            for name, rs in by_q.items():
                lines.append(f"  {name:<5} {_summarise(self.table[name], rs, self.T)}; "
                             f"worst {max(r.ratio for r in rs):.3g}x allowed")
        good = sorted({r.quantity for r in self.results} - {r.quantity for r in fails},
                      key=lambda n: _rank(n, self.table))
        if good:
            lines.append("matching: " + ", ".join(good))
        lines += [f"candidate warned: {w}" for w in self.warnings]
        return "\n".join(lines)


def _summarise(q: Quantity, rs: list[SliceResult], T: int) -> str:
    if q.split == "time":
        ts = sorted(r.step for r in rs if r.step is not None)  # every slice of a time-split quantity has one
        return f"{len(ts)} of {T} steps: t={ranges(ts)}"
    if q.split == "gate":
        return "gates " + ", ".join(r.gate for r in rs if r.gate is not None)  # as every gate slice has
    return "all"


def ranges(ts: list[int]) -> str:
    """[0, 1, 2, 5] -> "0..2,5"."""
    out: list[str] = []
    start: int | None = ts[0]
    following: list[int | None] = [*ts[1:], None]
    for a, b in zip(ts, following, strict=True):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}..{a}")
            start = b
    return ",".join(out)


def _compare_quantity(name: str, q: Quantity, T: int, a: np.ndarray, e: np.ndarray, scale: float, n_terms: int,
                      yard32: npt.ArrayLike, dtype: npt.DTypeLike, table: Table, gates: Iterable[str],
                      undefined: npt.ArrayLike | None = None) -> list[SliceResult]:
    """Every slice of one quantity at once: rows are slices (time steps, gates, or one);
    ``undefined`` (a bool array broadcasting to it): entries the contract leaves open, not compared."""
    axis = {"time": 1, "gate": 0}.get(q.split)
    skip = np.zeros(np.shape(e), bool) if undefined is None else np.broadcast_to(undefined, np.shape(e))
    a = np.where(skip, e, a)  # an entry not compared counts as matching, and not in n

    def rows(x: npt.ArrayLike) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return (np.moveaxis(x, axis, 0) if axis is not None else x[None]).reshape(
            x.shape[axis] if axis is not None else 1, -1)

    A, E = rows(a), rows(e)
    atol = tolerance.slice_atols(dtype, rows(yard32).max(axis=1), scale, n_terms)
    rtol = tolerance.slice_rtol(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(A - E)
        allowed = atol[:, None] + rtol * np.abs(E)
        bad = ~(abs_err <= allowed)  # NaN counts as bad
        score = np.where(np.isfinite(abs_err), abs_err / np.maximum(allowed, np.finfo(np.float64).tiny), np.inf)
    worst = np.argmax(score, axis=1)
    n_bad = bad.sum(axis=1)
    n_compared = (~rows(skip).astype(bool)).sum(axis=1)
    slice_shape = (np.moveaxis(a, axis, 0).shape[1:] if axis is not None else a.shape)
    out = []
    for key, step, gate, index in slices(name, T, table, gates):
        r = int(index[axis]) if axis is not None else 0
        flat = int(worst[r])
        local = np.unravel_index(flat, slice_shape) if slice_shape else ()
        abs_worst, exp_worst = float(abs_err[r, flat]), float(E[r, flat])
        out.append(SliceResult(
            quantity=name,
            step=step,
            gate=gate,
            key=key,
            n_bad=int(n_bad[r]),
            n=int(n_compared[r]),
            index=_full_index(index, local, a.ndim),
            actual=float(A[r, flat]),
            expected=exp_worst,
            abs_err=abs_worst,
            rel_err=abs_worst / abs(exp_worst) if exp_worst else float("inf") if abs_worst else 0.0,
            atol=float(atol[r]),
            rtol=rtol,
            ratio=float(score[r, flat]),
            axes=q.axes,
        ))
    return out


def _full_index(index: tuple[Any, ...], local: Iterable[Any], ndim: int) -> tuple[int, ...]:
    """Map an index within a slice back to the full array's coordinates."""
    local = list(int(i) for i in local)
    if index == (Ellipsis,):
        return tuple(local)
    full = []
    for part in index:
        full.append(local.pop(0) if isinstance(part, slice) else int(part))
    full += local
    return tuple(full[:ndim])


def undefined_entries(family: Family, inputs: Arrays, quantities: Iterable[str]) -> dict[str, Any] | None:
    """Per quantity, the entries a family record's contract leaves undefined on ``inputs``
    (``Family.undefined``: the states' deltas at masked steps), for ``compare``; None: none."""
    if not family.undefined:
        return None
    found = family.undefined(inputs)
    return {q: contract_value(found, q, family.quantities) for q in quantities
            if family.quantities[q].source in found}


def compare(case_id: str, actual: Mapping[str, Any], expected: Mapping[str, Any], truth: Mapping[str, Any],
            yard32: Mapping[str, Any], quantities: Iterable[str], dtype: npt.DTypeLike, B: int, T: int, family: Family,
            actual_name: str = "candidate", expected_name: str = "oracle",
            undefined: Mapping[str, Any] | None = None) -> Report:
    """Compare ``actual[q]`` with ``expected[q]`` for every q in ``quantities``; the entries in
    ``undefined`` (quantity -> bool array, ``undefined_entries``) are not compared.

    ``truth`` (the float64 reference) gives each quantity's scale; parameter gradients
    are sums of B*T per-step terms, which sets their summation floor; ``yard32`` holds
    |ref_f32 - ref_f64| per quantity (see ``gatecheck.core.tolerance``). All four mappings are
    keyed by quantity name. ``family`` gives the quantity table and the gate names.
    """
    table = family.quantities
    report = Report(case_id, actual_name, expected_name, T, table)
    for name in quantities:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        if a.shape != e.shape:
            report.problems.append(f"{name}: shape {a.shape}, expected {e.shape}")
            continue
        scale = float(np.max(np.abs(truth[name])))
        q = table[name]
        n_terms = B * T if q.phase == 2 else 1
        report.results += _compare_quantity(name, q, T, a, e, scale, n_terms, yard32[name], dtype, table,
                                            family.gates, (undefined or {}).get(name))
    return report


def assert_matches(*args: Any, **kwargs: Any) -> Report:
    __tracebackhide__ = True
    report = compare(*args, **kwargs)
    if not report.ok:
        raise AssertionError(report.message())
    return report
