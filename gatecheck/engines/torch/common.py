"""What every PyTorch oracle shares: canonical weights into a module and its gradients out, the leaves a
loss is differentiated by, and the layer structures (``bidirectional``, ``num_layers``, packed lengths)
built around a model (gatecheck.engines.structured)."""

import dataclasses
import functools
from typing import NamedTuple

from gatecheck.engines import structured
from gatecheck.engines.base import Sample, Take
from gatecheck.engines.frameworks import import_torch
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.model import options as opts
from gatecheck.reference import layers


def load(module, inputs, suffix, remap=None):
    """Canonical weights into a torch module (``remap``: the model's canonical -> torch map; default the LSTM's
    ``layout.to_torch``, looked up when called, so a test can replace it).
    A module built with ``bias=False`` has no bias, and the remap of inputs without biases
    gives none: any other pairing is an oracle bug (a bias slot left stale or filled)."""
    torch = import_torch()
    weights = (remap or torch_layout.to_torch)(inputs)
    has_bias = getattr(module, "bias_ih" + suffix, None) is not None
    if has_bias != ("bias_ih" in weights):
        raise RuntimeError(f"torch module bias={has_bias}, but the remapped weights "
                           f"{'have' if 'bias_ih' in weights else 'lack'} a bias")
    with torch.no_grad():
        for name, value in weights.items():
            getattr(module, name + suffix).copy_(torch.from_numpy(value))


def param_grads(module, suffix, back=None):
    """The module's parameter gradients in the canonical layout (a module built with
    ``bias=False`` has no bias parameters: none is read)."""
    return (back or torch_layout.grads_from_torch)(
        {
            name: getattr(module, name + suffix).grad.numpy()
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")  # weight_hr: proj_size only
            if getattr(module, name + suffix, None) is not None
        }
    )


def bias(options):
    """The torch ``bias`` argument of a case's options (gatecheck.model.options)."""
    return "nobias" not in options


def leaves(torch, inputs, states=("h0", "c0"), upstream=("gh", "gc")):
    """Tensors of the inputs; x and the initial states require gradients."""
    return {
        k: torch.from_numpy(inputs[k].copy()).requires_grad_(k in ("x",) + states)
        for k in ("x",) + states + upstream
    }


STRUCTURES = frozenset({"bi", "L2", "len"})


def torch_runner(model, base_run):
    """The runner of a torch layer oracle: ``base_run`` without structural options, else the
    structure built with ``bidirectional`` / ``num_layers``."""
    @functools.wraps(base_run)
    def run(inputs, options=()):
        if not any(opts.OPTIONS[o].structural for o in options):
            return base_run(inputs, options)
        return _run_torch(model, inputs, options)

    return run


class Path(NamedTuple):
    """The code path a torch layer oracle runs its module on (the same model, another of the module's arguments)."""

    batch_first: bool = True  # False: x, the output and the packed sequences time-major, (T, B, ...)
    dropout: float = 0.0  # nn.LSTM/GRU/RNN(dropout=p): dropout on every layer's output but the last's, training only
    eval: bool = False  # the module in eval mode (module.eval()): dropout is the identity


PATH = Path()


def inference(module):
    """A module put in eval mode (its dropout the identity)."""
    return module.eval()


def time_major(x):
    """A (B, T, ...) tensor as a time-major module takes it, (T, B, ...), and back (the same transpose)."""
    return x.transpose(0, 1)


def _run_torch(model, inputs, options, path=PATH):
    torch = import_torch()
    model = structured.modelled(model, options)
    merge, depth = structured.structure(options)
    if merge not in (None, "concat"):
        raise ValueError(f"PyTorch concatenates its directions; merge {merge} is not offered")
    if opts.masking(options) not in (None, opts.MASKS["len"]):
        raise ValueError(f"options {list(options)}: PyTorch's packed sequences output zeros past each length on "
                         f"right-padded rows (len); Keras masking is not offered")
    module = layer(model, options, inputs, path)
    if path.eval:
        inference(module)
    names = structured.suffixes(options)
    x = torch.from_numpy(inputs["x"].copy()).requires_grad_(True)
    initial = [torch.stack([torch.from_numpy(inputs[k + s].copy()) for s in names]).requires_grad_(True)
               for k in model.states]
    packed = x if path.batch_first else time_major(x)
    if opts.masking(options):  # variable lengths: a packed batch in, padded back to T out
        lengths = torch.from_numpy(structured.right_padded_lengths(inputs[layers.MASK]))
        packed = torch.nn.utils.rnn.pack_padded_sequence(packed, lengths, batch_first=path.batch_first,
                                                         enforce_sorted=False)
    with model.torch_context():
        seq, finals = module(packed, tuple(initial) if len(initial) > 1 else initial[0])
    if opts.masking(options):
        seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=path.batch_first, total_length=x.shape[1])
    if not path.batch_first:
        seq = time_major(seq)
    finals = finals if isinstance(finals, tuple) else (finals,)
    loss = (torch.from_numpy(inputs["gh"].copy()) * seq).sum()
    returned = structured.final_states(model, options)
    for q, (index, upstream) in returned.items():
        for n, s in enumerate(names):
            if upstream:
                loss = loss + (torch.from_numpy(inputs[upstream + s].copy()) * finals[index][n]).sum()
    loss.backward()
    out = {"dx": x.grad.numpy()}
    for n, s in enumerate(names):
        out.update({k + s: v for k, v in model.torch_grads(module, _torch_suffix(n, bool(merge))).items()})
        for k, leaf in zip(model.states, initial):
            out["d" + k + s] = leaf.grad[n].numpy()
        for q, (index, _) in returned.items():
            out[q + s] = finals[index][n].detach().numpy()
    out.update(structured.top_outputs(seq.detach().numpy(), merge, depth, opts.masking(options)))  # (torch: concat only)
    return out


def layer(model, options, inputs, path=PATH):
    """The torch layer of a case (``model``: the family's ``structured.Model`` under ``options``,
    ``structured.modelled``): ``model.torch_module`` batch_first (``path``: as a variant says) in the inputs'
    dtype, bidirectional and stacked as the options say, every (layer, direction)'s canonical weights loaded by
    ``model.torch_load``. The PyTorch layer oracles run it; the engines that convert PyTorch layers
    (torch.onnx's exporters, OpenVINO's converter) convert it."""
    torch = import_torch()
    merge, depth = structured.structure(options)
    D, H = inputs["x"].shape[2], inputs[model.width].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    sized = model.torch_args(inputs) if model.torch_args else {}
    dropout = {"dropout": path.dropout} if path.dropout else {}
    module = getattr(torch.nn, model.torch_module)(D, H, num_layers=depth, bidirectional=bool(merge),
                                                 batch_first=path.batch_first, dtype=dtype, bias=bias(options),
                                                 **model.torch_kwargs, **sized, **dropout)
    for n, s in enumerate(structured.suffixes(options)):
        model.torch_load(module, structured.part(inputs, s), _torch_suffix(n, bool(merge)))
    return module


def _torch_suffix(n, bidirectional):
    """torch's parameter suffix of the n-th (layer, direction), layer-major: _l0, _l0_reverse, _l1, ..."""
    directions = 2 if bidirectional else 1
    return f"_l{n // directions}" + ("_reverse" if n % directions else "")


# --- the variants of a layer oracle: another code path of the same module -----------------------------------

# nn.LSTM/GRU/RNN(dropout=p) in eval mode: p is any value in (0, 1); one at which a forgotten eval() shows at once.
DROPOUT = 0.5
_STACKED = "dropout acts between stacked layers only (on every layer's output but the last's): a set without L2 has none"
# What the variants run: the time-major path where its transposes and packing differ (lengths, directions, depth);
# the dropout one where a layer feeds another. ci: a few points of two sets; nightly: a few points of every set.
# The points: B >= 2 and T >= 2 (a transpose of B and T shows), H >= 2.
def _shown(B, T, D, H):
    return B >= 2 and T >= 2 and H >= 2


_SAMPLES = {
    "tm": Sample({"ci": Take(2, ((), ("len", "bi", "L2"))), "nightly": Take(3)}, where=_shown),
    "dropout": Sample({"ci": Take(2, (("L2",), ("len", "bi", "L2"))), "nightly": Take(3)}, where=_shown),
}


def variants(base, model):
    """The variants of a torch layer oracle ``base`` (its structured ``model``): the same module, batch_first=False
    (``-tm``, as Paddle's time-major variants: x, the output and the packed sequences (T, B, ...)), and num_layers=2 with dropout=DROPOUT in
    eval mode (``-dropout``: the identity between the layers), each on a part of the grid (``_SAMPLES``)."""
    paths = {"tm": (Path(batch_first=False), "batch_first=False: x, the output and the packed sequences "
                                                   "time-major (T, B, ...)", None),
             "dropout": (Path(dropout=DROPOUT, eval=True), f"dropout={DROPOUT} between the stacked layers, eval mode "
                                                         f"(module.eval(): the identity)",
                         lambda options: None if "L2" in options else _STACKED)}
    return tuple(dataclasses.replace(
        base, name=f"{base.name}-{kind}", description=f"{base.description}, {what}",
        runner=functools.partial(_run_torch_path, model, path), declines=declines, sample=_SAMPLES[kind])
        for kind, (path, what, declines) in paths.items())


def _run_torch_path(model, path, inputs, options=()):
    return _run_torch(model, inputs, options, path)
