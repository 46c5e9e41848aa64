"""ExecuTorch oracles: one cell step a call. ``torch.nn.LSTMCell`` / ``GRUCell`` / ``RNNCell`` exported by
``torch.export.export`` with its parameters as inputs of the program (``torch.func.functional_call``: the
weights are fed, not frozen), lowered by ``executorch.exir`` and run by ExecuTorch's Python runtime
(``executorch.runtime.Runtime``) once per time step, the states it returns fed back. Forward only.

executorch-lstm-step, executorch-gru-step, executorch-rnn-step
    ``to_edge(...).to_executorch()``: every op on ExecuTorch's portable CPU kernels.
executorch-lstm-step-xnnpack, executorch-gru-step-xnnpack, executorch-rnn-step-xnnpack
    ``to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])``: what the XNNPACK delegate
    takes runs in XNNPACK, the rest on the portable kernels. With the weights inputs of the program, the
    partitioner leaves the matmuls (``addmm`` / ``mm``, its linear wants constant weights) and the LSTM's and
    GRU's gate split on the portable kernels and delegates the elementwise rest (sigmoid, tanh or relu, the
    products and sums of the state update) in float32 (read at ``READ_AT``; ``delegated`` checks each
    lowering). It delegates nothing in float64, so that program is the portable one: float64 is declined
    (``XNNPACK_F64``).

Why one step a call: a whole ``nn.LSTM`` / ``GRU`` / ``RNN`` exported and lowered unrolls the recurrence
(``to_edge`` decomposes ``aten.lstm`` into one copy of the cell per time step), ``torch.export`` specialises
the time axis, and the lowering grows with T (docs/maintainer/engines.md). A cell's program has no time axis:
it is lowered once per (B, D, H, dtype, options) in a process (``program``, cached), about a second on the
portable kernels and two to three with XNNPACK. The batch axis is static too: a dynamic ``Dim`` exports, but
``to_edge`` specialises it to the example's batch for the LSTM and GRU cells (their gate split), and the
program then refuses another batch ("Attempted to resize a bounded tensor"); only the RNN cell keeps it. One
program per B for every cell keeps them alike.

What the oracles observe: each step's h (and the LSTM's c, C_T the last), which the program returns; no
gradient (an ExecuTorch program is an inference program). ``nobias`` is ``bias=False`` (the program then takes
the two weights only), ``relu`` (the RNN cell) ``nonlinearity="relu"``. float64 runs on the portable kernels
(their ``addmm``, ``sigmoid``, ``tanh`` take Double). The remaps (``gatecheck.engines.executorch.layout``) are
looked up when called.
"""

import functools
from typing import NamedTuple

import numpy as np

from gatecheck.engines.base import Oracle
from gatecheck.engines.executorch import layout as et_layout
from gatecheck.engines.frameworks import executorch_quiet, import_executorch

READ_AT = {"executorch": "1.5.1", "torch": "2.13.0"}
BACKENDS = ("portable", "xnnpack")
DELEGATE = "executorch_call_delegate"  # the edge op that calls a delegate's blob


class Model(NamedTuple):
    """One family's cell in ExecuTorch."""

    cell: str  # the torch.nn cell class
    states: tuple  # the state inputs and outputs: ("h0", "c0") for the LSTM
    remap: str  # et_layout's canonical -> program weights function (looked up when called)
    options: frozenset  # the options its cell runs


LSTM = Model("LSTMCell", ("h0", "c0"), "to_lstm_step", frozenset({"nobias"}))
GRU = Model("GRUCell", ("h0",), "to_gru_step", frozenset({"nobias"}))
RNN = Model("RNNCell", ("h0",), "to_rnn_step", frozenset({"nobias", "relu"}))
MODELS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def cell_kwargs(model, options):
    """The cell's constructor arguments of a case's options: ``bias``, and the RNN cell's ``nonlinearity``."""
    unknown = sorted(set(options) - model.options)
    if unknown:
        raise ValueError(f"options: nn.{model.cell} runs {sorted(model.options)}, not {unknown}")
    kwargs = {"bias": "nobias" not in options}
    if model.cell == "RNNCell":
        kwargs["nonlinearity"] = "relu" if "relu" in options else "tanh"
    return kwargs


@functools.lru_cache(maxsize=None)
def _step_module():
    torch, _, _ = import_executorch()

    class Step(torch.nn.Module):
        """One call of the cell, its parameters the trailing inputs (``et_layout.PARAMETERS`` order)."""

        def __init__(self, cell, n_states):
            super().__init__()
            self.cell, self.n_states = cell, n_states

        def forward(self, x, *rest):
            states, weights = rest[:self.n_states], rest[self.n_states:]
            params = dict(zip(et_layout.PARAMETERS, weights))
            out = torch.func.functional_call(self.cell, params, (x, states if self.n_states > 1 else states[0]))
            return out if isinstance(out, tuple) else (out,)

    return Step


def lower(model, B, D, H, dtype, options, backend):
    """The ExecuTorch program (its flatbuffer bytes) of one step of a family's cell, and the edge program's op
    names: ``torch.export`` at x (B, D), the states (B, H), the weights; lowered for ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    torch, exir, _ = import_executorch()
    tdtype = getattr(torch, dtype)
    cell = getattr(torch.nn, model.cell)(D, H, dtype=tdtype, **cell_kwargs(model, options))
    rng = np.random.default_rng(0)
    example = [torch.from_numpy(rng.uniform(-1, 1, (B, D)).astype(dtype))]
    example += [torch.from_numpy(rng.uniform(-1, 1, (B, H)).astype(dtype)) for _ in model.states]
    example += [p.detach().clone() for p in cell.parameters()]
    module = _step_module()(cell, len(model.states)).eval()
    with executorch_quiet():
        exported = torch.export.export(module, tuple(example), strict=False)
        if backend == "xnnpack":
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

            edge = exir.to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
        else:
            edge = exir.to_edge(exported)
        ops = [getattr(n.target, "__name__", str(n.target)) for n in edge.exported_program().graph.nodes
               if n.op == "call_function"]
        return edge.to_executorch().buffer, ops


def delegated(ops):
    """Whether an edge program calls a delegate (``DELEGATE`` among its op names)."""
    return any(DELEGATE in op for op in ops)


def _checked(ops, backend, dtype):
    """An XNNPACK lowering must delegate in float32 (else it would be the portable program under another name),
    a portable one never."""
    want = backend == "xnnpack" and dtype == "float32"
    if delegated(ops) != want:
        raise RuntimeError(f"executorch lowering for {backend} in {dtype} {'delegates' if delegated(ops) else 'delegates nothing'}"
                           f" (edge ops {sorted(set(ops))}); recorded at executorch {READ_AT['executorch']}: "
                           f"{'delegated' if want else 'no delegate'}")


class Loaded(NamedTuple):
    """A loaded step program: the method runs only while its program (and the bytes it was loaded from) live."""

    buffer: bytes
    program: object  # executorch.runtime.Program
    method: object  # its forward, executorch.runtime.Method


@functools.lru_cache(maxsize=None)
def program(family, B, D, H, dtype, options, backend):
    """A family's step program, lowered once per (B, D, H, dtype, options, backend) in a process and loaded
    (``Loaded``)."""
    _, _, runtime = import_executorch()
    buffer, ops = lower(MODELS[family], B, D, H, dtype, options, backend)
    _checked(ops, backend, dtype)
    with executorch_quiet():
        loaded = runtime.get().load_program(buffer)
        return Loaded(buffer, loaded, loaded.load_method("forward"))


_STARTED = set()  # the id of every cached method called once


def run(family, backend, inputs, options=()):
    """A family's cell program on canonical inputs, one call per step: every h_t (and c_t, C_T), in the inputs'
    dtype."""
    torch, _, _ = import_executorch()
    model = MODELS[family]
    x = inputs["x"]
    B, T, D = x.shape
    H = inputs["h0"].shape[1]
    method = program(family, B, D, H, x.dtype.name, tuple(sorted(options)), backend).method
    weights = [torch.from_numpy(w) for w in getattr(et_layout, model.remap)(inputs)]
    states = [np.ascontiguousarray(inputs[k]) for k in model.states]
    per_step = []
    for t in range(T):
        feeds = [torch.from_numpy(np.ascontiguousarray(x[:, t]))] + [torch.from_numpy(s) for s in states] + weights
        if id(method) in _STARTED:
            found = method.execute(feeds)
        else:  # the first call starts XNNPACK's cpuinfo, which writes its notices to stderr
            with executorch_quiet():
                found = method.execute(feeds)
            _STARTED.add(id(method))
        states = [o.numpy().copy() for o in found]  # the outputs live in the program's planned memory
        per_step.append(states)
    seqs = [np.stack([s[k] for s in per_step], axis=1) for k in range(len(model.states))]
    wrong = {str(s.dtype) for s in seqs} - {x.dtype.name}
    if wrong:
        raise RuntimeError(f"executorch program returned {sorted(wrong)} for {x.dtype.name} inputs")
    out = {"h": seqs[0]}
    if len(seqs) > 1:
        out.update(c=seqs[1], cT=seqs[1][:, -1].copy())
    return out


_NO_GRADIENT = "an ExecuTorch program is an inference program: no gradient of any input is computed"
XNNPACK_F64 = (f"the XnnpackPartitioner delegates no float64 node (XNNPACK's kernels are float32 and quantised), so "
               f"the float64 program is the portable oracle's (read at executorch {READ_AT['executorch']})")
_GRADIENTS = {"lstm": ("dh", "dc", "dx", "dh0", "dc0", "dW", "dU", "db"),
              "gru": ("dh", "dx", "dh0", "dW", "dU", "dbx", "dbh"),
              "rnn": ("dh", "dx", "dh0", "dW", "dU", "db")}
_WHAT = {"lstm": "weight_ih, weight_hh, bias_ih = bias_hh = b / 2; gates i, f, g, o",
         "gru": "reset after; weight_ih, weight_hh, bias_ih = bx, bias_hh = bh; gates r, z, n",
         "rnn": "tanh (relu under relu); weight_ih, weight_hh, bias_ih = bias_hh = b / 2"}


def _xnnpack_f64(options, dtype):
    return XNNPACK_F64 if dtype == "f64" else None


def _runner(family, backend):
    def runner(inputs, options=()):
        return run(family, backend, inputs, options)

    return runner


def _oracle(family, backend):
    model = MODELS[family]
    how = ("to_edge(...).to_executorch(), the portable kernels" if backend == "portable" else
           "to_edge_transform_and_lower with the XnnpackPartitioner: the elementwise ops in XNNPACK, the matmuls "
           "and the gate split on the portable kernels")
    return Oracle(
        name=f"executorch-{family}-step" + ("" if backend == "portable" else "-xnnpack"),
        family=family,
        framework="executorch",
        description=f"torch.nn.{model.cell} ({_WHAT[family]}) exported by torch.export with its weights as inputs, "
                    f"lowered by executorch.exir ({how}) once per (B, D, H, dtype, options), run by ExecuTorch's "
                    f"Python runtime one step a call, the states fed back; forward only",
        observes=("h", "c", "cT") if family == "lstm" else ("h",),
        cannot_observe={q: _NO_GRADIENT for q in _GRADIENTS[family]},
        runner=_runner(family, backend),
        trace_ms=1000 if backend == "portable" else 2500,  # one lowering per (B, D, H, dtype, options)
        trace_per_shape=True,  # per B (the batch axis is static); not per T
        options=model.options,
        declines_dtype=_xnnpack_f64 if backend == "xnnpack" else None,
    )


ORACLES = tuple(_oracle(f, b) for b in BACKENDS for f in ("lstm", "gru", "rnn"))
