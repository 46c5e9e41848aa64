"""The remaps between the canonical layout and Keras / PyTorch: pure NumPy, no framework."""

import itertools

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines.keras import layout
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.families.lstm.record import make_inputs

SHAPES = [(1, 1), (3, 2), (4, 5), (1, 4)]  # (D, H), D != H included


def params(D, H, seed=0):
    p = make_inputs(Case("-", 2, 3, D, H, "f64", seed))
    p = {k: p[k] for k in ("W", "U", "b")}
    for name, value in p.items():  # every gate distinct, so a permutation cannot hide
        for j, k in itertools.combinations(range(4), 2):
            assert not np.array_equal(value[j], value[k]), f"{name}: gates {j} and {k} equal"
    return p


@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
def test_keras_round_trip(D, H):
    p = params(D, H)
    k = layout.to_keras(p)
    assert k["kernel"].shape == (D, 4 * H)
    assert k["recurrent_kernel"].shape == (H, 4 * H)
    assert k["bias"].shape == (4 * H,)
    back = layout.from_keras(k)
    for name in p:
        assert np.array_equal(back[name], p[name]), name


@pytest.mark.parametrize("D,H", SHAPES, ids=[f"D{d}-H{h}" for d, h in SHAPES])
def test_torch_round_trip(D, H):
    p = params(D, H)
    t = torch_layout.to_torch(p)
    assert t["weight_ih"].shape == (4 * H, D)
    assert t["weight_hh"].shape == (4 * H, H)
    assert t["bias_ih"].shape == t["bias_hh"].shape == (4 * H,)
    assert np.array_equal(t["bias_ih"] + t["bias_hh"], layout._fuse(p["b"], torch_layout.TORCH_GATES, 0))
    back = torch_layout.from_torch(t)
    for name in p:
        assert np.array_equal(back[name], p[name]), name


def test_keras_blocks_follow_documented_order():
    """kernel[:, k*H:(k+1)*H] is Keras gate k of (i, f, c, o), i.e. canonical (i, f, g, o)."""
    p = params(3, 2)
    kernel = layout.to_keras(p)["kernel"]
    for k in range(4):
        assert np.array_equal(kernel[:, 2 * k : 2 * k + 2], p["W"][k])


def test_torch_blocks_follow_documented_order():
    """weight_ih[k*H:(k+1)*H] is W[k].T for torch gate k of (i, f, g, o)."""
    p = params(3, 2)
    w = torch_layout.to_torch(p)["weight_ih"]
    for k in range(4):
        assert np.array_equal(w[2 * k : 2 * k + 2], p["W"][k].T)


@pytest.mark.parametrize("perm", [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)],
                         ids=lambda p: "".join("ifgo"[k] for k in p))
@pytest.mark.parametrize("to", [layout.to_keras, torch_layout.to_torch], ids=["keras", "torch"])
def test_permuted_gates_are_detected(perm, to):
    """Weights whose gate blocks are permuted map to different framework arrays."""
    p = params(3, 4)
    permuted = {k: v[list(perm)] for k, v in p.items()}
    a, b = to(p), to(permuted)
    assert all(not np.array_equal(a[k], b[k]) for k in a)


def test_torch_gradients_map_back_by_the_chain_rule():
    """Gradients of the fused torch arrays map to canonical per gate; db averages the two
    bias gradients (b feeds each through a factor 1/2) and each is reported on its own."""
    g = params(3, 2, seed=1)
    fused = torch_layout.to_torch(g)
    grads = {
        "weight_ih": fused["weight_ih"],
        "weight_hh": fused["weight_hh"],
        "bias_ih": 2 * fused["bias_ih"],
        "bias_hh": 2 * fused["bias_hh"],
    }
    back = torch_layout.grads_from_torch(grads)
    assert np.array_equal(back["dW"], g["W"])
    assert np.array_equal(back["dU"], g["U"])
    assert np.array_equal(back["db"], g["b"])
    assert np.array_equal(back["db_ih"], g["b"]) and np.array_equal(back["db_hh"], g["b"])


def test_keras_gradients_map_back_per_gate():
    g = params(2, 3, seed=2)
    back = layout.grads_from_keras(layout.to_keras(g))
    assert all(np.array_equal(back["d" + k], g[k]) for k in g)
