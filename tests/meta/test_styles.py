"""Hand-written LSTM styles (examples/): their own functions against the
reference, and their adapters through the battery against the frameworks."""


import numpy as np
import pytest

from examples import assignment
from gatecheck.core import mutants
from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES
from gatecheck.examples import course
from gatecheck.families.lstm.record import LSTM
from gatecheck.reference import lstm
from gatecheck.run.battery import run_case
from gatecheck.run.grid import grid as family_grid
from gatecheck.tools import diagnose as dg
from gatecheck.truth.views import case_inputs

# T = 1, 7 and 64 on every oracle, except keras-lstm-cell at T = 64: its unrolled graph would be
# traced again in whichever worker runs this (seconds per dtype); the styles' per-step deltas
# at T = 64 are compared by torch-lstm-cell, and the reference's by keras-lstm-cell in the battery.
STYLE_CASES = [c for c in family_grid("ci", LSTM) if c.seed == 0 and c.T in (1, 7, 64) and c.regime in ("std", "zero")
               and not (c.oracle == "keras-lstm-cell" and c.T == 64) and not c.options]


@pytest.mark.parametrize("style,case", [
    pytest.param(style, c, id=f"{style.__name__.rsplit('.', 1)[1]}-{c.id}")
    for style in (assignment, course) for c in STYLE_CASES
])
def test_style_matches_oracle(style, case, request):
    """Each style's adapter passes every oracle; δC_t, which neither style exposes, is
    declared unobservable and so never compared."""
    from conftest import require_framework

    oracle = ORACLES[case.oracle]
    require_framework(request.config, oracle.framework)
    report = run_case(case, oracle, style.run, style.__name__ + ":run")
    assert report.ok, report.message()
    assert {r.quantity for r in report.results}.isdisjoint({"dc"})  # declared unobservable


def test_assignment_layout_is_i_f_o_g():
    inputs = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), LSTM)
    Wx, Wh, b = assignment.to_style(inputs["W"], inputs["U"], inputs["b"])
    H = 5
    for block, gate in enumerate(("i", "f", "o", "g")):
        k = lstm.GATES.index(gate)
        assert np.array_equal(Wx[:, block * H:(block + 1) * H], inputs["W"][k])
        assert np.array_equal(Wh[:, block * H:(block + 1) * H], inputs["U"][k])
        assert np.array_equal(b[block * H:(block + 1) * H], inputs["b"][k])
    back = assignment.from_style(Wx, Wh, b)
    assert all(np.array_equal(a, inputs[k]) for a, k in zip(back, ("W", "U", "b"), strict=True))


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_assignment_sequence_functions_match_the_reference(dtype):
    """forward(x, h0, ...) starts from c0 = 0 and backward(dh, cache) takes the upstream
    gradient of every h_t: the reference's zero regime (c0 = 0, gc = 0)."""
    case = Case("-", 3, 9, 4, 5, dtype, 2, "zero")
    inputs = case_inputs(case, LSTM)
    ref = lstm.run(**inputs)
    Wx, Wh, b = assignment.to_style(inputs["W"], inputs["U"], inputs["b"])
    h, cache = assignment.forward(inputs["x"], inputs["h0"], Wx, Wh, b)
    dx, dh0, dWx, dWh, db = assignment.backward(inputs["gh"], cache)
    dW, dU, dbc = assignment.from_style(dWx, dWh, db)
    rtol = 1e-12 if dtype == "f64" else 1e-4  # same arithmetic, another summation order
    for name, got in dict(h=h, dx=dx, dh0=dh0, dW=dW, dU=dU, db=dbc).items():
        np.testing.assert_allclose(got, ref[name], rtol=rtol, atol=rtol * np.abs(ref[name]).max(), err_msg=name)


def _variant(old, new):
    """The assignment style with one textual edit, loaded as its own module."""
    return mutants.edited(assignment, old, new, "assignment-variant")


def test_assignment_with_o_and_g_swapped_in_the_forward_is_diagnosed():
    """A classic slip: the forward slices g before o while the adapter (and backward)
    follow i, f, o, g."""
    variant = _variant(
        "    o = sigmoid(a[:, 2 * H : 3 * H])\n    g = np.tanh(a[:, 3 * H :])",
        "    g = np.tanh(a[:, 2 * H : 3 * H])\n    o = sigmoid(a[:, 3 * H :])",
    )
    _, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), LSTM, "variant")
    # The adapter hands the style (i, f, o, g) blocks; the slip reads block 3 as o and
    # block 4 as g, so the forward pass is right when the canonical o and g trade places;
    # the backward still follows (i, f, o, g), so the gradients stay wrong.
    assert "your gates look ordered i,f,o,g (canonical: i,f,g,o); with that layout the forward pass " \
           "matches but" in text, text


def test_assignment_without_the_forget_factor_on_dprev_c_is_diagnosed():
    variant = _variant("return da @ Wx.T, da @ Wh.T, dc * f,", "return da @ Wx.T, da @ Wh.T, dc,")
    report, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), LSTM, "variant")
    assert not report.ok
    assert "forward matches; dh wrong from t=4 (T-3) back; dx wrong from t=5 (T-2) back; " \
           "wrong: dh0, dc0, dW, dU, db" in text, text
    assert "right:" not in text  # dc is not observable in this style, so nothing is right
    assert "matches the known bug 'dc-without-forget'" in text, text


# --- node style: a different model (no output tanh) ----------------------------------

from examples import node  # noqa: E402
from gatecheck.engines import ORACLES as _REGISTRY  # noqa: E402

REFERENCE_IDENTITY = _REGISTRY["reference-lstm-identity"]

NODE_CASES = [c._replace(oracle="reference-lstm-identity") for c in STYLE_CASES if c.oracle == "torch-lstm-cell"]


@pytest.mark.parametrize("case", NODE_CASES, ids=lambda c: "node-" + c.id)
def test_node_style_matches_the_identity_output_reference(case):
    report = run_case(case, REFERENCE_IDENTITY, node.run, "examples.node:run")
    assert report.ok, report.message()


def _network_loss(params, xs, ys, h0, s0):
    net = node.Network(params, s0=s0, h0=h0)
    for x in xs:
        net.x_list_add(x)
    return net, sum(node.SquaredLoss.loss(n.h, y) for n, y in zip(net.nodes, ys, strict=True))


def test_node_style_gradients_match_finite_differences_of_its_own_loss():
    """Independent of the reference: the network's accumulated diffs against central
    differences of its squared-error loss, block by block."""
    from gatecheck.core import finite_diff as fd

    rng = np.random.default_rng(11)
    D, H, T = 3, 4, 6
    inputs = case_inputs(Case("-", 1, T, D, H, "f64", 3), LSTM)
    params = node.to_style(inputs["W"], inputs["U"], inputs["b"])
    xs, ys = inputs["x"][0], rng.standard_normal(T)
    h0, s0 = inputs["h0"][0], inputs["c0"][0]
    net, base = _network_loss(params, xs, ys, h0, s0)
    params.clear_diffs()
    net.y_list_is(ys)
    for name in ("wg", "wi", "wf", "wo", "bg", "bi", "bf", "bo"):
        value, grad = getattr(params, name), getattr(params, name + "_diff").copy()
        direction = rng.standard_normal(value.shape)

        def loss_of(offset, name=name, value=value):
            moved = node.Params(**{n: getattr(params, n) for n in ("wg", "wi", "wf", "wo", "bg", "bi", "bf", "bo")})
            setattr(moved, name, value + offset)
            return _network_loss(moved, xs, ys, h0, s0)[1]

        fd.check(fd.directional(loss_of, direction), np.sum(grad * direction), base, f"node {name}")


def test_node_style_squared_loss_is_the_contract_with_its_upstream_gradient():
    """y_list_is's diffs equal the identity-output reference's gradients for
    gh_t = 2 (h_t[0] - y_t) e_0 (one example)."""
    inputs = case_inputs(Case("-", 1, 5, 3, 4, "f64", 4, "zero"), LSTM)
    ys = np.linspace(-0.5, 0.5, 5)
    params = node.to_style(inputs["W"], inputs["U"], inputs["b"])
    net, _ = _network_loss(params, inputs["x"][0], ys, None, None)
    net.y_list_is(ys)
    ref_h = lstm.run(**inputs, output="identity")["h"][0]
    gh = np.zeros_like(inputs["gh"])
    gh[0, :, 0] = 2 * (ref_h[:, 0] - ys)
    ref = lstm.run(**dict(inputs, gh=gh), output="identity")
    dW, dU, db = node.from_style(params)
    for name, got in dict(dW=dW, dU=dU, db=db).items():
        np.testing.assert_allclose(got, ref[name], rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.torch
def test_node_style_is_diagnosed_against_the_frameworks(request):
    from conftest import require_framework

    require_framework(request.config, "torch")
    case = Case("torch-lstm-cell", 3, 7, 4, 5, "f32", 0)
    report = run_case(case, ORACLES["torch-lstm-cell"], node.run, "node")
    assert not report.ok and report.failures[0].quantity == "h" and report.failures[0].label == "t=0"
    _, text = dg.diagnose(node.run, case, LSTM, "node")
    assert "h diverges at t=0 while c_0 matches; consistent with a missing output tanh (h_t = o_t * c_t); " \
           "if that is the model you mean, check it with --family lstm-identity" in text


def test_node_layout_round_trip_and_order():
    inputs = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), LSTM)
    params = node.to_style(inputs["W"], inputs["U"], inputs["b"])
    k = lstm.GATES.index("g")
    assert np.array_equal(params.wg[:, :4], inputs["W"][k].T) and np.array_equal(params.wg[:, 4:], inputs["U"][k].T)
    for name in ("wg", "wi", "wf", "wo", "bg", "bi", "bf", "bo"):
        setattr(params, name + "_diff", getattr(params, name))
    back = node.from_style(params)
    assert all(np.array_equal(a, inputs[key]) for a, key in zip(back, ("W", "U", "b"), strict=True))


# --- course style: column-major, per-gate matrices on [a_prev; x_t] --------------------
@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_course_sequence_functions_match_the_reference(dtype):
    case = Case("-", 3, 9, 4, 5, dtype, 5, "zero")
    inputs = case_inputs(case, LSTM)
    ref = lstm.run(**inputs)
    p = course.to_style(inputs["W"], inputs["U"], inputs["b"])
    x_cm = np.ascontiguousarray(inputs["x"].transpose(2, 0, 1))  # (D, m, T)
    a, _, c, caches = course.lstm_forward(x_cm, inputs["h0"].T, p)
    grads = course.lstm_backward(np.ascontiguousarray(inputs["gh"].transpose(2, 0, 1)), caches)
    dW, dU, db = course.from_style(grads)
    got = dict(h=a.transpose(1, 2, 0), c=c.transpose(1, 2, 0), dx=grads["dx"].transpose(1, 2, 0),
               dh0=grads["da0"].T, dW=dW, dU=dU, db=db)
    rtol = 1e-12 if dtype == "f64" else 1e-4
    for name, value in got.items():
        np.testing.assert_allclose(value, ref[name], rtol=rtol, atol=rtol * np.abs(ref[name]).max(), err_msg=name)


def test_course_head_is_a_column_softmax_of_the_hidden_state():
    inputs = case_inputs(Case("-", 3, 4, 2, 5, "f64", 6), LSTM)
    rng = np.random.default_rng(6)
    Wy, by = rng.standard_normal((7, 5)), rng.standard_normal((7, 1))
    p = course.to_style(inputs["W"], inputs["U"], inputs["b"], Wy, by)
    a, y, _, _ = course.lstm_forward(np.ascontiguousarray(inputs["x"].transpose(2, 0, 1)), inputs["h0"].T, p)
    h = lstm.run(**dict(inputs, c0=np.zeros_like(inputs["c0"])))["h"]
    logits = np.einsum("vh,bth->vbt", Wy, h) + by[:, :, None]
    expected = np.exp(logits) / np.exp(logits).sum(axis=0)
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(y.sum(axis=0), 1.0, rtol=1e-14)


def test_course_layout_is_hidden_first_per_gate():
    inputs = case_inputs(Case("-", 2, 3, 4, 5, "f64", 0), LSTM)
    p = course.to_style(inputs["W"], inputs["U"], inputs["b"])
    for letter, gate in (("f", "f"), ("i", "i"), ("c", "g"), ("o", "o")):
        k = lstm.GATES.index(gate)
        assert np.array_equal(p["W" + letter][:, :5], inputs["U"][k].T)
        assert np.array_equal(p["W" + letter][:, 5:], inputs["W"][k].T)
    grads = {"dW" + letter: p["W" + letter] for letter in "fico"}
    grads.update({"db" + letter: p["b" + letter] for letter in "fico"})
    back = course.from_style(grads)
    assert all(np.array_equal(a, inputs[key]) for a, key in zip(back, ("W", "U", "b"), strict=True))


def test_course_with_input_first_concatenation_is_diagnosed():
    """[x_t; a_prev] instead of [a_prev; x_t]: the shapes still fit (H + D either way), so
    only the numbers show it: the forward diverges at t = 0, and with D == H, where the
    swap is expressible in canonical weights, the swapped concatenation is named."""
    variant = mutants.edited(course, "concat = np.concatenate([a_prev, xt], axis=0)",
                             "concat = np.concatenate([xt, a_prev], axis=0)", "course-concat", count=2)
    report, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), LSTM, "variant")
    assert report.failures[0].quantity in ("c", "h") and report.failures[0].label == "t=0"
    assert "concatenation order" not in text  # D != H: not expressible, so not claimed
    _, text = dg.diagnose(variant.run, Case("-", 2, 5, 4, 4, "f64", 1), LSTM, "variant")
    assert "the concatenation order looks swapped ([h; x] vs [x; h])" in text, text


def _course_variant(old, new):
    return mutants.edited(course, old, new, "course-variant")


def test_course_forget_gradient_with_c_next_is_diagnosed():
    variant = _course_variant("dft = dc * c_prev * ft * (1 - ft)", "dft = dc * c_next * ft * (1 - ft)")
    _, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), LSTM, "variant")
    assert "forward matches; dh wrong from t=5 (T-2) back" in text, text
    assert "matches the known bug 'f-grad-uses-c_t': the forget gate's gradient uses c_t instead of c_{t-1}" in text


def test_course_bias_gradient_averaged_over_the_batch_is_diagnosed():
    variant = _course_variant('grads["db" + name] = d.sum(axis=1, keepdims=True)',
                              'grads["db" + name] = d.mean(axis=1, keepdims=True)')
    _, text = dg.diagnose(variant.run, Case("-", 3, 7, 4, 5, "f64", 0), LSTM, "variant")
    assert "forward matches; wrong: db; right: dh, dx, dh0, dc0, dW, dU" in text, text
    assert "db equal the reference divided by B=3: averaged over the batch instead of summed" in text
