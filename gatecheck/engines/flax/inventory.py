"""The inventory of flax.nnx's recurrent cells (``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell``,
``SimpleCell``: constructors and ``__call__``) and of the loops the oracles run them in (``nnx.RNN``,
``nnx.Bidirectional``), every parameter classified (gatecheck.engines.inventory). The oracles build them
in ``oracles._module``. The jax engine has no inventory: its oracles are this project's own lax.scan code,
not a layer of JAX's.
"""

from gatecheck.engines import inventory as inv
from gatecheck.engines.frameworks import import_flax

CELLS = ("LSTMCell", "OptimizedLSTMCell", "GRUCell", "SimpleCell")
LOOPS = ("RNN", "Bidirectional")
_CELL_ORACLES = {"LSTMCell": ("flax-lstm",), "OptimizedLSTMCell": ("flax-lstm-opt",), "GRUCell": ("flax-gru",),
                 "SimpleCell": ("flax-rnn",)}
_ALL = ("flax-lstm", "flax-lstm-opt", "flax-gru", "flax-rnn")
_BI = ("flax-lstm", "flax-lstm-opt", "flax-rnn")
_MERGES = ("bi", "bisum", "bimul", "biave", "binone")


def introspect():
    jax, nnx = import_flax()
    import flax

    found = {}
    for name in CELLS + LOOPS:
        cls = getattr(nnx, name)
        found[f"nnx.{name}"] = inv.parameters(cls.__init__)
        found[f"nnx.{name}.__call__"] = inv.parameters(cls.__call__)
    return inv.version_tuple(flax.__version__), found


_INIT = "an initializer: the case's weights replace the parameters (nnx.replace_by_pure_dict in oracles.runner)"
_METADATA = "metadata of the parameters (sharding annotations): not numerical"
_TIME_MAJOR = inv.open_("time_major", "False (x (B, T, D), the contract's layout); True, x (T, B, D), needs a layout "
                                      "axis on the oracles, transposing x and the outputs")


def _cell(name):
    lstm = "LSTM" in name
    entries = [
        inv.exercised("in_features", ("D",), "the case's D (a second layer's: the first's output width)"),
        inv.exercised("hidden_features", ("H",), "the case's H"),
        inv.exercised("dtype", ("dtype",), "the case's dtype (oracles._module)"),
        inv.exercised("param_dtype", ("dtype",), "the case's dtype, as dtype (oracles._module)"),
        inv.exercised("activation_fn", ("relu",), "jax.nn.relu under relu, else tanh (oracles._module)"
                      + (", wrapped to add the probe of c_t (oracles._ProbedActivation)" if lstm else "")),
        inv.declined("kernel_init", _INIT),
        inv.declined("recurrent_kernel_init", _INIT),
        inv.declined("bias_init", _INIT),
        inv.declined("carry_init", "an initializer of the carry (initialize_carry): the oracles pass the case's "
                                   "initial states as initial_carry"),
        inv.open_("promote_dtype", "the default (computes in dtype); a mixed precision (param_dtype other than "
                                   "dtype) needs a pair of dtypes per case"),
        inv.declined("keep_rngs", "keeps the Rngs the cell was built with: randomness is initialization only"),
        inv.declined("rngs", "the initialization's randomness (nnx.Rngs(0)): the case's weights replace it"),
        inv.declined("kernel_metadata", _METADATA),
        inv.declined("recurrent_kernel_metadata", _METADATA),
        inv.declined("bias_metadata", _METADATA),
    ]
    if name != "SimpleCell":
        entries.append(inv.exercised("gate_fn", ("hardsig",), "jax.nn.hard_sigmoid (relu6(x + 3) / 6, the option's "
                                                              "function) under hardsig, else the default sigmoid "
                                                              "(oracles._module, _JAX_GATES)"))
    else:
        entries.append(inv.open_("residual", "False (the default); True adds h_{t-1} to the new state "
                                             "(h_t = tanh(...) + h_{t-1}): a residual RNN family variant"))
    return entries


def _cell_call():
    return [
        inv.exercised("carry", ("inputs",), "the case's initial states, then each step's carry (nnx.RNN's loop)"),
        inv.exercised("inputs", ("B", "D", "inputs"), "x[:, t] of the case's x (the probes beside it are read off "
                                                      "by the wrapper, oracles._module's Probed)"),
    ]


_SEQ_LENGTHS = inv.open_("seq_lengths", "None; flax runs the cell through the padding (outputs there not 0, states "
                                        "not held: oracles' module docstring), a semantics no option has: it needs "
                                        "an option of its own, with its reference")
_BY_CONSTRUCTOR = "None: the constructor's value stands"


def _rnn():
    return [
        inv.exercised("cell", ("family", "oracle"), "the oracle's cell, wrapped to read its probes (Probed)"),
        _TIME_MAJOR,
        inv.fixed("return_carry", "True: the final states are compared"),
        inv.exercised("reverse", ("rev", "bi", "bisum", "bimul", "biave", "binone"),
                      "True under rev (oracles._module); nnx.Bidirectional runs its backward loop reversed"),
        inv.fixed("keep_order", "True: the outputs are indexed by the original t, as the contract's"),
        inv.open_("unroll", "1 (the default: one step per scan iteration); more unrolls the scan's body, another "
                            "XLA program: an oracle variant"),
        inv.declined("state_axes", "how nnx's scan splits the module's state: not numerical"),
        inv.declined("broadcast_rngs", "randomness in the loop (dropout): stochastic at training time"),
        inv.fixed("rngs", "False: no randomness in the loop"),
    ]


def _rnn_call():
    return [
        inv.exercised("inputs", ("B", "T", "D", "inputs"), "the case's x with the zero probes beside it"),
        inv.exercised("initial_carry", ("inputs",), "the case's initial states"),
        _SEQ_LENGTHS,
        inv.fixed("return_carry", _BY_CONSTRUCTOR),
        inv.fixed("time_major", _BY_CONSTRUCTOR),
        inv.fixed("reverse", _BY_CONSTRUCTOR),
        inv.fixed("keep_order", _BY_CONSTRUCTOR),
        inv.fixed("rngs", "None: no randomness in the loop"),
    ]


def _bidirectional():
    return [
        inv.exercised("forward_rnn", _MERGES, "the forward loop under bi* (oracles._module)"),
        inv.exercised("backward_rnn", _MERGES, "the backward loop under bi*, its own weights and states"),
        inv.exercised("merge_fn", _MERGES, "each merge (concat, sum, mul, ave, none) with both directions' outputs "
                                           "kept apart (oracles._Recorded)"),
        _TIME_MAJOR,
        inv.fixed("return_carry", "True: each direction's final states are compared"),
        inv.fixed("rngs", "False: no randomness in the loops"),
    ]


def _bidirectional_call():
    return [
        inv.exercised("inputs", ("B", "T", "D", "inputs") + _MERGES, "the case's x (or the first layer's output "
                                                                     "under L2) with the probes beside it"),
        inv.exercised("initial_carry", ("inputs",) + _MERGES, "each direction's initial states from the case"),
        inv.fixed("rngs", "None: no randomness in the loops"),
        _SEQ_LENGTHS,
        inv.fixed("return_carry", _BY_CONSTRUCTOR),
        inv.fixed("time_major", _BY_CONSTRUCTOR),
        inv.fixed("reverse", _BY_CONSTRUCTOR),
        inv.fixed("keep_order", _BY_CONSTRUCTOR),
    ]


APIS = tuple(
    [a for n in CELLS for a in (inv.Api(f"nnx.{n}", tuple(_cell(n)), _CELL_ORACLES[n]),
                                 inv.Api(f"nnx.{n}.__call__", tuple(_cell_call()), _CELL_ORACLES[n]))]
    + [inv.Api("nnx.RNN", tuple(_rnn()), _ALL), inv.Api("nnx.RNN.__call__", tuple(_rnn_call()), _ALL),
       inv.Api("nnx.Bidirectional", tuple(_bidirectional()), _BI),
       inv.Api("nnx.Bidirectional.__call__", tuple(_bidirectional_call()), _BI)]
)

INVENTORY = inv.Inventory(
    engine="flax",
    framework="flax",
    package="flax",
    apis=APIS,
    introspect=introspect,
    what="flax.nnx's LSTMCell, OptimizedLSTMCell, GRUCell and SimpleCell and the loops the oracles run them in "
         "(nnx.RNN, nnx.Bidirectional); the jax engine has none (its oracles are this project's lax.scan code)",
)
