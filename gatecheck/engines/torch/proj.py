"""The projection option (``proj``) of the torch-lstm-layer oracle: ``torch.nn.LSTM(D, H,
proj_size=P, batch_first=True)``, whose output and fed-back state is h_t = W_hr (o_t * tanh(c_t)).

PyTorch's weight_hr_l0 is (P, H), the canonical Wr (H, P) transposed; weight_hh_l0 is (4H, P),
the canonical U (4, P, H) remapped as without the option. ``nn.LSTMCell`` has no projection,
so torch-lstm-cell does not offer the option. The remaps are pure NumPy (``to_torch``,
``grads_from_torch``); ``torch_oracle.run_layer`` builds the layer with them.
"""

import contextlib
import warnings

from gatecheck.engines.torch import layout as torch_layout

# torch (2.13, CPU) warns on every projected forward that oneDNN does not support projections and
# that it falls back to its default kernel: a note on the backend, not on the numbers.
_ONEDNN_NOTE = "LSTM with projections is not supported with oneDNN"


@contextlib.contextmanager
def quiet():
    """A context in which that note is not raised (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_ONEDNN_NOTE, category=UserWarning)
        yield


def to_torch(params):
    """Canonical {'W', 'U', 'b', 'Wr'} -> torch's names: ``torch_layout.to_torch`` plus weight_hr = Wr.T."""
    return dict(torch_layout.to_torch(params), weight_hr=params["Wr"].T.copy())


def grads_from_torch(grads):
    """Torch gradients (weight_hr's among them) -> canonical, dWr = d weight_hr.T (H, P)."""
    out = torch_layout.grads_from_torch({k: v for k, v in grads.items() if k != "weight_hr"})
    out["dWr"] = grads["weight_hr"].T.copy()
    return out
