"""PaddlePaddle oracles: ``paddle.nn``'s recurrent cells and layers in eager mode on the CPU.

paddle-lstm-cell, paddle-gru-cell, paddle-rnn-cell
    ``paddle.nn.LSTMCell`` / ``GRUCell`` / ``SimpleRNNCell`` unrolled step by step; every state the
    cell returns keeps its gradient (``Tensor.retain_grads``), which is the total delta dL/dh_t (and
    dL/dc_t: the cell takes h_t from the c_t it returns, so that gradient includes the path through
    h_t).
paddle-lstm-layer, paddle-gru-layer, paddle-rnn-layer (and each one's -tm variant)
    ``paddle.nn.LSTM`` / ``GRU`` / ``SimpleRNN`` over the whole sequence (``time_major=False``): x
    (B, T, D) as the contract's; the -tm variants build ``time_major=True`` and are fed x as (T, B, D),
    their output transposed back. With both biases the layer runs Paddle's fused ``rnn`` kernel
    (``RNNBase._cudnn_impl``, which has a CPU kernel); without a bias (``bias_ih_attr=False``) it
    runs its Python loop of cells (``RNNBase.could_use_cudnn`` is False then). The per-step states
    inside (c_t for t < T) and the per-step deltas stay in the loop.

Under the structural options the layer oracles build ``direction="bidirect"`` (bi: Paddle
concatenates [forward, backward] on the last axis, no other merge), ``num_layers=2`` (L2) and
``sequence_length`` (len: right-padded rows), with ``initial_states`` of shape (num_layers *
directions, B, H) in the layer-major order [layer 0 forward, layer 0 backward, layer 1 forward, ...].
Weights go into each layer's and direction's own cell (``layer[k].cell``, ``cell_fw``,
``cell_bw``): the layer's flat names (``weight_ih_l0_reverse``...) are attached by position and
name other parameters when a cell has more than four (proj_size), so the cells are the one sure
address. The dtype is Paddle's default dtype while the modules are built (``paddle.set_default_dtype``;
the cells take no dtype argument), restored after.

Every runner takes the canonical inputs and returns canonical-layout arrays in the inputs' dtype
(remaps: ``gatecheck.engines.paddle.layout``, looked up when called).
"""

import contextlib
from typing import NamedTuple

import numpy as np

from gatecheck.engines import structured
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import import_paddle
from gatecheck.engines.paddle import layout as paddle_layout
from gatecheck.model import options as opts
from gatecheck.reference import layers


class Model(NamedTuple):
    """One family's model in Paddle."""

    cell: str  # the paddle.nn cell class
    layer: str  # the paddle.nn layer class
    kwargs: dict  # arguments of both beyond the sizes and biases
    states: tuple  # initial-state inputs in Paddle's state order
    finals: dict  # quantity -> (index in the state order, its upstream input)
    remap: str  # paddle_layout's canonical -> Paddle function (looked up when called)
    back: str  # paddle_layout's gradients -> canonical function
    observes: tuple  # the timeless quantities of one layer and direction
    width: str = "h0"  # the initial state whose last axis is the hidden size H (c0 under proj)
    own: dict = {}  # option -> the Model under it (the LSTM's proj: proj_size, weight_ho)


_LSTM_PARAMS = ("dW", "dU", "db", "db_ih", "db_hh")
_GRU_PARAMS = ("dW", "dU", "dbx", "dbh")
_RNN_PARAMS = ("dW", "dU", "db", "db_ih", "db_hh")
LSTM = Model("LSTMCell", "LSTM", {}, ("h0", "c0"), {"cT": (1, "gc")}, "to_paddle_lstm", "grads_from_paddle_lstm",
             ("cT", "dh0", "dc0") + _LSTM_PARAMS)
LSTM = LSTM._replace(own={"proj": LSTM._replace(remap="to_paddle_lstm_proj", back="grads_from_paddle_lstm_proj",
                                                 observes=LSTM.observes + ("dWr",), width="c0")})
GRU = Model("GRUCell", "GRU", {}, ("h0",), {}, "to_paddle_gru", "grads_from_paddle_gru", ("dh0",) + _GRU_PARAMS)
RNN = Model("SimpleRNNCell", "SimpleRNN", {"activation": "tanh"}, ("h0",), {}, "to_paddle_rnn",
            "grads_from_paddle_rnn", ("dh0",) + _RNN_PARAMS)


def _modelled(model, options, inputs):
    """(the model under a case's options, its own option's where one is among them; the hidden size H; the size
    arguments of its cell or layer: proj_size=P, h0's width, under proj)."""
    own = [o for o in options if o in model.own]
    model = model.own[own[0]] if own else model
    sizes = {"proj_size": inputs["h0"].shape[1]} if "proj" in own else {}
    return model, inputs[model.width].shape[1], sizes


@contextlib.contextmanager
def _default_dtype(paddle, dtype):
    """Paddle's default dtype set to ``dtype`` while modules are built (their parameters take it)."""
    before = paddle.get_default_dtype()
    paddle.set_default_dtype(dtype)
    try:
        yield
    finally:
        paddle.set_default_dtype(before)


def _bias(options):
    """The bias arguments of a case's options: none without a bias (``bias_ih_attr=False, bias_hh_attr=False``)."""
    return {"bias_ih_attr": False, "bias_hh_attr": False} if "nobias" in options else {}


def _trainable(cell):
    """A cell's parameters that take gradients. Without a bias, Paddle 3 keeps each bias as a constant zero
    parameter with ``stop_gradient=True``; it is checked to be zero and left out."""
    found = {}
    for name, p in cell.named_parameters():
        if not p.stop_gradient:
            found[name] = p
        elif np.any(p.numpy()):
            raise RuntimeError(f"paddle {type(cell).__name__}.{name}: a frozen parameter that is not zero")
    return found


def _load(cell, model, inputs):
    """The canonical weights of one (layer, direction) into its cell; the remap of inputs without biases
    gives none, and a cell built without a bias has none to train: any other pairing is an oracle bug."""
    weights = getattr(paddle_layout, model.remap)(inputs)
    params = _trainable(cell)
    if set(weights) != set(params):
        raise RuntimeError(f"paddle {type(cell).__name__} trains parameters {sorted(params)}, the remap gives "
                           f"{sorted(weights)}")
    for name, value in weights.items():
        if tuple(params[name].shape) != value.shape:
            raise RuntimeError(f"paddle {type(cell).__name__}.{name}: shape {tuple(params[name].shape)}, the remap "
                               f"gives {value.shape}")
        params[name].set_value(value)


def _grads(cell, model):
    """One cell's parameter gradients in the canonical layout."""
    found = {name: p.grad.numpy() for name, p in _trainable(cell).items()}
    return getattr(paddle_layout, model.back)(found)


def _tensor(paddle, value, grad=False):
    t = paddle.to_tensor(np.ascontiguousarray(value))
    t.stop_gradient = not grad
    return t


def cell_runner(model):
    """The runner of a cell oracle: the cell unrolled over x, ``retain_grads`` on every state it returns."""
    lstm = "c0" in model.states

    def run(inputs, options=()):
        paddle = import_paddle()
        x = inputs["x"]
        _, T, D = x.shape
        model_, H, sizes = _modelled(model, options, inputs)
        with _default_dtype(paddle, x.dtype.name):
            cell = getattr(paddle.nn, model_.cell)(D, H, **model_.kwargs, **sizes, **_bias(options))
        _load(cell, model_, inputs)
        t = {k: _tensor(paddle, inputs[k], grad=k in ("x",) + model.states) for k in ("x",) + model.states}
        state = (t["h0"], t["c0"]) if lstm else t["h0"]
        hs, cs = [], []
        for step in range(T):
            _, state = cell(t["x"][:, step], state)
            for s in (state if lstm else (state,)):
                s.retain_grads()
            hs.append(state[0] if lstm else state)
            if lstm:
                cs.append(state[1])
        loss = (_tensor(paddle, inputs["gh"]) * paddle.stack(hs, 1)).sum()
        if lstm:
            loss = loss + (_tensor(paddle, inputs["gc"]) * cs[-1]).sum()
        loss.backward()
        out = dict(h=paddle.stack(hs, 1).numpy(), dh=np.stack([v.grad.numpy() for v in hs], 1),
                   dx=t["x"].grad.numpy(), dh0=t["h0"].grad.numpy())
        if lstm:
            out.update(c=paddle.stack(cs, 1).numpy(), dc=np.stack([v.grad.numpy() for v in cs], 1),
                       dc0=t["c0"].grad.numpy())
        out.update(_grads(cell, model_))
        return out

    return run


def _cells(module, bidirectional):
    """Each (layer, direction)'s cell of a Paddle layer, layer-major (the canonical suffixes' order)."""
    found = []
    for wrapper in module:
        found += [wrapper.cell_fw, wrapper.cell_bw] if bidirectional else [wrapper.cell]
    return found


def layer_runner(family_model, time_major=False):
    """The runner of a layer oracle: the layer over the whole sequence, under any structural options
    (``time_major``: the layer built so, fed x as (T, B, D) and its output transposed back to (B, T, .))."""

    def run(inputs, options=()):
        paddle = import_paddle()
        merge, depth = structured.structure(options)
        if merge not in (None, "concat"):
            raise ValueError(f"Paddle concatenates its directions; merge {merge} is not offered")
        masking = opts.masking(options)
        if masking not in (None, opts.MASKS["len"]):
            raise ValueError(f"options {list(options)}: Paddle's sequence_length takes right-padded rows (len); "
                             f"a mask with gaps is not offered")
        x = inputs["x"]
        model, H, sizes = _modelled(family_model, options, inputs)
        with _default_dtype(paddle, x.dtype.name):
            module = getattr(paddle.nn, model.layer)(x.shape[2], H, num_layers=depth,
                                                     direction="bidirect" if merge else "forward", time_major=time_major,
                                                     **model.kwargs, **sizes, **_bias(options))
        names = structured.suffixes(options)
        cells = _cells(module, bool(merge))
        for cell, s in zip(cells, names):
            _load(cell, model, structured.part(inputs, s))
        tx = _tensor(paddle, x, grad=True)
        initial = [_tensor(paddle, np.stack([inputs[k + s] for s in names]), grad=True) for k in model.states]
        extra = {}
        if masking:
            lengths = structured.right_padded_lengths(inputs[layers.MASK])
            extra["sequence_length"] = paddle.to_tensor(lengths.astype(np.int64))
        fed = tx.transpose([1, 0, 2]) if time_major else tx
        seq, finals = module(fed, tuple(initial) if len(initial) > 1 else initial[0], **extra)
        if time_major:
            seq = seq.transpose([1, 0, 2])
        finals = finals if isinstance(finals, (tuple, list)) else (finals,)
        loss = (_tensor(paddle, inputs["gh"]) * seq).sum()
        returned = structured.final_states(model, options)
        for q, (index, upstream) in returned.items():
            if upstream:
                for n, s in enumerate(names):
                    loss = loss + (_tensor(paddle, inputs[upstream + s]) * finals[index][n]).sum()
        loss.backward()
        out = {"dx": tx.grad.numpy()}
        for n, (s, cell) in enumerate(zip(names, cells)):
            out.update({k + s: v for k, v in _grads(cell, model).items()})
            for k, leaf in zip(model.states, initial):
                out["d" + k + s] = leaf.grad.numpy()[n]
            for q, (index, _) in returned.items():
                out[q + s] = finals[index].numpy()[n]
        out.update(structured.top_outputs(seq.numpy(), merge, depth, masking))
        return out

    return run


_CELL_BLIND = "dL/dh_t includes the path into step t+1, inside the layer's loop; only the upstream part is an input"
STRUCTURES = frozenset({"bi", "L2", "len"})


NOBIAS_CRASH = ("paddle.nn.LSTM/GRU/SimpleRNN(bias_ih_attr=False, bias_hh_attr=False) cannot run on the CPU "
                "(paddlepaddle 3.3.1; PaddlePaddle/Paddle#70231, open): one layer ends the process with a segmentation "
                "fault in its forward pass (the fused rnn kernel, handed the frozen zero biases), and direction="
                "'bidirect' or num_layers=2 raise IndexError in RNNBase.flatten_parameters (the flat names leave the "
                "biases out, their placement counts four parameters per cell)")


PROJ_LENGTHS = ("with proj_size > 0 Paddle's layer runs its Python loop of cells (RNNBase.could_use_cudnn is False), "
                "which under sequence_length holds each row's states past its length but outputs the cell's step "
                "there (computed on the padding), not 0 as its fused kernel does (paddlepaddle 3.3.1): a semantics "
                "no option has (len outputs 0, mask the previous output)")


def _declines(options):
    """Every set with no bias: Paddle's layers cannot run without one (``NOBIAS_CRASH``); its cells can. The
    projection with lengths: the layer's loop outputs another masked semantics (``PROJ_LENGTHS``)."""
    if "nobias" in options:
        return NOBIAS_CRASH
    return PROJ_LENGTHS if "proj" in options and opts.masking(options) else None


def _structured(model):
    own = {k: structured.Model(states=m.states, finals=m.finals, observes=m.observes, width=m.width)
           for k, m in model.own.items()}
    return structured.Model(states=model.states, finals=model.finals, observes=model.observes, own=own)


def _observes_structured(model):
    return lambda options: structured.observed(_structured(model), options, merged_apart=True)


def _layer_oracle(name, family, model, what, cannot_observe, time_major=False):
    timeless = tuple(q for q in model.observes if q != "cT") + tuple(
        q for m in model.own.values() for q in m.observes if q not in model.observes)
    per_step = ("h", "cT") if "cT" in model.observes else ("h",)
    layout = ("time_major=True: x fed as (T, B, D), the output (T, B, .) transposed back" if time_major
              else "time_major=False")
    return Oracle(name, family, "paddle", f"paddle.nn.{model.layer} whole sequence ({layout}; {what})",
                  per_step + ("dx",) + timeless, cannot_observe=cannot_observe, runner=layer_runner(model, time_major),
                  options=frozenset({"nobias"}) | frozenset(model.own) | STRUCTURES,
                  observes_structured=_observes_structured(model),
                  declines=_declines)


def _cell_oracle(name, family, model, what, observes):
    return Oracle(name, family, "paddle", f"paddle.nn.{model.cell} unrolled with retain_grads on every state "
                  f"({what})", observes + tuple(q for m in model.own.values() for q in m.observes if q not in observes
                                                and q not in ("cT", "dh0", "dc0")),
                  runner=cell_runner(model), options=frozenset({"nobias"}) | frozenset(model.own))


_LSTM_WHAT = "gates i, f, g, o; b split in halves; proj_size=P under proj"
_GRU_WHAT = "reset after: Paddle has no reset-before GRU; gates r, z, c"
_RNN_WHAT = "tanh; b split in halves"
_LAYERS = (
    ("lstm", LSTM, _LSTM_WHAT, {
        "c": "only the final cell state (C_T) is returned; c_t for t < T stays inside the layer's loop",
        "dh": _CELL_BLIND,
        "dc": "c_t for t < T is not an output of paddle.nn.LSTM, so dL/dc_t cannot be taken"}),
    ("gru", GRU, _GRU_WHAT, {"dh": _CELL_BLIND}),
    ("rnn", RNN, _RNN_WHAT, {"dh": _CELL_BLIND}),
)

# Each layer twice: batch-major (x (B, T, D), the contract's) and time-major (-tm: time_major=True).
ORACLES = (
    _cell_oracle("paddle-lstm-cell", "lstm", LSTM, _LSTM_WHAT, ("h", "c", "dh", "dc", "dx", "dh0", "dc0") + _LSTM_PARAMS),
    _cell_oracle("paddle-gru-cell", "gru", GRU, _GRU_WHAT, ("h", "dh", "dx", "dh0") + _GRU_PARAMS),
    _cell_oracle("paddle-rnn-cell", "rnn", RNN, _RNN_WHAT, ("h", "dh", "dx", "dh0") + _RNN_PARAMS),
) + tuple(_layer_oracle(f"paddle-{family}-layer" + ("-tm" if tm else ""), family, model, what, blind, tm)
          for family, model, what, blind in _LAYERS for tm in (False, True))
