"""What every Keras oracle shares, on whichever Keras 3 backend the process runs: models built once per
process, canonical weights into a cell and gradients out, the reverse direction's time order, the
probed cells (zero probes whose gradients are the per-step deltas) and the layer structures
(``keras.layers.Bidirectional``, layers in sequence, masks) built around a model
(gatecheck.engines.structured)."""

import functools

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.frameworks import import_keras
from gatecheck.engines.keras import backends as keras_backends
from gatecheck.engines.keras import layout, versions
from gatecheck.model import options as opts
from gatecheck.model.options import OPTIONS
from gatecheck.reference import activations as reference_activations
from gatecheck.reference import layers

_cache = {}


def built(build, *args):
    """``build(*args)`` (a model and its traced function), built once per process and reused:
    every Keras oracle is built once per set of build arguments (its D, H, K and dtype)."""
    key = (build, *args)
    if key not in _cache:
        _cache[key] = build(*args)
    return _cache[key]


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


def zero_probes(x, width):
    """Zeros (B, T, width) beside x: the probes, fed as extra per-step inputs."""
    return np.zeros(x.shape[:2] + (width,), x.dtype)


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


STRUCTURES = frozenset({"bi", "bisum", "bimul", "biave", "binone", "L2"})


# Masks: the layers only (layer(x, mask=...)); the probed cells run no mask.
MASKED = frozenset({"len", "mask", "maskz"})


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


def _build_probed(model, probed, D, H, dtype, bias, merge, depth, own=None):
    model = model.own[own] if own else model  # an option of the model's own (an activation): its Keras arguments
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
    cells, fn = built(build, x.shape[2], H, x.dtype.name, use_bias(options), merge, depth,
                      structured.own_option(model, options))
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
    return lambda options: structured.observed(model, options, merged_apart=opts.merge(options) in ("concat", "none"))


def keras_runner(model, base_run):
    """The runner of a Keras layer oracle: ``base_run`` without structural options, else the structured.structure
    built from ``keras.layers.Bidirectional`` and layers in sequence (built once per D, H, dtype, options)."""
    build = functools.partial(_build_keras, model)

    @functools.wraps(base_run)
    def run(inputs, options=()):
        if not any(opts.OPTIONS[o].structural for o in options):
            return base_run(inputs, options)
        return _run_keras(model, build, inputs, options)

    return run


# Keras' names of the activations its recurrent layers are given under an activation option (the names its
# ``keras.activations.get`` takes); hard_sigmoid only where the installed version's is the option's function.
_KERAS_NAMES = {"relu": "relu", "hard_sigmoid": "hard_sigmoid"}


def _keras_version():
    """The installed Keras' version, read from its distribution without importing it (the grid asks, and
    building the grid imports no framework); None where Keras is not installed."""
    from importlib import metadata

    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return None


def _keras_hard_sigmoid_is(spec, version):
    """Whether Keras ``version``'s 'hard_sigmoid' is ``spec`` ((name, alpha, beta)): the version's definition
    (gatecheck.engines.keras.versions) against the reference's, on points either side of both kinks."""
    semantics = versions.applicable("keras", version, "hard_sigmoid")
    z = np.linspace(-6.0, 6.0, 97)
    return bool(np.allclose(semantics.formula(z), reference_activations.choose(spec)(z), rtol=0, atol=1e-12))


def activation_kwargs(options):
    """Keras' ``activation`` and ``recurrent_activation`` of a case's options (gatecheck.model.options): the
    family's tanh and sigmoid, stated, or an activation option's in their place."""
    found = dict(activation="tanh", recurrent_activation="sigmoid")
    name = opts.activation(options)
    if name:
        found["activation"] = _KERAS_NAMES[name]
    spec = opts.recurrent_activation(options)
    if spec:
        found["recurrent_activation"] = _KERAS_NAMES[spec[0]]
    return found


def own_activations(model, names=("relu", "hardsig")):
    """``Model.own`` of a model under each activation option in ``names``: its Keras arguments with the
    option's activation and recurrent_activation (``activation_kwargs``)."""
    return {o: model._replace(keras_kwargs={**model.keras_kwargs, **activation_kwargs((o,))}) for o in names}


def declines_activation(options):
    """Why the Keras oracles do not run an activation option (None: they run it): hardsig where the installed
    Keras' hard_sigmoid is not the option's clip(z / 6 + 1/2, 0, 1) (Keras 2's is clip(0.2 z + 0.5, 0, 1))."""
    spec = opts.recurrent_activation(options)
    version = _keras_version() if spec else None
    if version and not _keras_hard_sigmoid_is(spec, version):
        source = versions.applicable("keras", version, "hard_sigmoid").source
        return (f"Keras {version}'s hard_sigmoid ({source}) is not the option's "
                f"{reference_activations.ACTIVATIONS[spec[0]].meaning} with alpha={spec[1]:.6g}, beta={spec[2]}")
    return None


def declines_keras(options):
    """Why the Keras layer oracles do not run a set of options they offer one by one (None: they run it)."""
    if opts.masking(options) == opts.MASKS["mask"] and opts.merge(options):
        return ("keras.layers.Bidirectional sets zero_output_for_mask=True on both its layers (when returning "
                "sequences): a bidirectional layer under Keras masking outputs zeros at masked steps (maskz)")
    return declines_activation(options)


def keras_stack(keras, model, D, H, dtype, merge, depth, masked_output=None, **layer_args):
    """``depth`` built Keras layers of a model (each in ``keras.layers.Bidirectional`` under ``merge``),
    returning sequences and states, with the backend's code path (``keras_backends.layer_kwargs``),
    ``zero_output_for_mask`` as ``masked_output`` says and ``layer_args`` (use_bias, go_backwards);
    returns (the layers, every layer's and direction's cell, layer-major, the top layer's output width)."""
    extra = keras_backends.layer_kwargs(keras) if model.keras_layer in ("LSTM", "GRU") else {}
    if masked_output:
        extra["zero_output_for_mask"] = masked_output == "zero"
    stack, cells, width = [], [], D
    for _ in range(depth):
        layer = getattr(keras.layers, model.keras_layer)(H, return_sequences=True, return_state=True, dtype=dtype,
                                                         **model.keras_kwargs, **extra, **layer_args)
        if merge:
            layer = keras.layers.Bidirectional(layer, merge_mode=None if merge == "none" else merge, dtype=dtype)
        layer.build((None, None, width))
        cells += [layer.forward_layer.cell, layer.backward_layer.cell] if merge else [layer.cell]
        stack.append(layer)
        width = 2 * H if merge in ("concat", "none") else H
    return stack, cells, width


def _build_keras(model, D, H, dtype, bias, merge, depth, masked_output=None, own=None):
    model = model.own[own] if own else model  # an option of the model's own (an activation): its Keras arguments
    _, keras = import_keras()
    ops = keras_backends.ops()
    stack, cells, width = keras_stack(keras, model, D, H, dtype, merge, depth, masked_output, use_bias=bias)
    per_layer = len(model.states) * (2 if merge else 1)
    n_states = per_layer * depth
    # x and every initial state (the differentiated inputs); gy, every final state's upstream, the mask
    specs = ([((None, None, D), dtype)] + [((None, H), dtype)] * n_states + [((None, None, width), dtype)]
             + [((None, H), dtype)] * n_states + [((None, None), "bool")])

    def forward(x, *rest):
        initial, gy = rest[:n_states], rest[n_states]
        final_upstream, mask = rest[n_states + 1:-1], rest[-1]
        seq, finals = x, []
        for k, layer in enumerate(stack):
            given = dict(mask=mask) if masked_output else {}  # every layer gets the mask
            result = layer(seq, initial_state=list(initial[k * per_layer:(k + 1) * per_layer]), **given)
            if merge == "none":  # the pair of outputs, then the states
                seq, states = ops.concatenate(list(result[:2]), -1), list(result[2:])
            else:
                seq, states = result[0], list(result[1:])
            finals += states
        loss = ops.sum(gy * seq)
        for state, upstream in zip(finals, final_upstream):
            loss += ops.sum(upstream * state)
        return loss, [seq, finals]

    weights_ = [w for cell in cells for w in weights(cell)]
    return cells, keras_backends.gradient_function(forward, weights_, specs, 1 + n_states)


def _run_keras(model, build, inputs, options):
    own = structured.own_option(model, options)  # any option but no bias and the model's own is refused
    merge, depth = structured.structure(options)
    declined = declines_keras(options)
    if declined:
        raise ValueError(f"options {list(options)}: {declined}")
    masking = opts.masking(options)
    x = inputs["x"]
    H = inputs["h0"].shape[1]
    cells, fn = built(build, x.shape[2], H, x.dtype.name, use_bias(options), merge, depth,
                      masking and masking[0], own)
    names = structured.suffixes(options)
    for cell, s in zip(cells, names):
        model.keras_assign(cell, structured.part(inputs, s))
    initial = [inputs[k + s] for s in names for k in model.states]
    # The upstream gradient of every returned state: a final state's upstream input, zeros for the rest
    # (an LSTM's h_T is the output's last step, whose gradient is in gh).
    returned = structured.final_states(model, options)
    by_index = {index: up for index, up in returned.values() if up}
    zeros = np.zeros_like(inputs["h0"])
    upstream = [inputs[by_index[i] + s] if i in by_index else zeros for s in names for i in range(len(model.states))]
    mask = layers.valid(inputs[layers.MASK]) if masking else np.ones(x.shape[:2], bool)
    (y, finals), rest, dinputs = fn(x, *initial, inputs["gh"], *upstream, mask)
    out = {}
    for cell, s in zip(cells, names):
        n = len(weights(cell))
        params, _ = model.keras_grads(rest[:n], cell)
        rest = rest[n:]
        out.update({k + s: v for k, v in params.items()})
    out["dx"] = dinputs[0]
    for n, s in enumerate(names):
        for i, k in enumerate(model.states):
            out["d" + k + s] = dinputs[1 + n * len(model.states) + i]
        for q, (index, _) in returned.items():
            out[q + s] = finals[n * len(model.states) + index]
    out.update(structured.top_outputs(y, merge, depth, masking))
    return out
