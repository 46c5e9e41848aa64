"""The Keras oracles' backend seam (gatecheck/engines/keras/backends.py) and what differs between
Keras 3's backends: the backend is read as Keras reads it, importing keras on JAX or PyTorch imports
no TensorFlow, a model's dtype is kept (JAX: float64 needs jax_enable_x64), gradients come back exact
and in the model's dtype, and the causes the deviations (gatecheck/truth/deviations.py) and the declined set
name still hold on the backend this process runs (KERAS_BACKEND is one per process: the tests of
another backend skip, with the reason, and run under its tox env)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gatecheck.core.cases import Case
from gatecheck.engines import ORACLES, frameworks
from gatecheck.engines.keras import backends as keras_backends
from gatecheck.families import FAMILIES
from gatecheck.run.grid import grid
from gatecheck.truth import deviations

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))


def _keras(request):
    from conftest import require_framework

    return require_framework(request.config, "keras")


def _on(backend):
    if frameworks.keras_backend() != backend:
        pytest.skip(f"this process runs Keras on {frameworks.keras_backend()!r}, not {backend!r} (KERAS_BACKEND is read "
                    f"once per process: run with KERAS_BACKEND={backend})")


def _python(code, **env):
    """``code`` in a fresh interpreter (the backend is fixed when keras is first imported) with ``env``."""
    full = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    full.update(env, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


# --- choosing the backend ------------------------------------------------------------------------------------

def test_the_backend_is_read_as_keras_reads_it_without_importing_keras(tmp_path):
    from importlib import metadata

    if int(metadata.version("keras").split(".")[0]) < 3:
        pytest.skip("Keras 2 has the TensorFlow backend only")
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    code = ("import sys; from gatecheck.engines import frameworks; "
            "print(frameworks.keras_backend(), 'keras' in sys.modules)")
    assert _python(code, KERAS_BACKEND="jax", KERAS_HOME=str(tmp_path)) == "jax False"  # the variable first
    assert _python(code, KERAS_HOME=str(tmp_path)) == "torch False"  # then keras.json
    assert _python(code, KERAS_HOME=str(tmp_path / "none")) == "tensorflow False"  # then Keras' default


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_keras_on_jax_or_torch_imports_no_tensorflow(backend, request):
    """import_keras returns the backend's module and keras; TensorFlow stays out of the process; torch is
    imported before keras where installed (the project's one order); on JAX, float64 is on."""
    _keras(request)  # keras itself is installed
    try:
        frameworks.FRAMEWORKS[backend].importer()
    except frameworks.Unavailable as exc:
        pytest.skip(f"{backend} unavailable: {exc}")
    code = ("import sys; from gatecheck.engines import frameworks; m, keras = frameworks.import_keras(); "
            "print(m.__name__, keras.backend.backend(), 'tensorflow' in sys.modules, "
            "'torch' in sys.modules, m.config.jax_enable_x64 if m.__name__ == 'jax' else '-')")  # no jax: keras-torch
    torch_installed = importlib.util.find_spec("torch") is not None  # tox -e keras-jax installs no torch
    want = {"jax": f"jax jax False {torch_installed} True", "torch": "torch torch False True -"}[backend]
    assert _python(code, KERAS_BACKEND=backend) == want


def test_the_header_and_the_results_name_the_backend():
    from gatecheck.tools import results

    assert results.metadata({})["keras_backend"] == frameworks.keras_backend()


# --- the seam ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradients_are_exact_in_the_models_dtype(dtype, request):
    """loss = sum(g * w * x) through the backend's compilation and gradients: d/dw = sum(g * x) over the
    batch, d/dx = g * w, exactly; an input the loss does not reach gets zeros; the returned arrays keep
    the dtype (elementwise operations only: keras.ops.matmul is float32 in float64 on PyTorch)."""
    _, keras = _keras(request)
    ops = keras_backends.ops()
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(4).astype(dtype)
    w = keras.Variable(w0, dtype=dtype)
    x, g, unused = (rng.standard_normal((3, 4)).astype(dtype) for _ in range(3))

    def forward(x, unused, g):
        y = x * w
        return ops.sum(g * y), [y, [ops.sum(g * y)]]

    fn = keras_backends.gradient_function(forward, [w], [((None, 4), dtype)] * 3, wrt=2)
    (y, (loss,)), (dw,), (dx, dunused) = fn(x, unused, g)
    np.testing.assert_array_equal(y, x * w0)
    np.testing.assert_allclose(loss, np.sum(g * x * w0), rtol=1e-6 if dtype == "float32" else 1e-15)
    np.testing.assert_array_equal(dx, g * w0)
    np.testing.assert_allclose(dw, np.sum(g * x, axis=0), rtol=1e-6 if dtype == "float32" else 1e-15)
    assert np.all(dunused == 0) and dunused.shape == unused.shape
    assert {a.dtype.name for a in (y, loss, dw, dx, dunused)} == {dtype}


def test_an_array_in_another_dtype_is_an_oracle_error(request):
    _, keras = _keras(request)
    ops = keras_backends.ops()

    def forward(x):
        return ops.sum(x), [ops.cast(x, "float32")]

    fn = keras_backends.gradient_function(forward, [], [((None,), "float64")], wrt=1)
    with pytest.raises(RuntimeError, match=rf"Keras on the {frameworks.keras_backend()} backend returned "
                                           r"\['float32'\] arrays from a float64 model"):
        fn(np.ones(3))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_layer_computes_in_the_dtype_it_is_built_in(dtype, request):
    """Keras layers built with dtype="float64" hold and return float64 (on JAX: jax_enable_x64, which
    import_keras turns on through import_jax), and float32 ones stay float32 (what they compute inside
    is another matter: the float64 declines below)."""
    backend, keras = _keras(request)
    if backend.__name__ == "jax":
        assert backend.config.jax_enable_x64
    layer = keras.layers.LSTM(3, return_sequences=True, dtype=dtype)
    out = layer(np.ones((2, 4, 5), dtype))
    assert layer.cell.kernel.dtype == dtype and keras.backend.standardize_dtype(out.dtype) == dtype


def test_the_layers_take_the_path_of_their_backend(request):
    """TensorFlow: cuDNN kept off (its only other path); JAX and PyTorch: Keras' default, their own loops."""
    _, keras = _keras(request)
    want = {"tensorflow": {"use_cudnn": False} if hasattr(keras, "ops") else {}}
    assert keras_backends.layer_kwargs(keras) == want.get(frameworks.keras_backend(), {})


# --- what differs, by backend: the causes the deviations and the declined set state ----------------------------

def test_jax_computes_tanh_in_float32_on_a_float64_input(request):
    """The cause of the JAX float64 decline: keras.ops.tanh returns float32 for float64 (TensorFlow and
    PyTorch keep float64), and a float64 SimpleRNN, whose output is its next state, raises; when this
    stops holding, float64 can be offered again (keras_backends.FLOAT64)."""
    _, keras = _keras(request)
    x = keras.ops.convert_to_tensor(np.linspace(-2, 2, 5), "float64")
    got = keras.backend.standardize_dtype(keras.ops.tanh(x).dtype)
    on_jax = frameworks.keras_backend() == "jax"
    assert got == ("float32" if on_jax else "float64")
    layer = keras.layers.SimpleRNN(3, return_sequences=True, dtype="float64")
    if on_jax:
        with pytest.raises(TypeError, match="carry"):
            layer(np.ones((2, 4, 5)))
    else:
        assert keras.backend.standardize_dtype(layer(np.ones((2, 4, 5))).dtype) == "float64"


def test_torch_multiplies_float64_matrices_in_float32(request):
    """The cause of the PyTorch float64 decline: keras.ops.matmul of two float64 matrices is float32 there."""
    _, keras = _keras(request)
    a = keras.ops.convert_to_tensor(np.ones((2, 2)), "float64")
    got = keras.backend.standardize_dtype(keras.ops.matmul(a, a).dtype)
    assert got == ("float32" if frameworks.keras_backend() == "torch" else "float64")


def test_float64_is_declined_where_the_backend_computes_it_in_float32():
    """JAX: every Keras oracle declines float64 (tanh); PyTorch: those whose steps run a Keras cell's call, and
    the LSTM and reset-after GRU layers under a mask (matmul); TensorFlow: none. The grid follows."""
    backend = frameworks.keras_backend()
    keras_oracles = [o for o in ORACLES.values() if o.framework == "keras"]
    for o in keras_oracles:
        own_loop = o.name in ("keras-lstm-layer", "keras-gru-layer")
        plain = bool(o.declined((), "f64"))
        assert plain == (backend == "jax" or (backend == "torch" and not own_loop)), o.name
        if "mask" in o.options:  # under a mask every layer runs Keras' generic loop
            assert (plain or bool(o.declined(("mask",), "f64"))) == (backend != "tensorflow"), o.name
        if plain:
            assert "keras-team/keras#23223" in o.declined((), "f64")
        f64 = [c for f in FAMILIES.values() for c in grid("ci", f, oracles=[o.name]) if f.name == o.family
               and c.dtype == "f64"]
        assert bool(f64) == (not plain), o.name
        assert not [c for c in f64 if c.options and o.declined(c.options, "f64")], o.name


def test_the_masked_output_entry_applies_on_jax_only():
    case = Case("keras-lstm-layer", 3, 7, 4, 5, "f32", 0, "std", ("mask",))
    dev = deviations.for_case(case)
    if frameworks.keras_backend() == "jax":
        assert dev is not None and "states[0]" in dev.cause and "KERAS_BACKEND=jax" in deviations.describe(dev)
        assert deviations.for_case(case._replace(regime="zero")) is None  # h0 = 0: the outputs agree
        assert deviations.for_case(case._replace(options=("maskz",))) is None
    else:
        assert dev is None


def test_jax_declines_the_gru_layer_without_bias_in_float32(request):
    """keras.layers.GRU(use_bias=False) in float32 raises on JAX with x64 on (its fused backend.gru); the
    grid has no such case there, the oracle refuses it by name, and elsewhere it runs."""
    backend, keras = _keras(request)
    o = ORACLES["keras-gru-layer"]
    cases = grid("ci", FAMILIES["gru"], oracles=[o.name])
    declined = [c for c in cases if c.dtype == "f32" and "nobias" in c.options]
    if frameworks.keras_backend() != "jax":
        assert declined and o.declined(("nobias",), "f32") is None
        return
    assert not declined and o.declined(("nobias", "mask"), "f32") is None
    assert "jnp.zeros" in o.declined(("nobias", "bi", "L2"), "f32")
    assert "jnp.zeros" not in o.declined(("nobias",), "f64")  # (float64 is declined whatever the options)
    layer = keras.layers.GRU(3, use_bias=False, return_sequences=True, dtype="float32")
    with pytest.raises(TypeError, match="carry"):  # the reason holds: when Keras fixes it, drop the decline
        layer(np.ones((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match="does not run f32 under options"):
        o.run({"x": np.ones((2, 4, 5), np.float32)}, ("nobias",))


# --- the remaps, on this backend: a wrong one fails at the first step -----------------------------------------

def _first_two_gates_swapped(remap):
    """``remap`` with the kernel's first two gate blocks exchanged (LSTM i and f; GRU z and r)."""
    def wrong(inputs, **kw):
        weights = dict(remap(inputs, **kw))
        k = weights["kernel"]
        H = weights["recurrent_kernel"].shape[0]
        weights["kernel"] = np.concatenate([k[:, H:2 * H], k[:, :H], k[:, 2 * H:]], axis=1)
        return weights
    return wrong


def _recurrent_transposed(remap):
    """``remap`` with the recurrent kernel transposed (the RNN has one block: no gate order to swap)."""
    def wrong(inputs, **kw):
        weights = dict(remap(inputs, **kw))
        weights["recurrent_kernel"] = np.ascontiguousarray(weights["recurrent_kernel"].T)
        return weights
    return wrong


@pytest.mark.parametrize("oracle, module, mutate", [
    ("keras-lstm-cell", "layout", _first_two_gates_swapped), ("keras-lstm-layer", "layout", _first_two_gates_swapped),
    ("keras-rnn-cell", "rnn_layout", _recurrent_transposed), ("keras-rnn-layer", "rnn_layout", _recurrent_transposed),
    ("keras-gru-cell", "gru_layout", _first_two_gates_swapped),
    ("keras-gru-layer-before", "gru_layout", _first_two_gates_swapped),
])
def test_a_wrong_remap_fails_at_the_first_step_on_this_backend(oracle, module, mutate, request, monkeypatch):
    """The remaps are NumPy and the same on every backend; each oracle looks its own up when it runs, so a
    wrong one (gates exchanged, a transposed recurrent kernel) makes a float32 ci case fail, first in the
    forward pass at t = 0, while the right one matches."""
    import importlib

    from gatecheck.run.battery import run_case

    o = ORACLES[oracle]
    _keras(request)
    case = Case(oracle, 3, 7, 4, 5, "f32", 0)
    assert run_case(case, o).ok
    remaps = importlib.import_module(f"gatecheck.engines.keras.{module}")
    monkeypatch.setattr(remaps, "to_keras", mutate(remaps.to_keras))
    report = run_case(case, o)
    assert not report.ok and report.failures[0].describe().startswith(("h t=0", "c t=0")), report.message()
