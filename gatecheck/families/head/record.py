"""The ``lstm-head`` family: the LSTM under a dense + softmax + cross-entropy head on every
step (gatecheck/reference/head.py)."""

import zlib

import numpy as np

from gatecheck.core.family import Family, Quantity
from gatecheck.families.lstm import diagnosis as lstm_diagnosis
from gatecheck.families.lstm import record as lstm_family
from gatecheck.reference import head
from gatecheck.reference import lstm as lstm_reference

CLASSES = 3  # K, the head's width


def make_inputs(case, K=CLASSES):
    """The case's LSTM inputs (gh, gc dropped: the head sets them) plus V, cb and per-step
    target distributions y."""
    inputs = {k: v for k, v in lstm_family.make_inputs(case).items() if k not in ("gh", "gc")}
    key = f"head-{case.B}-{case.T}-{case.D}-{case.H}-{K}-{case.seed}-{case.regime}"
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    inputs["V"] = rng.standard_normal((case.H, K)) / np.sqrt(case.H)
    inputs["cb"] = 0.5 * rng.standard_normal(K)
    scores = rng.standard_normal((case.B, case.T, K))
    inputs["y"] = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)
    return inputs


def shapes(inputs):
    out = lstm_family.shapes(dict(inputs, x=inputs["x"], h0=inputs["h0"]))
    B, T, _ = inputs["x"].shape
    H, K = inputs["V"].shape
    return dict(out, p=(B, T, K), dV=(H, K), dcb=(K,))


# The LSTM's quantities (the head feeds gh, and gc = 0), the per-step probabilities and the
# head's own parameter gradients.
QUANTITIES = {
    **{k: v for k, v in lstm_family.QUANTITIES.items() if k != "cT"},
    "p": Quantity("p", 0, "time", ("b", "t", "k"), "p", meaning="softmax output p_t"),
    "dV": Quantity("dV", 2, "", ("j", "k"), "dV", meaning="head kernel gradient"),
    "dcb": Quantity("dcb", 2, "", ("k",), "dcb", meaning="head bias gradient"),
}

# (shape, seed, regime) points: small, and each regime once.
_POINTS = [((1, 1, 1, 1), 0, "std"), ((3, 7, 4, 5), 0, "std"), ((2, 12, 3, 3), 1, "longmem"),
           ((2, 6, 2, 4), 2, "zero")]
PROFILES = {
    "ci": [dict(points=_POINTS)],
    "nightly": [dict(points=_POINTS), dict(shapes=[(4, 20, 5, 6), (2, 64, 3, 4)], seeds=range(3),
                                           special_seeds=range(1), regimes=lambda shape: ["longmem", "sat"])],
}

CONTRACT = """\
run(x, h0, c0, W, U, b, V, cb, y) -> mapping with the lstm family's keys and
  "p" (B,T,K) softmax outputs, "dV" (H,K), "dcb" (K,)
V (H,K), cb (K,), y (B,T,K) per-step target distributions
logits_t = h_t V + cb;  p_t = softmax(logits_t);  L = -sum(y * log p)"""

def _head_loss(h, V, cb, y):
    return -np.sum(y * head.log_softmax(h @ V + cb))


def fd_loss(inputs):
    fwd = lstm_reference.forward(*(inputs[k] for k in ("x", "h0", "c0", "W", "U", "b")))
    return _head_loss(fwd["h"], inputs["V"], inputs["cb"], inputs["y"])


def fd_state_loss(inputs, t, which, offset):
    """The loss with h_t or c_t moved (c_t moves h_t too) and the sequence run on from there."""
    x, h0, c0, W, U, b, V, cb, y = (inputs[k] for k in ("x", "h0", "c0", "W", "U", "b", "V", "cb", "y"))
    first = lstm_reference.forward(x[:, : t + 1], h0, c0, W, U, b)
    h_t, c_t = first["h"][:, t], first["c"][:, t]
    if which == "h":
        h_t = h_t + offset
    else:
        c_t = c_t + offset
        h_t = lstm_reference.hidden(first["gates"][:, t], c_t)
    hs = np.concatenate([first["h"][:, :t], h_t[:, None]], axis=1)
    if t < x.shape[1] - 1:
        hs = np.concatenate([hs, lstm_reference.forward(x[:, t + 1 :], h_t, c_t, W, U, b)["h"]], axis=1)
    return _head_loss(hs, V, cb, y)


HEAD = Family(
    name="lstm-head",
    description="the LSTM under a Dense(K) + softmax + cross-entropy head on every step",
    run=head.run,
    inputs=("x", "h0", "c0", "W", "U", "b", "V", "cb", "y"),
    contract=tuple(head.CONTRACT_KEYS),
    shapes=shapes,
    quantities=QUANTITIES,
    regimes=lstm_family.REGIMES,
    make_inputs=make_inputs,
    profiles=PROFILES,
    contract_doc=CONTRACT,
    gates=lstm_family.LSTM.gates,
    gated=("W", "U", "b"),
    swappable=("W", "U"),
    forward=("c", "h", "p"),
    hypotheses=lstm_diagnosis.HYPOTHESES_HEAD,
    examples={"examples.course_head:run": 0},
    fd_loss=fd_loss,
    fd_state_loss=fd_state_loss,
    states=("h", "c"),
    fd_points=(((1, 1, 1, 1), 0, "std"), ((2, 5, 3, 4), 3, "std"), ((2, 4, 3, 3), 6, "sat")),
)
