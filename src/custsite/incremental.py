"""Rebuilding only what changed, for the dev server.

A `Session` keeps, between builds, the parsed files (by file signature), the last derived
portfolio and the rendered pages with what each one shows. After an edit it re-reads only the
changed files, derives the portfolio again (stages and segments can move anywhere), compares
it with the previous one, and re-renders only the pages that show something that changed.
A changed template or custsite.yaml starts from scratch.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import jinja2

from .build import paused_gc, record_changes
from .cache import NoteStore, fit_store
from .config import CONFIG_FILE, Config, load_config, source_date
from .derive import Derived, DeriveMemo, derive
from .errors import Problem, Severity, TemplateFailed
from .gitinfo import Change
from .output import Page
from .pages import CONTACTS, INTERACTIONS, LIFETIME, PageSpec, customer_path
from .render import DATA_FILES, Renderer, RowCache, environment, rendered_notes
from .sources import Sources, discover, rediscover
from .validate import AssembleMemo, FileCache, check_dates, load_portfolio, signature


@dataclass(frozen=True)
class BuildReport:
    """What a rebuild did: which files it parsed and which pages it rendered."""

    epoch: int
    ok: bool
    parsed: tuple[str, ...]
    rendered: tuple[str, ...]
    removed: tuple[str, ...]
    seconds: float
    full: bool
    problems: tuple[Problem, ...] = ()
    changed: tuple[str, ...] | None = None  # the paths the rebuild was told of; None: any
    # Seconds until the pages rendered after publishing were done too (see SiteFiles).
    finished: float | None = None


Job = Callable[[], list[Page]]


class SiteFiles(Mapping[str, bytes]):
    """The files of one build of the site, in memory, some of them possibly still to be
    rendered.

    After an edit the dev server renders the pages of the contacts that changed at once and
    publishes the site; the other pages that changed (lists of thousands of rows, the
    dashboard, the data files) are rendered right after, or first when a request asks for one
    (Hugo's "fast render mode" works this way). A request therefore always gets the page of
    the latest build, never the one before it, and the saved page is served without waiting
    for the lists it also appears in. A job that fails leaves the page as it was and reports
    the problem (`on_error`), which replaces the site by the error page.
    """

    def __init__(self, files: dict[str, bytes | Job] | None = None,
                 previous: Mapping[str, bytes] | None = None,
                 on_error: Callable[[Problem], None] | None = None) -> None:
        self._files = files if files is not None else {}
        self._previous = previous or {}
        self._on_error = on_error
        self._lock = threading.Lock()

    def __getitem__(self, path: str) -> bytes:
        value = self._files[path]
        if isinstance(value, bytes):
            return value
        with self._lock:
            self._run(path)
            found = self._files[path]
            assert isinstance(found, bytes)
            return found

    def __contains__(self, path: object) -> bool:
        return path in self._files  # without rendering it

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def pending(self) -> int:
        return sum(1 for v in self._files.values() if not isinstance(v, bytes))

    def finish(self) -> None:
        """Render every page still waiting."""
        for path in [p for p, v in self._files.items() if not isinstance(v, bytes)]:
            with self._lock:
                self._run(path)
        self._previous = {}  # no longer needed: builds must not keep each other alive

    def _run(self, path: str) -> None:
        job = self._files[path]
        if isinstance(job, bytes):
            return  # done meanwhile, for another request or with another path of its job
        try:
            pages = job()
        except TemplateFailed as exc:
            for p, v in self._files.items():  # nothing more is rendered for this build
                if not isinstance(v, bytes):
                    self._files[p] = self._previous.get(p, b"")
            if self._on_error is not None:
                self._on_error(exc.problem)
            return
        for page in pages:
            self._files[page.path] = page.content


@dataclass
class SiteSnapshot:
    """A complete site in memory; replaced as a whole, never modified in place (but for its
    pages rendered later, see SiteFiles)."""

    files: SiteFiles = field(default_factory=SiteFiles)
    problems: tuple[Problem, ...] = ()  # errors that stop the site: shown on every page
    epoch: int = 0


def _differ(a: object, b: object) -> bool:
    """Not the very same object and not equal: most are the same after an edit, and a
    dataclass compares all its fields even with itself."""
    return a is not b and a != b


def changed_keys(old: Derived, new: Derived) -> set[str] | None:
    """The dependency keys (see PageSpec.deps) whose content differs; None for everything."""
    if old.as_of != new.as_of or old.config != new.config:
        return None
    keys: set[str] = set()
    if _differ(old.portfolio.interactions, new.portfolio.interactions):
        keys.add(INTERACTIONS)
    if old.lifetime is not new.lifetime:  # fitted again (derive keeps it while it can)
        keys.add(LIFETIME)
    if len(old.contacts) != len(new.contacts):
        keys.add(CONTACTS)
    was, now = old.contacts, new.contacts
    keys.update(cid for cid in was.keys() | now.keys() if _differ(was.get(cid), now.get(cid)))
    for oid in old.accounts.keys() | new.accounts.keys():
        before, after = old.accounts.get(oid), new.accounts.get(oid)
        if _differ(before, after):
            keys.add(f"org:{oid}")
            if (before and after and before.organization != after.organization) or \
                    not (before and after):
                # Every list shows a contact's organization by name: its rows change too.
                keys.update(before.contacts if before else ())
                keys.update(after.contacts if after else ())
    old_p, new_p = old.portfolio.personas, new.portfolio.personas
    for pid in old_p.keys() | new_p.keys():
        if _differ(old_p.get(pid), new_p.get(pid)) or \
                old.persona_matches.get(pid) != new.persona_matches.get(pid):
            keys.add(f"persona:{pid}")
    for sid in old.segments.keys() | new.segments.keys():
        if _differ(old.segments.get(sid), new.segments.get(sid)):
            keys.add(f"segment:{sid}")
    return keys


def touched(sources: Sources, changed: list[str] | None) -> set[str] | None:
    """The record files to look at again: those changed and those inside changed folders."""
    if changed is None:
        return None
    inside = tuple(p + "/" for p in changed)
    return set(changed) | {s.rel for s in sources.files if s.rel.startswith(inside)}


class Session:
    """The state the dev server keeps between builds of one portfolio."""

    def __init__(self, root: Path, *, as_of: dt.date | None = None) -> None:
        self.root = root
        self.as_of = as_of
        self.cache: FileCache = {}
        self.derived: Derived | None = None
        self.deps: dict[str, frozenset[str]] = {}
        self.assets: dict[str, bytes] = {}
        self.rows = RowCache()
        self.env: jinja2.Environment | None = None
        self.notes: NoteStore | None = None
        self.memo = DeriveMemo()
        self.assembled = AssembleMemo()
        self.sources: Sources | None = None
        self.changes: dict[str, Change] = {}
        self.snapshot = SiteSnapshot()
        self.stale = False  # a page rendered late failed: the next build renders every page
        self.lock = threading.Lock()  # one build at a time

    def needs_full(self, changed: Iterable[str] | None) -> bool:
        """Whether a rebuild for these changed paths starts from scratch."""
        if changed is None or self.derived is None:
            return True
        paths = self.derived.config.paths
        templates = paths.templates.rstrip("/") + "/"
        personas = paths.personas.rstrip("/") + "/"
        # A template, the config or a persona's photo: anything may show it.
        return any(p == CONFIG_FILE or (p + "/").startswith(templates)
                   or (p.startswith(personas) and not p.endswith(".md")) for p in changed)

    def rebuild(self, changed: Iterable[str] | None = None) -> BuildReport:
        """Build again; `changed` lists the paths (relative to the root) that were modified,
        created or deleted, or None when anything may have changed."""
        with self.lock, paused_gc():
            self.snapshot.files.finish()  # the last build's late pages, with its renderer
            return self._rebuild(list(changed) if changed is not None else None)

    def finish(self) -> BuildReport | None:
        """Render the pages the last rebuild left for later (see SiteFiles); a report of the
        failure when one of them cannot be rendered."""
        with self.lock, paused_gc():
            epoch = self.snapshot.epoch
            self.snapshot.files.finish()
            if self.snapshot.epoch == epoch:
                return None
            return BuildReport(self.snapshot.epoch, False, (), (), (), 0.0, False,
                               self.snapshot.problems)

    def _late_failure(self, found: Problem) -> None:
        """A page rendered after the site was published failed: every page shows the
        problem, as for any template error, and the next build renders every page again."""
        self.stale = True
        self.snapshot = SiteSnapshot(self.snapshot.files, (found,), self.snapshot.epoch + 1)

    def _unchanged(self, rel: str) -> bool:
        """The file is as the last build read it (editors often signal a save twice)."""
        cached = self.cache.get(rel)
        path = self.root / rel
        if cached is None:
            # Gone, and it was neither read nor reported (a hidden record is only reported).
            reported = self.sources is not None and any(
                p.location.path == rel for p in self.sources.problems)
            return not path.exists() and not reported and \
                not any(k.startswith(rel + "/") for k in self.cache)
        return cached.signature == signature(path)

    def _rebuild(self, changed: list[str] | None) -> BuildReport:
        start = time.perf_counter()
        full = self.needs_full(changed)
        if changed is not None and not full and not self.snapshot.problems and \
                all(self._unchanged(p) for p in changed):
            return BuildReport(self.snapshot.epoch, True, (), (), (),
                               time.perf_counter() - start, False)
        if full:
            self.cache.clear()
            self.memo = DeriveMemo()
            self.assembled = AssembleMemo()
            self.env = None
        problems: list[Problem] = []
        parsed: list[str] = []
        config = load_config(self.root, problems)
        day = source_date(self.as_of, config.as_of)
        sources = self._sources(config, None if full else changed)
        problems.extend(sources.problems)
        portfolio = load_portfolio(config, problems, cache=self.cache, parsed=parsed,
                                   sources=sources.files, memo=self.assembled,
                                   changed=None if full else touched(sources, changed))
        check_dates(portfolio, day, config.context(problems))
        if full or self.derived is None:
            self.changes = record_changes(config)  # git history moves with commits, not saves
        fits = fit_store(config) if full else None  # later fits stay in self.memo
        derived = replace(derive(portfolio, day, self.memo, fits=fits), changes=self.changes)
        if fits is not None:
            fits.save()
        problems.extend(derived.problems)
        problems.sort(key=Problem.sort_key)
        errors = tuple(p for p in problems if p.severity is Severity.ERROR)
        if errors:
            return self._failed(errors, parsed, start, full)
        keys = None if full or self.derived is None or self.stale else \
            changed_keys(self.derived, derived)
        try:
            files, rendered = self._render(derived, keys)
        except TemplateFailed as exc:
            return self._failed((exc.problem,), parsed, start, full)
        removed = tuple(sorted(set(self.snapshot.files) - set(files)))
        if keys is None and self.notes is not None:
            self.notes.save()  # the next start of the server finds them
        self.derived = derived
        self.stale = False
        self.snapshot = SiteSnapshot(SiteFiles(files, self.snapshot.files, self._late_failure),
                                     (), self.snapshot.epoch + 1)
        return BuildReport(self.snapshot.epoch, True, tuple(parsed), tuple(rendered), removed,
                           time.perf_counter() - start, keys is None, tuple(problems),
                           None if changed is None else tuple(changed))

    def _sources(self, config: Config, changed: list[str] | None) -> Sources:
        """The record files: found again only where the watcher saw a change."""
        found = None
        if changed is not None and self.sources is not None:
            found = rediscover(config, self.sources, changed)
        if found is None:
            problems: list[Problem] = []
            found = Sources(discover(config, problems), problems)
        self.sources = found
        return found

    def _forget_rows(self, keys: set[str] | None) -> None:
        """Drop the cached rows of contacts that changed (an organization's new name counts:
        `changed_keys` lists its contacts then)."""
        if keys is None:
            self.rows.clear()
        else:
            self.rows.forget({k for k in keys if ":" not in k})

    def _render(self, derived: Derived,
                keys: set[str] | None) -> tuple[dict[str, bytes | Job], list[str]]:
        """The files of the new site. After an edit, the pages of the contacts that changed
        are rendered now and the other changed pages are left as jobs (see SiteFiles)."""
        self._forget_rows(keys)
        if self.env is None:
            self.env = environment(derived.config)
            self.notes = rendered_notes(derived.config)
        renderer = Renderer(derived, self.rows, self.env, self.notes)
        old = self.snapshot.files if keys is not None else {}
        files: dict[str, bytes | Job] = {}
        rendered: list[str] = []
        deps: dict[str, frozenset[str]] = {}
        everything = keys is None or "*" in keys
        if not everything:
            for spec in self._customer_pages(renderer, keys or set(), old, files, deps):
                deps[spec.path] = spec.deps
                for page in renderer.page(spec):
                    files[page.path] = page.content
                rendered.append(spec.path)
        for spec in renderer.specs(customers=everything):
            deps[spec.path] = spec.deps
            if everything:
                for page in renderer.page(spec):
                    files[page.path] = page.content
            elif spec.path not in old or (keys and self._shows(spec, keys)):
                job = partial(renderer.page, spec)
                files[spec.path] = job
                if spec.twin_path:
                    files[spec.twin_path] = job
            else:
                files[spec.path] = old[spec.path]
                if spec.twin_path:
                    files[spec.twin_path] = old[spec.twin_path]
                continue
            rendered.append(spec.path)
        if keys is None or keys or not self.assets:
            # Photos and theme files are cheap to copy; the data files hold every contact.
            self.assets = {page.path: page.content for page in renderer.static_files()}
            make_data: Job = renderer.data_files  # one job makes both files
            for path in DATA_FILES:
                files[path] = make_data
        else:
            for path in DATA_FILES:
                files[path] = old[path]
        files.update(self.assets)
        self.deps = deps
        if files.keys() != old.keys():
            files = dict(sorted(files.items()))
        return files, rendered

    def _customer_pages(self, renderer: Renderer, keys: set[str], old: Mapping[str, bytes],
                        files: dict[str, bytes | Job], deps: dict[str, frozenset[str]]
                        ) -> list[PageSpec]:
        """The pages of the customers that changed or show something that did; the others
        are copied as they were, without making their page specs (a contact that did not
        change shows the same records as before)."""
        out = []
        for cid, contact in renderer.derived.contacts.items():
            path = customer_path(cid)
            before = self.deps.get(path)
            if before is None or path not in old or cid in keys or not keys.isdisjoint(before):
                out.append(renderer.customer_page(contact))
            else:
                files[path] = old[path]
                deps[path] = before
        return out

    def _shows(self, spec: PageSpec, keys: set[str]) -> bool:
        """The page shows, or showed at the last build, something that changed."""
        before = self.deps.get(spec.path, frozenset())
        return "*" in spec.deps or "*" in before or not keys.isdisjoint(spec.deps) or \
            not keys.isdisjoint(before)

    def _failed(self, errors: tuple[Problem, ...], parsed: list[str], start: float,
                full: bool) -> BuildReport:
        # Keep the last good pages: the next good save only re-renders what changed since.
        self.snapshot = SiteSnapshot(self.snapshot.files, errors, self.snapshot.epoch + 1)
        return BuildReport(self.snapshot.epoch, False, tuple(parsed), (), (),
                           time.perf_counter() - start, full, errors)
