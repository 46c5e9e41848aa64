"""A persistent cache of the oracles' outputs, for the runs that judge a candidate.

An oracle's output on a case does not depend on the candidate: it is a function of the case (its
inputs are a deterministic function of the case's coordinates and options), of the oracle, of the
versions of the packages that compute it, of the process settings that change its arithmetic, and of
gatecheck's own code that builds the inputs and drives the engine. ``key`` puts all of these in the
entry's key, so a change to any of them is a miss, never a stale hit:

- the case: its oracle, shape, dtype, seed, regime and options, and the quantities asked for;
- the versions of numpy, of the distributions every framework entry names
  (``gatecheck.engines.frameworks.FRAMEWORKS``: an engine converted from another reads that one's
  package too, so every engine's version is in every key) and of Python;
- the platform (OS, machine) and the settings ``KERAS_BACKEND`` and ``GATECHECK_THREADS``;
- a digest of the source of every gatecheck module that the oracle's module imports, directly or
  through others, and of those that build a case's inputs (``gatecheck.truth.views``): a changed remap,
  oracle or input generator is a miss.

The store is ``diskcache.Cache`` (SQLite: each write is a transaction, so a writer that dies leaves
no half entry, and the processes of ``-n`` share it safely). An entry is the quantities as an ``.npz``
(numpy's own format, no pickle); one that cannot be read back (corrupt, truncated, from another
format) is a miss with a warning, and is written again.

The cache is off unless a front end that judges a candidate turns it on for its run (``using``): ``check``,
``verify``, the Python API and the pytest plugin with a candidate. The battery without a candidate,
which CI and the nightly run, computes the engines afresh: that is its job. A front end's run sets
``GATECHECK_CACHE_IN_USE`` so that the worker processes it starts use the same folder, and puts it back after.
The folder is ``--cache-dir``, else ``GATECHECK_CACHE_DIR``, else the platform's cache folder.

What the key cannot see: a change made at run time to gatecheck's functions (a test's monkeypatch). Code that
patches an oracle and judges through a front end must turn the cache off (``--no-cache``, ``cache=False``).
"""

import ast
import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import sqlite3
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gatecheck.core.cases import Case
from gatecheck.engines import DEFINED_IN
from gatecheck.engines.base import Oracle
from gatecheck.engines.frameworks import FRAMEWORKS

ENV_DIR = "GATECHECK_CACHE_DIR"  # where the cache lives (default: the platform's cache folder)
ENV_ON = "GATECHECK_CACHE_IN_USE"  # set by a front end for the length of its run (and its workers): the folder used
SETTINGS = ("KERAS_BACKEND", "GATECHECK_THREADS")  # process settings an engine's arithmetic follows
INPUTS_MODULE = "gatecheck.truth.views"  # what builds a case's inputs (and the families it reads)
FORMAT = 1  # of an entry; a new one is a miss for every older entry


class CacheWarning(UserWarning):
    """An entry that could not be read back (it is recomputed) or a cache that could not be opened."""


def default_dir() -> Path:
    """Where the cache lives: ``GATECHECK_CACHE_DIR``, else the platform's cache folder for gatecheck
    (``platformdirs.user_cache_dir``)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    import platformdirs

    return Path(platformdirs.user_cache_dir("gatecheck")) / "oracles"


@contextlib.contextmanager
def using(folder: str | os.PathLike | None | bool) -> Iterator[Path | None]:
    """The cache on (``folder``: a folder, or None or True for ``default_dir()``) or off (False) for the length of a
    front end's run, in this process and in the worker processes it starts; as it was afterwards."""
    before = os.environ.get(ENV_ON)
    path: Path | None
    if folder is False:
        path = None
    elif folder is None or folder is True:
        path = default_dir()
    else:
        path = Path(folder)
    if path is None:
        os.environ.pop(ENV_ON, None)
    else:
        os.environ[ENV_ON] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(ENV_ON, None)
        else:
            os.environ[ENV_ON] = before


def directory_in_use() -> Path | None:
    """The cache folder in use (None: off)."""
    text = os.environ.get(ENV_ON, "")
    return Path(text) if text else None


@functools.lru_cache(maxsize=None)
def _store(path: str) -> Any:
    import diskcache

    return diskcache.Cache(path)


def store() -> Any:
    """The open ``diskcache.Cache`` of the folder in use (None: off, or it cannot be opened: a warning)."""
    path = directory_in_use()
    if path is None:
        return None
    try:
        return _store(str(path))
    except (OSError, sqlite3.Error) as exc:  # an unwritable folder: run without a cache, and say so once
        warnings.warn(f"gatecheck cache at {path} cannot be opened ({type(exc).__name__}: {exc}); running without "
                      f"it", CacheWarning, stacklevel=2)
        os.environ.pop(ENV_ON, None)
        return None


# ---------------------------------------------------------------------------------------------------- the key


_ROOT = Path(__file__).resolve().parent.parent  # the gatecheck package's folder


def _module_file(name: str) -> Path | None:
    """The source file of a gatecheck module, found without importing it (None: not a module)."""
    relative = Path(*name.split(".")[1:])
    for path in (_ROOT / relative.with_suffix(".py") if relative.parts else None, _ROOT / relative / "__init__.py"):
        if path is not None and path.is_file():
            return path
    return None


def _imports(name: str, source: str, is_package: bool) -> set[str]:
    """The gatecheck modules a module's source imports (at the top or inside functions). A package's
    ``__init__`` counts only where a name of its own is imported: importing a submodule runs it too, but
    the registry it holds (gatecheck.engines) does not change what a submodule computes."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # a submodule (``from gatecheck.x import module``), else a name of base
                found.add(f"{base}.{alias.name}" if _module_file(f"{base}.{alias.name}") else base)
    return {m for m in found if m == "gatecheck" or m.startswith("gatecheck.")}


@functools.lru_cache(maxsize=None)
def closure(root: str) -> tuple[str, ...]:
    """``root`` and every gatecheck module it imports, directly or through others, sorted."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:  # a name imported from a module, not a module
            continue
        seen.add(name)
        todo.extend(_imports(name, path.read_text(encoding="utf-8"), path.name == "__init__.py") - seen)
    return tuple(sorted(seen))


@functools.lru_cache(maxsize=None)
def code_digest(roots: tuple[str, ...]) -> str:
    """The sha256 of the source of the closures of ``roots`` and of the input generator."""
    digest = hashlib.sha256()
    for name in sorted({m for root in (*roots, INPUTS_MODULE) for m in closure(root)}):
        path = _module_file(name)
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path else b"") + b"\0")
    return digest.hexdigest()


def modules(oracle: Oracle) -> tuple[str, ...]:
    """The modules an oracle's output is computed by: the one that defines it (``gatecheck.engines.DEFINED_IN``)
    and those of its runner and of the functions a partial runner is bound to."""
    found = [DEFINED_IN[oracle.name]] if oracle.name in DEFINED_IN else []
    todo = [oracle.runner]
    while todo:
        item = todo.pop()
        if isinstance(item, functools.partial):
            todo.extend([item.func, *item.args, *item.keywords.values()])
        elif callable(item) and getattr(item, "__module__", "").startswith("gatecheck"):
            found.append(item.__module__)
    if not found:
        raise ValueError(f"oracle {oracle.name}: no gatecheck module defines it or its runner")
    return tuple(sorted(set(found)))


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


_NOT_MODULES = ("tests", "examples", "tools")  # top-level names some wheels list beside their package


def _location(dist: str) -> str:
    """Where the distribution's top-level modules import from (``importlib.util.find_spec``: nothing is imported):
    a module that shadows an engine's package (another install earlier on the path, a stub) is another key."""
    try:
        text = importlib.metadata.distribution(dist).read_text("top_level.txt")
    except importlib.metadata.PackageNotFoundError:
        return "-"
    tops = [t for t in (text or dist.replace("-", "_").lower()).split() if t not in _NOT_MODULES and t[0] != "_"]
    found = []
    for top in sorted(tops):
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        found.append(f"{top}={spec.origin if spec and spec.origin else spec and list(spec.submodule_search_locations or ())}")
    return ";".join(found)


@functools.lru_cache(maxsize=None)
def versions() -> tuple[tuple[str, str, str], ...]:
    """(distribution, version or '-', where its modules import from) of numpy and of every distribution a
    framework entry names."""
    dists = sorted({"numpy"} | {d for f in FRAMEWORKS.values() for d in f.dists})
    return tuple((d, _version(d), _location(d)) for d in dists)


def key(case: Case, oracle: Oracle, observes: tuple[str, ...]) -> str:
    """The entry's key: a sha256 of every component the oracle's output depends on (the module's text)."""
    settings = tuple((name, os.environ.get(name, "")) for name in SETTINGS)
    return _key(tuple(case), oracle.name, modules(oracle), tuple(observes), settings)


@functools.lru_cache(maxsize=4096)
def _key(case: tuple, oracle: str, roots: tuple[str, ...], observes: tuple[str, ...],
         settings: tuple[tuple[str, str], ...]) -> str:
    parts = {
        "format": FORMAT,
        "case": list(case),
        "observes": list(observes),
        "oracle": oracle,
        "code": code_digest(roots),
        "versions": versions(),
        "python": sys.version,
        "platform": [sys.platform, platform.machine()],
        "settings": dict(settings),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------- entries


def _encode(values: Mapping[str, Any]) -> bytes | None:
    """The quantities as ``.npz`` bytes; None where one is not a numpy array (it is not cached)."""
    if not all(isinstance(v, np.ndarray) and v.dtype != object for v in values.values()):
        return None
    buffer = io.BytesIO()
    np.savez(buffer, **values)
    return buffer.getvalue()


# What reading a damaged entry raises: np.load's errors on bytes that are not an .npz (or a truncated one), and
# _decode's own on an entry of other quantities.
UNREADABLE = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile)


def _decode(data: bytes, observes: tuple[str, ...]) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as found:
        values = {k: found[k] for k in found.files}
    if set(values) != set(observes):
        raise ValueError(f"holds {sorted(values)}, expected {sorted(observes)}")
    return {k: values[k] for k in observes}


def held(case: Case, oracle: Oracle, observes: tuple[str, ...]) -> bool:
    """Whether the cache is on and holds an entry for the oracle's quantities on a case."""
    cache = store()
    return cache is not None and key(case, oracle, tuple(observes)) in cache


def expected(case: Case, oracle: Oracle, observes: tuple[str, ...],
             compute: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any]:
    """The oracle's quantities on a case: from the cache where an entry is there and reads back, else
    ``compute()`` (and stored). With the cache off, ``compute()``."""
    cache = store()
    if cache is None:
        return compute()
    name = key(case, oracle, tuple(observes))
    try:
        data = cache.get(name)
    except (OSError, sqlite3.Error) as exc:  # the store itself is damaged: compute, and say so
        warnings.warn(f"gatecheck cache: {case.id} cannot be read ({type(exc).__name__}: {exc}); computed",
                      CacheWarning, stacklevel=2)
        return compute()
    if data is not None:
        try:
            return _decode(data, tuple(observes))
        except UNREADABLE as exc:  # a corrupt, truncated or foreign entry: recompute it
            warnings.warn(f"gatecheck cache: the entry of {case.id} cannot be read ({type(exc).__name__}: {exc}); "
                          f"recomputed", CacheWarning, stacklevel=2)
    values = compute()
    encoded = _encode(values)
    if encoded is not None:
        try:
            cache.set(name, encoded)
        except (OSError, sqlite3.Error) as exc:  # a full disk, say: the verdict does not need the entry
            warnings.warn(f"gatecheck cache: {case.id} not stored ({type(exc).__name__}: {exc})", CacheWarning,
                          stacklevel=2)
    return values


# ---------------------------------------------------------------------------------------------------- the command


def info(path: Path | None = None) -> dict[str, Any]:
    """The folder, its entries and its size on disk (bytes)."""
    path = path or default_dir()
    if not path.exists():
        return {"directory": str(path), "entries": 0, "bytes": 0}
    cache = _store(str(path))
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return {"directory": str(path), "entries": len(cache), "bytes": size}


def clear(path: Path | None = None) -> int:
    """Remove every entry; the number removed."""
    path = path or default_dir()
    if not path.exists():
        return 0
    return int(_store(str(path)).clear())
