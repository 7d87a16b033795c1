"""The one orchestrator: config → records → checks → derived portfolio → pages → site."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .cache import fit_store, note_store
from .config import Config, load_config, source_date
from .derive import Derived, derive
from .errors import Problem, Severity, ValidationFailed
from .gitinfo import Change, last_changes
from .output import write_site
from .render import markdown_to_html, notes_version, render_site
from .validate import check_dates, load_portfolio


@dataclass(frozen=True)
class CheckResult:
    config: Config
    derived: Derived
    problems: list[Problem]

    def failed(self, *, strict: bool = False) -> bool:
        return any(p.severity is Severity.ERROR or strict for p in self.problems)


@dataclass(frozen=True)
class BuildResult:
    check: CheckResult
    output: Path
    files: int


def record_changes(config: Config) -> dict[str, Change]:
    """When each record file last changed in git, and by whom (empty without git)."""
    p = config.paths
    return last_changes(config.root, [p.customers, p.organizations, p.interactions, p.personas])


def with_changes(result: CheckResult) -> Derived:
    """The derived portfolio with git's last changes: only what is shown needs them, so
    checking (validate, stats, diff) never runs git."""
    return replace(result.derived, changes=record_changes(result.config))


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
            gc.enable()


def check(root: Path, *, as_of: dt.date | None = None, cache: bool = False) -> CheckResult:
    """Load, validate and derive the portfolio under `root`; every problem, sorted. With
    `cache`, lifetime model fits are read from and kept in the cache folder (builds do;
    `validate` writes nothing)."""
    with paused_gc():
        return _check(root, as_of, cache)


def _check(root: Path, as_of: dt.date | None, cache: bool) -> CheckResult:
    problems: list[Problem] = []
    config = load_config(root, problems)
    day = source_date(as_of, config.as_of)
    portfolio = load_portfolio(config, problems)
    check_dates(portfolio, day, config.context(problems))
    fits = fit_store(config) if cache else None
    derived = derive(portfolio, day, fits=fits)
    if fits is not None:
        fits.save()
    problems.extend(derived.problems)
    return CheckResult(config, derived, sorted(problems, key=Problem.sort_key))


def build(root: Path, *, as_of: dt.date | None = None, strict: bool = False,
          output: Path | None = None) -> BuildResult:
    """Validate, then write the site; on any error nothing is written."""
    result = check(root, as_of=as_of, cache=True)
    if result.failed(strict=strict):
        raise ValidationFailed(result.problems)
    notes = note_store(result.config, lambda text: str(markdown_to_html(text)),
                       notes_version())
    with paused_gc():
        pages = render_site(with_changes(result), notes)
    out = output if output is not None else root / result.config.paths.output
    count = write_site(pages, out, root=root)
    notes.save()
    return BuildResult(result, out, count)
