"""The inventory of what the ExecuTorch oracles call (gatecheck.engines.inventory): the cells they export
(``torch.nn.LSTMCell``, ``GRUCell``, ``RNNCell``: constructors), ``torch.export.export``, ``executorch.exir``'s
``to_edge``, ``to_edge_transform_and_lower`` and ``EdgeProgramManager.to_executorch``, and the runtime's
``Runtime.load_program``. exir wraps its entry points in a logging decorator whose signature is
``(*args, **kwargs)``: ``_unwrapped`` reads the function it closes over. Every program is built in
``oracles.lower`` and loaded in ``oracles.program``.
"""

import inspect

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_executorch

CELLS = ("LSTMCell", "GRUCell", "RNNCell")
_CELL_ORACLES = {"LSTMCell": ("executorch-lstm-step", "executorch-lstm-step-xnnpack"),
                 "GRUCell": ("executorch-gru-step", "executorch-gru-step-xnnpack"),
                 "RNNCell": ("executorch-rnn-step", "executorch-rnn-step-xnnpack")}
PORTABLE = tuple(o[0] for o in _CELL_ORACLES.values())
XNNPACK = tuple(o[1] for o in _CELL_ORACLES.values())
ALL = PORTABLE + XNNPACK
EXPORT = "torch.export.export"
TO_EDGE = "executorch.exir.to_edge"
TRANSFORM = "executorch.exir.to_edge_transform_and_lower"
TO_EXECUTORCH = "executorch.exir.EdgeProgramManager.to_executorch"
LOAD = "executorch.runtime.Runtime.load_program"


def _unwrapped(fn, name):
    """The function under exir's logging wrapper (named ``wrapper``, no ``functools.wraps``): the one function
    named ``name`` its closure holds, else fn."""
    found = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())
             if inspect.isfunction(c.cell_contents) and c.cell_contents.__name__ == name]
    return found[0] if len(found) == 1 else fn


def introspect():
    torch, exir, runtime = import_executorch()
    from importlib import metadata

    found = {f"nn.{name}": inv.parameters(getattr(torch.nn, name).__init__) for name in CELLS}
    found[EXPORT] = inv.parameters(torch.export.export)
    found[TO_EDGE] = inv.parameters(_unwrapped(exir.to_edge, "to_edge"))
    found[TRANSFORM] = inv.parameters(_unwrapped(exir.to_edge_transform_and_lower, "to_edge_transform_and_lower"))
    found[TO_EXECUTORCH] = inv.parameters(_unwrapped(exir.EdgeProgramManager.to_executorch, "to_executorch"))
    found[LOAD] = inv.parameters(runtime.load_program)
    return inv.version_tuple(metadata.version("executorch")), found


def _cell(name):
    entries = [
        inv.exercised("input_size", ("D",), "the case's D"),
        inv.exercised("hidden_size", ("H",), "the case's H"),
        inv.exercised("bias", ("nobias",), "False under nobias (oracles.cell_kwargs): the program then takes the two "
                                           "weights only"),
        inv.declined("device", "device placement: the cell is exported from the CPU; ExecuTorch runs the program on "
                               "its own CPU kernels"),
        inv.exercised("dtype", ("dtype",), "torch.float32 or float64, the case's dtype (the xnnpack oracles decline "
                                           "float64: nothing of it is delegated)"),
    ]
    if name == "RNNCell":
        entries.append(inv.exercised("nonlinearity", ("relu",), "'relu' under relu, else 'tanh' (oracles.cell_kwargs)"))
    return tuple(entries)


_EXPORT = (
    inv.exercised("mod", ("family", "nobias", "relu"),
                  "the cell in oracles._step_module's Step: torch.func.functional_call with the weights as inputs"),
    inv.exercised("args", ("B", "D", "H", "dtype"), "example x (B, D), the states (B, H) and the weights at the case's "
                                                   "B, D, H and dtype: the program is static in every axis"),
    inv.fixed("kwargs", "None: the step takes positional inputs only"),
    inv.open_("dynamic_shapes", "None: a dynamic batch Dim exports, but to_edge specialises it to the example's batch "
                                "for the LSTM and GRU cells (their gate split) and the program refuses another batch; "
                                "the RNN cell keeps it. A dynamic-batch variant needs to_edge to keep the Dim"),
    inv.fixed("strict", "False (non-strict export, torch's default since 2.9): the cell's Python runs under the "
                        "tracer"),
    inv.declined("preserve_module_call_signature", "for unflattening submodules: the step is one module"),
    inv.declined("prefer_deferred_runtime_asserts_over_guards", "shape guards of dynamic shapes: the programs are "
                                                                 "static"),
)

_TO_EDGE = (
    inv.exercised("programs", ("oracle",), "the exported step (the portable oracles)"),
    inv.declined("constant_methods", "extra methods returning constants: the program has forward only"),
    inv.fixed("compile_config", "None: the default EdgeCompileConfig (IR validity checked, aten ops decomposed to "
                                "the core ATen set)"),
    inv.declined("generate_etrecord", "a debugging record of the lowering: not numerical"),
)

_TRANSFORM = (
    inv.exercised("programs", ("oracle",), "the exported step (the xnnpack oracles)"),
    inv.declined("transform_passes", "user passes before partitioning: not what a user gets by default"),
    inv.exercised("partitioner", ("oracle",), "[XnnpackPartitioner()] with its defaults (every config, float32 "
                                              "precision, not per-op mode)"),
    inv.declined("constant_methods", "extra methods returning constants: the program has forward only"),
    inv.fixed("compile_config", "None: the default EdgeCompileConfig"),
    inv.declined("generate_etrecord", "a debugging record of the lowering: not numerical"),
)

_TO_EXECUTORCH = (
    inv.fixed("config", "None: the default ExecutorchBackendConfig (memory planned at the static shapes)"),
)

_LOAD = (
    inv.fixed("data", "the program's flatbuffer bytes (to_executorch's buffer), loaded once per program"),
    inv.declined("verification", "how much of the flatbuffer is verified on load: not numerical (the default)"),
    inv.declined("enable_etdump", "ExecuTorch's profiling dump: not numerical"),
    inv.declined("debug_buffer_size", "the profiling dump's buffer: not numerical"),
    inv.declined("data_path", "a separate weights file: the programs take their weights as inputs"),
)

INVENTORY = inv.Inventory(
    engine="executorch",
    framework="executorch",
    package="executorch",
    apis=tuple(inv.Api(f"nn.{n}", _cell(n), _CELL_ORACLES[n]) for n in CELLS)
    + (inv.Api(EXPORT, _EXPORT, ALL), inv.Api(TO_EDGE, _TO_EDGE, PORTABLE), inv.Api(TRANSFORM, _TRANSFORM, XNNPACK),
       inv.Api(TO_EXECUTORCH, _TO_EXECUTORCH, ALL), inv.Api(LOAD, _LOAD, ALL)),
    introspect=introspect,
    what="the torch.nn cells the ExecuTorch oracles export (constructors; their forward is the PyTorch inventory's), "
         "torch.export.export, executorch.exir's lowering entry points and the runtime's load_program",
)
