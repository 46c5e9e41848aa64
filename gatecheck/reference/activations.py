"""Activations as data: every function a recurrent layer's spec lets one choose, with its derivative.

One table, ``ACTIVATIONS``: name -> ``Activation`` (its function and derivative, the parameters alpha
and beta with the defaults the ONNX spec gives them when the attribute is absent, what it means, and
its ONNX name). The references and the engines read it; nothing else defines an activation.

``f(z, alpha, beta)`` is the activation of pre-activations ``z``; ``df(z, y, alpha, beta)`` its
derivative at ``z`` (``y = f(z)``, given so that a derivative written from the output, as tanh's
1 - y^2, is computed as the references have always computed it). Both stay in the dtype of ``z``.
At a kink (relu at 0, the edges of hard_sigmoid's linear part, thresholded_relu at alpha) the
derivative is the one-sided value of the side ``z > kink`` for relu-like functions and 0 outside
an open linear part: random inputs meet a kink with probability 0.

ONNX (opset 22, LSTM/GRU/RNN ``activations``): Relu, Tanh, Sigmoid, Affine (alpha * z + beta),
LeakyRelu (alpha default 0.01), ThresholdedRelu (alpha default 1.0), ScaledTanh
(alpha * tanh(beta * z)), HardSigmoid (clip(alpha * z + beta, 0, 1), alpha 0.2 and beta 0.5),
Elu (alpha default 1.0), Softsign (z / (1 + |z|)), Softplus (log(1 + e^z)). Affine and
ScaledTanh state no default in the spec: ``alpha``/``beta`` None there, and the option that uses
them states its values.

ONNX's ``clip`` (LSTM, GRU, RNN): "Cell clip threshold. Clipping bounds the elements of a tensor in the
range of [-threshold, +threshold] and is applied to the input of activations." ``clipped`` is an activation
with that clip in front of it, f(clip(z)); its derivative is f'(clip(z)) inside (-threshold, threshold) and 0
outside (at the bounds themselves too: random inputs meet them with probability 0).
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class Activation(NamedTuple):
    name: str
    meaning: str
    onnx: str  # the ONNX spec's name in an LSTM/GRU/RNN node's ``activations``
    f: Callable[..., np.ndarray]  # f(z, alpha, beta)
    df: Callable[..., np.ndarray]  # df(z, y, alpha, beta): f'(z), y = f(z, alpha, beta)
    alpha: float | None = None  # the ONNX default when the attribute is absent (None: the spec has none)
    beta: float | None = None
    kinks: Callable[[float | None, float | None], tuple[float, ...]] = lambda alpha, beta: ()


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(-z) = inf for very negative z: sigmoid 0, exactly
        e = np.exp(-z)
    e += 1
    return np.reciprocal(e, out=e).astype(z.dtype, copy=False)


def _cast(z, value):
    return np.asarray(value, dtype=z.dtype)


def _hard_sigmoid(z, alpha, beta):
    return np.clip(_cast(z, alpha) * z + _cast(z, beta), 0, 1).astype(z.dtype, copy=False)


def _hard_sigmoid_d(z, y, alpha, beta):
    # From z, not y: a reference whose activations are moved by a few ulps (reference._numerics) moves a
    # saturated y = 0 or 1 off its bound, and the slope must stay 0 there.
    lin = _cast(z, alpha) * z + _cast(z, beta)
    return np.where((lin > 0) & (lin < 1), _cast(z, alpha), _cast(z, 0))


def _elu(z, alpha, beta):
    with np.errstate(over="ignore"):  # expm1 of a large positive z is not taken (where)
        return np.where(z > 0, z, _cast(z, alpha) * np.expm1(np.minimum(z, 0)))


def _softplus(z, alpha, beta):
    return (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))).astype(z.dtype, copy=False)


def _kink_at_zero(alpha, beta):
    return (0.0,)


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("tanh", "tanh(z)", "Tanh", lambda z, a, b: np.tanh(z), lambda z, y, a, b: 1 - y * y),
        Activation("sigmoid", "1 / (1 + e^-z)", "Sigmoid", lambda z, a, b: _sigmoid(z),
                   lambda z, y, a, b: y * (1 - y)),
        Activation("relu", "max(z, 0)", "Relu", lambda z, a, b: np.maximum(z, _cast(z, 0)),
                   lambda z, y, a, b: (z > 0).astype(z.dtype), kinks=_kink_at_zero),
        Activation("affine", "alpha * z + beta", "Affine", lambda z, a, b: _cast(z, a) * z + _cast(z, b),
                   lambda z, y, a, b: np.full_like(z, a)),
        Activation("leaky_relu", "z for z > 0, alpha * z otherwise", "LeakyRelu",
                   lambda z, a, b: np.where(z > 0, z, _cast(z, a) * z),
                   lambda z, y, a, b: np.where(z > 0, _cast(z, 1), _cast(z, a)), alpha=0.01, kinks=_kink_at_zero),
        Activation("thresholded_relu", "z for z >= alpha, 0 otherwise", "ThresholdedRelu",
                   lambda z, a, b: np.where(z >= a, z, _cast(z, 0)),
                   lambda z, y, a, b: (z >= a).astype(z.dtype), alpha=1.0, kinks=lambda a, b: (a,)),
        Activation("scaled_tanh", "alpha * tanh(beta * z)", "ScaledTanh",
                   lambda z, a, b: _cast(z, a) * np.tanh(_cast(z, b) * z),
                   lambda z, y, a, b: _cast(z, a) * _cast(z, b) * (1 - np.tanh(_cast(z, b) * z) ** 2)),
        Activation("hard_sigmoid", "clip(alpha * z + beta, 0, 1)", "HardSigmoid", _hard_sigmoid, _hard_sigmoid_d,
                   alpha=0.2, beta=0.5, kinks=lambda a, b: (-b / a, (1 - b) / a)),
        Activation("elu", "z for z > 0, alpha * (e^z - 1) otherwise", "Elu", _elu,
                   lambda z, y, a, b: np.where(z > 0, _cast(z, 1), y + _cast(z, a)), alpha=1.0, kinks=_kink_at_zero),
        Activation("softsign", "z / (1 + |z|)", "Softsign", lambda z, a, b: z / (1 + np.abs(z)),
                   lambda z, y, a, b: 1 / (1 + np.abs(z)) ** 2),
        Activation("softplus", "log(1 + e^z)", "Softplus", _softplus, lambda z, y, a, b: _sigmoid(z)),
    )
}


class Chosen(NamedTuple):
    """An activation with its parameters: what a model applies."""
    activation: Activation
    alpha: float | None
    beta: float | None

    def __call__(self, z):
        return self.activation.f(z, self.alpha, self.beta)

    def derivative(self, z, y):
        return self.activation.df(z, y, self.alpha, self.beta)

    @property
    def name(self):
        return self.activation.name


def choose(name, alpha=None, beta=None):
    """``name`` (a key of ACTIVATIONS) with its parameters: those given, else the ONNX spec's defaults;
    a clear error for an unknown name or a parameter the activation needs and the spec leaves open.
    ``name`` may be a (name, alpha, beta) tuple: an option's activation stated with its parameters."""
    if isinstance(name, Chosen):
        return name
    if isinstance(name, tuple):
        if len(name) != 3 or alpha is not None or beta is not None:
            raise ValueError(f"activation: expected a name or a (name, alpha, beta) tuple alone, got {name!r}")
        return choose(*name)
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {list(ACTIVATIONS)}, got {name!r}")
    found = ACTIVATIONS[name]
    alpha = found.alpha if alpha is None else alpha
    beta = found.beta if beta is None else beta
    needs = {"affine": ("alpha", "beta"), "scaled_tanh": ("alpha", "beta")}.get(name, ())
    missing = [p for p, value in (("alpha", alpha), ("beta", beta)) if p in needs and value is None]
    if missing:
        raise ValueError(f"activation {name!r}: the ONNX spec gives no default for {' and '.join(missing)}; "
                         f"state {' and '.join(missing)}")
    return Chosen(found, alpha, beta)


class Clipped(NamedTuple):
    """An activation applied to its input clipped to [-threshold, threshold]: f(clip(z)), ONNX's ``clip``."""
    inner: Chosen
    threshold: float

    def __call__(self, z):
        return self.inner(self.clip(z))

    def clip(self, z):
        return np.clip(z, -_cast(z, self.threshold), _cast(z, self.threshold))

    def derivative(self, z, y):
        inside = np.abs(z) < _cast(z, self.threshold)
        return np.where(inside, self.inner.derivative(self.clip(z), y), _cast(z, 0))

    @property
    def name(self):
        return f"{self.inner.name} on clip({self.threshold:g})"


def clipped(chosen, threshold):
    """``chosen`` (a Chosen, or what ``choose`` takes) behind the clip of ``threshold`` (None: no clip, the
    activation itself); a clear error for a threshold that is not a positive finite number."""
    chosen = choose(chosen)
    if threshold is None:
        return chosen
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
            or not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"clip: expected a positive finite threshold (or None: no clip), got {threshold!r}")
    return Clipped(chosen, float(threshold))
