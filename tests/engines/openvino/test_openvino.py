"""The OpenVINO oracles (gatecheck.engines.openvino.oracles): a wrong remap of each family is killed at h, t = 0
through either frontend (the ONNX graphs, weights constants or fed; the converted torch layers); what the
converter emits and what the CPU plugin runs is read afresh and compared with the recorded tables; what OpenVINO
refuses or breaks (layout=1, the bidirectional graphs' crash, the GRU without bias fed, float64 computed in
float32, the bf16 default precision) still holds, so that each decline is lifted when a release fixes it; the
oracles are forward only and every decline says why. The reference against these oracles is part of the
battery (tests/battery/test_battery.py -m openvino)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gatecheck.core.cases import Case, rounded
from gatecheck.engines import ORACLES, structured
from gatecheck.engines.onnx import layout as onnx_layout
from gatecheck.engines.onnx import oracles as onnx_oracles
from gatecheck.engines.openvino import oracles as openvino
from gatecheck.engines.torch import gru_layout as torch_gru_layout
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout
from gatecheck.engines.torch_onnx import oracles as torch_onnx_oracles
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk
from gatecheck.truth.views import case_inputs

pytestmark = pytest.mark.openvino  # the OpenVINO engine's tests (tox -e openvino selects them by this marker)

MINE = {name: o for name, o in ORACLES.items() if o.framework == "openvino"}
ONNX_NAMES = {"lstm": "lstm", "rnn": "rnn", "gru": "gru", "gru-reset-before": "gru-before"}
ONNX_ORACLES = [f"openvino-onnx-{n}{g.suffix}" for g in openvino.ONNX_GRAPHS.values() for n in ONNX_NAMES.values()]
TORCH_ORACLES = [f"openvino-torch-{f}" for f in ("lstm", "gru", "rnn")]
FAMILY_OF = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}


@pytest.fixture
def need(request):
    from conftest import require_framework

    return require_framework(request.config, "openvino")


def _ci_case(name, options=()):
    """The oracle's first float32 ci case under ``options`` with B, T, H >= 2 in the std regime (at H = 1 a
    transpose is no mutant)."""
    o = MINE[name]
    return next(c for c in grid("ci", FAMILIES[o.family], [name])
                if c.options == options and c.regime == "std" and min(c.B, c.T, c.H) >= 2)


def test_every_oracle_is_registered_once():
    assert sorted(MINE) == sorted(ONNX_ORACLES + TORCH_ORACLES)
    assert all(o.description.endswith("forward only") for o in MINE.values())


# --- the grid --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MINE))
def test_the_ci_grid_gives_every_oracle_float32_cases_of_each_set_it_runs(name):
    o = MINE[name]
    family = FAMILIES[o.family]
    cases = grid("ci", family, [name])
    assert cases and {c.dtype for c in cases} == {"f32"}
    ran = {c.options for c in cases}
    for s in [()] + opts.grid_sets(family):
        if s in {b.get("options", ()) for b in family.profiles["ci"]} and o.offers(s, "f32"):
            assert s in ran, s
        if not o.offers(s, "f32"):
            assert s not in ran, s


# --- a remap mutant per family, killed through each frontend ---------------------------------------------------

_REAL_TO_ONNX = onnx_layout.to_onnx


def _onnx_gates_in(order):
    """The ONNX remap with the gate blocks stacked in ``order`` (canonical gate indices) instead of ONNX's."""
    def remap(kind, params):
        out = _REAL_TO_ONNX(kind, params)
        real = onnx_layout.GATES[kind]

        def reorder(a):
            by_gate = dict(zip(real, np.split(a, len(real)), strict=True))
            return np.concatenate([by_gate[g] for g in order])

        out.update(W=reorder(out["W"]), R=reorder(out["R"]))
        if "B" in out:
            out["B"] = np.concatenate([reorder(half) for half in np.split(out["B"], 2)])
        return out
    return remap


def _onnx_recurrent_untransposed(kind, params):
    out = _REAL_TO_ONNX(kind, params)
    H = out["R"].shape[1]
    out["R"] = np.concatenate([block.T for block in np.split(out["R"], out["R"].shape[0] // H)])
    return out


ONNX_MUTANTS = {  # family -> (the wrong ONNX remap, what it does)
    "lstm": (_onnx_gates_in((0, 1, 3, 2)), "gates written i, f, o, c (ONNX wants i, o, f, c)"),
    "gru": (_onnx_gates_in((0, 1, 2)), "gates r, z, h (ONNX wants z, r, h)"),
    "gru-reset-before": (_onnx_gates_in((0, 1, 2)), "gates r, z, h (ONNX wants z, r, h)"),
    "rnn": (_onnx_recurrent_untransposed, "R = U, not U^T"),
}


def _torch_gates_swapped(to_torch, order):
    def remap(params):
        return to_torch({k: v[order] if k in ("W", "U", "b", "bx", "bh") else v for k, v in params.items()})
    return remap


def _torch_recurrent_untransposed(to_torch):
    def remap(params):
        return dict(to_torch(params), weight_hh=np.ascontiguousarray(params["U"]))
    return remap


TORCH_MUTANTS = {  # family -> (the module holding the remap, its mutant, what it does)
    "lstm": (torch_layout, lambda: _torch_gates_swapped(torch_layout.to_torch, [1, 0, 2, 3]), "gates i and f exchanged"),
    "gru": (torch_gru_layout, lambda: _torch_gates_swapped(torch_gru_layout.to_torch, [1, 0, 2]),
            "gates r and z exchanged"),
    "rnn": (torch_rnn_layout, lambda: _torch_recurrent_untransposed(torch_rnn_layout.to_torch), "weight_hh = U, not U.T"),
}


def _killed_at_h0(oracle, case, what):
    report = run_case(case, oracle)
    assert not report.ok, f"{case.id}: the remap with {what} still matches"
    first = report.failures[0]
    assert (first.quantity, first.step) == ("h", 0), (what, first.describe())


@pytest.mark.parametrize("name", ONNX_ORACLES)
def test_a_wrong_onnx_remap_is_killed_at_h0(name, need, monkeypatch):
    """The case's weights reach OpenVINO's ONNX frontend through the ONNX remap, looked up per case, whether they
    become constants of the graph (compiled per case) or are fed: a wrong remap fails first at h, t = 0."""
    oracle = MINE[name]
    case = _ci_case(name)
    assert run_case(case, oracle).ok
    remap, what = ONNX_MUTANTS[oracle.family]
    monkeypatch.setattr(onnx_layout, "to_onnx", remap)
    _killed_at_h0(oracle, case, what)


@pytest.mark.parametrize("name", TORCH_ORACLES)
def test_a_wrong_torch_remap_is_killed_through_the_conversion(name, need, monkeypatch):
    oracle = MINE[name]
    case = _ci_case(name)
    assert run_case(case, oracle).ok
    holder, mutant, what = TORCH_MUTANTS[oracle.family]
    monkeypatch.setattr(holder, "to_torch", mutant())
    _killed_at_h0(oracle, case, what)


def test_the_onnx_graph_is_compiled_per_case_with_the_weights_constant(need, monkeypatch):
    """openvino-onnx-*: the graph OpenVINO reads holds the case's weights as constants (no weight input is left),
    so the CPU plugin compiles it as a deployed model; openvino-onnx-*-fed feed them."""
    read = []
    real = openvino.read_onnx

    def spy(model):
        read.append(sorted(i.name for i in model.graph.input))
        return real(model)

    monkeypatch.setattr(openvino, "read_onnx", spy)
    onnx_oracles.session.cache_clear()
    try:
        for name in ("openvino-onnx-lstm", "openvino-onnx-lstm-fed"):
            assert run_case(_ci_case(name), MINE[name]).ok
    finally:
        onnx_oracles.session.cache_clear()
    assert read == [["X", "initial_c0", "initial_h0"], ["B0", "R0", "W0", "X", "initial_c0", "initial_h0"]], read


# --- what OpenVINO makes of the models, read afresh ------------------------------------------------------------


def _inputs(family, options=(), dtype=np.float32, B=2, T=4):
    record = opts.under(FAMILIES[family], opts.canonical(options))
    return rounded(record.make_inputs(Case("-", B, T, 3, 4, "f64", 0, "std", options)), dtype)


def _error_text(exc):
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _derive(family, options):
    """What convert_model makes of a family's torch layer under options: (recurrence, error text)."""
    inputs = _inputs(family, options)
    model = structured.modelled(torch_onnx_oracles.MODELS[family], options)
    module = openvino.torch_common.layer(model, options, inputs).eval()
    example = openvino._example(model, options, inputs, *openvino.export_shape(2, 4))
    try:
        converted = openvino.convert(module, model, options, example)
    except Exception as exc:  # noqa: BLE001 (any exception of the converter is a finding to compare)
        return "", _error_text(exc)
    return openvino.recurrence(converted), ""


RULES = [pytest.param(module, rule, id=f"{module}-{'-'.join(rule) or 'otherwise'}")
         for module, rules in openvino.CONVERTS.items() for rule, _ in rules]


@pytest.mark.parametrize("module,rule", RULES)
def test_what_the_converter_emits_is_the_recorded(module, rule, need):
    recorded, _ = openvino.outcome(module, rule)
    emits, text = _derive(FAMILY_OF[module], rule)
    assert (emits, "convert" if text else "") == (recorded.emits, recorded.fails), (
        f"convert_model nn.{module} {list(rule) or '(otherwise)'}: emits {emits or '-'}; CONVERTS (read at "
        f"{openvino.READ_AT}) records {recorded}: the converter changed, update CONVERTS\n{text[:2000]}")
    assert recorded.says in text, text[:2000]


@pytest.mark.parametrize("kind", sorted(openvino.ONNX_GRAPHS))
@pytest.mark.parametrize("op", sorted(openvino.READS))
def test_what_openvino_reads_and_runs_of_the_onnx_graphs_is_the_recorded(op, kind, need):
    """read_model gives the op's sequence op; the CPU plugin runs it as ONNX_GRAPHS records (its fused RNN node
    with the weights constants, a TensorIterator of cells with the weights fed)."""
    graph = openvino.ONNX_GRAPHS[kind]
    node = {"LSTM": onnx_oracles.LSTM, "GRU": onnx_oracles.GRU, "RNN": onnx_oracles.RNN}[op]
    model = onnx_oracles.build_model(node, 4, "float32", openvino.LAYOUT, True, "forward", None, 1, False)
    if graph.weights == "constants":
        inputs = _inputs(FAMILY_OF[op])
        model = openvino.with_constants(model, {f"{k}0": v for k, v in onnx_layout.stack_directions(
            [onnx_layout.to_onnx(node.kind, structured.part(inputs, ""))]).items()})
    read = openvino.read_onnx(model)
    assert openvino.recurrence(read) == openvino.READS[op]
    runs = openvino.runtime_ops(openvino.compile_cpu(read))
    assert graph.runs in runs and not ({"RNNSeq", "TensorIterator"} - {graph.runs}) & runs, sorted(runs)


def test_the_converted_lstm_runs_on_the_fused_node(need):
    """The converted torch layer holds its weights as constants: the CPU plugin runs it as the fused RNN node (the
    node whose sequence lengths are ignored: the deviation of openvino-torch-lstm under len)."""
    inputs = _inputs("lstm", ("len",))
    model = structured.modelled(torch_onnx_oracles.MODELS["lstm"], ("len",))
    module = openvino.torch_common.layer(model, ("len",), inputs).eval()
    converted = openvino.convert(module, model, ("len",), openvino._example(model, ("len",), inputs, 5, 3))
    assert "RNNSeq" in openvino.runtime_ops(openvino.compile_cpu(converted))


def _crashes(code):
    """Run ``code`` in a fresh interpreter: (its return code, its stdout and stderr)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_compiling_a_bidirectional_graph_with_its_merge_still_aborts(need):
    """Why the ONNX oracles decline bi* (BI_CRASH): in a process of its own (it aborts), a layout=0 graph of a
    bidirectional node with its merge. When this fails, OpenVINO fixed it: lift the decline."""
    code, err = _crashes("""
        from gatecheck.engines.onnx import oracles as onnx_oracles
        from gatecheck.engines.openvino import oracles as openvino
        model = onnx_oracles.build_model(onnx_oracles.RNN, 4, "float32", 0, True, "bidirectional", "concat", 1, False)
        openvino.compile_cpu(openvino.read_onnx(model))
        print("compiled")
    """)
    assert code != 0 and "compiled" not in err.splitlines(), err[-2000:]
    assert "free(): invalid pointer" in err, err[-2000:]
    for merge in opts.MERGES:
        assert MINE["openvino-onnx-rnn"].declined((merge,)).startswith(openvino.BI_CRASH)


def test_the_onnx_frontend_still_reads_layout_1_as_layout_0(need):
    """Why the ONNX oracles build layout=0 graphs only (openvinotoolkit/openvino#37820): a layout=1 graph's outputs
    do not come back in layout=1's shapes. In a process of its own (the process may abort). When this fails,
    add layout=1 oracles."""
    code, err = _crashes("""
        import numpy as np
        from gatecheck.engines.onnx import oracles as onnx_oracles
        from gatecheck.engines.openvino import oracles as openvino
        B, T, D, H = 3, 7, 2, 4
        model = onnx_oracles.build_model(onnx_oracles.RNN, H, "float32", 1, True, "forward", None, 1, False)
        run = openvino.openvino_fed(model)
        rng = np.random.default_rng(0)
        out = run({"X": rng.standard_normal((B, T, D)).astype(np.float32),
                   "W0": rng.standard_normal((1, H, D)).astype(np.float32),
                   "R0": rng.standard_normal((1, H, H)).astype(np.float32),
                   "B0": rng.standard_normal((1, 2 * H)).astype(np.float32),
                   "initial_h0": rng.standard_normal((B, 1, H)).astype(np.float32)})
        assert out["Y0"].shape != (B, T, 1, H), out["Y0"].shape
        print("misread", out["Y0"].shape)
    """)
    # aborted (a signal), or ran and printed the misread shape; a fixed frontend fails the assertion inside (1)
    assert code < 0 or (code == 0 and "misread" in err), f"return code {code}:\n{err[-2000:]}"


def test_openvino_sends_no_telemetry(need):
    """Importing openvino and converting a layer post usage telemetry from a forked process unless telemetry is
    off (frameworks.openvino_telemetry_off): in a fresh process, neither forks, and CI is left as it was."""
    code, out = _crashes("""
        import os
        os.environ.pop("CI", None)
        os.register_at_fork(before=lambda: print("forked", flush=True))
        import time
        from gatecheck.core.cases import Case
        from gatecheck.engines import ORACLES
        from gatecheck.run.battery import run_case
        print("ok", run_case(Case("openvino-torch-rnn", 2, 3, 4, 5, "f32", 0), ORACLES["openvino-torch-rnn"]).ok)
        time.sleep(1)  # (the telemetry's sender runs in a thread)
        print("CI", os.environ.get("CI"))
    """)
    assert code == 0 and "ok True" in out and "CI None" in out, out[-2000:]
    assert "forked" not in out, out[-2000:]


def test_the_gru_without_bias_fed_is_still_refused(need):
    model = onnx_oracles.build_model(onnx_oracles.GRU, 4, "float32", 0, False, "forward", None, 1, False)
    with pytest.raises(Exception, match="to_shape was called on a dynamic shape"):
        openvino.read_onnx(model)
    assert openvino.GRU_NOBIAS_FED in MINE["openvino-onnx-gru-fed"].declined(("nobias",))
    assert MINE["openvino-onnx-gru"].declined(("nobias",)) is None


@pytest.mark.parametrize("op", sorted(openvino.READS))
def test_the_cpu_plugin_still_computes_float64_in_float32(op, need):
    """Why every OpenVINO oracle declines float64: the float64 graph's outputs are float64 but carry float32
    numbers (they equal the float32 graph's on the same, float32-exact, inputs, and differ from the float64
    reference by float32 rounding). When this fails, lift the decline."""
    family = FAMILY_OF[op]
    node = {"LSTM": onnx_oracles.LSTM, "GRU": onnx_oracles.GRU, "RNN": onnx_oracles.RNN}[op]
    inputs32 = _inputs(family, B=3, T=6)
    inputs64 = {k: v.astype(np.float64) for k, v in inputs32.items()}
    out64 = onnx_oracles.run(openvino.openvino_fed, node, 0, inputs64)["h"]
    out32 = onnx_oracles.run(openvino.openvino_fed, node, 0, inputs32)["h"]
    truth = FAMILIES[family].run(**inputs64)["h"]
    assert out64.dtype == np.float64
    assert np.abs(out64 - out32).max() <= 1e-6, np.abs(out64 - out32).max()
    assert np.abs(out64 - truth).max() > 1e-9, np.abs(out64 - truth).max()
    assert all(o.declined((), "f64") == openvino.F64 for o in MINE.values())


def test_every_model_is_compiled_in_float32_whatever_the_cpu_default(need, monkeypatch):
    """INFERENCE_PRECISION_HINT is stated f32 and checked after compiling: a compile that took another precision
    (the plugin's default is bf16 on CPUs with AVX-512 BF16 or AMX) is refused, not run."""
    assert openvino.config()["INFERENCE_PRECISION_HINT"] == "f32"
    default = str(openvino.core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
    monkeypatch.setattr(openvino, "config", lambda: {})
    case = _ci_case("openvino-onnx-rnn")
    if "float32" in default:
        pytest.skip(f"this CPU's default inference precision is {default}: nothing to refuse")
    onnx_oracles.session.cache_clear()
    with pytest.raises(RuntimeError, match="not f32"):
        run_case(case, MINE["openvino-onnx-rnn"])


# --- declines and forward only ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MINE))
def test_every_decline_says_why(name):
    """Every grid set and dtype an oracle does not run has its reason with the version it was read at, and
    running it anyway is refused with that reason (before OpenVINO is called)."""
    o = MINE[name]
    family = FAMILIES[o.family]
    for s in [()] + opts.grid_sets(family):
        if not set(s) <= o.options:
            continue
        record = opts.under(family, s)
        for dtype, np_dtype in (("f32", np.float32), ("f64", np.float64)):
            why = o.declined(s, dtype)
            if o.offers(s, dtype):
                assert why is None
                continue
            assert why and openvino.READ_AT["openvino"] in why, (s, why)
            inputs = rounded(record.make_inputs(Case(name, 2, 3, 4, 5, dtype, 0)), np_dtype)
            with pytest.raises(ValueError) as exc:
                o.run(inputs, s)
            assert why in str(exc.value)


@pytest.mark.parametrize("name", sorted(MINE))
def test_the_oracles_are_forward_only(name):
    o = MINE[name]
    family = FAMILIES[o.family]
    table = family.quantities
    gradients = [k for k in family.contract if table.get(k) is None or table[k].phase > 0]
    assert set(gradients) <= set(o.cannot_observe) and all(o.cannot_observe.values())
    assert all("no autodiff" in o.cannot_observe[g] for g in gradients if g.startswith("d"))
    for s in [()] + opts.grid_sets(family):
        if set(s) <= o.options:
            assert not [q for q in o.returns(s) if q.startswith("d")], s


def test_check_says_the_oracles_observe_no_gradient():
    records = [dict(status="match", oracle="openvino-onnx-gru", ratio=0.1, compared=["h"])]
    code, headline = chk.verdict(records, FAMILIES["gru"], None)
    assert code == chk.FORWARD_ONLY and "the oracles run observe no gradient: openvino-onnx-gru" in headline


def test_the_recorded_tables_read_as_text():
    lines = openvino.converted_table()
    assert lines[0] == f"read at openvino {openvino.READ_AT['openvino']}, torch {openvino.READ_AT['torch']}"
    assert len(lines) == 1 + sum(len(r) for r in openvino.CONVERTS.values()) + len(openvino.ONNX_GRAPHS)


def test_a_case_of_the_plain_family_runs_on_canonical_inputs(need):
    """The oracles take the family's canonical inputs as the battery gives them (case_inputs) and keep float32."""
    inputs = {k: v.astype(np.float32) for k, v in case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), FAMILIES["gru"]).items()}
    for name in ("openvino-onnx-gru", "openvino-onnx-gru-fed", "openvino-torch-gru"):
        out = MINE[name].run(inputs)
        assert out["h"].dtype == np.float32 and out["h"].shape == (2, 3, 5), name


@pytest.mark.parametrize("node", [onnx_oracles.LSTM, onnx_oracles.GRU, onnx_oracles.GRU_BEFORE], ids=["lstm", "gru", "gru-before"])
def test_hard_sigmoid_gates_are_still_refused_and_relu_runs(node, need):
    """Why the ONNX graph oracles decline hardsig (HARD_SIGMOID): the CPU plugin refuses a HardSigmoid in the
    gates whether the weights are graph inputs or constants; relu in the state's place compiles."""
    for options, refused in ((("hardsig",), True), (("relu",), False)):
        model = onnx_oracles.build_model(node.under(options), 4, "float32", 0, True, "forward", None, 1, False)
        if refused:
            with pytest.raises(Exception, match="Unsupported activation function"):
                openvino.compile_cpu(openvino.read_onnx(model))
        else:
            openvino.compile_cpu(openvino.read_onnx(model))
    family = {"LSTM": "lstm", "GRU": "gru"}[node.op]
    for name in (n for n, o in MINE.items() if o.family.startswith(family) and n.startswith("openvino-onnx")):
        assert MINE[name].declined(("hardsig",)).startswith(openvino.HARD_SIGMOID), name
        assert MINE[name].declined(("relu",)) is None, name


def test_the_onnx_frontend_still_drops_the_peepholes_and_input_forget(need):
    """Why openvino-onnx-lstm-fed declines peep (PEEPHOLES_FED) and the LSTM's coupled and peep cases deviate: the
    frontend builds a v5::LSTMSequence, which has no P and no input_forget. A fed P is gone from the model read (no
    input P0 left); input_forget leaves the op as it is without it; the fed graph's coupled cases run."""
    peep = onnx_oracles.build_model(onnx_oracles.LSTM.under(("peep",)), 4, "float32", 0, True, "forward", None, 1,
                                    False)
    assert "P0" in {i.name for i in peep.graph.input}
    read = openvino.read_onnx(peep)
    assert "P0" not in {n for i in read.inputs for n in i.get_names()}
    assert {op.get_type_name() for op in read.get_ordered_ops()} & set(openvino.SEQUENCES) == {"LSTMSequence"}
    assert MINE["openvino-onnx-lstm-fed"].declined(("peep",)).startswith(openvino.PEEPHOLES_FED)
    assert MINE["openvino-onnx-lstm"].declined(("peep",)) is None
    assert all(MINE[n].declined(("coupled",)) is None for n in ("openvino-onnx-lstm", "openvino-onnx-lstm-fed"))
