"""The ExecuTorch oracles (gatecheck/engines/executorch/): their remaps (pure NumPy: round trips, gate order,
where each bias goes), a wrong remap per oracle failing against the reference from its first divergence,
dtypes kept, the XNNPACK lowering's delegation and its float64 decline's cause, the static batch. Every oracle
against every ci case is the battery's (tests/battery/test_battery.py, marker executorch)."""

import itertools

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.engines.executorch import layout as et_layout
from gatecheck.engines.executorch import oracles as et_oracles
from gatecheck.families import FAMILIES
from gatecheck.model import options as opts
from gatecheck.truth.views import view
from tests.engines.remaps import wrong_remap_fails

EXECUTORCH = [name for name, o in ORACLES.items() if o.framework == "executorch"]
SHAPES = [(1, 1), (3, 2), (4, 5), (1, 4)]  # (D, H), D != H included
REMAPS = {"lstm": (et_layout.to_lstm_step, et_layout.from_lstm_step, 4),
          "gru": (et_layout.to_gru_step, et_layout.from_gru_step, 3),
          "rnn": (et_layout.to_rnn_step, et_layout.from_rnn_step, 1)}


def _params(family, D, H, seed=0):
    """A family's weights with every gate block distinct (so that a permutation cannot hide)."""
    inputs = FAMILIES[family].make_inputs(Case("-", 2, 3, D, H, "f64", seed))
    p = {k: inputs[k] for k in ("W", "U", "b", "bx", "bh") if k in inputs}
    if p["W"].ndim == 3:
        for name, value in p.items():
            for j, k in itertools.combinations(range(value.shape[0]), 2):
                assert not np.array_equal(value[j], value[k]), (name, j, k)
    return p


def _require(request):
    from conftest import require_framework

    return require_framework(request.config, "executorch")


# --- the remaps ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(REMAPS))
@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
def test_remaps_round_trip_with_and_without_biases(family, D, H):
    to, back, gates = REMAPS[family]
    p = _params(family, D, H)
    arrays = to(p)
    assert [a.shape for a in arrays] == [(gates * H, D), (gates * H, H), (gates * H,), (gates * H,)]
    assert all(a.flags.c_contiguous for a in arrays)
    found = back(arrays)
    assert set(found) == set(p) and all(np.array_equal(found[k], p[k]) for k in p), family
    no_bias = {k: v for k, v in p.items() if k in ("W", "U")}
    assert len(to(no_bias)) == 2
    found = back(to(no_bias))
    assert set(found) == {"W", "U"} and all(np.array_equal(found[k], p[k]) for k in found), family


@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
def test_where_each_bias_goes(D, H):
    """The LSTM's and RNN's one bias in halves in both slots; the GRU's bx in bias_ih, bh in bias_hh, gates
    r, z, n in their blocks."""
    for family in ("lstm", "rnn"):
        p = _params(family, D, H)
        _, _, b_ih, b_hh = REMAPS[family][0](p)
        assert np.array_equal(b_ih, b_hh) and np.array_equal(b_ih + b_hh, p["b"].reshape(-1)), family
    p = _params("gru", D, H)
    w_ih, w_hh, b_ih, b_hh = et_layout.to_gru_step(p)
    for k in range(3):
        rows = slice(k * H, (k + 1) * H)
        assert np.array_equal(w_ih[rows], p["W"][k].T) and np.array_equal(w_hh[rows], p["U"][k].T)
        assert np.array_equal(b_ih[rows], p["bx"][k]) and np.array_equal(b_hh[rows], p["bh"][k])


@pytest.mark.parametrize("perm", [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)],
                         ids=lambda p: "".join("ifgo"[k] for k in p))
def test_permuted_lstm_gates_give_other_arrays(perm):
    p = _params("lstm", 3, 4)
    a, b = et_layout.to_lstm_step(p), et_layout.to_lstm_step({k: v[list(perm)] for k, v in p.items()})
    assert all(not np.array_equal(x, y) for x, y in zip(a, b))


def test_the_program_weights_are_checked():
    with pytest.raises(ValueError, match="weights: expected weight_ih, weight_hh"):
        et_layout.ordered({"weight_ih": np.zeros((4, 1)), "weight_hh": np.zeros((4, 1)), "bias_ih": np.zeros(4)})
    with pytest.raises(ValueError, match="arrays: expected 2"):
        et_layout.named([np.zeros(1)] * 3)
    with pytest.raises(ValueError, match="options: nn.GRUCell runs"):
        et_oracles.cell_kwargs(et_oracles.GRU, ("relu",))
    with pytest.raises(ValueError, match="backend: expected one of"):
        et_oracles.lower(et_oracles.RNN, 1, 1, 1, "float32", (), "vulkan")


# --- a wrong remap fails against the reference, from where it first shows ------------------------------------


def _exchanged(to, order):
    def wrong(params):
        return to(dict(params, **{k: params[k][list(order)] for k in ("W", "U", "b", "bx", "bh") if k in params}))
    return wrong


_LSTM = ("to_lstm_step", _exchanged(et_layout.to_lstm_step, (0, 2, 1, 3)), "gates i,g,f,o (Haiku's)", "c t=0")
_GRU = ("to_gru_step", _exchanged(et_layout.to_gru_step, (1, 0, 2)), "gates z, r, n (r and z exchanged)", "h t=0")
_RNN = ("to_rnn_step", lambda p, to=et_layout.to_rnn_step: to(dict(p, U=p["U"].T)), "the recurrent weight transposed",
        "h t=0")
# oracle -> (remap name, the wrong remap, what it gets wrong, the first divergence)
WRONG = {f"executorch-{f}-step{s}": w for f, w in (("lstm", _LSTM), ("gru", _GRU), ("rnn", _RNN))
         for s in ("", "-xnnpack")}




@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_remap_fails_from_its_first_divergence(name, request, monkeypatch):
    _require(request)
    wrong_remap_fails(name, et_layout, WRONG[name], monkeypatch)


def test_every_oracle_has_a_wrong_remap_test():
    assert set(WRONG) == set(EXECUTORCH)


# --- dtypes, the static batch, the XNNPACK lowering -------------------------------------------------------------


@pytest.mark.parametrize("name,dtype", [(n, d) for n in EXECUTORCH for d in ("f32", "f64")
                                        if not ORACLES[n].declined((), d)])
def test_outputs_keep_the_inputs_dtype(name, dtype, request):
    _require(request)
    o = ORACLES[name]
    case = Case(name, 2, 3, 3, 2, dtype, 0)
    inputs = {k: v.copy() for k, v in view(case, FAMILIES[o.family])[0].items()}
    for options in [(), ("nobias",)]:
        record = opts.under(FAMILIES[o.family], options)
        out = o.run({k: v for k, v in inputs.items() if k in record.inputs}, options, o.observing(record))
        assert out and {v.dtype for v in out.values()} == {case.np_dtype}, (options, {k: v.dtype for k, v in
                                                                                     out.items()})


def test_forward_only_every_gradient_is_declared_unobservable():
    for name in EXECUTORCH:
        o = ORACLES[name]
        family = FAMILIES[o.family]
        assert not any(q.startswith("d") for q in o.observes), name
        assert set(o.cannot_observe) == {q for q in family.contract if q.startswith("d")}, name
        assert set(family.contract) <= set(o.observes) | set(o.cannot_observe), name


@pytest.mark.parametrize("family", ["lstm", "gru"])
def test_to_edge_specialises_a_dynamic_batch_of_the_gated_cells(family, request):
    """Why the programs are lowered per B: a dynamic batch Dim exports, but to_edge makes the LSTM's and GRU's x
    static at the example's batch. Once it keeps the Dim, this fails: a program per (D, H, dtype, options)
    then serves every B."""
    torch, exir, _ = _require(request)
    model = et_oracles.MODELS[family]
    cell = getattr(torch.nn, model.cell)(3, 2)
    example = (torch.zeros(4, 3),) + tuple(torch.zeros(4, 2) for _ in model.states) + tuple(
        p.detach().clone() for p in cell.parameters())
    batch = torch.export.Dim("batch", min=1, max=64)
    shapes = ({0: batch}, tuple({0: batch} if k < len(model.states) else None for k in range(len(example) - 1)))
    with _quiet():
        exported = torch.export.export(et_oracles._step_module()(cell, len(model.states)), example,
                                       dynamic_shapes=shapes, strict=False)
        edge = exir.to_edge(exported)

    def batch_of(program):  # x's first axis (x: the first user input; the cell's own parameters come before)
        x = program.graph_signature.user_inputs[0]
        return next(n for n in program.graph.nodes if n.name == x).meta["val"].shape[0]

    assert not isinstance(batch_of(exported), int)  # exported: symbolic
    assert batch_of(edge.exported_program()) == 4  # lowered: the example's


def _quiet():
    from gatecheck.engines.frameworks import executorch_quiet

    return executorch_quiet()


def test_xnnpack_delegates_in_float32_and_nothing_in_float64(request):
    """The xnnpack oracles' lowering calls XNNPACK in float32 (``oracles._checked`` refuses one that does not) and
    nothing in float64, the decline's cause: once XNNPACK takes float64 this fails."""
    _require(request)
    for family, model in et_oracles.MODELS.items():
        _, f32 = et_oracles.lower(model, 2, 3, 4, "float32", (), "xnnpack")
        _, f64 = et_oracles.lower(model, 2, 3, 4, "float64", (), "xnnpack")
        assert et_oracles.delegated(f32) and not et_oracles.delegated(f64), family
    for name in EXECUTORCH:
        assert bool(ORACLES[name].declined((), "f64")) == name.endswith("-xnnpack"), name
        assert ORACLES[name].declined((), "f32") is None, name
