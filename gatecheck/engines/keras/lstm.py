"""Keras oracles, on whichever Keras 3 backend the process runs (TensorFlow, JAX or PyTorch).

keras-cell   Keras' own ``keras.layers.LSTMCell`` driven by ``keras.layers.RNN`` (the backend's
             loop), with zero probes added to each step's c_t and h_t (``probed_lstm_cell``): the
             gradients of the loss with respect to the probes, fed as extra per-step inputs, are the
             total deltas dL/dh_t and dL/dc_t.
keras-layer  ``keras.layers.LSTM(return_sequences=True, return_state=True)``: the
             whole-sequence layer (the code path of ``keras_backends.layer_kwargs``).

The models and their losses are written once with ``keras.ops``; compiling them and taking the
gradients (tf.function and GradientTape, jax.jit and jax.value_and_grad, torch's backward) is
``gatecheck.engines.keras.backends``' part, which also takes and returns NumPy arrays.

Under the reverse option (gatecheck.model.options) each is built with ``go_backwards=True`` and its
output sequence is flipped back to the original t (``in_time_order``). Under the structural
options the layer is built by gatecheck.engines.structured, and the probed cells of this module,
of rnn_oracles and of gru_oracles by ``probed_runner``: ``keras.layers.Bidirectional`` and layers in
sequence around their ``keras.layers.RNN`` loops, so every layer's and direction's per-step states
and deltas leave (``direction_in_time_order``: how the reverse direction's are indexed by t).

Each is built (and on TensorFlow traced) once per (D, H, dtype, options) and reused; TensorFlow's
trace serves every batch size and number of steps, jax.jit compiles once per shape.
"""

import functools

import numpy as np

from gatecheck.model.options import OPTIONS
from gatecheck.engines.keras import backends as keras_backends, layout
from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_keras
from gatecheck.reference import layers

_cache = {}


def built(build, *args):
    """``build(*args)`` (a model and its traced function), built once per process and reused:
    every Keras oracle is built once per set of build arguments (its D, H, K and dtype)."""
    key = (build, *args)
    if key not in _cache:
        _cache[key] = build(*args)
    return _cache[key]
# The canonical LSTM's activations, stated rather than left to a version's defaults (Keras
# before 2.3 defaulted recurrent_activation to hard_sigmoid; see gatecheck/engines/keras/versions.py).
_ACTIVATIONS = dict(activation="tanh", recurrent_activation="sigmoid")


def assign(cell, inputs, remap=None):
    """Canonical weights into a Keras cell (``remap``: the model's canonical -> Keras map; default the
    LSTM's ``layout.to_keras``, looked up when called, so a test can replace it). A cell built with
    ``use_bias=False`` has no bias, and the remap of inputs without biases gives none: any other pairing
    is an oracle bug (a bias slot left stale or filled)."""
    weights = (remap or layout.to_keras)(inputs)
    if cell.use_bias != ("bias" in weights):
        raise RuntimeError(f"Keras cell use_bias={cell.use_bias}, but the remapped weights "
                           f"{'have' if 'bias' in weights else 'lack'} a bias")
    cell.kernel.assign(weights["kernel"])
    cell.recurrent_kernel.assign(weights["recurrent_kernel"])
    if cell.use_bias:
        cell.bias.assign(weights["bias"])


def grads_to_canonical(dk, drk, dbias, back=None):
    """Keras weight gradients (NumPy arrays) -> canonical (``dbias`` None: no bias; ``back``: default the
    LSTM's ``layout.grads_from_keras``, looked up when called)."""
    grads = {"kernel": dk, "recurrent_kernel": drk}
    if dbias is not None:
        grads["bias"] = dbias
    return (back or layout.grads_from_keras)(grads)


def weights(cell):
    """The cell's weights in remap order: kernel, recurrent_kernel, and bias unless ``use_bias=False``."""
    return [cell.kernel, cell.recurrent_kernel] + ([cell.bias] if cell.use_bias else [])


def weight_grads(grads, cell, back=None):
    """(canonical weight gradients, the rest) of a list of gradients that starts with
    ``weights(cell)``."""
    n = 3 if cell.use_bias else 2
    return grads_to_canonical(grads[0], grads[1], grads[2] if n == 3 else None, back), list(grads[n:])


def use_bias(options):
    """The Keras ``use_bias`` of a case's options (gatecheck.model.options)."""
    return "nobias" not in options


def go_backwards(options):
    """The Keras ``go_backwards`` of a case's options (gatecheck.model.options)."""
    return "rev" in options


def in_time_order(ops, seq, backwards):
    """A layer's output sequence indexed by the original t (``ops``: keras_backends.ops()). Under
    go_backwards Keras returns it in processing order, index 0 the state after x[:, T-1] on every
    backend (tensorflow#40345): flipped back here. Its inputs' gradients (dx, and the probes'
    dL/dh_t, dL/dc_t: the probes are inputs beside x) are already indexed by the original t, and
    its final state is the one after x[:, 0]."""
    return ops.flip(seq, axis=1) if backwards else seq


def _signature(dtype, D, H, width):
    """x, its zero probes (``width`` per step), h0, c0 (the differentiated inputs), gh, gc."""
    return [((None, None, D), dtype), ((None, None, width), dtype), ((None, H), dtype), ((None, H), dtype),
            ((None, None, H), dtype), ((None, H), dtype)]


def probed_lstm_cell(keras, ops):
    """``keras.layers.LSTMCell`` with zero "probes" added to each step's c_t and h_t.

    The step's inputs are [x_t, e_h, e_c]; the cell is Keras' own, except that the c_t its
    fused step returns becomes c_t + e_c before h_t = o_t * tanh(c_t) is taken from it, and
    the h_t it returns becomes h_t + e_h. With the probes zero nothing changes, and the
    gradient of the loss with respect to e_c (e_h) at step t is the total dL/dc_t (dL/dh_t),
    every path included. The output is [h_t, c_t], so one ``keras.layers.RNN`` loop (traced
    once, whatever T) gives the states and, through its inputs, the per-step deltas.

    Where several cells read one input (the two directions of a ``Bidirectional``), it is
    [x_t, probes of slot 0, probes of slot 1, ...] and each cell reads ``slot`` of ``slots``.
    """
    class ProbedLSTMCell(keras.layers.LSTMCell):
        def __init__(self, units, slot=0, slots=1, **kwargs):
            super().__init__(units, **kwargs)
            self.output_size = 2 * units
            self.slot, self.slots = slot, slots
            self._probe_c = None

        def build(self, input_shape):
            super().build((input_shape[0], input_shape[-1] - 2 * self.units * self.slots))

        def call(self, inputs, states, training=False):
            H = self.units
            D = inputs.shape[-1] - 2 * H * self.slots
            e = D + 2 * H * self.slot
            x, e_h, self._probe_c = inputs[:, :D], inputs[:, e:e + H], inputs[:, e + H:e + 2 * H]
            h, (_, c) = super().call(x, states, training=training)
            h = h + e_h
            return ops.concatenate([h, c], axis=-1), [h, c]

        def _compute_carry_and_output_fused(self, z, c_tm1):
            c, o = super()._compute_carry_and_output_fused(z, c_tm1)
            return c + self._probe_c, o

        def get_config(self):  # Bidirectional rebuilds its forward layer from the config
            return dict(super().get_config(), slot=self.slot, slots=self.slots)

    return ProbedLSTMCell


def zero_probes(x, width):
    """Zeros (B, T, width) beside x: the probes, fed as extra per-step inputs."""
    return np.zeros(x.shape[:2] + (width,), x.dtype)


# --- models with one state h (SimpleRNN, GRU): the same probe and the same functions ---------


def one_state_signature(dtype, D, H, probes=0):
    """x, its zero probes (when ``probes``: H per step), h0 (the differentiated inputs), gh."""
    return ([((None, None, D), dtype)] + [((None, None, H), dtype)] * probes
            + [((None, H), dtype), ((None, None, H), dtype)])


def probed_one_state_cell(base):
    """``base`` (a Keras cell class whose only state is h: SimpleRNNCell, GRUCell) with a zero
    probe added to each step's h_t, its output and new state: the gradient of the loss with
    respect to the probe, fed as an extra per-step input, is the total dL/dh_t (see
    ``probed_lstm_cell``, also for ``slot`` of ``slots``)."""
    class Probed(base):
        def __init__(self, units, slot=0, slots=1, **kwargs):
            super().__init__(units, **kwargs)
            self.slot, self.slots = slot, slots

        def build(self, input_shape):
            super().build((input_shape[0], input_shape[-1] - self.units * self.slots))

        def call(self, inputs, states, training=False):
            H = self.units
            D = inputs.shape[-1] - H * self.slots
            e = D + H * self.slot
            h, _ = super().call(inputs[:, :D], states, training=training)
            h = h + inputs[:, e:e + H]
            return h, [h]

        def get_config(self):
            return dict(super().get_config(), slot=self.slot, slots=self.slots)

    Probed.__name__ = f"Probed{base.__name__}"
    return Probed


def one_state_cell_fn(cell, rnn, dtype, D, H, backwards):
    """(x, probes, h0, gh) -> ([h], weight grads, [dx, dh, dh0]) of a probed one-state cell
    (``probed_one_state_cell``) in the ``keras.layers.RNN`` loop ``rnn``: the probes' gradient is dh."""
    ops = keras_backends.ops()

    def forward(x, probes, h0, gh):
        seq = in_time_order(ops, rnn(ops.concatenate([x, probes], -1), initial_state=[h0]), backwards)
        return ops.sum(gh * seq), [seq]

    return keras_backends.gradient_function(forward, weights(cell), one_state_signature(dtype, D, H, probes=1), 3)


def one_state_layer_fn(layer, dtype, D, H, backwards):
    """(x, h0, gh) -> ([h], weight grads, [dx, dh0]) of a whole-sequence one-state layer."""
    ops = keras_backends.ops()

    def forward(x, h0, gh):
        seq = in_time_order(ops, layer(x, initial_state=[h0]), backwards)
        return ops.sum(gh * seq), [seq]

    return keras_backends.gradient_function(forward, weights(layer.cell), one_state_signature(dtype, D, H), 2)


def _probed_lstm(D, H, dtype, bias=True, backwards=False):
    """A probed LSTMCell in a ``keras.layers.RNN`` loop, built for inputs [x, e_h, e_c]."""
    _, keras = import_keras()
    ops = keras_backends.ops()
    cell = probed_lstm_cell(keras, ops)(H, dtype=dtype, use_bias=bias, **_ACTIVATIONS)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, go_backwards=backwards, dtype=dtype)
    rnn.build((None, None, D + 2 * H))
    return ops, keras, cell, rnn


def _build_cell(D, H, dtype, bias=True, backwards=False):
    ops, _, cell, rnn = _probed_lstm(D, H, dtype, bias, backwards)

    def forward(x, probes, h0, c0, gh, gc):
        seq, _, c_last = rnn(ops.concatenate([x, probes], -1), initial_state=[h0, c0])
        seq = in_time_order(ops, seq, backwards)
        h, c = seq[..., :H], seq[..., H:]
        return ops.sum(gh * h) + ops.sum(gc * c_last), [h, c]

    return cell, keras_backends.gradient_function(forward, weights(cell), _signature(dtype, D, H, 2 * H), 4)


def run_cell(inputs, options=()):
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cell, fn = built(_build_cell, x.shape[2], H, x.dtype.name, use_bias(options), go_backwards(options))
    assign(cell, inputs)
    (h, c), grads, (dx, dprobes, dh0, dc0) = fn(x, zero_probes(x, 2 * H), inputs["h0"], inputs["c0"], inputs["gh"],
                                                inputs["gc"])
    params, _ = weight_grads(grads, cell)
    out = dict(h=h, c=c, dh=dprobes[..., :H], dc=dprobes[..., H:], dx=dx, dh0=dh0, dc0=dc0)
    out.update(params)
    return out


def _build_layer(D, H, dtype, bias=True, backwards=False):
    _, keras = import_keras()
    ops = keras_backends.ops()
    layer = keras.layers.LSTM(
        H, return_sequences=True, return_state=True, go_backwards=backwards, dtype=dtype, use_bias=bias,
        **_ACTIVATIONS, **keras_backends.layer_kwargs(keras)
    )
    layer.build((None, None, D))

    def forward(x, h0, c0, gh, gc):
        seq, _, c_last = layer(x, initial_state=[h0, c0])
        seq = in_time_order(ops, seq, backwards)
        return ops.sum(gh * seq) + ops.sum(gc * c_last), [seq, c_last]

    specs = [spec for n, spec in enumerate(_signature(dtype, D, H, H)) if n != 1]  # no probes
    return layer, keras_backends.gradient_function(forward, weights(layer.cell), specs, 3)


def run_layer(inputs, options=()):
    x = inputs["x"]
    layer, fn = built(_build_layer, x.shape[2], inputs["h0"].shape[1], x.dtype.name, use_bias(options),
                      go_backwards(options))
    assign(layer.cell, inputs)
    (seq, c_last), grads, (dx, dh0, dc0) = fn(x, inputs["h0"], inputs["c0"], inputs["gh"], inputs["gc"])
    params, _ = weight_grads(grads, layer.cell)
    out = dict(h=seq, cT=c_last, dx=dx, dh0=dh0, dc0=dc0)
    out.update(params)
    return out


_WHOLE_SEQUENCE_BLIND = {
    "c": "only C_T is returned (return_state); c_t for t < T stays inside the layer's loop",
    "dh": "dL/dh_t includes paths inside the layer's loop; only the upstream part is an input",
    "dc": "c_t for t < T is not an output of the layer, so dL/dc_t cannot be taken",
}

# The LSTM's structure (Bidirectional with every merge mode, two layers: gatecheck.engines.structured).
MODEL = structured.Model(states=("h0", "c0"), finals={"cT": (1, "gc")},
                         observes=("cT", "dh0", "dc0", "dW", "dU", "db"), keras_layer="LSTM",
                         keras_kwargs=_ACTIVATIONS, keras_assign=assign, keras_grads=weight_grads)
STRUCTURES = frozenset({"bi", "bisum", "bimul", "biave", "binone", "L2"})
# Masks: the layers only (layer(x, mask=...)); the probed cells run no mask.
MASKED = frozenset({"len", "mask", "maskz"})


# --- the probed cells in layers: Bidirectional (every merge mode) and two layers in sequence ----------


def probed_runner(model, probed, base_run):
    """The runner of a probed cell oracle: ``base_run`` without structural options, else the probed
    cells (``probed(keras, ops)``: their class) in ``keras.layers.Bidirectional`` and layers in
    sequence (``model``: the family's gatecheck.engines.structured record), one probe tensor per
    layer with a slot per direction, so that every layer's and direction's per-step deltas leave."""
    build = functools.partial(_build_probed, model, probed)

    @functools.wraps(base_run)
    def run(inputs, options=()):
        if not any(OPTIONS[o].structural for o in options):
            return base_run(inputs, options)
        return _run_probed(model, build, inputs, options)

    return run


def _recording_rnn(keras):
    """``keras.layers.RNN`` that keeps what its last call returned: Bidirectional merges its two
    layers' sequences (under sum, mul and ave the directions' states are not apart in its output),
    so each direction's per-step states are read from what its own layer returned inside it."""
    class RecordingRNN(keras.layers.RNN):
        def call(self, sequences, initial_state=None, mask=None, training=False):
            result = super().call(sequences, initial_state=initial_state, mask=mask, training=training)
            self.returned = tuple(result)
            return result

    return RecordingRNN


def _merged_h(ops, output, merge, H, width):
    """The layer's output y (h merged; h for one direction) from what the layer returned: its cells'
    outputs are [h_t, c_t] (the LSTM, ``width`` 2H) or h_t (``width`` H)."""
    if merge is None:
        return output[..., :H]
    if merge == "none":  # the pair of outputs
        return ops.concatenate([output[0][..., :H], output[1][..., :H]], -1)
    if merge == "concat":
        return ops.concatenate([output[..., :H], output[..., width:width + H]], -1)
    return output[..., :H]  # sum, mul, ave: elementwise, so the h part of the merge is the merge of h


def _build_probed(model, probed, D, H, dtype, bias, merge, depth):
    _, keras = import_keras()
    ops = keras_backends.ops()
    rnn_class, cell_class = _recording_rnn(keras), probed(keras, ops)
    per_cell = len(model.states)
    width_of_cell = per_cell * H  # its probes and its outputs: [h, c] or h
    directions = 2 if merge else 1

    def rnn(slot):
        cell = cell_class(H, slot=slot, slots=directions, dtype=dtype, use_bias=bias, **model.keras_kwargs)
        return rnn_class(cell, return_sequences=True, return_state=True, go_backwards=bool(slot), dtype=dtype)

    stack, width = [], D
    for _ in range(depth):
        if merge:
            with keras.saving.custom_object_scope({c.__name__: c for c in (rnn_class, cell_class)}):
                layer = keras.layers.Bidirectional(rnn(0), backward_layer=rnn(1), dtype=dtype,
                                                   merge_mode=None if merge == "none" else merge)
            parts = [layer.forward_layer, layer.backward_layer]
        else:
            layer = rnn(0)
            parts = [layer]
        layer.build((None, None, width + directions * width_of_cell))
        stack.append((layer, parts))
        width = 2 * H if merge in ("concat", "none") else H
    cells = [part.cell for _, parts in stack for part in parts]
    per_layer = per_cell * directions
    n_states = per_layer * depth
    # x, every initial state, each layer's probes (the differentiated inputs); gy, every final state's upstream
    specs = ([((None, None, D), dtype)] + [((None, H), dtype)] * n_states
             + [((None, None, directions * width_of_cell), dtype)] * depth
             + [((None, None, width), dtype)] + [((None, H), dtype)] * n_states)

    def forward(x, *rest):
        initial, probes = rest[:n_states], rest[n_states:n_states + depth]
        gy, final_upstream = rest[n_states + depth], rest[n_states + depth + 1:]
        seq, outputs, sequences, finals = x, [], [], []
        for k, (layer, parts) in enumerate(stack):
            result = layer(ops.concatenate([seq, probes[k]], -1),
                           initial_state=list(initial[k * per_layer:(k + 1) * per_layer]))
            n = 2 if merge == "none" else 1  # the pair of outputs, then the states
            output = list(result[:2]) if n == 2 else result[0]
            finals += list(result[n:])  # [forward states, backward states]
            sequences += [part.returned[0] for part in parts]  # each in its processing order
            seq = _merged_h(ops, output, merge, H, width_of_cell)
            outputs.append(seq)
        loss = ops.sum(gy * seq)
        for state, upstream in zip(finals, final_upstream):
            loss += ops.sum(upstream * state)
        return loss, [outputs, sequences, finals]

    weights_ = [w for cell in cells for w in weights(cell)]
    return cells, keras_backends.gradient_function(forward, weights_, specs, 1 + n_states + depth)


def direction_in_time_order(sequence, deltas, backwards):
    """One direction's per-step arrays indexed by the original t: the sequence its layer returned
    (under go_backwards in processing order, tensorflow#40345: flipped back) and its probes'
    gradients (the probes are inputs beside x, so these are by the original t already)."""
    return (sequence[:, ::-1] if backwards else sequence), deltas


def _run_probed(model, build, inputs, options):
    merge, depth = structured.structure(options)
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cells, fn = built(build, x.shape[2], H, x.dtype.name, use_bias(options), merge, depth)
    names = structured.suffixes(options)
    for cell, s in zip(cells, names):
        model.keras_assign(cell, structured.part(inputs, s))
    initial = [inputs[k + s] for s in names for k in model.states]
    # Every returned state's upstream gradient: a final state's own input (gc), zeros for the rest
    # (h_T is the output's last step, whose gradient is in gh).
    by_index = {index: up for index, up in model.finals.values()}
    zeros = np.zeros_like(inputs["h0"])
    upstream = [inputs[by_index[i] + s] if i in by_index else zeros for s in names for i in range(len(model.states))]
    per_cell = len(model.states)
    directions = 2 if merge else 1
    probes = [zero_probes(x, directions * per_cell * H) for _ in range(depth)]
    (outputs, sequences, finals), rest, dinputs = fn(x, *initial, *probes, inputs["gh"], *upstream)
    out = {}
    for cell, s in zip(cells, names):
        n = len(weights(cell))
        params, _ = model.keras_grads(rest[:n], cell)
        out.update({k + s: v for k, v in params.items()})
        rest = rest[n:]
    out["dx"] = dinputs[0]
    initial_grads, probes = dinputs[1:1 + len(initial)], dinputs[1 + len(initial):]
    states = [k[:-1] for k in model.states]  # h0 -> h: the per-step state, in the cell's output order
    for n, s in enumerate(names):
        layer, backwards = divmod(n, directions)
        width = per_cell * H
        sequence, deltas = direction_in_time_order(sequences[n],
                                                   probes[layer][..., backwards * width:(backwards + 1) * width],
                                                   bool(backwards))
        for i, k in enumerate(states):
            out[k + s] = sequence[..., i * H:(i + 1) * H]
            out["d" + k + s] = deltas[..., i * H:(i + 1) * H]
        for i, k in enumerate(model.states):
            out["d" + k + s] = initial_grads[n * per_cell + i]
        for q, (index, _) in model.finals.items():
            out[q + s] = finals[n * per_cell + index]
    if merge:
        out.update({"y" + (layers.LAYER if k else ""): y for k, y in enumerate(outputs)})
    return out


def observed_cell(model):
    """What a probed cell oracle returns under structural options: per layer and direction its
    per-step states and deltas and what a layer returns of it (``model.observes``), dx, and the
    merged output y of each bidirectional layer."""
    per_step = tuple(k[:-1] for k in model.states)
    per_step += tuple("d" + k for k in per_step)

    def names(options):
        merge, depth = structured.structure(options)
        found = ["dx"]
        for s in structured.suffixes(options):
            found += [q + s for q in per_step + model.observes]
        if merge:
            found += ["y" + (layers.LAYER if k else "") for k in range(depth)]
        return tuple(found)

    return names


def observed_layer(model):
    """What a Keras layer oracle returns under structural options: the directions apart only where
    Bidirectional returns them apart (concat, and merge_mode=None's pair)."""
    from gatecheck.model.options import merge

    return lambda options: structured.observed(model, options, merged_apart=merge(options) in ("concat", "none"))


KERAS_CELL = Oracle(
    name="keras-cell",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTMCell with zero probes on c_t and h_t, in keras.layers.RNN (gradients: keras_backends)",
    observes=("h", "c", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db"),
    runner=probed_runner(MODEL, probed_lstm_cell, run_cell),
    trace_ms=330,
    declines_dtype=keras_backends.dtype_declines(),
    options=frozenset({"nobias", "rev"}) | STRUCTURES,
    observes_structured=observed_cell(MODEL),
)

KERAS_LAYER = Oracle(
    name="keras-layer",
    family="lstm",
    framework="keras",
    description="keras.layers.LSTM whole sequence (return_sequences, return_state)",
    observes=("h", "cT", "dx", "dh0", "dc0", "dW", "dU", "db"),
    cannot_observe=dict(_WHOLE_SEQUENCE_BLIND),
    runner=structured.keras_runner(MODEL, run_layer),
    trace_ms=240,
    options=frozenset({"nobias", "rev"}) | STRUCTURES | MASKED,
    observes_structured=observed_layer(MODEL),
    declines=structured.declines_keras,
    # the backend's own loop, but under a mask a cell's call per step:
    declines_dtype=keras_backends.dtype_declines(steps_a_cell=False, layer=keras_backends.declines_layer_dtype),
)


# --- the softmax / cross-entropy head (gatecheck/reference/head.py) ---------------------------


def _build_cell_head(D, H, K, dtype):
    ops, keras, cell, rnn = _probed_lstm(D, H, dtype)
    dense = keras.layers.Dense(K, dtype=dtype)
    dense.build((None, H))
    specs = _signature(dtype, D, H, 2 * H)[:4] + [((None, None, K), dtype)]

    def forward(x, probes, h0, c0, y):
        seq, _, _ = rnn(ops.concatenate([x, probes], -1), initial_state=[h0, c0])
        h, c = seq[..., :H], seq[..., H:]
        logits = dense(h)
        loss = ops.sum(ops.categorical_crossentropy(y, logits, from_logits=True))
        return loss, [h, c, ops.softmax(logits, axis=-1), loss]

    variables = [cell.kernel, cell.recurrent_kernel, cell.bias, dense.kernel, dense.bias]
    return cell, dense, keras_backends.gradient_function(forward, variables, specs, 4)


def run_cell_head(inputs):
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cell, dense, fn = built(_build_cell_head, x.shape[2], H, inputs["V"].shape[1], x.dtype.name)
    assign(cell, inputs)
    dense.kernel.assign(inputs["V"])
    dense.bias.assign(inputs["cb"])
    (h, c, p, loss), (dk, drk, dbias, dV, dcb), (dx, dprobes, dh0, dc0) = fn(x, zero_probes(x, 2 * H), inputs["h0"],
                                                                          inputs["c0"], inputs["y"])
    out = dict(h=h, c=c, p=p, dh=dprobes[..., :H], dc=dprobes[..., H:], dx=dx, dh0=dh0, dc0=dc0, dV=dV, dcb=dcb,
               loss=loss)
    out.update(grads_to_canonical(dk, drk, dbias))
    return out


KERAS_CELL_HEAD = Oracle(
    name="keras-cell-head",
    family="lstm-head",
    framework="keras",
    description="keras.layers.LSTMCell (probed, in keras.layers.RNN) + Dense + softmax cross-entropy per step",
    observes=("h", "c", "p", "dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db", "dV", "dcb"),
    runner=run_cell_head,
    trace_ms=360,
    declines_dtype=keras_backends.dtype_declines(),
)

ORACLES = (KERAS_CELL, KERAS_LAYER, KERAS_CELL_HEAD)
