"""Candidates that try to stop or fool gatecheck, each run through `check`/`verify` and
pytest by tests/run/test_isolation.py: every one must end as a clear candidate error within the
timeout, and the run must go on."""

import os
import signal
import sys
import time

import numpy as np

from gatecheck.reference import lstm


def exits(**kw):
    sys.exit(0)


def exits_3(**kw):
    sys.exit(3)


def hard_exit(**kw):
    os._exit(0)


def segfault(**kw):
    os.kill(os.getpid(), signal.SIGSEGV)


def hangs(**kw):
    time.sleep(3600)


def huge_output(**kw):
    sys.stdout.write("x" * 20_000_000 + "\n")
    return lstm.run(**kw)


class NotAnException(BaseException):
    pass


def raises_base(**kw):
    raise NotAnException("a BaseException that is not an Exception")


def patches_reference(**kw):
    """Averages db over the batch, and patches the reference in its own process to do the
    same, hoping that the verdict is computed with the patched one."""
    def patched(**k):
        out = original(**k)
        return dict(out, db=out["db"] / k["x"].shape[0])
    original = lstm.run
    lstm.run = patched
    return patched(**kw)


_BUFFERS = {}


def reuses_buffers(**kw):
    """The identity-output LSTM (no output tanh), writing every result into the same arrays
    call after call, as code that preallocates its outputs does."""
    out = lstm.run(**kw, output="identity")
    for k, v in out.items():
        buf = _BUFFERS.get(k)
        if buf is None or buf.shape != v.shape or buf.dtype != v.dtype:
            buf = _BUFFERS[k] = np.empty_like(v)
        buf[...] = v
    return {k: _BUFFERS[k] for k in out}


class Lying:
    """A 'mapping' whose every lookup succeeds and whose keys never end: `k in it` (iteration
    by index) would never stop."""

    def keys(self):
        n = 0
        while True:
            yield n
            n += 1

    def __getitem__(self, key):
        return np.zeros(1)


def lying_mapping(**kw):
    return Lying()


# One misbehaviour per shape of the ci grid's torch-lstm-cell cases, (T, D) -> candidate, so that
# one pytest run meets them all; the last shape gets a correct candidate (the run goes on).
EVERY_WAY = {(1, 1): exits, (1, 3): hard_exit, (5, 1): segfault, (3, 4): hangs, (7, 4): huge_output,
             (6, 5): raises_base, (12, 3): patches_reference, (4, 2): reuses_buffers, (64, 4): lying_mapping,
             (80, 3): lstm.run}


def every_way(**kw):
    return EVERY_WAY[kw["x"].shape[1:]](**kw)
