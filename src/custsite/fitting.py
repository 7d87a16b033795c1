"""The lifetime models fitted by a forked process, which imports numpy and scipy while this
one derives the contacts.

Fitting the models takes a fifth of a second at 10,000 buyers, but importing what fits them
(numpy, scipy.special, scipy.optimize) takes two to four fifths more, and both sat in the
middle of deriving, which runs on one core. A build with no models kept from the last one
(a cold build; `stats`, `export`, `diff`) forks a helper before it reads the files: the
helper imports them while the files are read, and once deriving knows the buyers' histories
it fits the models and estimates every buyer, and sends back what the lifetime cache would
keep of them (lifetime.fit and lifetime.estimate fill it): this process then takes the
models and the estimates from that cache, as a later build does, and never imports numpy or
scipy itself.
The output is the same bytes either way (a warm build takes the same kept texts). When the
helper cannot help (no fork, other threads running, a helper that fails or takes too long),
this process fits the models itself, as before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import MutableMapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from .forking import can_fork, start
from .lifetime import History, LifetimeSettings, estimate, fit, fit_key

# How long this process waits for the helper's answer before fitting itself: the fit takes a
# fifth of a second at 10,000 buyers and a few at 100,000; more means something went wrong.
PATIENCE_S = 60.0


class Fitter:
    """A forked helper, waiting to fit the lifetime models (see the module's docstring)."""

    def __init__(self, conn: Connection, proc: BaseProcess) -> None:
        self.conn = conn
        self.proc = proc
        self.asked = False

    @classmethod
    def start(cls) -> Fitter | None:
        """A helper, or None where one cannot run safely: without fork, or with other threads
        running (the dev server's), one of which might hold the lock of a module the helper
        imports at the moment of the fork, which would leave the helper waiting forever."""
        if not can_fork() or threading.active_count() > 1:
            return None
        ctx = multiprocessing.get_context("fork")
        conn, theirs = ctx.Pipe()
        proc = ctx.Process(target=_help, args=(theirs, conn), daemon=True)
        try:
            start(proc)
        except OSError:
            conn.close()
            return None
        finally:
            theirs.close()
        return cls(conn, proc)

    def ask(self, histories: Sequence[History], settings: LifetimeSettings, currency: str,
            cache: MutableMapping[str, str]) -> None:
        """Have the helper fit these histories and estimate every buyer, unless `cache`
        keeps that fit already; `take` the answer."""
        if fit_key(histories, settings, currency) in cache:
            self.close()
            return
        try:
            self.conn.send((list(histories), settings, currency))
            self.asked = True
        except (OSError, ValueError):
            self.close()

    def take(self, cache: MutableMapping[str, str]) -> None:
        """Put in `cache` what the helper was asked to make, as lifetime.fit and
        lifetime.estimate keep it (nothing if it was not asked, or failed: the caller then
        makes it). The helper is done in any case."""
        try:
            if not self.asked or not self.conn.poll(PATIENCE_S):
                return
            made = self.conn.recv()
        except (OSError, EOFError, ValueError):
            return
        finally:
            self.close()
        if isinstance(made, dict):
            cache.update((k, v) for k, v in made.items()
                         if isinstance(k, str) and isinstance(v, str))

    def close(self) -> None:
        """Let the helper go: its answer is taken or not wanted (it may still be importing)."""
        self.conn.close()
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join()


def _help(conn: Connection, ours: Connection) -> None:  # pragma: no cover - the helper
    ours.close()  # the caller's end: once the caller is gone, the pipe is at its end
    # One BLAS thread: the fit is elementwise arithmetic that BLAS never runs, and OpenBLAS
    # otherwise starts a thread per core at import that spin-wait beside the build's own
    # processes (half of the import's CPU time on two cores). Only this helper's environment
    # is changed, and a user's own setting is kept.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    try:
        import numpy  # noqa: F401  # what takes the time, before the histories are known
        from scipy import optimize, special  # noqa: F401

        try:
            histories, settings, currency = conn.recv()
        except EOFError:
            return  # not needed after all
        made: dict[str, str] = {}
        estimate(fit(histories, settings, currency, made), histories, currency, made)
        conn.send(made)
    except Exception:  # the caller fits itself
        with contextlib.suppress(OSError):
            conn.send(None)
    finally:
        conn.close()
