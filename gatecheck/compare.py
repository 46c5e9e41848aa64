"""The one comparison helper: candidate vs oracle, quantity by quantity, slice by slice.

``compare`` returns a ``Report``; ``assert_matches`` raises with its message. A failure
names the case, the quantity, the gate or time step, the index, actual, expected, the
absolute and relative error and what was allowed, and points at the first divergence
in the order the computation happens: forward (t = 0 .. T-1), then backward
(t = T-1 .. 0, then dh0, dc0), then the parameter gradients gate by gate.
"""

from dataclasses import dataclass, field

import numpy as np

from gatecheck import tolerance
from reference.lstm import GATES


@dataclass(frozen=True)
class Quantity:
    name: str
    phase: int  # 0 forward, 1 backward, 2 parameter gradient
    split: str  # "time": one slice per step (axis 1); "gate": per gate (axis 0); "": whole
    axes: tuple  # index names, for messages
    source: str  # the contract key it is read from in the reference / candidate
    last_step: bool = False  # read source[:, -1] (C_T)
    meaning: str = ""


QUANTITIES = {
    q.name: q
    for q in (
        Quantity("c", 0, "time", ("b", "t", "j"), "c", meaning="cell state c_t"),
        Quantity("h", 0, "time", ("b", "t", "j"), "h", meaning="hidden state h_t"),
        Quantity("cT", 0, "", ("b", "j"), "c", last_step=True, meaning="final cell state C_T"),
        Quantity("dh", 1, "time", ("b", "t", "j"), "dh", meaning="total dL/dh_t"),
        Quantity("dc", 1, "time", ("b", "t", "j"), "dc", meaning="total dL/dc_t"),
        Quantity("dx", 1, "time", ("b", "t", "d"), "dx", meaning="dL/dx_t"),
        Quantity("dh0", 1, "", ("b", "j"), "dh0", meaning="dL/dh0"),
        Quantity("dc0", 1, "", ("b", "j"), "dc0", meaning="dL/dc0"),
        Quantity("dW", 2, "gate", ("gate", "d", "j"), "dW", meaning="input kernel gradient"),
        Quantity("dU", 2, "gate", ("gate", "k", "j"), "dU", meaning="recurrent kernel gradient"),
        Quantity("db", 2, "gate", ("gate", "j"), "db", meaning="bias gradient"),
        Quantity("db_ih", 2, "gate", ("gate", "j"), "db", meaning="torch bias_ih gradient"),
        Quantity("db_hh", 2, "gate", ("gate", "j"), "db", meaning="torch bias_hh gradient"),
    )
}

# The vanilla RNN (reference/rnn.py): the same names, no gates and no cell state.
RNN_QUANTITIES = {
    q.name: q
    for q in (
        Quantity("h", 0, "time", ("b", "t", "j"), "h", meaning="hidden state h_t"),
        Quantity("dh", 1, "time", ("b", "t", "j"), "dh", meaning="total dL/dh_t"),
        Quantity("dx", 1, "time", ("b", "t", "d"), "dx", meaning="dL/dx_t"),
        Quantity("dh0", 1, "", ("b", "j"), "dh0", meaning="dL/dh0"),
        Quantity("dW", 2, "", ("d", "j"), "dW", meaning="input kernel gradient"),
        Quantity("dU", 2, "", ("k", "j"), "dU", meaning="recurrent kernel gradient"),
        Quantity("db", 2, "", ("j",), "db", meaning="bias gradient"),
        Quantity("db_ih", 2, "", ("j",), "db", meaning="torch bias_ih gradient"),
        Quantity("db_hh", 2, "", ("j",), "db", meaning="torch bias_hh gradient"),
    )
}

# The LSTM under the softmax / cross-entropy head (reference/head.py): the LSTM's
# quantities (the head feeds gh, gc = 0), the per-step probabilities and the head's own
# parameter gradients.
HEAD_QUANTITIES = {
    **{k: v for k, v in QUANTITIES.items() if k != "cT"},
    "p": Quantity("p", 0, "time", ("b", "t", "k"), "p", meaning="softmax output p_t"),
    "dV": Quantity("dV", 2, "", ("j", "k"), "dV", meaning="head kernel gradient"),
    "dcb": Quantity("dcb", 2, "", ("k",), "dcb", meaning="head bias gradient"),
}


def _rank(name, table):
    return list(table).index(name)


def contract_value(result, name, table=QUANTITIES):
    """The array for quantity ``name`` from a contract mapping (reference or candidate)."""
    q = table[name]
    value = result[q.source]
    return value[:, -1] if q.last_step else value


def slices(name, T, table=QUANTITIES):
    """(sort key, label, numpy index) for every slice of a quantity, in divergence order."""
    q = table[name]
    rank = _rank(name, table)
    if q.split == "time":
        steps = range(T) if q.phase == 0 else reversed(range(T))
        for n, t in enumerate(steps):
            yield (q.phase, n, rank), f"t={t}", (slice(None), t)
    elif q.split == "gate":
        for k, gate in enumerate(GATES):
            yield (q.phase, rank, k), f"gate {gate}", (k,)
    else:
        # C_T sits with the forward pass's last step; dh0/dc0 after the backward's t=0;
        # an ungated parameter gradient in the parameters' phase.
        yield (q.phase, {0: T - 1, 1: T}.get(q.phase, rank), rank), "", (Ellipsis,)


@dataclass
class SliceResult:
    quantity: str
    label: str
    key: tuple
    n_bad: int
    n: int
    index: tuple  # full-array index of the worst element
    actual: float
    expected: float
    abs_err: float
    rel_err: float
    atol: float
    rtol: float
    ratio: float  # greatest abs_err / allowed on the slice (<= 1 passes)
    axes: tuple = ()  # index names of the quantity, for messages

    @property
    def ok(self):
        return self.n_bad == 0

    def where(self):
        parts = []
        for ax, i in zip(self.axes, self.index, strict=False):
            parts.append(f"gate={GATES[i]}" if ax == "gate" else f"{ax}={i}")
        return "[" + ", ".join(parts) + "]"

    def describe(self):
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
    results: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # whole-quantity problems (shape, dtype)
    table: dict = field(default_factory=lambda: QUANTITIES)

    @property
    def ok(self):
        return not self.problems and all(r.ok for r in self.results)

    @property
    def failures(self):
        return sorted((r for r in self.results if not r.ok), key=lambda r: r.key)

    def worst_ratio(self, quantity=None):
        rs = [r.ratio for r in self.results if quantity in (None, r.quantity)]
        return max(rs) if rs else 0.0

    def message(self):
        lines = [f"{self.case_id}: {self.actual_name} differs from {self.expected_name}"]
        lines += [f"  {p}" for p in self.problems]
        fails = self.failures
        if fails:
            lines.append(f"first divergence: {fails[0].describe()}")
            lines.append("mismatched (forward t=0..T-1, backward t=T-1..0, then parameters):")
            by_q = {}
            for r in fails:
                by_q.setdefault(r.quantity, []).append(r)
            for name, rs in by_q.items():
                lines.append(f"  {name:<5} {_summarise(self.table[name], rs, self.T)}; "
                             f"worst {max(r.ratio for r in rs):.3g}x allowed")
        good = sorted({r.quantity for r in self.results} - {r.quantity for r in fails},
                      key=lambda n: _rank(n, self.table))
        if good:
            lines.append("matching: " + ", ".join(good))
        return "\n".join(lines)


def _summarise(q, rs, T):
    if q.split == "time":
        ts = sorted(int(r.label[2:]) for r in rs)
        return f"{len(ts)} of {T} steps: t={_ranges(ts)}"
    if q.split == "gate":
        return "gates " + ", ".join(r.label.split()[1] for r in rs)
    return "all"


def _ranges(ts):
    out, start = [], ts[0]
    for a, b in zip(ts, ts[1:] + [None]):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}..{a}")
            start = b
    return ",".join(out)


def _compare_quantity(name, q, T, a, e, scale, n_terms, yard32, dtype, table):
    """Every slice of one quantity at once: rows are slices (time steps, gates, or one)."""
    axis = {"time": 1, "gate": 0}.get(q.split)

    def rows(x):
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
    slice_shape = (np.moveaxis(a, axis, 0).shape[1:] if axis is not None else a.shape)
    out = []
    for key, label, index in slices(name, T, table):
        r = int(index[axis]) if axis is not None else 0
        flat = int(worst[r])
        local = np.unravel_index(flat, slice_shape) if slice_shape else ()
        abs_worst, exp_worst = float(abs_err[r, flat]), float(E[r, flat])
        out.append(SliceResult(
            quantity=name,
            label=label,
            key=key,
            n_bad=int(n_bad[r]),
            n=int(A.shape[1]),
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


def _full_index(index, local, ndim):
    """Map an index within a slice back to the full array's coordinates."""
    local = list(int(i) for i in local)
    if index == (Ellipsis,):
        return tuple(local)
    full = []
    for part in index:
        full.append(local.pop(0) if isinstance(part, slice) else int(part))
    full += local
    return tuple(full[:ndim])


def compare(case_id, actual, expected, truth, yard32, quantities, dtype, B, T,
            actual_name="candidate", expected_name="oracle", table=QUANTITIES):
    """Compare ``actual[q]`` with ``expected[q]`` for every q in ``quantities``.

    ``truth`` (the float64 reference) gives each quantity's scale; parameter gradients
    are sums of B*T per-step terms, which sets their summation floor; ``yard32`` holds
    |ref_f32 - ref_f64| per quantity (see ``gatecheck.tolerance``). All four mappings are
    keyed by quantity name. ``table`` describes the quantities (``QUANTITIES`` for the
    LSTM, ``RNN_QUANTITIES`` for the vanilla RNN).
    """
    report = Report(case_id, actual_name, expected_name, T, table=table)
    for name in quantities:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        if a.shape != e.shape:
            report.problems.append(f"{name}: shape {a.shape}, expected {e.shape}")
            continue
        scale = float(np.max(np.abs(truth[name])))
        q = table[name]
        n_terms = B * T if q.phase == 2 else 1
        report.results += _compare_quantity(name, q, T, a, e, scale, n_terms, yard32[name], dtype, table)
    return report


def assert_matches(*args, **kwargs):
    __tracebackhide__ = True
    report = compare(*args, **kwargs)
    if not report.ok:
        raise AssertionError(report.message())
    return report
