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
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2

from .build import paused_gc, record_changes
from .cache import NoteStore, fit_store
from .config import CONFIG_FILE, Config, load_config, source_date
from .derive import Derived, DeriveMemo, derive
from .errors import Problem, Severity, TemplateFailed
from .gitinfo import Change
from .pages import INTERACTIONS, LIFETIME, PageSpec, customer_path
from .render import Renderer, RowCache, environment, rendered_notes
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


@dataclass
class SiteSnapshot:
    """A complete site in memory; replaced as a whole, never modified in place."""

    files: dict[str, bytes] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()  # errors that stop the site: shown on every page
    epoch: int = 0


def changed_keys(old: Derived, new: Derived) -> set[str] | None:
    """The dependency keys (see PageSpec.deps) whose content differs; None for everything."""
    if old.as_of != new.as_of or old.config != new.config:
        return None
    keys: set[str] = set()
    was, now = old.portfolio.interactions, new.portfolio.interactions
    if was is not now and was != now:
        keys.add(INTERACTIONS)
    if old.lifetime is not new.lifetime:  # fitted again (derive keeps it while it can)
        keys.add(LIFETIME)
    for cid in old.contacts.keys() | new.contacts.keys():
        if old.contacts.get(cid) != new.contacts.get(cid):
            keys.add(cid)
    for oid in old.accounts.keys() | new.accounts.keys():
        before, after = old.accounts.get(oid), new.accounts.get(oid)
        if before != after:
            keys.add(f"org:{oid}")
            if (before and after and before.organization != after.organization) or \
                    not (before and after):
                # Every list shows a contact's organization by name: its rows change too.
                keys.update(before.contacts if before else ())
                keys.update(after.contacts if after else ())
    old_p, new_p = old.portfolio.personas, new.portfolio.personas
    for pid in old_p.keys() | new_p.keys():
        if old_p.get(pid) != new_p.get(pid) or \
                old.persona_matches.get(pid) != new.persona_matches.get(pid):
            keys.add(f"persona:{pid}")
    for sid in old.segments.keys() | new.segments.keys():
        if old.segments.get(sid) != new.segments.get(sid):
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
            return self._rebuild(list(changed) if changed is not None else None)

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
        keys = None if full or self.derived is None else changed_keys(self.derived, derived)
        try:
            files, rendered = self._render(derived, keys)
        except TemplateFailed as exc:
            return self._failed((exc.problem,), parsed, start, full)
        removed = tuple(sorted(set(self.snapshot.files) - set(files)))
        if keys is None and self.notes is not None:
            self.notes.save()  # the next start of the server finds them
        self.derived = derived
        self.snapshot = SiteSnapshot(files, (), self.snapshot.epoch + 1)
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
                keys: set[str] | None) -> tuple[dict[str, bytes], list[str]]:
        self._forget_rows(keys)
        if self.env is None:
            self.env = environment(derived.config)
            self.notes = rendered_notes(derived.config)
        renderer = Renderer(derived, self.rows, self.env, self.notes)
        old = self.snapshot.files if keys is not None else {}
        files: dict[str, bytes] = {}
        rendered: list[str] = []
        deps: dict[str, frozenset[str]] = {}
        everything = keys is None or "*" in keys
        specs = renderer.specs(customers=everything)
        if not everything:
            specs.extend(self._customer_pages(renderer, keys or set(), old, files, deps))
        for spec in specs:
            deps[spec.path] = spec.deps
            if everything or spec.path not in old or (keys and self._shows(spec, keys)):
                for page in renderer.page(spec):
                    files[page.path] = page.content
                rendered.append(spec.path)
            else:
                files[spec.path] = old[spec.path]
                if spec.twin_path:
                    files[spec.twin_path] = old[spec.twin_path]
        if keys is None or keys or not self.assets:
            # The data files hold every contact; photos and theme files are cheap to copy.
            self.assets = {page.path: page.content for page in renderer.assets()}
        files.update(self.assets)
        self.deps = deps
        if files.keys() != old.keys():
            files = dict(sorted(files.items()))
        return files, rendered

    def _customer_pages(self, renderer: Renderer, keys: set[str], old: dict[str, bytes],
                        files: dict[str, bytes], deps: dict[str, frozenset[str]]
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
