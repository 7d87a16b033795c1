"""Rendering the pages of a build on every core.

Rendering is most of a cold build (Markdown notes above all) and each page depends only on
the derived portfolio, so after derivation the build forks worker processes that inherit it
as it is in memory (see forking): nothing of the portfolio is pickled. Workers take pages
in chunks from a shared counter (the first worker from the costly list pages on, the others
from the contacts' pages at the other end, until they meet: see _work), render them and
send the bytes back through a pipe; the parent writes them as they come (see
output.write_site), so no process ever holds the whole site. Into a new folder with no
previous site to link from (a cold build), the workers write their pages themselves and
send only their paths (see output.Direct). The notes a worker rendered go back to the
parent for the notes cache. A page is the same bytes whichever process renders it. The
build freezes the collector's view of what existed before (build.frozen_gc): a child's
collections never touch, hence never copy, the memory it inherited.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from .cache import NoteStore
from .derive import Derived
from .errors import CustsiteError
from .forking import can_fork, cpu_count, raise_reported, reporting, start, stop, take_next
from .output import Direct, KeptPages, Page, write_new
from .pages import PageSpec, customer_path
from .render import CompiledTemplates, Renderer, RowCache, environment

# Below this many pages, starting processes costs more than it saves; a list page counts as
# LIST_PAGE_COST contacts' pages (after an edit, most pages left to render are lists).
MIN_PARALLEL_PAGES = 2_000
LIST_PAGE_COST = 10
CHUNK = 64  # pages a worker takes at a time: few messages, yet an even finish
FLUSH_BYTES = 1 << 20  # a worker sends what it made once this much is waiting


def _order(specs: list[PageSpec]) -> list[PageSpec]:
    """List pages first: each is slow, and one left for the end would leave a core idle."""
    return sorted(specs, key=lambda s: s.template == "customer.html")


def render_pages(derived: Derived, notes: NoteStore | None = None, jobs: int | None = None,
                 keep: frozenset[str] = frozenset(), rows: RowCache | None = None,
                 compiled: CompiledTemplates | None = None,
                 direct: Direct | None = None) -> Iterator[Page | KeptPages]:
    """Every file of the site, in no particular order, rendered by `jobs` processes (default:
    one per core); the pages in `keep` are the previous site's (see reuse). The table rows
    made end up in `rows`, whichever process made them; `compiled` keeps the templates.
    When `direct` has a folder by the time the processes start, they write their pages into
    it themselves and only name them (see output.Direct)."""
    renderer = Renderer(derived, rows, environment(derived.config, compiled, reload=False),
                        notes=notes)
    renderer.csv_columns()  # here, before any fork: kept CSV lines of other columns go
    specs: list[PageSpec] = []
    kept: list[str] = []
    for spec in renderer.specs(customers=False):
        # A list page and its JSON twin are kept together or made together.
        if spec.path in keep and (spec.twin_path is None or spec.twin_path in keep):
            kept.append(spec.path)
            if spec.twin_path is not None:
                kept.append(spec.twin_path)
        else:
            specs.append(spec)
    # A kept page needs no spec, only its path; the others are of the contacts as published
    # (privacy applied: see Renderer).
    for contact in renderer.derived.contacts.values():
        path = customer_path(contact.customer.id)
        if path in keep:
            kept.append(path)
        else:
            specs.append(renderer.customer_page(contact))
    specs = _order(specs)
    if kept:
        yield KeptPages(tuple(kept))
    jobs = cpu_count() if jobs is None else max(1, jobs)
    lists = sum(spec.template != "customer.html" for spec in specs)
    cost = len(specs) + (LIST_PAGE_COST - 1) * lists
    if jobs == 1 or cost < MIN_PARALLEL_PAGES or not can_fork():
        for spec in specs:
            yield from renderer.page(spec)
        yield from renderer.assets()
        return
    cache = renderer.cache
    folder = direct.folder if direct is not None else None
    workers, readers = _start(renderer, specs, notes, jobs, folder)
    # The workers have the portfolio: this process lets it go (the caller holds none of it,
    # see build), and only writes what they send.
    del derived, renderer, specs
    gc.collect()  # the renderer and its Jinja environment refer to each other
    yield from _collect(workers, readers, cache, notes)


def _start(renderer: Renderer, specs: list[PageSpec], notes: NoteStore | None,
           jobs: int, folder: str | None) -> tuple[list[BaseProcess], list[Connection]]:
    global _JOB
    ctx = multiprocessing.get_context("fork")
    taken = ctx.Array("i", [0, len(specs)])  # the specs left: from the first, to the end
    readers: list[Connection] = []
    workers: list[BaseProcess] = []
    # Inherited by the forked workers, and held by nothing here once they started (a
    # Process object keeps its arguments).
    _JOB = (renderer, specs, notes, folder)
    try:
        for k in range(jobs):
            reader, writer = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_work, args=(taken, writer, k == 0), daemon=True)
            start(proc)
            writer.close()
            readers.append(reader)
            workers.append(proc)
    except BaseException:
        stop(workers, readers)
        raise
    finally:
        _JOB = None
    return workers, readers


_JOB: tuple[Renderer, list[PageSpec], NoteStore | None, str | None] | None = None


def _collect(workers: list[BaseProcess], readers: list[Connection], rows: RowCache,
             notes: NoteStore | None) -> Iterator[Page]:
    try:
        busy = list(readers)
        while busy:
            for ready in wait(busy):
                assert isinstance(ready, Connection)
                try:
                    kind, payload = ready.recv()
                except EOFError:
                    raise CustsiteError("a rendering process ended unexpectedly") from None
                if kind == "pages":
                    for path, content in payload:
                        yield Page(path, content)
                elif kind == "written":
                    for path in payload:
                        yield Page(path, b"", written=True)
                elif kind == "made":
                    new_notes, new_rows = payload
                    if notes is not None:
                        notes.merge(*new_notes)
                    rows.take(new_rows)
                elif kind == "done":
                    busy.remove(ready)
                else:
                    raise_reported(kind, payload)
    finally:
        stop(workers, readers)


def _chunk(renderer: Renderer, specs: list[PageSpec], *, with_assets: bool) -> Iterator[Page]:
    for spec in specs:
        yield from renderer.page(spec)
    if with_assets:
        yield from renderer.assets()  # the data files and copies, once


def _work(taken: Any, out: Connection, front: bool) -> None:
    """A worker: take chunks until none is left, send their pages (or, with a folder to
    write them in, their paths) and what each added to the caches (notes, rows). The first
    worker takes them from the front (the list pages, the data files), the others from the
    back (contacts' pages): the rows, data records and CSV lines of 10,000 contacts that
    the lists are made of are each made once, by the worker holding them, rather than in
    every worker that renders a list (half a second of a cold build's CPU)."""
    assert _JOB is not None
    renderer, specs, notes, folder = _JOB
    mark = len(notes.order) if notes is not None else 0  # notes sent: the first `mark`
    with reporting(out):
        while (chunk := take_next(taken, front=front, size=CHUNK)) is not None:
            first, end = chunk
            made: list[tuple[str, bytes]] = []
            written: list[str] = []
            size = 0
            for page in _chunk(renderer, specs[first:end], with_assets=first == 0):
                if folder is not None:
                    written.append(write_new(folder, page.path, page.content))
                    continue
                made.append((page.path, page.content))
                size += len(page.content)
                if size >= FLUSH_BYTES:  # list pages are large: never many held at once
                    out.send(("pages", made))
                    made, size = [], 0
            if made:
                out.send(("pages", made))
            if written:
                out.send(("written", written))
            # What this chunk added to the caches goes now, not all at the end.
            new_notes = notes.since(mark) if notes is not None else ({}, [])
            mark = len(notes.order) if notes is not None else 0
            out.send(("made", (new_notes, renderer.made)))
            renderer.made = []
        out.send(("done", None))
