"""Work split among forked processes, which inherit what this one holds without pickling it.

Only the results travel back, pickled through a pipe. `multiprocessing` with the fork start
method rather than `concurrent.futures`: an executor pickles every task and its arguments.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from .errors import CustsiteError, TemplateFailed

log = logging.getLogger(__name__)

# Chunks of the work per process: enough that a process slowed down (by another program on a
# busy machine) leaves its part to the others, few enough that messages stay few; and at most
# MAX_CHUNK items each, so that results come back, and are taken in, as the work goes.
CHUNKS_PER_PROCESS = 12
MAX_CHUNK = 256

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


@contextmanager
def forked() -> Iterator[None]:
    """Python 3.12+ warns when a process with threads forks: here the threads are idle pools
    of numeric libraries (OpenBLAS, after the lifetime fit) or the dev server's, which the
    child never uses; it only runs our own code."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*multi-threaded, use of fork\(\)")
        yield


def start(proc: BaseProcess) -> None:
    """Start a forked process (see forked). What this one has printed is flushed first:
    a process of `multiprocessing` flushes the streams it inherited when it ends, which
    would print it again."""
    _flush()
    with forked():
        proc.start()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def cpu_count() -> int:
    """The cores this process may run on (a container's limit included)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def forked_map(func: Callable[[T], R], items: Sequence[T], jobs: int,
               cost: Callable[[T], int]) -> list[R]:
    """`func` of every item, in order, computed by this process and `jobs - 1` forked ones.
    The items are cut into chunks of about equal `cost`; each process takes the next chunk
    left until none is, so the finish is even whichever process runs slower: this one from
    the front (the first chunk always: it always does its part), the forked ones from the
    back. Forked processes send their results back pickled, and this one takes them in
    between its own chunks: their pickling and its unpickling overlap the work. Results
    made here are not pickled at all: put first the items whose results cost most to send
    for the work they take (many small objects)."""
    ctx = multiprocessing.get_context("fork")
    count = max(jobs * CHUNKS_PER_PROCESS, -(-len(items) // MAX_CHUNK))
    bounds = _chunk_bounds([cost(item) for item in items], count)
    chunks: list[list[Any] | None] = [None] * (len(bounds) - 1)
    # The chunks left are from taken[0] to taken[1]: the first is this process's.
    taken = ctx.Array("i", [1, len(chunks)])
    readers: list[Connection] = []
    workers = []
    inboxes: list[_Inbox] = []
    try:
        for _ in range(jobs - 1):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_map_chunks,
                               args=(func, items, bounds, taken, writer),
                               daemon=True)
            start(proc)
            writer.close()
            readers.append(reader)
            workers.append(proc)
        inboxes = [_Inbox(reader) for reader in readers]  # threads: only once all are forked
        busy = set(range(len(readers)))
        k: int | None = 0
        while k is not None:
            chunks[k] = [func(item) for item in items[bounds[k]:bounds[k + 1]]]
            _take(inboxes, chunks, busy, wait=False)
            k = _next(taken, front=True)
        _take(inboxes, chunks, busy, wait=True)
        results: list[R] = []
        for found in chunks:
            assert found is not None  # each chunk was taken by some process, which sent it
            results.extend(found)
        return results
    finally:
        stop(workers, readers, inboxes)


def _chunk_bounds(costs: list[int], count: int) -> list[int]:
    """Where each of about `count` chunks of equal cost starts, and the end."""
    total = sum(costs)
    bounds, acc = [0], 0
    for i, c in enumerate(costs):
        if acc >= total * len(bounds) / count and i > bounds[-1]:
            bounds.append(i)
        acc += c
    return [*bounds, len(costs)] if costs else [0, 0]


def take_next(taken: Any, *, front: bool, size: int = 1) -> tuple[int, int] | None:
    """The next `size` items (at most) of those left, from the front or from the back, as
    (start, end); None when none is left. `taken`: a shared array of the first item left
    and the end, which every process takes from under its lock."""
    with taken.get_lock():
        first, end = taken[0], taken[1]
        if first >= end:
            return None
        if front:
            taken[0] = min(first + size, end)
            return int(first), int(taken[0])
        taken[1] = max(end - size, first)
        return int(taken[1]), int(end)


def _next(taken: Any, *, front: bool) -> int | None:
    """The chunk to take, from the front or from the back of those left; None when none
    is left."""
    found = take_next(taken, front=front)
    return found[0] if found is not None else None


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


def _take(inboxes: list[_Inbox], chunks: list[list[Any] | None], busy: set[int], *,
          wait: bool) -> None:
    """Take in the chunks the forked processes sent (all of them, until each is done, if
    `wait`)."""
    for k in sorted(busy):
        while (message := inboxes[k].next(wait=wait)) is not None:
            kind, payload = message
            if kind == "chunk":
                index, found = payload
                chunks[index] = found
            elif kind == "done":
                busy.discard(k)
                break
            else:
                raise_reported(kind, payload)


def _map_chunks(func: Callable[[T], R], items: Sequence[T], bounds: list[int], taken: Any,
                out: Connection) -> None:
    with reporting(out):
        while (k := _next(taken, front=False)) is not None:
            out.send(("chunk", (k, [func(item) for item in items[bounds[k]:bounds[k + 1]]])))
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




# How far a forked process whose work is not yet needed gives way to the one it was forked
# from (a nice value): on two cores, the build reading its memos shared one with the process
# levelling the spare and the one checking the cache files, and took a quarter longer.
YIELDING = 10


def give_way() -> None:
    """Let this forked process give way to the one it works beside (see YIELDING)."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(YIELDING)


class Background:
    """Work done by a forked process while this one goes on (where processes cannot be
    forked: done at once, here). Whatever the work raises is only logged: it is work worth
    doing, never what decides the outcome. `wait` before relying on what it made; it
    returns what the work returned (pickled back through a pipe), or None if it failed.
    Nothing of the work is kept here: what it holds is this process's to let go of.

    Work started `telling` is given a function to tell what it found before it is done, as
    often as it has news (see `told`): the levelling of a spare names the live site's files
    long before it has linked them."""

    def __init__(self, work: Callable[..., object], *, here: bool = False,
                 telling: bool = False) -> None:
        """`here`: do it at once in this process (small work: forking a large process, and
        copying each page either process writes while both run, costs more)."""
        self.pid: int | None = None
        self.reader: Connection | None = None
        self.result: object = None
        self.finished = False
        self.news: list[object] = []  # what the work told, in order (see `told`)
        if here or not can_fork():
            self.result = _quietly(partial(work, self.news.append) if telling else work)
            self.finished = True
            return
        reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
        _flush()  # else the child flushes them again
        with forked():
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked process (coverage does not follow it)
            try:
                reader.close()
                # Sent by a thread, in order: a large answer fills the pipe until this
                # process reads it, which may be long after; the work goes on meanwhile.
                outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
                sending = threading.Thread(target=_send_all, args=(writer, outbox))

                def tell(news: object) -> None:
                    if not sending.is_alive():
                        sending.start()
                    outbox.put(news)

                made = _quietly(partial(work, tell) if telling else work)
                if sending.is_alive():
                    outbox.put(_END)
                    sending.join()
                with contextlib.suppress(Exception):
                    writer.send((_MADE, made))
            finally:
                os._exit(0)
        writer.close()
        self.pid, self.reader = pid, reader

    def _receive(self) -> None:
        """Take the next message of the work (waiting for it); its end, if there is none."""
        assert self.reader is not None
        try:
            kind, value = self.reader.recv()
        except Exception:  # ended without an answer: None
            kind, value = _MADE, None
        if kind == _TOLD:
            self.news.append(value)
            return
        self.result, self.finished = value, True
        self.reader.close()
        self.reader = None

    def told(self, k: int = 0) -> object:
        """The k-th news the work told (waiting for it); None if it is done without telling
        that much."""
        while len(self.news) <= k and not self.finished:
            self._receive()
        return self.news[k] if len(self.news) > k else None

    def heard(self, k: int = 0) -> bool:
        """Whether `told(k)` would not wait."""
        return self._received(lambda: len(self.news) > k)

    def _received(self, enough: Callable[[], bool]) -> bool:
        """Take the messages the work already sent until `enough` holds; whether it does, or
        the work is over."""
        while not enough() and not self.finished:
            try:
                if self.reader is None or not self.reader.poll(0):
                    return False
            except (OSError, EOFError):
                return True
            self._receive()
        return True

    def done(self) -> bool:
        """Whether the work is over: `wait` would not wait."""
        return self._received(lambda: False)

    def wait(self) -> object:
        while not self.finished:
            self._receive()
        if self.pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None
        return self.result

    def cancel(self) -> None:
        """Stop the work wherever it is (it must leave nothing that matters half done)."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.wait()
        self.result = None


_TOLD, _MADE = "told", "made"  # the messages of a Background's work: what it told, made
_END = object()  # the end of what the work tells (see Background)


def _send_all(writer: Connection, outbox: queue.SimpleQueue[object]) -> None:
    while (news := outbox.get()) is not _END:
        _quietly(partial(writer.send, (_TOLD, news)))


def _quietly(work: Callable[[], object]) -> object:
    try:
        return work()
    except Exception:
        log.debug("background work failed", exc_info=True)
        return None
