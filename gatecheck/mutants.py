"""Mutants of the reference: realistic LSTM bugs, defined as data.

Each mutant is a textual edit of ``reference/lstm.py`` (the snippet must occur exactly
once, so a mutant cannot silently stop applying when the reference changes), loaded as
its own module; its ``run`` is then a candidate like any other.
"""

import inspect
import types
from typing import NamedTuple

from reference import lstm


class Mutant(NamedTuple):
    name: str
    wrong: str  # what is wrong
    why: str  # why someone writes it
    old: str
    new: str
    first: str  # where the first divergence must be reported: "<quantity> <slice>"


MUTANTS = [
    Mutant(
        "swapped-input-forget",
        "the input and forget gates are read from each other's blocks in the forward step",
        "gate order conventions differ between papers and frameworks (i,f,g,o vs f,i,g,o)",
        "i, f, g = gates[:, 0], gates[:, 1], gates[:, 2]",
        "f, i, g = gates[:, 0], gates[:, 1], gates[:, 2]",
        "c t=0",
    ),
    Mutant(
        "no-recurrent-dh",
        "dh_t lacks the recurrent term dz_{t+1} @ U^T",
        "only the local loss gradient is remembered when writing dh_t",
        "dh_t = np.add(gh[t], dh_from_next, out=dh[t])",
        "dh_t = np.add(gh[t], 0, out=dh[t])",
        "dh t=T-2",
    ),
    Mutant(
        "dW-last-step",
        "dW is computed from the last step only",
        "the per-step gradient is assigned instead of accumulated over time",
        "dW = split_gates(x_tm.T @ dz_flat).transpose(1, 0, 2)",
        "dW = split_gates(x[:, -1].T @ dz[-1].reshape(B, 4 * H)).transpose(1, 0, 2)",
        "dW gate i",
    ),
]
MUTANTS += [
    Mutant(
        "dc-without-forget",
        "dc_t is passed back to step t-1 without the factor f_t",
        "the carry path c_{t-1} -> c_t is thought of as an identity, as in a plain sum",
        "dc_from_next = dc_t * f\n",
        "dc_from_next = dc_t.copy()\n",
        "dc t=T-2",
    ),
    Mutant(
        "f-grad-uses-c_t",
        "the forget gate's gradient uses c_t instead of c_{t-1}",
        "c_prev and c_next sit side by side in the cache and get mixed up",
        "np.multiply(dc_t, c_prev[t] * f * (1 - f), out=dz[t, :, 1])",
        "np.multiply(dc_t, c[t] * f * (1 - f), out=dz[t, :, 1])",
        "dx t=T-1",
    ),
]
BY_NAME = {m.name: m for m in MUTANTS}


def edited(module, old, new, name, count=1):
    """``module``'s source with ``old`` replaced by ``new`` (which must occur ``count``
    times), loaded as a fresh module; the original module is untouched."""
    text = inspect.getsource(module)
    found = text.count(old)
    if found != count:
        raise ValueError(f"{name}: snippet {old!r} occurs {found} times in {module.__name__}; expected {count}")
    fresh = types.ModuleType(f"gatecheck_variant_{name.replace('-', '_')}")
    exec(compile(text.replace(old, new), f"<variant {name}>", "exec"), fresh.__dict__)
    return fresh


def load(mutant):
    """The mutated reference as a fresh module (the real one is untouched)."""
    return edited(lstm, mutant.old, mutant.new, mutant.name)
