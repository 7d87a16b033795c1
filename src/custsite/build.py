"""The one orchestrator: config → records → checks → derived portfolio → pages → site."""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import gc
import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from .cache import (
    ROW_SHARDS,
    ROWS_FOLDER,
    RecordStore,
    Signature,
    check_ahead,
    fit_store,
    row_file,
)
from .config import CONFIG_FILE, Config, load_config, source_date
from .derive import Derived, derive, memo_key
from .errors import Problem, Severity, ValidationFailed
from .fitting import Fitter
from .forking import Background
from .freshness import (
    Looked,
    code_version,
    forget,
    last_recorded,
    look,
    looked_at,
    nothing_changed,
    remember,
)
from .gitinfo import Change, last_changes
from .memos import BuildMemos, load_memos, memos_path, save_memos, still_kept, verify
from .output import Direct, Level, prune_spares, turn, write_site
from .sources import discover
from .validate import MIN_PARALLEL_FILES, check_dates, load_portfolio

# Set (to a list) by a caller that ends the process right after a command, without tearing
# the interpreter down (the console entry point: see cli.run). What a build or a check made
# is then put here as it ends rather than freed object by object: after an edit at 10,000
# contacts, the build's memos hold the whole portfolio, whose freeing took 30 ms.
LEFT_TO_EXIT: list[object] | None = None


def leave_to_exit(*made: object) -> None:
    """Leave these to the end of the process, when it ends right after (see LEFT_TO_EXIT)."""
    if LEFT_TO_EXIT is not None:
        LEFT_TO_EXIT.extend(made)


@dataclass(frozen=True)
class CheckResult:
    config: Config
    derived: Derived
    problems: list[Problem]
    # What this check made, kept for the next build's (builds only: see memos), where, and
    # what save_memos needs besides.
    memos: BuildMemos | None = field(default=None, compare=False, repr=False)
    memos_path: Path | None = None
    read_since: int = 0  # a time (ns) before any file was read
    # The record store's shards being written (see RecordStore.save): waited for by `check`,
    # or by the build that goes on meanwhile.
    writing: Background | None = field(default=None, compare=False, repr=False)
    memos_kept: bool = False  # the memos on disk stay as they are (see memos.still_kept)

    def failed(self, *, strict: bool = False) -> bool:
        return any(p.severity is Severity.ERROR or strict for p in self.problems)


@dataclass(frozen=True)
class BuildResult:
    output: Path
    files: int
    contacts: int
    as_of: dt.date
    problems: list[Problem]
    fresh: bool = False  # nothing had changed since the last build: nothing was written


def record_changes(config: Config) -> dict[str, Change]:
    """When each record file last changed in git, and by whom (empty without git)."""
    p = config.paths
    return last_changes(config.root, [p.customers, p.organizations, p.interactions, p.personas])


def with_changes(result: CheckResult) -> Derived:
    """The derived portfolio with git's last changes: only what is shown needs them, so
    checking (validate, stats, diff) never runs git."""
    return replace(result.derived, changes=record_changes(result.config))


# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Ask glibc's allocator to keep what a build frees for what it allocates next. By
    default it hands every freed block over 128 KB back to the system (a list page of
    10,000 rows is megabytes, made three times over: joined, rendered, encoded), and the next
    one is faulted in again page by page: after an edit at 10,000 contacts, 24,000 of a
    build's 170,000 page faults and a thirtieth of its time (a cold build's processes save
    more). A build is a short process: its peak memory grows by a twentieth. Elsewhere than
    glibc, nothing happens."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl has no mallopt
        return
    mallopt(M_TRIM_THRESHOLD, 512 << 20)
    mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest: up to it, blocks come from the heap


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a build allocates millions of objects that
    all stay alive (its passes cost a third of a cold build); reference counting still frees
    what is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # What was made survives: moved to the oldest generation in one step (freeze,
            # unfreeze), where the first collection afterwards would visit all of it.
            gc.freeze()
            gc.unfreeze()
            gc.enable()


@contextmanager
def frozen_gc() -> Iterator[None]:
    """Collect only what is made from here on. The portfolio made before stays out of the
    collector's passes (which would cost seconds, and in forked rendering processes would copy
    every page of memory they touch), while the garbage of rendering (Jinja's contexts hold
    reference cycles: hundreds of megabytes in a large build) is still collected."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.enable()
    try:
        yield
    finally:
        if not was_enabled:
            gc.disable()
        gc.unfreeze()


def conversion_key(config: Config) -> str:
    """What converted records depend on besides their files: custsite's code and
    custsite.yaml."""
    config_file = config.root / CONFIG_FILE
    return hashlib.sha256(repr((code_version(), sys.version_info[:2], config_file.read_bytes()
                                if config_file.is_file() else b"")).encode()).hexdigest()


def cache_files(config: Config) -> list[Path]:
    """The signed files of the cache folder a build reads whole, in the order it reads them
    (see cache.check_ahead): the memos, the kept rows. (Of the record store, a build reads
    the few shards it looks files up in.)"""
    cache = config.root / config.paths.cache
    return [memos_path(config, conversion_key(config)),
            *(row_file(cache / ROWS_FOLDER, k) for k in range(ROW_SHARDS))]


def record_store(config: Config, *, keeping: bool = True) -> RecordStore:
    """The converted record files of the last build. Not `keeping`: read only."""
    return RecordStore(config.root / config.paths.cache, conversion_key(config),
                       keeping=keeping)


SPARE_PREFIX = "site-"


def spare_site(config: Config, out: Path) -> Path:
    """Where the site before the last one waits to become the next (see output), for this
    output folder."""
    name = hashlib.blake2b(str(out.resolve()).encode(), digest_size=6).hexdigest()
    return config.root / config.paths.cache / f"{SPARE_PREFIX}{name}"


def check(root: Path, *, as_of: dt.date | None = None, cache: bool = False,
          jobs: int | None = None, problems_only: bool = False) -> CheckResult:
    """Load, validate and derive the portfolio under `root`; every problem, sorted. What the
    cache folder holds is used in any case; with `cache` (builds), the converted record files
    and new lifetime fits are kept there, whether or not the records hold errors
    (`validate` writes nothing). Many files are read by `jobs` processes (default: one per
    core). With `problems_only`, the derived portfolio holds only what problems need (see
    derive)."""
    with paused_gc():
        result = _check(root, as_of, cache, jobs, problems_only)
    if result.writing is not None:
        result.writing.wait()
    return replace(result, writing=None)


def _check(root: Path, as_of: dt.date | None, cache: bool, jobs: int | None,
           problems_only: bool = False, seen: dict[str, Signature] | None = None,
           memos_saved: bool = False, read: BuildMemos | None = None) -> CheckResult:
    """See `check`. `memos_saved`: the caller (a build) writes the memos returned, unless
    they are to stay as they are (`memos_kept`). `read`: the memos, if the caller read them
    already."""
    problems: list[Problem] = []
    config = load_config(root, problems)
    day = source_date(as_of, config.as_of)
    read_since = time.time_ns()  # every file is read after this
    store = record_store(config, keeping=cache)
    sources = discover(config, problems)
    # The last build's memos hold the files it read (see memos), for `validate` too; builds
    # start from what it derived, `validate` from nothing. The memos' path holds the key the
    # records were converted with: the same custsite.yaml.
    path = memos_path(config, store.key)
    found = read if read is not None else load_memos(path)
    memos = found if cache else None
    before = dict(found.files)  # as the memos kept have them
    if before:
        verify(found, sources, config, seen)  # what is left is as its file: not read again
    # Without kept models, a helper imports what fits them while the files are read, and
    # fits them once deriving has the buyers' histories (see fitting). Not for a portfolio
    # read by one process: too few buyers to fit, often, and nothing to overlap with.
    fitter = Fitter.start() if not problems_only and len(sources) >= MIN_PARALLEL_FILES and \
        (memos is None or memos.derived.lifetime is None) else None
    try:
        portfolio = load_portfolio(config, problems, sources=sources, jobs=jobs, store=store,
                                   cache=found.files, earlier=before,
                                   memo=memos.assembled if memos else None,
                                   changed=set() if before else None)
        kept = memos is not None and still_kept(before, memos, memo_key(config, day))
        # What was converted goes to the store, unless the memos written hold it.
        if kept or not memos_saved:
            store.retain({rel: made.digest for rel, made in found.files.items()})
        writing = store.save(changes=kept or not memos_saved)
        del before, found, store  # before deriving (a forked process writes the shards)
        check_dates(portfolio, day, config.context(problems))
        fits = fit_store(config)
        derived = derive(portfolio, day, memos.derived if memos else None, fits=fits,
                         problems_only=problems_only, fitter=fitter)
    finally:
        if fitter is not None:
            fitter.close()
    if cache:
        fits.save()
    problems.extend(derived.problems)
    return CheckResult(config, derived, sorted(problems, key=Problem.sort_key), memos,
                       path if cache else None, read_since, writing, kept)


def build(root: Path, *, as_of: dt.date | None = None, strict: bool = False,
          output: Path | None = None, jobs: int | None = None) -> BuildResult:
    """Validate, then write the site, rendered by `jobs` processes (default: one per core);
    on any error nothing is written. When nothing the site is made from changed since the
    last build of the same folder, nothing is done (see freshness)."""
    keep_freed_memory()
    config_problems: list[Problem] = []
    config = load_config(root, config_problems)
    day = source_date(as_of, config.as_of)
    out = output if output is not None else root / config.paths.output
    # The portfolio stays alive to the end: nothing for the collector. The site's turn is
    # this build's from here (see output.turn).
    with paused_gc(), turn(out.parent) if out.parent.is_dir() else contextlib.nullcontext():
        # A forked process looks at every file the site is made from and tells whether any
        # changed (see freshness), then levels the spare with the live site (see Level);
        # this one reads the last build's memos meanwhile, and stops if nothing changed.
        # The cache files it reads are checked by another forked process (see check_ahead).
        # Both are forked while this one is small.
        planned = Level.plan(out, spare_site(config, out))
        looking = Background(partial(look, config, day, out, planned, os.getpid(),
                                     again=bool(config_problems)), telling=True)
        levelled = Level(*planned, looking, told_as=1) if planned is not None else None
        try:
            checked = cache_files(config)  # the memos first
            with check_ahead(checked):
                read: list[object] = []
                memos = load_memos(checked[0],
                                   stop=partial(nothing_changed, looking, config_problems),
                                   read=read)
                if not memos.files and not last_recorded(config):
                    # Nothing recorded to be the same as (a cold build): no need to wait
                    # for the looking process, whose fingerprint is needed only at the end.
                    return _build(root, config, day, out,
                                  partial(looked_at, looking, config, day, out), as_of, strict,
                                  jobs, {}, levelled, memos)
                stamp, seen, last = looked_at(looking, config, day, out)
                if last is not None and not config_problems:
                    leave_to_exit(read)
                    problems = list(last.problems)
                    if any(p.severity is Severity.ERROR or strict for p in problems):
                        raise ValidationFailed(problems)
                    return BuildResult(out, last.files, last.contacts, day, problems,
                                       fresh=True)
                read.clear()  # what the memos still hold of it stays
                return _build(root, config, day, out, lambda: (stamp, seen, last), as_of,
                              strict, jobs, seen, levelled, memos)
        finally:
            looking.cancel()  # done, or stopped: a failed build writes nothing


def _hashed(derived: Derived, memos: BuildMemos) -> dict[str, str]:
    """The hashes of the pages (see reuse.page_hashes) and the dashboard's figures, into
    the memos about to be written; the hashes."""
    from .render import kept_figures
    from .reuse import page_hashes

    hashes = page_hashes(derived, memos.pages)
    memos.figures = kept_figures(None, derived)
    return hashes


def _build(root: Path, config: Config, day: dt.date, out: Path, looked: Callable[[], Looked],
           as_of: dt.date | None, strict: bool, jobs: int | None,
           seen: dict[str, Signature], levelled: Level | None,
           read: BuildMemos) -> BuildResult:
    """See `build`: `looked`, what the looking process told (see freshness.look), asked for at the
    end; `seen`, the signatures it took, if known by then."""
    # Rendering is imported only by builds that render: `validate` and builds with nothing
    # to do start faster without Jinja and Markdown.
    from .parallel import render_pages
    from .render import CompiledTemplates, kept_figures, rendered_notes
    from .reuse import RowStore, none_reusable, page_hashes, remember_pages, reusable

    result = _check(root, as_of, True, jobs, seen=seen, memos_saved=True, read=read)
    memos = result.memos
    saving: Background | None = None
    writing = result.writing
    try:
        failed = result.failed(strict=strict)
        derived = result.derived if failed else with_changes(result)  # git: for pages only
        saved = memos is not None and result.memos_path is not None and not result.memos_kept
        # When no page can be kept (a cold build), the pages' hashes and the dashboard's
        # figures are needed only for the next build: the process writing the memos makes
        # them (a second of a cold build, off its path), the dashboard its own figures.
        later = saved and not failed and none_reusable(config)
        hashes = {} if failed or later else page_hashes(derived,
                                                        memos.pages if memos else None)
        figures = None if failed or later else kept_figures(memos.figures if memos else None,
                                                            derived)
        if saved:
            assert memos is not None and result.memos_path is not None
            # Written while this build renders (or reports its errors).
            memos.figures = figures
            if failed:
                memos.pages = {}
            saving = save_memos(result.memos_path, memos, result.read_since,
                                partial(_hashed, derived) if later else None)
            memos = None
        if failed:
            raise ValidationFailed(result.problems)
        notes = rendered_notes(result.config)
        # What the live site holds, not waiting for the spare (see output._while_levelling).
        keep = reusable(derived, hashes, out, levelled.live_listing() if levelled else None)
        kept_rows = RowStore(derived, hashes)
        rows = kept_rows.cache()
        rows.figures = figures
        contacts, problems = len(derived.contacts), result.problems
        forget(config)  # a build killed after the swap must not leave a stale record behind
        compiled = CompiledTemplates(root / config.paths.cache, code_version())
        direct = Direct()  # a cold build's pages are written by the processes rendering them
        pages = render_pages(derived, notes, jobs, keep, rows, compiled, direct)
        # From here on, only the rendering holds the portfolio: rendered in other processes, it
        # is freed here (a third of the largest process's memory), unless its pages' hashes
        # are still to come.
        hashing: Derived | None = derived if later else None
        del derived, result
        with frozen_gc():  # pages are written as they are rendered: the site is never all in memory
            spare = spare_site(config, out)
            count = write_site(pages, out, root=root, spare=spare, direct=direct,
                               levelled=levelled)
        prune_spares(spare.parent, SPARE_PREFIX, keep=spare)
        compiled.prune()
        if hashing is not None:
            assert saving is not None
            made = saving.wait()  # the hashes, made by the process writing the memos
            hashes = made if isinstance(made, dict) else page_hashes(hashing, None)
            kept_rows.hashed(hashing, hashes)
        remember_pages(config, hashes, out)
        kept_rows.save(rows)
        notes.save()
        remember(config, looked()[0], out, count, contacts, problems)
    finally:
        for work in (saving, writing):
            if work is not None:
                work.wait()  # the next build finds the memos and the records complete
    leave_to_exit(memos, kept_rows, rows, hashing)  # the portfolio, when the memos are kept
    return BuildResult(out, count, contacts, day, problems)
