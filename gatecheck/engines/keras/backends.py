"""What differs between Keras 3's backends for the Keras oracles, in one place.

The Keras oracles (keras_oracle, structured, rnn_oracles, gru_oracles) write Keras' own models and
their loss once, with ``keras.ops``: a ``forward(*tensors) -> (loss, returned)`` of backend tensors.
What each backend decides is here, one implementation each, chosen by ``KERAS_BACKEND`` (read when
keras is first imported, so fixed for a whole process: ``frameworks.keras_backend``):

tensorflow  ``tf.function`` traced once per input signature (None for the batch and time axes),
            gradients by ``tf.GradientTape`` (with respect to Keras' variables and watched inputs).
jax         the model's variables are explicit arguments (``keras.StatelessScope`` maps them), the
            gradients ``jax.value_and_grad`` of that pure function, compiled by ``jax.jit`` (once per
            shape: jit specialises on B and T too).
torch       eager: Keras' variables are ``torch.nn.Parameter``s and the inputs leaf tensors that
            require gradients; ``loss.backward()`` fills each one's ``.grad``.

Every backend takes and returns NumPy arrays and checks that what it returns is in the dtype the
model was built in (JAX computes in float64 only with ``jax_enable_x64``, which frameworks.import_jax
turns on process-wide: a float32 model must then stay float32 and a float64 one must be float64).

``layer_kwargs`` is the one argument of the whole-sequence layers that differs: which code path Keras
takes for LSTM and GRU layers (see its docstring). What a backend does not compute is declined by the
oracles with its reason (``declined_dtypes``, ``declines_layer_dtype``: float64 where Keras computes it
in float32 on JAX and PyTorch, a layer that raises); what it computes otherwise than the reference is a
known deviation (gatecheck/truth/deviations.py). Keras 2 (tf.keras 2.15, TensorFlow only) has no ``keras.ops``:
``ops`` gives the few operations the oracles use, from TensorFlow, there.
"""

import numpy as np

from gatecheck.engines import frameworks
from gatecheck.engines.frameworks import import_keras, keras_backend
from gatecheck.model.options import masking


def name():
    """The Keras backend of this process (``tensorflow``, ``jax`` or ``torch``)."""
    return keras_backend()


def ops():
    """``keras.ops`` (Keras 3), or the operations the oracles use from TensorFlow (Keras 2)."""
    _, keras = import_keras()
    if hasattr(keras, "ops"):
        return keras.ops
    return _TensorFlowOps()


class _TensorFlowOps:
    """The oracles' operations where Keras has no ``ops`` (Keras 2: the TensorFlow backend only)."""

    def __init__(self):
        import tensorflow as tf

        self.tf = tf

    def concatenate(self, xs, axis=-1):
        return self.tf.concat(list(xs), axis)

    def flip(self, x, axis):
        return self.tf.reverse(x, axis=[axis])

    def sum(self, x):
        return self.tf.reduce_sum(x)

    def softmax(self, x, axis=-1):
        return self.tf.nn.softmax(x, axis=axis)

    def categorical_crossentropy(self, target, output, from_logits=False, axis=-1):
        if not from_logits:
            raise ValueError("the oracles take the cross-entropy of logits")
        return self.tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=output, axis=axis)


def layer_kwargs(keras):
    """The arguments of ``keras.layers.LSTM`` and ``GRU`` that choose their code path.

    TensorFlow: ``use_cudnn=False`` (Keras 3; Keras 2 has no such argument): TensorFlow's only other
    path is cuDNN, picked on a GPU alone, which takes right-padded masks only (tensorflow#48702).
    JAX and PyTorch: Keras' default (``use_cudnn="auto"``), which on the CPU is no cuDNN kernel but
    each backend's own loop, the one a user runs: on JAX ``keras.layers.GRU(reset_after=True)``
    without a mask runs the scan of keras#22401 (its input projections precomputed) and the LSTM
    the generic ``lax.scan`` loop; on PyTorch both run the backend's own Python loops with the input
    projections precomputed (``_fallback_lstm``, ``_fallback_gru``). Under a mask, and for the
    reset-before GRU and SimpleRNN, every backend runs its generic ``rnn()`` loop.
    """
    if name() == "tensorflow":
        return {"use_cudnn": False} if int(keras.__version__.split(".")[0]) >= 3 else {}
    return {}


# --- what a backend does not compute: the dtypes and option sets the Keras oracles decline there ------------

_FLOAT64_DEMOTED = ("Keras' type promotion (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE) turns float64 "
                    "into float32 on every backend but TensorFlow (keras-team/keras#23223; keras#23225 made the ops "
                    "consistent by routing PyTorch's binary ops through result_type too, and keras#23704, open, "
                    "reports that float64 handling on PyTorch)")
FLOAT64 = {
    "jax": "on the JAX backend keras.ops.tanh, the activation of LSTM, GRU and SimpleRNN in every code path, computes "
           "in float32 (keras/src/backend/jax/numpy.py casts its input to result_type(x.dtype, float)): a float64 "
           "LSTM or GRU carries float32 rounding (about 1e-7) into every state and gradient, and a float64 "
           "keras.layers.SimpleRNN raises (its float32 output is its next state, whose dtype lax.scan keeps); "
           + _FLOAT64_DEMOTED,
    "torch": "on the PyTorch backend keras.ops.matmul computes float64 operands in float32 (keras/src/backend/torch/"
             "numpy.py casts both to result_type(x1.dtype, x2.dtype)): every step that runs a Keras cell's call "
             "(LSTMCell, GRUCell, SimpleRNNCell; Dense) carries float32 rounding into a float64 model; "
             + _FLOAT64_DEMOTED,
}


def declined_dtypes(steps_a_cell=True):
    """{dtype: why} of a Keras oracle on this process's backend (``Oracle.declines_dtype``): float64 where the
    backend computes a float64 model in float32 in part, every oracle on JAX, and on PyTorch those whose steps
    run a Keras cell's call (``steps_a_cell``; the LSTM and reset-after GRU layers run PyTorch's own loop,
    torch.matmul, but under a mask: ``declines_layer_dtype``)."""
    if name() == "jax" or (name() == "torch" and steps_a_cell):
        return {"f64": FLOAT64[name()]}
    return {}


def dtype_declines(steps_a_cell=True, layer=None):
    """``Oracle.declines_dtype`` of a Keras oracle: (options, dtype) -> why it does not run that dtype on
    this process's backend (``declined_dtypes``), or under those options (``layer``: e.g.
    ``declines_layer_dtype``); None: it runs it. Read when asked: the backend is the process's."""
    def declines(options, dtype):
        return declined_dtypes(steps_a_cell).get(dtype) or (layer(options, dtype) if layer else None)

    return declines


def declines_layer_dtype(options, dtype, gru=False):
    """Why ``keras.layers.LSTM`` (``gru``: ``GRU(reset_after=True)``) does not run ``dtype`` ("f32", "f64")
    under ``options`` on this process's backend (None: it runs it; part of ``Oracle.declines_dtype``)."""

    if name() == "torch" and dtype == "f64" and masking(options):
        return ("under a mask the layer runs Keras' generic loop, a cell's call per step (without one, PyTorch's own "
                "loop keeps float64): " + FLOAT64["torch"])
    if gru and name() == "jax" and dtype == "f32" and "nobias" in options and not masking(options):
        return ("on the JAX backend with jax_enable_x64 (on in the process: frameworks.import_jax), keras.layers."
                "GRU(use_bias=False) raises in float32: its fused path (backend.gru, keras#22401; a mask takes the "
                "generic loop) makes its zero biases with jnp.zeros(3 * units), float64 under x64, and lax.scan "
                "refuses the carry's change from float32 to float64")
    return None


def gradient_function(forward, variables, specs, wrt):
    """A function of NumPy arrays: (what ``forward`` returns, the loss's gradients with respect to
    ``variables``, those with respect to the first ``wrt`` inputs), all as NumPy arrays.

    ``forward(*tensors) -> (loss, returned)``: ``returned`` a list (nested lists allowed) of tensors.
    ``specs``: one ``(shape, dtype)`` per input, ``None`` for an axis of any length (the batch and the
    time axis), dtype a NumPy name ("float64", "bool"). ``variables``: the Keras variables whose
    gradients are wanted, in order. Gradients of an input or variable the loss does not reach are zeros.
    """
    build = _BACKENDS.get(name())
    if build is None:
        raise ValueError(f"Keras backend {name()!r}: the Keras oracles run on {sorted(_BACKENDS)}")
    run = build(forward, list(variables), specs, wrt)
    dtype = _float_dtype(specs)

    def checked(*arrays):
        returned, dvars, dinputs = run(*arrays)
        _check_dtype(returned + dvars + dinputs, dtype)
        return returned, dvars, dinputs

    return checked


def _float_dtype(specs):
    found = {dtype for _, dtype in specs if dtype != "bool"}
    if len(found) != 1:
        raise ValueError(f"a Keras model computes in one float dtype; its inputs have {sorted(found)}")
    return found.pop()


def _flat(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flat(item)
        else:
            yield item


def _check_dtype(arrays, dtype):
    """Every array returned in the model's dtype: a Keras model built in float32 computing in float64
    (or the reverse) on some backend is an oracle error, never a silent pass."""
    other = sorted({a.dtype.name for a in _flat(arrays) if a.dtype.name not in (dtype, "bool")})
    if other:
        raise RuntimeError(f"Keras on the {name()} backend returned {other} arrays from a {dtype} model")


def _numpy(structure, convert):
    if isinstance(structure, (list, tuple)):
        return [_numpy(s, convert) for s in structure]
    return convert(structure)


def _or_zeros(grads, like, convert, dtype):
    """Gradients as NumPy arrays; one the loss does not reach (None) as zeros shaped like ``like``."""
    return [convert(g) if g is not None else np.zeros(tuple(x.shape), dtype) for g, x in zip(grads, like)]


def _tensorflow(forward, variables, specs, wrt):
    import tensorflow as tf

    dtype = _float_dtype(specs)

    @tf.function(input_signature=[tf.TensorSpec(shape, kind) for shape, kind in specs])
    def fn(*tensors):
        with tf.GradientTape() as tape:
            tape.watch(tensors[:wrt])
            loss, returned = forward(*tensors)
        return returned, tape.gradient(loss, variables + list(tensors[:wrt]))

    def numpy(t):
        return t.numpy()

    def run(*arrays):
        returned, grads = fn(*arrays)
        n = len(variables)
        return (_numpy(returned, numpy), _or_zeros(grads[:n], variables, numpy, dtype),
                _or_zeros(grads[n:], arrays[:wrt], numpy, dtype))

    return run


def _jax(forward, variables, specs, wrt):
    import jax

    _, keras = import_keras()

    def loss_of(values, diff, rest):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            loss, returned = forward(*diff, *rest)
        return loss, returned

    grad = frameworks.jit(jax.value_and_grad(loss_of, argnums=(0, 1), has_aux=True))

    def run(*arrays):
        (_, returned), (dvars, dinputs) = grad([v.value for v in variables], tuple(arrays[:wrt]), tuple(arrays[wrt:]))
        return _numpy(returned, np.asarray), [np.asarray(g) for g in dvars], [np.asarray(g) for g in dinputs]

    return run


def _torch(forward, variables, specs, wrt):
    keras_ops = ops()
    dtype = _float_dtype(specs)

    def numpy(t):
        return t.detach().cpu().numpy()

    def run(*arrays):
        tensors = [keras_ops.convert_to_tensor(a) for a in arrays]
        tensors[:wrt] = [t.detach().requires_grad_(True) for t in tensors[:wrt]]
        parameters = [v.value for v in variables]
        for p in parameters:
            p.grad = None
        loss, returned = forward(*tensors)
        loss.backward()
        grads = [p.grad for p in parameters], [t.grad for t in tensors[:wrt]]
        for p in parameters:  # nothing of this call stays on Keras' variables
            p.grad = None
        return (_numpy(returned, numpy), _or_zeros(grads[0], parameters, numpy, dtype),
                _or_zeros(grads[1], arrays[:wrt], numpy, dtype))

    return run


_BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
