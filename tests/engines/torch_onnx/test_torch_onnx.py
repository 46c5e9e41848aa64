"""PyTorch's ONNX exporters as oracles (gatecheck/engines/torch_onnx/oracles.py): the remaps still matter through the
export, the export runs at a shape no case has, what each exporter emits is read afresh from the graphs and
compared with the recorded table, every decline says why, and the oracles are forward only."""

import numpy as np
import pytest

from gatecheck.core.cases import Case, rounded
from gatecheck.engines import ORACLES, structured
from gatecheck.engines.frameworks import installed_versions, ort_session
from gatecheck.engines.torch import gru_layout as torch_gru_layout
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.engines.torch import rnn_layout as torch_rnn_layout
from gatecheck.engines.torch_onnx import oracles as torch_onnx
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid
from gatecheck.tools import check as chk

MINE = {name: o for name, o in ORACLES.items() if o.framework == "torch-onnx"}
FAMILY_OF = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}


@pytest.fixture
def need(request):
    from conftest import require_framework

    return require_framework(request.config, "torch-onnx")


def _ci_case(name):
    """An oracle's first ci case without options in the std regime with B, T, H > 1 (None: it has none; at
    H = 1 a transpose is no mutant)."""
    o = MINE[name]
    found = [c for c in grid("ci", FAMILIES[o.family], [name])
             if not c.options and c.regime == "std" and min(c.B, c.T, c.H) > 1]
    return found[0] if found else None


RUNNING = [name for name in MINE if _ci_case(name)]


def test_every_exporter_and_family_is_registered_once():
    assert sorted(MINE) == sorted(f"torch-{e}-{f}" for e in ("onnx", "dynamo") for f in ("lstm", "gru", "rnn"))
    assert RUNNING == [n for n in MINE if n != "torch-dynamo-rnn"]  # its time axis freezes (EXPORTS)


# --- the export shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["ci", "nightly"])
def test_the_export_shape_differs_from_every_case_it_runs(profile):
    for name, o in MINE.items():
        for c in grid(profile, FAMILIES[o.family], [name]):
            B, T = torch_onnx.export_shape(c.B, c.T)
            assert B != c.B and T != c.T and min(B, T) >= 2, c.id


@pytest.mark.parametrize("name", ["torch-onnx-lstm", "torch-dynamo-gru"])
def test_the_graph_is_exported_at_that_shape_with_batch_and_time_dynamic(name, need, monkeypatch):
    seen = []
    export = torch_onnx._export

    def spy(exporter, module, model, options, example):
        proto = export(exporter, module, model, options, example)
        x = next(i for i in proto.graph.input if i.name == "x")
        seen.append((tuple(example[0].shape[:2]), [d.dim_param or d.dim_value for d in x.type.tensor_type.shape.dim]))
        return proto

    monkeypatch.setattr(torch_onnx, "_export", spy)
    monkeypatch.setattr(torch_onnx, "_SESSIONS", {})
    case = _ci_case(name)
    assert run_case(case, MINE[name]).ok
    [(shape, dims)] = seen
    assert shape == torch_onnx.export_shape(case.B, case.T) and shape[0] != case.B and shape[1] != case.T
    assert all(isinstance(d, str) and d for d in dims[:2]), dims  # symbolic batch and time


# --- a remap mutant per family is killed through the export --------------------------------------------


def _gates_swapped(to_torch, order):
    """The canonical -> torch remap with two gate blocks exchanged (``order``: the blocks' new order)."""
    def remap(params):
        return to_torch({k: v[order] if k in ("W", "U", "b", "bx", "bh") else v for k, v in params.items()})
    return remap


def _recurrent_untransposed(to_torch):
    """The vanilla RNN's remap with weight_hh = U rather than U.T."""
    def remap(params):
        return dict(to_torch(params), weight_hh=np.ascontiguousarray(params["U"]))
    return remap


MUTANTS = {  # family -> (module holding the remap, its mutant, what it does)
    "lstm": (torch_layout, lambda: _gates_swapped(torch_layout.to_torch, [1, 0, 2, 3]), "gates i and f exchanged"),
    "gru": (torch_gru_layout, lambda: _gates_swapped(torch_gru_layout.to_torch, [1, 0, 2]), "gates r and z exchanged"),
    "rnn": (torch_rnn_layout, lambda: _recurrent_untransposed(torch_rnn_layout.to_torch), "weight_hh = U, not U.T"),
}


@pytest.mark.parametrize("name", RUNNING)
def test_a_remap_mutant_is_killed_through_the_export(name, need, monkeypatch):
    """The canonical weights reach the exported graph through the family's remap, looked up per case:
    a wrong remap fails against the reference, first at h, t = 0."""
    oracle, case = MINE[name], _ci_case(name)
    holder, mutant, what = MUTANTS[oracle.family]
    assert run_case(case, oracle).ok
    monkeypatch.setattr(holder, "to_torch", mutant())
    report = run_case(case, oracle)
    assert not report.ok, f"{case.id}: the remap with {what} still matches"
    first = report.failures[0]
    assert (first.quantity, first.step) == ("h", 0), first.describe()


# --- what each exporter emits, read afresh ---------------------------------------------------------------


def _node_types(model):
    """Every node type of an ONNX model, nested subgraphs (Loop, Scan, If bodies) and local functions included."""
    import onnx

    def walk(graph):
        for node in graph.node:
            yield node.op_type
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from walk(attr.g)
                for sub in attr.graphs:
                    yield from walk(sub)

    found = set(walk(model.graph))
    for function in model.functions:
        found |= set(walk(function))
    return found


def _error_text(exc):
    """An exception's message with every cause's (torch.onnx wraps torch.export's error)."""
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


def _derive(exporter, family, options, dtype="f32"):
    """What an exporter makes of a family's torch layer under options, read from the exported graph and
    onnxruntime: (recurrence, frozen time axis, where it fails, the error's text)."""
    record = opts.under(FAMILIES[family], opts.canonical(options))
    B, T = 2, 4
    inputs = rounded(record.make_inputs(Case("-", B, T, 3, 4, "f64", 0)), np.float32 if dtype == "f32" else np.float64)
    model = structured.modelled(torch_onnx.MODELS[family], options)
    module = torch_onnx._module(model, options, inputs)
    example = torch_onnx._example(model, options, inputs, *torch_onnx.export_shape(B, T))
    try:
        proto = torch_onnx._export(exporter, module, model, options, example)
    except Exception as exc:  # noqa: BLE001 (any exception of the exporter is a finding to compare)
        return "", False, "export", _error_text(exc)
    found = _node_types(proto)
    fused = sorted(found & set(torch_onnx.FUSED))
    loops = sorted(found & {"Loop", "Scan"})
    emits = "+".join(fused) or "+".join(loops) or "unrolled"
    x = next(i for i in proto.graph.input if i.name == "x")
    frozen = x.type.tensor_type.shape.dim[1].HasField("dim_value")
    try:
        session = ort_session(proto)
    except Exception as exc:  # noqa: BLE001
        return emits, frozen, "session", _error_text(exc)
    names = structured.suffixes(options)
    feeds = {"x": inputs["x"], **{k: np.stack([inputs[k + s] for s in names]) for k in model.states}}
    if opts.masking(options):
        feeds["lengths"] = structured.right_padded_lengths(inputs["mask"]).astype(np.int64)
    if exporter == "dynamo":
        feeds.update({n: p.detach().numpy() for n, p in module.named_parameters()})
    try:
        session.run(None, feeds)
    except Exception as exc:  # noqa: BLE001
        return emits, frozen, "run", _error_text(exc)
    return emits, frozen, "", ""


RULES = [pytest.param(exporter, module, rule, id=f"{exporter}-{module}-{'-'.join(rule) or 'otherwise'}")
         for (exporter, module), rules in torch_onnx.EXPORTS.items() for rule, _ in rules]


def _versions():
    v = installed_versions()
    return f"torch {v.get('torch')}, onnxscript {v.get('onnxscript')}, onnxruntime {v.get('onnxruntime')}"


@pytest.mark.parametrize("exporter,module,rule", RULES)
def test_what_the_exporter_emits_is_the_recorded(exporter, module, rule, need):
    """Each rule of EXPORTS, exported afresh at its own options: the recurrent node the graph carries
    (nested subgraphs included), a frozen time axis, and where and with which words it fails."""
    recorded, _ = torch_onnx.outcome(exporter, module, rule)
    emits, frozen, fails, text = _derive(exporter, FAMILY_OF[module], rule)
    derived = (emits if fails != "export" else "", frozen, fails)
    wanted = (recorded.emits, recorded.frozen_time, recorded.fails)
    assert derived == wanted, (
        f"{exporter} nn.{module} {list(rule) or '(otherwise)'} at {_versions()}: emits {emits or '-'}, frozen time "
        f"{frozen}, fails at {fails or 'nothing'}; EXPORTS (read at {torch_onnx.READ_AT}) records {recorded}: "
        f"the exporter changed, update EXPORTS (and docs/maintainer/engines.md)\n{text[:2000]}")
    assert recorded.says in text, f"{exporter} nn.{module} {list(rule)}: the error no longer says " \
                                  f"{recorded.says!r}:\n{text[:2000]}"


PLAIN_FUSED = [(exporter, module) for (exporter, module) in torch_onnx.EXPORTS
               if torch_onnx.outcome(exporter, module, ())[0].emits in torch_onnx.FUSED]


@pytest.mark.parametrize("exporter,module", PLAIN_FUSED)
def test_onnxruntime_refuses_the_fused_nodes_in_float64(exporter, module, need):
    """Why these oracles decline float64 (Oracle.declines_dtype): onnxruntime's kernel of the node."""
    recorded = torch_onnx.outcome(exporter, module, ())[0].emits
    emits, _, fails, text = _derive(exporter, FAMILY_OF[module], (), "f64")
    assert emits == recorded and fails in ("session", "run") and torch_onnx.ORT_FLOAT64[emits] in text, text[:2000]
    name = f"torch-{'onnx' if exporter == 'torchscript' else 'dynamo'}-{FAMILY_OF[module]}"
    assert torch_onnx.ORT_FLOAT64[emits] in MINE[name].declined((), "f64")


def test_a_second_dynamo_export_in_a_process_freezes_time_without_the_cleared_cache(need, monkeypatch):
    """Why torch_onnx._fresh_rnn_decompositions exists (torch 2.13): the first export of an LSTM keeps its
    time axis dynamic, the next one in the same process freezes it. When this fails, torch fixed it: drop
    the workaround."""
    import torch

    monkeypatch.setattr(torch_onnx, "_fresh_rnn_decompositions", lambda torch: None)
    torch.ops.aten.lstm.input._dispatch_cache.clear()  # as in a fresh process
    first = _derive("dynamo", "lstm", ())
    second = _derive("dynamo", "lstm", ())
    assert first[:3] == ("LSTM", False, "") and second[:3] == ("LSTM", True, "run"), (first[:3], second[:3],
                                                                                      _versions())


# --- declines and forward only -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MINE))
def test_every_decline_says_why(name):
    """Every grid set and dtype an oracle does not run has its reason, with the versions it was read at,
    and running it anyway is refused with that reason (before any export)."""
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
            assert why and (torch_onnx.READ_AT["torch"] in why or torch_onnx.READ_AT["onnxruntime"] in why), (s, why)
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
    for s in [()] + opts.grid_sets(family):
        if set(s) <= o.options:
            assert not [q for q in o.returns(s) if q.startswith("d")], s


def test_check_says_the_oracles_observe_no_gradient():
    records = [dict(status="match", oracle="torch-onnx-gru", ratio=0.1, compared=["h"])]
    code, headline = chk.verdict(records, FAMILIES["gru"], None)
    assert code == chk.FORWARD_ONLY and "the oracles run observe no gradient: torch-onnx-gru" in headline


def test_the_recorded_table_reads_as_text():
    lines = torch_onnx.emitted_table()
    assert lines[0].startswith(f"read at torch {torch_onnx.READ_AT['torch']}")
    assert len(lines) == 1 + sum(len(rules) for rules in torch_onnx.EXPORTS.values())
    assert all(MINE[n].description.endswith("forward only") for n in MINE)
