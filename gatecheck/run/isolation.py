"""A candidate run in a process of its own, so that it cannot stop or fool the suite.

``Isolated(spec, timeout)`` loads ``module:callable`` (or a callable sent by value,
``gatecheck.run.byvalue``) in a worker process (spawned once, reused for every call, spawned again
after a failure) and is called like the candidate itself.
Whatever the candidate does there becomes a ``CandidateError`` with its reason, and the run
goes on:

- an exit (``sys.exit``, ``os._exit``), a signal (a segfault, a kill), an exception of any
  kind, at import or during a call;
- a call that does not return within ``timeout`` seconds, or a load that does not end within
  ``LOAD_TIMEOUT`` (or ``timeout`` if longer) seconds (the worker is killed);
- output of any size on stdout/stderr (the first lines are kept, the rest counted);
- a result object that lies (a mapping whose lookups never end is bounded by the timeout).

The verdict is computed in gatecheck's process, against gatecheck's own reference, which
the candidate's process cannot patch. Arrays travel through a pipe (pickled: the parent
always works on copies). The worker's ``sys.argv`` is the spec alone, so a module that parses
its command line at import sees no pytest or gatecheck options.
"""

import atexit
import io
import os
import signal
import subprocess
import sys
import tempfile
import warnings
from multiprocessing.connection import Connection
from typing import IO, Any

from gatecheck.core import candidate as cand
from gatecheck.core.candidate import CandidateError, Returned
from gatecheck.core.family import Family
from gatecheck.model import options
from gatecheck.run.byvalue import load

DEFAULT_TIMEOUT = 120.0  # seconds per call: a slow hand-written LSTM at T = 1,000 stays well inside
# Seconds that loading the module may take, whatever the call timeout (or the call timeout if
# longer): an import of a framework takes seconds, and is not a call of the candidate.
LOAD_TIMEOUT = 120.0
PRINT_KEEP = 2000  # characters of a call's printed output kept for the report


def timeout_value(text: Any) -> float:
    """'--timeout' as seconds: a finite number > 0."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"--timeout: expected a number of seconds > 0, got {text!r}")
    return value


class _Bounded(io.TextIOBase):
    """A stdout/stderr that keeps the first PRINT_KEEP characters and counts the rest."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.total = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = PRINT_KEEP - sum(map(len, self.kept))
        if room > 0:
            self.kept.append(text[:room])
        self.total += len(text)
        return len(text)

    def take(self) -> tuple[str, int]:
        text, total = "".join(self.kept), self.total
        self.kept, self.total = [], 0
        return text, total


def _serve(conn: "_Pipes") -> None:
    """The worker: take the parent's path and the spec, load the candidate, then answer
    calls until told to stop."""
    path, spec, keys, what = conn.recv()
    sys.path[:] = path
    sys.argv = [str(spec)]

    printed = _Bounded()
    sys.stdout = sys.stderr = printed
    try:
        fn = load(spec, what)
    except cand.CandidateError as exc:
        conn.send(("error", str(exc)))
        return
    except BaseException as exc:  # noqa: BLE001 (sys.exit or the like at import: the candidate's, reported)
        conn.send(("error", f"{spec!r}: importing it raised {type(exc).__name__}: {exc}"))
        return
    declared = getattr(fn, "cannot_observe", {}) or {}
    options = getattr(fn, "options", None)  # the layer options it implements (gatecheck.model.options)
    plain = isinstance(options, (set, frozenset, list, tuple)) and all(  # names, 'bi+L2', or tuples of names
        isinstance(o, str) or isinstance(o, (tuple, frozenset)) and all(isinstance(n, str) for n in o) for o in options)
    conn.send(("ready", declared if isinstance(declared, dict) else repr(declared),
               None if options is None else [o if isinstance(o, str) else tuple(sorted(o)) for o in options]
               if plain else repr(options)))
    while True:
        try:
            args = conn.recv()
        except EOFError:
            return
        if args is None:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reply: tuple[Any, ...]
            try:
                out = fn(**args)
                got = cand.extract(out, keys)
                reply = ("result", type(out).__name__, None if got is None else {
                    k: v if hasattr(v, "dtype") and hasattr(v, "shape") else cand.Foreign(v) for k, v in got.items()})
            except cand.CandidateError as exc:
                reply = ("raised", str(exc))
            except SystemExit as exc:
                reply = ("raised", f"called sys.exit({exc.code!r}){cand.where(exc)}")
            except BaseException as exc:  # noqa: BLE001 (KeyboardInterrupt, a BaseException subclass ...: the candidate's)
                reply = ("raised", f"raised {type(exc).__name__}: {exc}{cand.where(exc)}")
        text, total = printed.take()
        notes = cand.summarize_warnings(caught)
        if total:
            first = text.strip().splitlines()[0] if text.strip() else ""
            first = first if len(first) <= 80 else first[:77] + "..."
            notes.append(f"printed {total} characters" + (f"; first line: {first!r}" if first else ""))
        conn.send(reply + (notes,))


def _death(process: "subprocess.Popen[bytes]", log: IO[bytes]) -> str:
    """Why the worker died: its exit code or signal, and the last line it wrote to stderr."""
    try:
        code = process.wait(5)
    except subprocess.TimeoutExpired:
        return "stopped answering"
    if code < 0:
        try:
            why = f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            why = f"was killed by signal {-code}"
    else:
        why = f"exited with code {code}"
    log.seek(0)
    tail = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return why + (f" ({tail[-1].strip()[:200]})" if tail else "")


class Isolated:
    """``module:callable`` run in a worker process; call it like the candidate."""

    def __init__(self, spec: str, family: Family, timeout: float = DEFAULT_TIMEOUT, what: str = "--candidate") -> None:

        # the family's contract keys and those its options add (proj: dWr; bi: h_r, ...), read back from every call
        self.spec, self.keys, self.timeout, self.what = spec, options.every_key(family), timeout, what
        self.__name__ = spec
        self._process: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._conn: Connection | None = None
        self.cannot_observe: Any = {}  # as the worker read it: a dict, or the repr of what it was
        self.options: Any = None  # what the candidate's ``options`` attribute declares (gatecheck.model.options)
        self.start()
        atexit.register(self.close)

    def start(self) -> None:
        """Start the worker and load the candidate there; CandidateError if it does not load."""

        down_r, down_w = os.pipe()  # gatecheck -> worker
        up_r, up_w = os.pipe()  # worker -> gatecheck
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gatecheck.run.isolation", str(down_r), str(up_w)], pass_fds=(down_r, up_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")))
        os.close(down_r)
        os.close(up_w)
        self._send, self._conn = Connection(down_w, readable=False), Connection(up_r, writable=False)
        path = [os.getcwd() if entry in ("", ".") else entry for entry in sys.path]
        if os.getcwd() not in path:
            path.insert(0, os.getcwd())  # the candidate is imported from the current directory
        try:
            self._send.send((path, self.spec, self.keys, self.what))
            ready = self._conn.poll(max(self.timeout, LOAD_TIMEOUT))
        except (BrokenPipeError, OSError):
            ready = True  # the reply (or EOF) says why
        if not ready:
            self.close()
            raise CandidateError(f"{self.spec!r}: loading it took more than {max(self.timeout, LOAD_TIMEOUT):g} s")
        try:
            kind, payload, *rest = self._conn.recv()
        except (EOFError, OSError):
            why = _death(self._process, self._log)
            self.close()
            raise CandidateError(f"{self.spec!r}: the process loading it {why}") from None
        if kind == "error":
            self.close()
            raise CandidateError(payload)
        self.cannot_observe = payload
        self.options = rest[0] if rest else None

    def __call__(self, **inputs: Any) -> Returned:

        if self._process is None:
            self.start()
        assert self._process is not None and self._send is not None and self._conn is not None  # start() set them
        try:
            self._send.send(inputs)
            if not self._conn.poll(self.timeout):
                self.close()
                raise CandidateError(f"{self.spec} did not return within {self.timeout:g} s (the timeout; "
                                     "--timeout sets it); its process was stopped")
            reply = self._conn.recv()
        except (EOFError, OSError):
            why = _death(self._process, self._log)
            self.close()
            raise CandidateError(f"{self.spec}: its process {why} while running") from None
        if reply[0] == "raised":
            raise CandidateError(f"{self.spec} {reply[1]}" if reply[1].startswith(("raised", "called")) else reply[1])
        _, type_name, got, notes = reply
        if got is None:
            raise CandidateError(f"{self.spec} returned a {type_name}; expected a mapping with keys {list(self.keys)}")
        out = Returned(got)
        out.warnings = notes
        return out

    def close(self) -> None:
        """Stop the worker (it is started again on the next call)."""
        if self._process is not None:
            assert self._send is not None and self._conn is not None  # set with the process (start)
            try:
                self._send.send(None)
            except (OSError, ValueError):
                pass
            try:
                self._process.wait(0.5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._send.close()
            self._conn.close()
            self._log.close()
        self._process, self._send, self._conn = None, None, None


class _Pipes:
    """The worker's ends: receive from gatecheck on one pipe, answer on the other."""

    def __init__(self, down: int, up: int) -> None:
        self._down, self._up = Connection(down, writable=False), Connection(up, readable=False)

    def recv(self) -> Any:
        return self._down.recv()

    def send(self, obj: object) -> None:
        self._up.send(obj)


if __name__ == "__main__":
    _serve(_Pipes(int(sys.argv[1]), int(sys.argv[2])))
