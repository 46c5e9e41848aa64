"""What every PyTorch oracle shares: canonical weights into a module and its gradients out, the leaves a
loss is differentiated by, and the layer structures (``bidirectional``, ``num_layers``, packed lengths)
built around a model (gatecheck.engines.structured)."""

import functools

from gatecheck.engines import structured
from gatecheck.engines.frameworks import import_torch
from gatecheck.engines.torch import layout as torch_layout
from gatecheck.model import options as opts
from gatecheck.reference import layers


def load(module, inputs, suffix, remap=torch_layout.to_torch):
    """Canonical weights into a torch module (``remap``: the model's canonical -> torch map).
    A module built with ``bias=False`` has no bias, and the remap of inputs without biases
    gives none: any other pairing is an oracle bug (a bias slot left stale or filled)."""
    torch = import_torch()
    weights = remap(inputs)
    has_bias = getattr(module, "bias_ih" + suffix, None) is not None
    if has_bias != ("bias_ih" in weights):
        raise RuntimeError(f"torch module bias={has_bias}, but the remapped weights "
                           f"{'have' if 'bias_ih' in weights else 'lack'} a bias")
    with torch.no_grad():
        for name, value in weights.items():
            getattr(module, name + suffix).copy_(torch.from_numpy(value))


def param_grads(module, suffix, back=torch_layout.grads_from_torch):
    """The module's parameter gradients in the canonical layout (a module built with
    ``bias=False`` has no bias parameters: none is read)."""
    return back(
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


def _run_torch(model, inputs, options):
    torch = import_torch()
    model = structured.modelled(model, options)
    merge, depth = structured.structure(options)
    if merge not in (None, "concat"):
        raise ValueError(f"PyTorch concatenates its directions; merge {merge} is not offered")
    if opts.masking(options) not in (None, opts.MASKS["len"]):
        raise ValueError(f"options {list(options)}: PyTorch's packed sequences output zeros past each length on "
                         f"right-padded rows (len); Keras masking is not offered")
    module = layer(model, options, inputs)
    names = structured.suffixes(options)
    x = torch.from_numpy(inputs["x"].copy()).requires_grad_(True)
    initial = [torch.stack([torch.from_numpy(inputs[k + s].copy()) for s in names]).requires_grad_(True)
               for k in model.states]
    packed = x
    if opts.masking(options):  # variable lengths: a packed batch in, padded back to T out
        lengths = torch.from_numpy(structured.right_padded_lengths(inputs[layers.MASK]))
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with model.torch_context():
        seq, finals = module(packed, tuple(initial) if len(initial) > 1 else initial[0])
    if opts.masking(options):
        seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=x.shape[1])
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


def layer(model, options, inputs):
    """The torch layer of a case (``model``: the family's ``structured.Model`` under ``options``,
    ``structured.modelled``): ``model.torch_module`` batch_first in the inputs' dtype, bidirectional
    and stacked as the options say, every (layer, direction)'s canonical weights loaded by
    ``model.torch_load``. The PyTorch layer oracles run it; the engines that convert PyTorch layers
    (torch.onnx's exporters, OpenVINO's converter) convert it."""
    torch = import_torch()
    merge, depth = structured.structure(options)
    D, H = inputs["x"].shape[2], inputs[model.width].shape[1]
    dtype = getattr(torch, inputs["x"].dtype.name)
    sized = model.torch_args(inputs) if model.torch_args else {}
    module = getattr(torch.nn, model.torch_module)(D, H, num_layers=depth, bidirectional=bool(merge), batch_first=True,
                                                 dtype=dtype, bias=bias(options), **model.torch_kwargs,
                                                 **sized)
    for n, s in enumerate(structured.suffixes(options)):
        model.torch_load(module, structured.part(inputs, s), _torch_suffix(n, bool(merge)))
    return module


def _torch_suffix(n, bidirectional):
    """torch's parameter suffix of the n-th (layer, direction), layer-major: _l0, _l0_reverse, _l1, ..."""
    directions = 2 if bidirectional else 1
    return f"_l{n // directions}" + ("_reverse" if n % directions else "")
