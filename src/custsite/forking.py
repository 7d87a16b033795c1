"""Work split among forked processes, which inherit what this one holds without pickling it.

Only the results travel back, pickled through a pipe. `multiprocessing` with the fork start
method rather than `concurrent.futures`: an executor pickles every task and its arguments.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from .errors import CustsiteError, TemplateFailed

# Each forked process's share of the work, against this one's 1: this one also unpickles what
# they send.
FORKED_SHARE = 1.15

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def start(proc: BaseProcess) -> None:
    """Start a forked process. Python 3.12+ warns when a process with threads forks: here the
    threads are idle pools of numeric libraries (OpenBLAS, after the lifetime fit) or the
    dev server's, which the child never uses; it only runs our own code."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*multi-threaded, use of fork\(\)")
        proc.start()


def cpu_count() -> int:
    """The cores this process may run on (a container's limit included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def forked_map(func: Callable[[T], R], items: Sequence[T], jobs: int,
               cost: Callable[[T], int]) -> list[R]:
    """`func` of every item, in order: this process takes the first share of the items and
    `jobs - 1` forked processes the others, whose results come back pickled. Shares are
    split by `cost`, a forked process's a little smaller: it also pickles what it made."""
    ctx = multiprocessing.get_context("fork")
    weights = [1.0] + [FORKED_SHARE] * (jobs - 1)
    costs = [cost(item) for item in items]
    total = sum(costs)
    # Share k ends where the running cost reaches the first k+1 weights' part of the total.
    ends = [total * sum(weights[:k + 1]) / sum(weights) for k in range(len(weights) - 1)]
    bounds, acc = [0], 0
    for i, c in enumerate(costs):
        while len(bounds) < len(weights) and acc >= ends[len(bounds) - 1]:
            bounds.append(i)
        acc += c
    bounds += [len(items)] * (len(weights) + 1 - len(bounds))
    readers: list[Connection] = []
    workers = []
    inboxes: list[_Inbox] = []
    try:
        for k in range(1, len(weights)):
            reader, writer = ctx.Pipe(duplex=False)
            part = items[bounds[k]:bounds[k + 1]]
            proc = ctx.Process(target=_map_part, args=(func, part, writer), daemon=True)
            start(proc)
            writer.close()
            readers.append(reader)
            workers.append(proc)
        inboxes = [_Inbox(reader) for reader in readers]  # threads: only once all are forked
        # This process's share, a batch at a time, taking in what the others sent between
        # batches: their pickling and this process's unpickling overlap the work.
        mine = items[bounds[0]:bounds[1]]
        results: list[R] = []
        theirs: list[list[R]] = [[] for _ in readers]
        busy = set(range(len(readers)))
        for first in range(0, len(mine), BATCH):
            results.extend(func(item) for item in mine[first:first + BATCH])
            _take(inboxes, theirs, busy, wait=False)
        _take(inboxes, theirs, busy, wait=True)
        for found in theirs:
            results.extend(found)
        return results
    finally:
        stop(workers, readers, inboxes)


BATCH = 256  # items between sending (forked processes) or taking in (this one) results


class _Inbox:
    """One forked process's messages, read from its pipe by a thread as they come.

    A pipe holds 64 KiB: read only between this process's own batches, a forked process
    spent a third of its time waiting to send. The thread only reads bytes (the read lets go
    of the interpreter lock); this process unpickles them when it takes them in."""

    def __init__(self, reader: Connection) -> None:
        self.reader = reader
        self.messages: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        try:
            while True:
                self.messages.put(self.reader.recv_bytes())
        except (EOFError, OSError):
            pass  # the process ended (or this one closed the pipe)
        finally:
            self.messages.put(None)  # whatever ended the reading: never waited on forever

    def next(self, *, wait: bool) -> tuple[str, Any] | None:
        """The next message; None when none is waiting (and not `wait`)."""
        try:
            data = self.messages.get(block=wait)
        except queue.Empty:
            return None
        if data is None:
            raise CustsiteError("a reading process ended unexpectedly")
        kind, payload = pickle.loads(data)
        return kind, payload


def _take(inboxes: list[_Inbox], theirs: list[list[R]], busy: set[int], *,
          wait: bool) -> None:
    """Take in the batches the forked processes sent (all of them, until each is done, if
    `wait`)."""
    for k in sorted(busy):
        while (message := inboxes[k].next(wait=wait)) is not None:
            kind, payload = message
            if kind == "part":
                theirs[k].extend(payload)
            elif kind == "done":
                busy.discard(k)
                break
            else:
                raise_reported(kind, payload)


def _map_part(func: Callable[[T], R], part: Sequence[T], out: Connection) -> None:
    with reporting(out):
        for first in range(0, len(part), BATCH):
            out.send(("part", [func(item) for item in part[first:first + BATCH]]))
        out.send(("done", None))


@contextmanager
def reporting(out: Connection) -> Iterator[None]:
    """In a forked process: any failure of the work inside goes to the parent, which raises
    it (see raise_reported); the pipe is closed in any case."""
    try:
        yield
    except TemplateFailed as exc:
        out.send(("template", exc.problem))
    except CustsiteError as exc:
        out.send(("custsite", str(exc)))
    except Exception:  # reported to the parent, which raises it
        out.send(("error", traceback.format_exc()))
    finally:
        out.close()


def stop(workers: Sequence[BaseProcess], readers: list[Connection],
         inboxes: Sequence[_Inbox] = ()) -> None:
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
        proc.join()
    for inbox in inboxes:  # its process ended: the pipe is at its end, the thread with it
        inbox.thread.join()
    for reader in readers:
        reader.close()


def raise_reported(kind: str, payload: Any) -> None:
    if kind == "template":
        raise TemplateFailed(payload)
    if kind == "custsite":
        raise CustsiteError(payload)
    raise RuntimeError(f"a rendering process failed:\n{payload}")


