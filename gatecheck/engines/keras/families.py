"""Each family's Keras layer model and weight remap, as the Keras layer oracles build them: what the engines
that convert Keras layers (tf2onnx: gatecheck.engines.keras_onnx; TFLite: gatecheck.engines.litert) convert."""

from gatecheck.engines.keras import gru as gru_oracles
from gatecheck.engines.keras import gru_layout, layout, rnn_layout
from gatecheck.engines.keras import lstm as keras_oracle
from gatecheck.engines.keras import rnn as rnn_oracles

# Each family's Keras model (state names, layer class and arguments): the Keras layer oracles' own records.
MODELS = {
    "lstm": keras_oracle.MODEL,
    "gru": gru_oracles.KERAS_MODELS[True],
    "gru-reset-before": gru_oracles.KERAS_MODELS[False],
    "rnn": rnn_oracles.KERAS_MODEL,
}

# Canonical weights of one layer and direction -> the Keras cell's {kernel, recurrent_kernel[, bias]}: the
# Keras oracles' remaps, looked up at each call (a test replaces one to see the oracle fail).
REMAPS = {
    "lstm": lambda inputs: layout.to_keras(inputs),
    "gru": lambda inputs: gru_layout.to_keras(inputs, reset_after=True),
    "gru-reset-before": lambda inputs: gru_layout.to_keras(inputs, reset_after=False),
    "rnn": lambda inputs: rnn_layout.to_keras(inputs),
}
