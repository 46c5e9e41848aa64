"""The LSTM family under the peephole option (``peep``, ONNX's LSTM input ``P``): i and f see c_{t-1}, o sees
c_t, each through a weight per unit:

    z_i += P[0] * c_{t-1};  z_f += P[1] * c_{t-1};  z_o += P[2] * c_t

P (3, H) holds the peepholes of i, f and o, in the family's gate order (ONNX's P is ordered i, o, f: the ONNX
remap, ``gatecheck.engines.onnx.layout``, reorders it). The option adds an input and a gradient (dP), so its
``Variant`` states the derived record's inputs, contract, shapes, quantities, inputs and finite-difference hooks
outright (``Variant.replace``), as the projection's does; it states its output hook (``fd_output``), so
bidirectional and stacked layers are built on it (each direction and layer has its own P: P_r, P_l1, as an ONNX
bidirectional node holds one P per direction), and its mutants are carried into those layers.
"""

import numpy as np

from gatecheck.core.cases import case_rng, scales
from gatecheck.core.family import Quantity, Variant
from gatecheck.core.mutants import Mutant
from gatecheck.reference import lstm

INPUTS = ("x", "h0", "c0", "W", "U", "b", "P", "gh", "gc")
CONTRACT_KEYS = lstm.CONTRACT_KEYS + ("dP",)


def make_inputs(base_make_inputs):
    """The case's inputs without the option (as they are) plus P (3, H), drawn from a stream of the case's own
    (prefix "peep") at half the case's weight scale: the peepholes move every gate's pre-activation by about
    |c| / 2."""
    def make(case):
        inputs = base_make_inputs(case)
        w_scale, _ = scales(case.regime)
        inputs["P"] = 0.5 * w_scale * case_rng(case, prefix="peep").standard_normal((3, case.H))
        return {k: inputs[k] for k in INPUTS}
    return make


def shapes(base_shapes):
    def shaped(inputs):
        return dict(base_shapes(inputs), dP=(3, inputs["c0"].shape[1]))
    return shaped


def quantities(base):
    """The family's quantity table plus the peepholes' gradient (one slice: its rows are i, f, o, not the
    family's four gates)."""
    return dict(base, dP=Quantity("dP", 2, "", ("peephole", "j"), "dP",
                                  meaning="peephole gradient (3, H): rows i, f, o"))


CONTRACT = """\
run(x, h0, c0, W, U, b, P, gh, gc) -> mapping with
  "h", "c", "dh", "dc" (B,T,H)   states after every step; total dL/dh_t, dL/dc_t
  "dW" (4,D,H), "dU" (4,H,H), "db" (4,H), "dP" (3,H), "dx" (B,T,D), "dh0", "dc0" (B,H)
x (B,T,D), h0, c0 (B,H), W (4,D,H), U (4,H,H), b (4,H), P (3,H), gh (B,T,H), gc (B,H); gates i,f,g,o
z_t[k] = x_t W[k] + h_{t-1} U[k] + b[k]; peepholes P rows i,f,o (ONNX's P is i,o,f):
z_i += P[0]*c_{t-1};  z_f += P[1]*c_{t-1};  i,f = sigmoid;  g = tanh
c_t = f*c_{t-1} + i*g;  z_o += P[2]*c_t;  o = sigmoid;  h_t = o*tanh(c_t)
L = sum(gh*h) + sum(gc*c_T)   (dc_t includes the path through o_t)"""

# The option's mutants: edits of the peephole lines of reference.lstm (step, backward) and a reading of P's rows.
_DP = "(dz[:, :, 3] * c).sum(axis=(0, 1))"


def _onnx_order(run):
    """P's rows read in ONNX's order (i, o, f) as if they were the family's (i, f, o): the peepholes of f and o
    exchanged, and dP returned in that reading."""
    def mutated(**kw):
        order = [0, 2, 1]
        out = dict(run(**dict(kw, P=kw["P"][order])))
        out["dP"] = out["dP"][order]
        return out
    return mutated


MUTANTS = (
    Mutant("peep-o-sees-previous-cell", "the output gate's peephole sees c_{t-1}, as i's and f's do, not c_t",
           "the three peepholes are added in one place, before c_t is computed (the pre-activations of all four "
           "gates at once)",
           old="gates[:, 3] = gate(z[:, 3] + peepholes[2] * c_t, ulps, acts)",
           new="gates[:, 3] = gate(z[:, 3] + peepholes[2] * c_prev, ulps, acts)", first="h t=0"),
    Mutant("peep-dc-without-output-gate", "dc_t misses the path through o_t's peephole (dz_o * P_o)",
           "the cell state's delta is written from h_t = o_t * tanh(c_t) with o_t taken as independent of c_t",
           old="                dc_t += dz[t, :, 3] * peepholes[2]\n            if coupled:  # c_t = (1 - i) c_{t-1} "
               "+ i g: f takes no part",
           new="                pass\n            if coupled:  # c_t = (1 - i) c_{t-1} + i g: f takes no part",
           first="dc t=T-1"),
    Mutant("peep-carry-without-gates", "dc_{t-1} misses the paths through i_t's and f_t's peepholes "
           "(dz_i * P_i + dz_f * P_f): only the carry dc_t * f_t flows back",
           "the carry is written as the peephole-less LSTM's, and the peepholes' gradient taken for dP only",
           old="dc_from_next = dc_from_next + dz[t, :, 0] * peepholes[0] + dz[t, :, 1] * peepholes[1]",
           new="pass", first="dc t=T-2"),
    Mutant("peep-dP-o-previous-cell", "dP of the output gate is accumulated with c_{t-1}, not c_t",
           "the three peepholes' gradients written alike, each dz times the previous cell state",
           old=_DP, new="(dz[:, :, 3] * c_prev).sum(axis=(0, 1))", first="dP"),
    Mutant("peep-onnx-row-order", "P's rows are read in ONNX's order i, o, f as if they were i, f, o: the "
           "peepholes of f and o exchanged",
           "ONNX's P is ordered i, o, f (its gates are i, o, f, c) and the remap to the model's order is forgotten",
           wrap=_onnx_order, first="c t=0"),
)


def variant(output, base, fd_hooks, fd_output_of, fd_points):
    """The ``peep`` Variant of the LSTM family with this output activation (``base``: the family's fields:
    make_inputs, shapes, quantities; the hooks read the inputs' P)."""
    loss, state_loss = fd_hooks(output)
    return Variant(
        run=lstm.run_peep,
        mutants=MUTANTS,
        mutant_bind=lambda module: module.run_peep,
        in_layers=True,
        replace=dict(
            inputs=INPUTS,
            contract=CONTRACT_KEYS,
            shapes=shapes(base["shapes"]),
            quantities=quantities(base["quantities"]),
            make_inputs=make_inputs(base["make_inputs"]),
            fd_loss=loss,
            fd_state_loss=state_loss,
            fd_output=fd_output_of(output),
            fd_points=fd_points,
            contract_doc=CONTRACT,
        ),
    )


def with_zero_peepholes(inputs):
    """The inputs with every direction's and layer's peepholes (P, P_r, P_l1, ...) 0: the model an engine that
    drops P computes (gatecheck.truth.deviations)."""
    return {k: np.zeros_like(v) if k == "P" or k.startswith("P_") else v for k, v in inputs.items()}
