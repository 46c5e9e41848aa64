"""The PyTorch layer oracles' variants (gatecheck.engines.torch.common.variants): the same modules time-major
(batch_first=False) and stacked with dropout between the layers in eval mode, each on a sample of its family's
grid. Each variant's wiring is caught when it goes wrong (a wrong remap, x reshaped rather than transposed, the
module left in training mode) from its first divergence."""

import numpy as np
import pytest

from gatecheck.engines import ORACLES
from gatecheck.engines.torch import common as torch_common
from gatecheck.engines.torch import gru_layout, layout, rnn_layout
from gatecheck.run.battery import run_case
from tests.engines.remaps import ci_case, wrong_remap_fails


def _torch(request):
    from conftest import require_framework

    return require_framework(request.config, "torch")


def _gates_swapped(remap, order):
    def wrong(inputs):
        weights = dict(remap(inputs))
        w = weights["weight_ih"]
        H = w.shape[0] // len(order)
        weights["weight_ih"] = np.concatenate([w[i * H:(i + 1) * H] for i in order])
        return weights
    return wrong


def _recurrent_untransposed(remap):
    def wrong(inputs):
        weights = dict(remap(inputs))
        weights["weight_hh"] = np.ascontiguousarray(weights["weight_hh"].T)
        return weights
    return wrong


_WRONG = {"lstm": (layout, lambda: _gates_swapped(layout.to_torch, [1, 0, 2, 3]), "gates i and f exchanged"),
          "gru": (gru_layout, lambda: _gates_swapped(gru_layout.to_torch, [1, 0, 2]), "gates r and z exchanged"),
          "rnn": (rnn_layout, lambda: _recurrent_untransposed(rnn_layout.to_torch), "weight_hh = U, not U.T")}
# each variant's ci case (B3 T7 D4 H5) and its first divergence: the first layer's forward direction at t = 0 is
# inside the module under L2, so the first compared quantity that shows it is the top layer's output
_VARIANTS = {"tm": ((), "h t=0"), "dropout": (("L2",), "h_l1 t=0")}


@pytest.mark.parametrize("family", sorted(_WRONG))
@pytest.mark.parametrize("kind", sorted(_VARIANTS))
def test_a_wrong_remap_fails_each_variant_from_its_first_divergence(kind, family, request, monkeypatch):
    _torch(request)
    module, wrong, what = _WRONG[family]
    options, first = _VARIANTS[kind]
    wrong_remap_fails(f"torch-{family}-layer-{kind}", module, ("to_torch", wrong(), what, first), monkeypatch,
                      options=options)


def test_x_reshaped_rather_than_transposed_fails_the_time_major_variant(request, monkeypatch):
    torch = _torch(request)
    case = ci_case("torch-lstm-layer-tm")
    assert run_case(case, ORACLES[case.oracle]).ok
    monkeypatch.setattr(torch_common, "time_major", lambda x: torch.reshape(x, (x.shape[1], x.shape[0]) + x.shape[2:]))
    report = run_case(case, ORACLES[case.oracle])
    assert not report.ok and report.failures[0].describe().startswith("h t=0"), report.message()


def test_the_module_left_in_training_mode_fails_the_dropout_variant(request, monkeypatch):
    """dropout=0.5 between the layers is the identity in eval mode only: left in training mode, the second
    layer's input is dropped and scaled, and its output differs from the first step."""
    _torch(request)
    case = ci_case("torch-gru-layer-dropout", ("L2",))
    assert run_case(case, ORACLES[case.oracle]).ok
    monkeypatch.setattr(torch_common, "inference", lambda module: module)
    report = run_case(case, ORACLES[case.oracle])
    assert not report.ok and report.failures[0].describe().startswith("h_l1 t=0"), report.message()


def test_the_dropout_variant_declines_a_single_layer():
    o = ORACLES["torch-rnn-layer-dropout"]
    assert "between stacked layers" in o.declined(("bi",)) and o.declined(("len", "L2")) is None
