"""Importing the frameworks: availability, supported versions, thread settings.

A framework is imported only inside the functions that need it, so the rest of
gatecheck imports on a machine without it. ``Unavailable`` carries the reason a
framework cannot be used (missing, or a version outside the supported range); the
test suite turns it into a skip, or an error where the framework is required.
"""

import contextlib
import os
import sys
from typing import Callable, NamedTuple

THREADS_ENV = "GATECHECK_THREADS"


class Unavailable(Exception):
    """A framework is missing or unsupported; ``str(exc)`` says why."""


def threads():
    """Intra-op threads for every framework (default 1: deterministic, no oversubscription under xdist)."""
    raw = os.environ.get(THREADS_ENV, "1")
    # at most the cores this process may run on: more only oversubscribes (and a huge
    # count crashes the frameworks' thread pools)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if not 1 <= n <= cores:
        raise ValueError(f"{THREADS_ENV}: expected an integer from 1 to {cores} (the cores available to this "
                         f"process), got {raw!r}")
    return n


def _version_tuple(text):
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _check_version(name, version):
    minimum, why = FRAMEWORKS[name].minimum, FRAMEWORKS[name].why
    if _version_tuple(version) < minimum:
        wanted = ".".join(map(str, minimum))
        raise Unavailable(f"{name} {version} is not supported (need >= {wanted}: {why})")


_configured = set()


def import_torch():
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"torch is not installed ({exc})") from None
    _check_version("torch", torch.__version__)
    if "torch" not in _configured:
        torch.set_num_threads(threads())
        _configured.add("torch")
    return torch


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for the block. TensorFlow's C++ start-up messages
    (absl's "All log messages before absl::InitializeLog()", oneDNN's notice) are written
    before TF_CPP_MIN_LOG_LEVEL is read, into every report; the import's Python errors
    still surface as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Return (tensorflow, keras). torch, when installed, is imported first: the
    project supports one import order for the two frameworks in one process."""
    try:
        import_torch()
    except Unavailable:
        pass
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _quiet_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise Unavailable(f"tensorflow is not installed ({exc})") from None
    try:
        with _quiet_stderr():
            import keras
    except ImportError as exc:
        raise Unavailable(f"keras is not installed ({exc})") from None
    _check_version("keras", keras.__version__)
    if keras.backend.backend() != "tensorflow":
        raise Unavailable(
            f"keras backend is {keras.backend.backend()!r}; the Keras oracles need KERAS_BACKEND=tensorflow"
        )
    if "keras" not in _configured:
        # gatecheck traces one tf.function per D, H and dtype on purpose; TensorFlow's
        # retracing advice about that is noise in every report.
        tf.get_logger().setLevel("ERROR")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads())
            tf.config.threading.set_inter_op_parallelism_threads(threads())
        except RuntimeError:
            pass  # TensorFlow was initialised earlier in this process; its settings stay.
        _configured.add("keras")
    return tf, keras


def import_numpy():
    import numpy

    return numpy


class Framework(NamedTuple):
    name: str
    importer: Callable  # () -> the framework; raises Unavailable with the reason
    minimum: tuple  # oldest supported (major, minor)
    why: str  # why that minimum: older releases differ in API, not in the math checked here
    marker: str  # the pytest marker of its tests ("" for none: always available)
    dists: tuple  # distribution names whose versions the header and results files record


FRAMEWORKS = {
    f.name: f
    for f in (
        Framework("torch", import_torch, (2, 1), "nn.LSTM / nn.LSTMCell dtype= arguments and CPU float64 kernels",
                  "torch", ("torch",)),
        Framework("keras", import_keras, (2, 15),
                  "the Keras 2.15+ / Keras 3 LSTMCell and LSTM API, on the TensorFlow backend", "keras",
                  ("tensorflow", "tensorflow-cpu", "keras")),
        Framework("numpy", import_numpy, (1, 26), "the references themselves", "", ("numpy",)),
    )
}
# Frameworks that can be missing (GATECHECK_REQUIRE=all names these).
OPTIONAL = tuple(name for name, f in FRAMEWORKS.items() if f.marker)

REQUIRE_ENV = "GATECHECK_REQUIRE"


def required():
    """Frameworks named in GATECHECK_REQUIRE ("torch,keras", "all" or empty)."""
    raw = os.environ.get(REQUIRE_ENV, "").strip()
    if not raw:
        return set()
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if names == {"all"}:
        return set(OPTIONAL)
    unknown = sorted(names - set(OPTIONAL))
    if unknown:
        raise ValueError(
            f"{REQUIRE_ENV}: unknown framework(s) {unknown}; expected a comma list of "
            f"{sorted(OPTIONAL)} or 'all'"
        )
    return names


def installed_versions():
    """Distribution versions, read without importing any framework."""
    from importlib import metadata

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    out = {}
    for name in ("numpy",) + OPTIONAL:
        dists = FRAMEWORKS[name].dists
        if name == "keras":  # TensorFlow under either distribution name, then Keras itself
            tf_dist = next((d for d in dists[:2] if version(d)), None)
            out[tf_dist or "tensorflow"] = version(tf_dist) if tf_dist else "not installed"
            dists = dists[2:]
        for dist in dists:
            out[dist] = version(dist) or "not installed"
    return out
