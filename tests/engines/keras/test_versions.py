"""Each installed framework version against its own documented semantics (gatecheck/engines/keras/versions.py)."""

import numpy as np
import pytest

from gatecheck.engines.keras import versions

X = np.linspace(-6, 6, 241)


def _keras(request):
    """(keras, X as a float32 tensor of its backend: Keras 2's activations take TensorFlow tensors only)."""
    from conftest import require_framework

    backend, keras = require_framework(request.config, "keras")
    if hasattr(keras, "ops"):
        return keras, keras.ops.convert_to_tensor(X, "float32")
    return keras, backend.constant(X, backend.float32)  # Keras 2: TensorFlow


def test_hard_sigmoid_is_the_documented_one_for_this_keras(request):
    keras, x = _keras(request)
    entry = versions.applicable("keras", keras.__version__, "hard_sigmoid")
    got = np.asarray(keras.activations.hard_sigmoid(x), dtype=np.float64)
    np.testing.assert_allclose(got, entry.formula(X), rtol=0, atol=4e-7, err_msg=entry.source)
    others = [s for s in versions.SEMANTICS if s.name == "hard_sigmoid" and s is not entry]
    for other in others:  # the versions really differ: the table would catch a mix-up
        assert np.max(np.abs(other.formula(X) - entry.formula(X))) > 0.05


def test_lstm_recurrent_activation_default_is_sigmoid(request):
    keras, x = _keras(request)
    entry = versions.applicable("keras", keras.__version__, "lstm_recurrent_activation_default")
    cell = keras.layers.LSTMCell(3)
    got = np.asarray(cell.recurrent_activation(x), dtype=np.float64)
    np.testing.assert_allclose(got, entry.formula(X), rtol=1e-6, atol=1e-7, err_msg=entry.source)


def test_the_table_has_one_entry_per_version():
    for version in ("2.15.1", "3.0.0", "3.15.1"):
        assert versions.applicable("keras", version, "hard_sigmoid").since <= versions.version_tuple(version)
    with pytest.raises(LookupError, match="0 entries"):
        versions.applicable("keras", "1.2.0", "hard_sigmoid")


def test_gru_defaults_are_the_documented_ones_for_this_keras(request):
    """reset_after and recurrent_activation of a GRUCell built with no arguments: the
    oracles pass both explicitly, but a user's saved model has the version's defaults."""
    keras, x = _keras(request)
    cell = keras.layers.GRUCell(3)
    reset = versions.applicable("keras", keras.__version__, "gru_reset_after_default")
    assert cell.reset_after is reset.formula(), reset.source
    act = versions.applicable("keras", keras.__version__, "gru_recurrent_activation_default")
    got = np.asarray(cell.recurrent_activation(x), dtype=np.float64)
    np.testing.assert_allclose(got, act.formula(X), rtol=1e-6, atol=1e-7, err_msg=act.source)
    old = versions.applicable("keras", "2.2.4", "gru_reset_after_default")
    assert old.formula() is False and old.formula() is not reset.formula()
