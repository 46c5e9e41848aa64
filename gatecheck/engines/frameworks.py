"""Importing the frameworks: availability, supported versions, thread settings.

A framework is imported only inside the functions that need it, so the rest of
gatecheck imports on a machine without it. ``Unavailable`` carries the reason a
framework cannot be used (missing, or a version outside the supported range); the
test suite turns it into a skip, or an error where the framework is required.
"""

import contextlib
import functools
import logging
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
    for piece in text.split("+")[0].split(".")[:3]:
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
def quiet_stderr():
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


# The Keras 3 backends the Keras oracles run on (gatecheck.engines.keras.backends); Keras 2 has
# TensorFlow only.
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
KERAS_BACKEND_ENV = "KERAS_BACKEND"


@functools.lru_cache(maxsize=None)
def _keras_2():
    """Whether the installed Keras is Keras 2 (read once: the distributions do not change in a process)."""
    from importlib import metadata

    try:
        return _version_tuple(metadata.version("keras")) < (3, 0)
    except metadata.PackageNotFoundError:
        return False


def keras_backend():
    """The Keras backend of this process: Keras reads ``KERAS_BACKEND`` (else ``keras.json`` in
    ``KERAS_HOME`` or ``~/.keras``; else tensorflow) when it is first imported, so it is fixed for a
    whole process. Once keras is imported, its own answer; before, read the same way without
    importing it (Keras 2: tensorflow, its only backend)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(getattr(keras, "backend", None), "backend"):
        return keras.backend.backend()
    if _keras_2():
        return "tensorflow"
    chosen = os.environ.get(KERAS_BACKEND_ENV)
    if chosen:
        return chosen
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        import json

        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with quiet_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise Unavailable(f"tensorflow is not installed ({exc})") from None
    return tf


def import_keras():
    """Return (the backend's module, keras): (tensorflow, keras), (jax, keras) or (torch, keras), as
    ``KERAS_BACKEND`` chose (``keras_backend``). torch, when installed, is imported first: the
    project supports one import order for the frameworks in one process. On the JAX backend jax
    comes from ``import_jax`` (float64 on, XLA's threads held) before keras imports it; TensorFlow
    is imported on its own backend only."""
    backend = keras_backend()
    if backend not in KERAS_BACKENDS:
        raise Unavailable(f"keras backend {backend!r} ({KERAS_BACKEND_ENV}): the Keras oracles run on "
                          f"{', '.join(KERAS_BACKENDS)}")
    try:
        import_torch()
    except Unavailable as exc:
        if backend == "torch":
            raise Unavailable(f"keras backend torch: {exc}") from None
    try:
        import_paddle()  # before TensorFlow, where installed: after it, libpaddle crashes on load (import_paddle)
    except Unavailable:
        pass
    module = {"tensorflow": _import_tensorflow, "jax": import_jax, "torch": import_torch}[backend]()
    try:
        with quiet_stderr():
            import keras
    except ImportError as exc:
        raise Unavailable(f"keras is not installed ({exc})") from None
    _check_version("keras", keras.__version__)
    if keras.backend.backend() != backend:
        raise Unavailable(f"keras {keras.__version__} runs on the {keras.backend.backend()!r} backend, "
                          f"not {backend!r} ({KERAS_BACKEND_ENV})")
    if "keras" not in _configured:
        if backend == "tensorflow":
            # gatecheck traces one tf.function per D, H and dtype on purpose; TensorFlow's
            # retracing advice about that is noise in every report.
            module.get_logger().setLevel("ERROR")
            try:
                module.config.threading.set_intra_op_parallelism_threads(threads())
                module.config.threading.set_inter_op_parallelism_threads(threads())
            except RuntimeError:
                pass  # TensorFlow was initialised earlier in this process; its settings stay.
        _configured.add("keras")
    return module, keras


def import_onnxruntime():
    """Return (onnx, onnxruntime): ONNX graphs are built with ``onnx`` and run in ``onnxruntime``."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise Unavailable(f"onnx or onnxruntime is not installed ({exc})") from None
    _check_version("onnxruntime", onnxruntime.__version__)
    if "onnxruntime" not in _configured:
        onnxruntime.set_default_logger_severity(3)  # errors only: its warnings are noise in every report
        _configured.add("onnxruntime")
    return onnx, onnxruntime


def ort_session(model):
    """An onnxruntime session on the CPU for a model (an ``onnx.ModelProto`` or its bytes), with
    the thread settings of every framework (``threads()``); every graph optimisation stays on, as
    a deployed model runs."""
    onnx, ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads()
    opts.inter_op_num_threads = 1
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def onnx_nodes(model):
    """Every node of an ONNX model (``onnx.ModelProto``): its graph's, its nested subgraphs' (Loop, Scan,
    If bodies) and its local functions', graph by graph."""
    graphs, found = [model.graph], []
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            found.append(node)
            for attr in node.attribute:
                graphs += ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)
    for function in model.functions:
        found += list(function.node)
    return found


def import_jax():
    """Return jax with float64 enabled (``jax_enable_x64``, process-wide: the oracles run in both
    dtypes) on the CPU. Compile through ``jit``, which holds XLA's CPU threads to ``threads()``."""
    try:
        import jax
    except ImportError as exc:
        raise Unavailable(f"jax is not installed ({exc})") from None
    _check_version("jax", jax.__version__)
    if "jax" not in _configured:
        jax.config.update("jax_enable_x64", True)
        _configured.add("jax")
    return jax


def xla_options():
    """The XLA options of every program gatecheck compiles with JAX: Eigen's multithreaded kernels
    only where ``threads()`` allows more than one thread. A per-program option, not ``XLA_FLAGS``:
    the environment is read once, by whichever library first starts JAX's CPU backend (TensorFlow's
    import does, through Keras), so a flag set later is lost, and with it the kernels' summation
    order: a small float64 dot then rounds differently (the same case ran alone and after a Keras
    case differed by a few ulps). Each compile names its options, whatever ran before."""
    return {"xla_cpu_multi_thread_eigen": threads() > 1}


def jit(fn, **kwargs):
    """``jax.jit(fn)`` with ``xla_options()`` (jax 0.4.36 and later take them per program)."""
    return import_jax().jit(fn, compiler_options=xla_options(), **kwargs)


def import_flax():
    """Return (jax, flax.nnx)."""
    jax = import_jax()
    try:
        import flax
        from flax import nnx
    except ImportError as exc:
        raise Unavailable(f"flax is not installed ({exc})") from None
    _check_version("flax", flax.__version__)
    return jax, nnx


def import_torch_onnx():
    """Return (torch, onnx, onnxruntime): PyTorch's ONNX exporters (the dynamo-based one needs
    ``onnxscript``) and the runtime the exported models run in."""
    torch = import_torch()
    onnx, ort = import_onnxruntime()
    try:
        import onnxscript  # noqa: F401  (torch.onnx.export(..., dynamo=True) imports it)
    except ImportError as exc:
        raise Unavailable(f"onnxscript is not installed ({exc}); torch.onnx's dynamo exporter needs it") from None
    _check_version("torch-onnx", torch.__version__)
    return torch, onnx, ort


def import_keras_onnx():
    """Return (tensorflow, keras, tf2onnx, onnxruntime): Keras models converted to ONNX by tf2onnx
    (which converts TensorFlow graphs: the TensorFlow backend only)."""
    if keras_backend() != "tensorflow":
        raise Unavailable(f"keras backend is {keras_backend()!r}; tf2onnx converts Keras models on "
                          f"{KERAS_BACKEND_ENV}=tensorflow only")
    tf, keras = import_keras()
    if _version_tuple(keras.__version__) < (3, 0):
        raise Unavailable(f"keras {keras.__version__}: the keras-onnx oracles convert Keras 3 layers (they feed "
                          f"weights through Layer.stateless_call, and what tf2onnx emits is recorded for Keras 3)")
    _, ort = import_onnxruntime()
    try:
        with quiet_stderr():
            import tf2onnx
    except ImportError as exc:
        raise Unavailable(f"tf2onnx is not installed ({exc})") from None
    _check_version("keras-onnx", tf2onnx.__version__)
    return tf, keras, tf2onnx, ort


@contextlib.contextmanager
def openvino_telemetry_off():
    """No usage telemetry from OpenVINO in the block. openvino depends on openvino-telemetry: importing it, and
    each ``openvino.convert_model`` call, posts an event to Google Analytics from a forked process unless the
    user opted out (a consent file in the home folder, written by ``opt_in_out --opt_out``) or the process runs
    in CI: its telemetry is off where ``CI`` is ``true`` (openvino_telemetry's ``OptInChecker._run_in_ci``, which
    OpenVINO's converter honours with ``disable_in_ci=True``). gatecheck sends nothing and forks nothing: ``CI``
    is ``true`` in the block, and as it was after."""
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = saved


def import_openvino():
    """Return openvino (imported with its telemetry off: ``openvino_telemetry_off``): OpenVINO runs the ONNX
    graphs built with ``onnx`` (import_onnxruntime) and the PyTorch layers its converter reads (torch, imported
    first: the one import order of the frameworks in a process)."""
    import_torch()
    import_onnxruntime()
    try:
        with openvino_telemetry_off():
            import openvino
    except ImportError as exc:
        raise Unavailable(f"openvino is not installed ({exc})") from None
    _check_version("openvino", openvino.__version__)
    return openvino
def import_litert():
    """Return (tensorflow, keras, ai_edge_litert.interpreter): Keras models converted by TensorFlow's
    ``tf.lite.TFLiteConverter`` (it converts TensorFlow graphs: the TensorFlow backend only) and run in
    the LiteRT interpreter of ``ai-edge-litert`` (TensorFlow 2.21's own ``tf.lite.Interpreter`` warns
    that it is deprecated and scheduled for deletion, and points to it)."""
    if keras_backend() != "tensorflow":
        raise Unavailable(f"keras backend is {keras_backend()!r}; TensorFlow's TFLite converter converts Keras "
                          f"models on {KERAS_BACKEND_ENV}=tensorflow only")
    tf, keras = import_keras()
    if _version_tuple(keras.__version__) < (3, 0):
        raise Unavailable(f"keras {keras.__version__}: the litert oracles convert Keras 3 layers (what the "
                          f"converter emits is recorded for Keras 3)")
    try:
        with quiet_stderr():
            from ai_edge_litert import interpreter
    except ImportError as exc:
        raise Unavailable(f"ai-edge-litert is not installed ({exc})") from None
    from importlib import metadata

    _check_version("litert", metadata.version("ai-edge-litert"))
    return tf, keras, interpreter
# paddlepaddle 3.3.1 beside tensorflow-cpu 2.21 (Linux x86-64, Python 3.11): ``import paddle`` after ``import
# tensorflow`` ends the process with a segmentation fault while paddle/base/core.py loads libpaddle; the other
# order imports and runs both. ``import_keras`` therefore imports paddle first where it is installed (as torch).
_PADDLE_AFTER_TENSORFLOW = ("paddle cannot be imported in a process that has imported tensorflow: libpaddle crashes "
                            "on load (a segmentation fault, paddlepaddle 3.3 beside tensorflow-cpu 2.21); gatecheck's "
                            "import_keras imports paddle before tensorflow, so import it through gatecheck or first")


@contextlib.contextmanager
def root_logger_kept():
    """The root logger's level and handlers as they were before the block. ``import paddle`` (paddlepaddle 3.3)
    sets the root logger to INFO with a handler on stderr, so every library's INFO records (jax's 'Unable to
    initialize backend', ...) would reach the user's report and the pytest output."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)


def import_paddle():
    """Return paddle on the CPU, its intra-op threads held to ``threads()``. Refused (``Unavailable``) in a
    process that imported tensorflow before it (``_PADDLE_AFTER_TENSORFLOW``)."""
    import importlib.util
    import warnings

    if "paddle" not in sys.modules and importlib.util.find_spec("paddle") is None:
        raise Unavailable("paddle is not installed (No module named 'paddle')")
    if "paddle" not in sys.modules and "tensorflow" in sys.modules:
        raise Unavailable(_PADDLE_AFTER_TENSORFLOW)

    try:
        with warnings.catch_warnings(), root_logger_kept():
            # paddle.utils.cpp_extension warns at import when ccache is missing: it builds no extension here
            warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
            import paddle
    except ImportError as exc:
        raise Unavailable(f"paddle is not installed ({exc})") from None
    _check_version("paddle", paddle.__version__)
    if "paddle" not in _configured:
        paddle.set_device("cpu")
        paddle.base.core.set_num_threads(threads())
        _configured.add("paddle")
    return paddle


def import_mlx():
    """Return (mlx.core, mlx.nn) with the CPU as the default device (the Linux wheel, ``mlx[cpu]``, has
    no other)."""
    try:
        import mlx.core as mx
        import mlx.nn as nn
    except ImportError as exc:
        raise Unavailable(f"mlx is not installed ({exc}); on Linux: pip install 'mlx[cpu]'") from None
    _check_version("mlx", mx.__version__)
    if "mlx" not in _configured:
        mx.set_default_device(mx.cpu)
        _configured.add("mlx")
    return mx, nn


# What importing, lowering and loading with executorch 1.5.1 emits that is no finding (pytest makes warnings errors):
# torch.utils._pytree's FutureWarning on LeafSpec, raised where exir deep-copies an exported program's tree specs;
# importlib.resources' legacy read_text, open_text and read_binary, which exir's edge dialect and serializer call;
# torch.jit.script_method, which a module executorch imports still decorates with; the runtime's ExperimentalWarning
# on loading its pybindings (executorch/extension/pybindings/portable_lib.py).
_EXECUTORCH_WARNINGS = ((r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
                        (r"(read|open)_(text|binary) is deprecated\. Use files\(\) instead", DeprecationWarning),
                        (r"`torch\.jit\.script_method` is deprecated", DeprecationWarning),
                        (r"This API is experimental and subject to change without notice", Warning))


@contextlib.contextmanager
def executorch_quiet():
    """The warnings of ExecuTorch's export and lowering that are no finding (``_EXECUTORCH_WARNINGS``), and its
    runtime's start-up notices on file descriptor 2 (cpuinfo's "Failed to open midr file"); a failure still raises."""
    import warnings

    with warnings.catch_warnings():
        for message, category in _EXECUTORCH_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        with quiet_stderr():
            yield


def import_executorch():
    """Return (torch, executorch.exir, executorch.runtime.Runtime): programs exported by ``torch.export``,
    lowered by ``executorch.exir`` and run by ExecuTorch's Python runtime (torch imported first, as always)."""
    torch = import_torch()
    try:
        with executorch_quiet():
            import executorch
            import executorch.exir as exir
            from executorch.runtime import Runtime
    except ImportError as exc:
        raise Unavailable(f"executorch is not installed ({exc})") from None
    from importlib import metadata

    _check_version("executorch", getattr(executorch, "__version__", None) or metadata.version("executorch"))
    return torch, exir, Runtime


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
                  "the Keras 2.15+ / Keras 3 LSTMCell and LSTM API (Keras 3: the TensorFlow, JAX or PyTorch backend)", "keras",
                  ("tensorflow", "tensorflow-cpu", "keras")),
        Framework("onnxruntime", import_onnxruntime, (1, 17),
                  "ONNX LSTM/GRU/RNN nodes of opset 14 and later (the layout attribute)", "onnxruntime",
                  ("onnx", "onnxruntime")),
        Framework("jax", import_jax, (0, 4, 36),
                  "jax.lax.scan(reverse=), jax.vjp, jax_enable_x64 on the CPU and jax.jit(compiler_options=)", "jax",
                  ("jax", "jaxlib")),
        Framework("flax", import_flax, (0, 10), "flax.nnx's LSTMCell, GRUCell and SimpleCell", "flax", ("flax",)),
        Framework("torch-onnx", import_torch_onnx, (2, 5),
                  "torch.onnx.export with dynamo=True and dynamic shapes; onnx and onnxruntime to run the export",
                  "torch_onnx", ("onnxscript",)),
        Framework("keras-onnx", import_keras_onnx, (1, 16), "tf2onnx.convert.from_keras / from_function",
                  "keras_onnx", ("tf2onnx",)),
        Framework("openvino", import_openvino, (2023, 1),
                  "openvino.convert_model of torch.nn modules (example_input) and openvino.Core in the top-level "
                  "package; the ONNX graphs are built with onnx, the modules with torch", "openvino", ("openvino",)),
        Framework("litert", import_litert, (1, 0),
                  "ai_edge_litert.interpreter.Interpreter (resize_tensor_input, _get_ops_details); TensorFlow's "
                  "tf.lite.TFLiteConverter converts", "litert", ("ai-edge-litert",)),
        Framework("paddle", import_paddle, (3, 0),
                  "paddle.nn's LSTM, GRU, SimpleRNN and cells in Paddle 3's eager mode (Tensor.retain_grads, CPU "
                  "float64 kernels), as tested (3.3); 2.x not tried", "paddle", ("paddlepaddle",)),
        Framework("mlx", import_mlx, (0, 26),
                  "mlx.nn's LSTM, GRU and RNN on the CPU: the Linux wheel (mlx[cpu], mlx-cpu) exists from 0.26; "
                  "float64 on the CPU as tested (0.32)", "mlx", ("mlx", "mlx-cpu")),
        Framework("executorch", import_executorch, (1, 0),
                  "torch.export of nn.LSTMCell / GRUCell / RNNCell, executorch.exir.to_edge and to_executorch, the "
                  "executorch.runtime Python API (Runtime.get, load_program, Method.execute) of the 1.x line, as "
                  "tested (1.5)", "executorch", ("executorch",)),
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


NOT_INSTALLED = "not installed"  # a distribution's version in installed_versions where it is missing


def installed_versions():
    """Distribution versions, read without importing any framework (NOT_INSTALLED for one that is missing)."""
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
            out[tf_dist or "tensorflow"] = version(tf_dist) if tf_dist else NOT_INSTALLED
            dists = dists[2:]
        for dist in dists:
            out[dist] = version(dist) or NOT_INSTALLED
    return out
