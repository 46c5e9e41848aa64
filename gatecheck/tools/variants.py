"""Hypotheses about what real code computes, tested tolerantly (``gatecheck.tools.diagnose``).

Real implementations round differently from the reference and combine slips, so exact mutant
matching rarely names them. Two kinds of hypothesis here reach them:

- precision: a float64 run whose outputs are, quantity by quantity, float32 numbers (every entry
  equal to its float32 rounding) computes that part of the step in float32 (a float32 buffer or
  constant); the quantities that agree with the reference to float32 precision
  (``tolerance.CLOSE_F32``) carry float32 rounding from them. Once named, the other hypotheses
  are tested to float32 precision (``gatecheck.core.compare.at_float32``). (Errors at float32's
  size with no quantity held in float32 are not named: they cannot be told from a perturbation of
  1e-5, which the catalogue holds as a bug of its own.)
- semantic variants: a small variant of the model, built from the family's own reference on other
  inputs (nothing here names a family), run on the case and compared with the candidate on every
  quantity. Under a mask: a masked step that resets the state to the initial state or to zero
  instead of holding it, the other masked output (0 or the last valid one), the initial state h0
  output before a row's first valid step with its gradient flowing into dh0, the upstream gradient
  of masked steps dropped. A variant is named when it explains every compared quantity; when none
  does, the variants (and the catalogue's mutants) are ranked by how many of the wrong quantities
  they explain.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from gatecheck.core import tolerance
from gatecheck.core.compare import at_float32, close, contract_value
from gatecheck.core.family import Family
from gatecheck.model import options as opts
from gatecheck.model import structures
from gatecheck.reference import layers


class ModelVariant(NamedTuple):
    name: str
    words: str  # what the model does, in words
    run: Callable[..., dict[str, Any]]  # inputs -> the contract (under the case's options)


# --- precision ---------------------------------------------------------------------------------


def _float32_numbers(a: np.ndarray) -> bool:
    """Every entry of a float64 array is a float32 number, and not trivially so (zeros, small integers)."""
    a = np.asarray(a)
    if a.dtype == np.float32:
        return True
    if a.size == 0 or not np.all(np.isfinite(a)):
        return False
    rounded = a.astype(np.float32).astype(np.float64)
    if not np.array_equal(rounded, a):
        return False
    # a float64 number that is a float32 one by chance has its last 29 mantissa bits zero: the
    # entries must have more to them than that (zeros and integers are float32 numbers anyway)
    return int(np.count_nonzero(a != np.round(a))) >= max(1, a.size // 2)


def _join(names: Iterable[str]) -> str:
    names = list(names)
    if not names:
        return "none"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def in_float32(got: Mapping[str, Any], ref: Mapping[str, Any], quantities: Iterable[str],
               family: Family) -> tuple[str, bool] | None:
    """(a finding, whether every quantity matches to float32 precision) when the candidate holds
    quantities in float32; None otherwise."""
    table = family.quantities
    wrong = []
    for q in quantities:
        a, e = contract_value(got, q, table), contract_value(ref, q, table)
        if not close(a, e):
            wrong.append((q, a, e))
    if not wrong:
        return None
    with at_float32():
        near = [q for q, a, e in wrong if close(a, e)]
    stored = [q for q, a, e in wrong if _float32_numbers(a)]
    if not stored:
        return None
    carried = [q for q in near if q not in stored]
    rest = [q for q, _, _ in wrong if q not in near]  # (a quantity held in float32 and wrong besides among them)
    text = (f"computes (part of) the step in float32: {_join(stored)} {'holds' if len(stored) == 1 else 'hold'} "
            "float32 numbers in this float64 run (a float32 buffer or constant, e.g. np.empty(..., dtype='f'))")
    if carried:
        text += f"; {_join(carried)} carry float32 rounding from {'it' if len(stored) == 1 else 'them'}"
    if rest:
        text += (f"; {_join(rest)} differ by more than float32 rounding (more than {tolerance.CLOSE_F32:g} of their scale): the other "
                 "hypotheses are tested to float32 precision")
    else:
        text += "; to float32 precision every quantity matches the reference"
    return text, not rest


# --- semantic variants under a mask ---------------------------------------------------------------


def _segments(steps: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive valid steps."""
    if steps.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(steps) > 1) + 1
    return np.split(steps, cuts)


def _restarting(own: Family, outputs: str, restart: str) -> Callable[..., dict[str, Any]]:
    """The model under a mask whose masked step sets the state to the initial state (``restart``
    "initial") or to zero ("zero") instead of holding it; a masked step outputs that state (under
    "carry") or 0 ("zero"); the gradient flows through it like through any other value."""
    initial = structures.initial_of(own)
    held = structures.timeless(own)
    up, out_key = own.upstream, own.output
    finals = {k: k[1:] for k in own.final_upstreams}  # gc -> c
    rows = ("x", up) + tuple(initial.values()) + tuple(own.final_upstreams)

    def run(**inputs: Any) -> dict[str, Any]:
        keep = layers.valid(inputs[layers.MASK])
        B, T = keep.shape
        common = {k: v for k, v in inputs.items() if k not in rows + (layers.MASK,)}
        found: dict[str, Any] = {}
        sums: dict[str, Any] = {}
        per_row: dict[str, list[np.ndarray]] = {"d" + v: [] for v in initial.values()}
        for b in range(B):
            d_init = {v: np.zeros_like(inputs[v][b:b + 1]) for v in initial.values()}
            for seg in _segments(np.flatnonzero(keep[b])):
                from_initial = restart == "initial" or seg[0] == 0
                start = {v: inputs[v][b:b + 1] if from_initial else np.zeros_like(inputs[v][b:b + 1])
                         for v in initial.values()}
                last = seg[-1] == T - 1
                row = dict(common, x=inputs["x"][b:b + 1, seg], **{up: inputs[up][b:b + 1, seg]}, **start,
                           **{k: inputs[k][b:b + 1] if last else np.zeros_like(inputs[k][b:b + 1]) for k in finals})
                p = own.run(**row)
                for k in own.contract:
                    if k in held:
                        if k not in per_row:
                            sums[k] = sums.get(k, 0) + p[k]
                        continue
                    if k not in found:
                        found[k] = np.zeros((B, T) + p[k].shape[2:], p[k].dtype)
                    found[k][b, seg] = p[k][0]
                if out_key not in found:
                    found[out_key] = np.zeros((B, T) + p[out_key].shape[2:], p[out_key].dtype)
                if from_initial:
                    for v in initial.values():
                        d_init[v] = d_init[v] + p["d" + v]
            masked = ~keep[b]
            for state, v in initial.items():
                if state in found:
                    found[state][b, masked] = inputs[v][b] if restart == "initial" else 0
            if restart == "initial":  # what a masked step outputs or finally holds is the initial state
                if outputs == "carry":
                    d_init[initial[out_key]] += inputs[up][b:b + 1, masked].sum(axis=1)
                if not keep[b, -1]:
                    for k, state in finals.items():
                        d_init[initial[state]] += inputs[k][b:b + 1]
            for v in initial.values():
                per_row["d" + v].append(d_init[v])
        result = dict(found, **sums, **{k: np.concatenate(v) for k, v in per_row.items() if k in own.contract})
        result["out"] = np.where(keep[..., None], result[out_key], result[out_key] if outputs == "carry" else 0)
        return result

    return run


def _masked_record(own: Family, options: tuple[str, ...], outputs: str) -> Family:
    """``own`` under ``options`` with the mask's masked output ``outputs``."""
    plain = tuple(o for o in options if o not in opts.MASKS)
    other = next(name for name, (o, padding) in opts.MASKS.items() if o == outputs and padding == "any")
    return opts.under(own, plain + (other,))


def mask_variants(own: Family, options: Iterable[str]) -> list[ModelVariant]:
    """The semantic variants of ``own`` (a family's own record) under a mask among ``options``
    (none without a mask, or in a stack or bidirectional layer: a row's model there is not ``own``'s)."""
    options = opts.canonical(options)
    masking = opts.masking(options)
    if masking is None or any(opts.OPTIONS[o].structural and o not in opts.MASKS for o in options):
        return []
    if any(o not in opts.MASKS for o in options):  # an own option (no bias, ...): the row's model is not own's
        return []
    outputs, _ = masking
    record = opts.under(own, options)
    found = [
        ModelVariant("mask-resets-to-initial",
                "a masked step resets the state to the initial state (" + ", ".join(structures.initial_states(own))
                + ") instead of holding the last valid step's" + (", and outputs it" if outputs == "carry" else "")
                + "; the gradient flows through the reset into the initial states",
                _restarting(own, outputs, "initial")),
        ModelVariant("mask-zeroes-state", "a masked step sets the state to zero instead of holding the last valid "
                "step's" + (", and outputs it (0)" if outputs == "carry" else ""),
                _restarting(own, outputs, "zero")),
    ]
    other = "zero" if outputs == "carry" else "carry"
    other_run = _masked_record(own, options, other).run
    found.append(ModelVariant(
        "mask-other-output",
        "a masked step outputs " + ("0 (the contract under mask: the last valid step's output)" if other == "zero"
                                    else "the last valid step's output (the contract under this option: 0)"),
        lambda **inputs: other_run(**inputs)))
    if outputs == "carry":
        up, out_key = own.upstream, own.output
        h0 = structures.initial_of(own)[out_key]

        def initial_output(**inputs: Any) -> dict[str, Any]:
            result = dict(record.run(**inputs))
            before = layers.held_steps(layers.valid(inputs[layers.MASK])) < 0
            result["out"] = np.where(before[..., None], inputs[h0][:, None], result["out"])
            result["d" + h0] = result["d" + h0] + np.where(before[..., None], inputs[up], 0).sum(axis=1)
            return result

        def dropped(**inputs: Any) -> dict[str, Any]:
            keep = layers.valid(inputs[layers.MASK])
            return dict(record.run(**dict(inputs, **{up: np.where(keep[..., None], inputs[up], 0)})))

        found += [
            ModelVariant("mask-initial-output-with-gradient",
                    f"before a row's first valid step the output is the initial state {h0} (the contract: 0), "
                    f"and the upstream gradient of those steps flows into d{h0}", initial_output),
            ModelVariant("mask-gradient-dropped",
                    "the upstream gradient of a masked step's output is dropped (the contract adds it to the last "
                    "valid step's, whose output the masked step repeats)", dropped),
        ]
    return found


# --- testing and ranking -----------------------------------------------------------------------------


def explained(got: Mapping[str, Any], other: Mapping[str, Any], quantities: Iterable[str], family: Family,
              undefined: Mapping[str, Any] | None = None) -> list[str]:
    """The quantities of ``quantities`` on which ``got`` equals ``other`` (``close``: the precision in
    force), the entries the contract leaves undefined aside."""
    table, undefined = family.quantities, undefined or {}
    found = []
    for q in quantities:
        if table[q].source not in other:
            continue
        a, b = contract_value(got, q, table), contract_value(other, q, table)
        if q in undefined:
            a = np.where(undefined[q], b, a)
        if close(a, b):
            found.append(q)
    return found


def tested(variants: Iterable[ModelVariant], inputs: Mapping[str, Any], got: Mapping[str, Any],
           quantities: tuple[str, ...], family: Family, ref: Mapping[str, Any],
           undefined: Mapping[str, Any] | None = None) -> list[tuple[ModelVariant, list[str]]]:
    """Each variant with the quantities it explains; a variant that cannot run on the case, or that is
    the reference itself on these inputs (``ref``: a mask with no gap, h0 = 0), is left out."""
    found = []
    for v in variants:
        try:
            other = v.run(**inputs)
        except (ValueError, KeyError):
            continue
        if len(explained(ref, other, quantities, family, undefined)) == len(quantities):
            continue
        found.append((v, explained(got, other, quantities, family, undefined)))
    return found


def ranked(results: Iterable[tuple[str, list[str]]], wrong: list[str], limit: int = 3) -> list[str]:
    """Lines for the hypotheses (words, quantities explained) that explain some of the ``wrong``
    quantities, most first: none explains every quantity."""
    scored = []
    for words, quantities in results:
        hit = [q for q in wrong if q in quantities]
        if hit:
            scored.append((-len(hit), words, hit))
    scored.sort(key=lambda s: s[0])
    lines = []
    for _, words, hit in scored[:limit]:
        missing = [q for q in wrong if q not in hit]
        if not missing:  # (every wrong quantity, yet not named: it differs where the candidate is right)
            lines.append(f"{words}: explains every wrong quantity ({_join(hit)}), but differs from the candidate "
                         f"where the candidate matches the reference")
            continue
        lines.append(f"{words}: explains {_join(hit)} (of the wrong {_join(wrong)}); {_join(missing)} still "
                     f"differ{'s' if len(missing) == 1 else ''}")
    return lines
