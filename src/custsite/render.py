"""Rendering the computed portfolio into pages with Jinja, and Markdown into safe HTML."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import partial
from importlib import resources
from itertools import chain, repeat
from operator import methodcaller
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar, cast

import jinja2
from jinja2.bccache import Bucket
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from . import __version__
from .cache import NoteStore, note_store, read_signed, write_signed
from .codegen import SiteEnvironment
from .config import Config
from .data import (
    contact_record,
    csv_columns,
    csv_line,
    customers_csv,
    json_text,
    portfolio_json,
    to_json,
)
from .derive import CONTACT_ID, Contact, Derived
from .errors import CustsiteError, Location, Problem, TemplateFailed, problem
from .insights import InteractionFigures, interaction_figures
from .model import STAGES
from .notes import converted, markdown_to_html, notes_version
from .output import Page
from .pages import FACETS, PageSpec, customer_page, facet_row, site_pages
from .privacy import publish

T = TypeVar("T")

DATA_FILES = ("data/portfolio.json", "data/customers.csv")


def rendered_notes(config: Config) -> NoteStore:
    """The cache of notes converted by Python-Markdown and the sanitiser, read from the cache
    folder: the notes `markdown_to_html` makes the short way are cheaper to make than to
    look up, and never reach it."""
    return note_store(config, converted, notes_version())


def money(amount: Decimal | int | None, currency: str = "") -> str:
    if amount is None:
        return ""
    value = Decimal(amount).quantize(Decimal("0.01"))
    text = f"{value:,.2f}"
    if text.endswith(".00"):
        text = text[:-3]
    return f"{text} {currency}".strip()


class CompiledTemplates(jinja2.BytecodeCache):
    """Templates as Jinja compiled them, kept in the cache folder between builds (compiling
    the theme is a tenth of a second of every build). Compiled code runs when it is loaded,
    so the files are signed like the record store (see cache.write_signed); Jinja's own key
    covers each template's source, and the folder's name custsite's code and settings."""

    PREFIX = "templates-"

    def __init__(self, cache: Path, version: str) -> None:
        self.cache = cache
        self.folder = cache / f"{self.PREFIX}{version[:16]}"

    def _path(self, bucket: Bucket) -> Path:
        return self.folder / f"{bucket.key}.bytecode"

    def load_bytecode(self, bucket: Bucket) -> None:
        payload = read_signed(self._path(bucket))
        if payload is not None:
            with contextlib.suppress(Exception):  # damaged: compiled again
                bucket.load_bytecode(io.BytesIO(payload))

    def dump_bytecode(self, bucket: Bucket) -> None:
        write_signed(self._path(bucket), bucket.write_bytecode)

    def prune(self) -> None:
        """Remove the templates compiled by other versions."""
        for other in self.cache.glob(f"{self.PREFIX}*"):
            if other != self.folder:
                shutil.rmtree(other, ignore_errors=True)


def environment(config: Config, compiled: CompiledTemplates | None = None, *,
                reload: bool = True) -> jinja2.Environment:
    """The Jinja environment: the portfolio's templates first, then the built-in theme.
    Without `reload` (a build, whose templates do not change while it runs), a template is
    not looked at again on disk each time a page includes it (a tenth of rendering a page)."""
    loaders: list[jinja2.BaseLoader] = []
    user = config.root / config.paths.templates
    if user.is_dir():
        loaders.append(jinja2.FileSystemLoader(str(user)))
    loaders.append(jinja2.PackageLoader("custsite", "templates"))
    env = SiteEnvironment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True, keep_trailing_newline=True,
                          bytecode_cache=compiled, auto_reload=reload)
    env.filters["markdown"] = markdown_to_html
    env.filters["money"] = money
    return env


def template_problem(exc: jinja2.TemplateError, template: str, root: Path) -> Problem:
    """Locate a template error: the template file and line, from the error or its traceback."""
    filename: str | None = getattr(exc, "filename", None)
    line: int | None = getattr(exc, "lineno", None)
    if line is None:  # errors at render time: Jinja maps the traceback to template lines
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename.endswith(".html"):
                filename, line = code.co_filename, tb.tb_lineno
            tb = tb.tb_next
    path = filename or template
    try:
        path = Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        path = f"(built-in) {Path(path).name}" if Path(path).is_absolute() else path
    return problem(Location(path, line or 0, 1 if line else 0), "template-error",
                   f"in template {Path(filename or template).name}: {exc}")


def _root(path: str) -> str:
    """The relative prefix from a page back to the site root: links work from file://."""
    return "../" * path.count("/")


_NO_ROWS: dict[tuple[str, str], str] = {}  # never written into

# A contact's facet row: its values in each of FACETS, in their order, and as the customers
# table's script reads it (JSON, with its search text); kept as tuples, which read back from
# the cache three times as fast as the dict of lists they are made of.
FacetRow = tuple[tuple[tuple[str, ...], ...], str]

# What a renderer made for a contact: (table, contact id, row key for "html", value).
Made = tuple[str, str, tuple[str, str] | None, Any]


# The figures, with the interactions, build date and currency they were made from.
KeptFigures = tuple[object, dt.date, str, InteractionFigures]


def kept_figures(kept: KeptFigures | None, derived: Derived) -> KeptFigures:
    """The dashboard's figures of the interactions: those `kept` while the interactions are
    the very same objects (the dev server's, a build's memos) and the date and currency the
    same."""
    d = derived
    if kept is None or kept[0] is not d.portfolio.interactions or \
            kept[1:3] != (d.as_of, d.config.currency):
        kept = (d.portfolio.interactions, d.as_of, d.config.currency, interaction_figures(d))
    return kept


class RowCache:
    """Table rows, facet rows and data records of contacts, and the figures of interactions,
    kept across the dev server's rebuilds.

    A list of 10,000 contacts is mostly the same rows as before an edit: only the rows of
    contacts whose content changed are made again (`forget`)."""

    def __init__(self, html: dict[str, dict[tuple[str, str], str]] | None = None) -> None:
        # id → (template, root) → row; builds start from the rows kept by the last one.
        self.html: dict[str, dict[tuple[str, str], str]] = html or {}
        self.records: dict[str, dict[str, Any]] = {}
        self.json: dict[str, str] = {}
        self.csv: dict[str, str] = {}
        self.csv_columns: tuple[str, ...] = ()
        self.facets: dict[str, FacetRow] = {}
        # The facet values of the rows in `facets`, counted as rows come and go.
        self.facet_counts: dict[str, Counter[str]] = {name: Counter() for name, _ in FACETS}
        self.figures: KeptFigures | None = None

    def forget(self, ids: set[str]) -> None:
        for table in (self.html, self.records, self.json, self.csv):
            for cid in ids:
                table.pop(cid, None)
        self.drop_facet_rows(ids)

    def take(self, made: list[Made]) -> None:
        """Take in what a renderer made in another process (see Renderer.made)."""
        for table, cid, key, value in made:
            if table == "html":
                assert key is not None
                self.html.setdefault(cid, {})[key] = value
            elif table == "json":
                self.json[cid] = value
            elif table == "csv":
                self.csv[cid] = value
            elif cid not in self.facets:
                self.add_facet_row(cid, value)

    def add_facet_row(self, cid: str, row: FacetRow) -> None:
        self.facets[cid] = row
        for counts, values in zip(self.facet_counts.values(), row[0], strict=True):
            counts.update(values)

    def add_facet_rows(self, rows: dict[str, FacetRow]) -> None:
        """`add_facet_row` of each of these (new) contacts: counted one facet at a time
        over all of them, not one call per contact and facet (a build takes 10,000 kept)."""
        self.facets.update(rows)
        for k, counts in enumerate(self.facet_counts.values()):
            counts.update(chain.from_iterable(row[0][k] for row in rows.values()))

    def drop_facet_rows(self, ids: Iterable[str]) -> None:
        for cid in ids:
            row = self.facets.pop(cid, None)
            if row is not None:
                for counts, values in zip(self.facet_counts.values(), row[0], strict=True):
                    counts.subtract(values)

    def clear(self) -> None:
        self.html.clear()
        self.records.clear()
        self.json.clear()
        self.csv.clear()
        self.facets.clear()
        for counts in self.facet_counts.values():
            counts.clear()
        self.figures = None


def _filled(found: list[T | None], contacts: list[Contact],
            make: Callable[[Contact], T]) -> list[T]:
    """What was found for each of these contacts (looked up in C, not one method call per
    contact: the lists of a build after an edit are 70,000 contacts, nearly all kept), with
    what was not made (and kept) by `make`."""
    if None in found:
        return [kept if kept is not None else make(c)
                for kept, c in zip(found, contacts, strict=True)]
    return cast("list[T]", found)  # none is missing


def _kept(table: dict[str, T], ids: list[str], contacts: list[Contact],
          make: Callable[[Contact], T]) -> list[T]:
    """What `table` keeps for each of these contacts (`ids`: theirs), in their order (see
    _filled)."""
    return _filled(list(map(table.get, ids)), contacts, make)


class Renderer:
    """Renders pages of one derived portfolio; privacy is applied once, here, first."""

    def __init__(self, derived: Derived, cache: RowCache | None = None,
                 env: jinja2.Environment | None = None, notes: NoteStore | None = None) -> None:
        self.derived = publish(derived)  # from here on, hidden fields no longer exist
        self.cache = cache or RowCache()
        # The rows, JSON records, CSV lines and facet rows this renderer made, as (table,
        # contact id, row key, value): a rendering process hands them to the parent's cache.
        self.made: list[Made] = []
        self._row_makers: dict[tuple[str, str], Callable[[Contact], str]] = {}
        self._ids: dict[int, tuple[list[Contact], list[str]]] = {}  # see `ids`
        # The dev server passes the environment of its previous build: compiled templates are
        # kept (a changed template or config makes it start a new one).
        self.env = env or environment(self.derived.config)
        self.env.globals["row"] = self.row
        self.env.globals["table_rows"] = self.table_rows
        if notes is not None:
            self.env.filters["markdown"] = partial(markdown_to_html, convert=notes.html)
        self.common = {
            "config": self.derived.config, "derived": self.derived,
            "as_of": self.derived.as_of, "stages": STAGES, "version": __version__,
            "portfolio": self.derived.portfolio, "contacts": self.derived.contacts,
        }

    def specs(self, *, customers: bool = True) -> list[PageSpec]:
        return list(site_pages(self.derived, self, customers=customers))

    def customer_page(self, contact: Contact) -> PageSpec:
        return customer_page(contact, self.derived)

    def record(self, contact: Contact) -> dict[str, Any]:
        """The contact's data record (see data.contact_record), made once per content."""
        found = self.cache.records.get(contact.id)
        if found is None:
            found = self.cache.records[contact.id] = contact_record(
                contact, self.derived.config.hide,
                self.derived.changes.get(contact.customer.path))
        return found

    def record_json(self, contact: Contact) -> str:
        found = self.cache.json.get(contact.id)
        if found is None:
            found = self.cache.json[contact.id] = json_text(self.record(contact))
            self.made.append(("json", contact.id, None, found))
        return found

    def facet_row(self, contact: Contact) -> FacetRow:
        found = self.cache.facets.get(contact.id)
        if found is None:
            row = facet_row(contact, self.derived)
            found = (tuple(tuple(row[name]) for name, _ in FACETS),
                     htmlsafe_json_dumps(row, sort_keys=True))
            self.cache.add_facet_row(contact.id, found)
            self.made.append(("facet", contact.id, None, found))
        return found

    def ids(self, contacts: list[Contact]) -> list[str]:
        """The ids of a list of contacts, taken once per list: the customers table's is
        looked up in four tables, and each look at 10,000 contacts reads memory strewn over
        the heap (two cache misses a contact: a millisecond or two each time)."""
        known = self._ids.get(id(contacts))
        if known is None or known[0] is not contacts or len(known[1]) != len(contacts):
            known = self._ids[id(contacts)] = (contacts, list(map(CONTACT_ID, contacts)))
        return known[1]

    def with_ids(self, ids: list[str]) -> list[Contact]:
        """The contacts of these ids, in their order, known by this list (see `ids`)."""
        contacts = list(map(self.derived.contacts.__getitem__, ids))
        self._ids[id(contacts)] = (contacts, ids)
        return contacts

    def records_json(self, contacts: list[Contact]) -> list[str]:
        return _kept(self.cache.json, self.ids(contacts), contacts, self.record_json)

    def facet_rows(self, contacts: list[Contact]) -> list[FacetRow]:
        return _kept(self.cache.facets, self.ids(contacts), contacts, self.facet_row)

    def csv_lines(self, contacts: list[Contact]) -> list[str]:
        return _kept(self.cache.csv, self.ids(contacts), contacts, self.csv_line)

    def facet_counts(self, everyone: list[Contact]) -> dict[str, Counter[str]]:
        """How many of these contacts have each facet value; their rows are made first."""
        self.facet_rows(everyone)
        if len(self.cache.facets) != len(everyone):  # rows of contacts no longer there
            self.cache.drop_facet_rows(set(self.cache.facets) - set(self.ids(everyone)))
        return self.cache.facet_counts

    def figures(self) -> InteractionFigures:
        kept = self.cache.figures = kept_figures(self.cache.figures, self.derived)
        return kept[3]

    def csv_columns(self) -> tuple[str, ...]:
        if not self.derived.contacts:
            return ()
        first = self.record(next(iter(self.derived.contacts.values())))
        columns = csv_columns(first, git=bool(self.derived.changes))
        if columns != self.cache.csv_columns:  # rows made for other columns are no use
            self.cache.csv.clear()
            self.cache.csv_columns = columns
        return columns

    def csv_line(self, contact: Contact) -> str:
        found = self.cache.csv.get(contact.id)
        if found is None:
            record = self.record(contact)
            found = self.cache.csv[contact.id] = csv_line(
                record.get(k) for k in self.cache.csv_columns)
            self.made.append(("csv", contact.id, None, found))
        return found

    def row(self, template: str, contact: Contact, root: str) -> str:
        """One table row of a contact (HTML), made once per content and page depth. Kept as
        a plain string, marked safe once joined (see table_rows): 30,000 kept rows are read
        back faster so, with no call each to make them Markup."""
        mine = self.cache.html.get(contact.id)
        if mine is None:
            mine = self.cache.html[contact.id] = {}
        found = mine.get((template, root))
        if found is None:
            found = mine[(template, root)] = str(self._row_maker(template, root)(contact))
            self.made.append(("html", contact.id, (template, root), found))
        return found

    def _row_maker(self, template: str, root: str) -> Callable[[Contact], str]:
        """What makes the rows of one row template at one page depth. A row template that
        defines a `row` macro (the theme's do) is made into a module once, and its macro
        called for each contact: a whole render per row, with its import of the macros, cost
        twice as much (a second of a cold build). Any other (an override written before) is
        rendered with `c`."""
        key = (template, root)
        found = self._row_makers.get(key)
        if found is None:
            compiled = self.env.get_template(template)
            try:
                macro = getattr(compiled.make_module({**self.common, "root": root}), "row",
                                None)
            except jinja2.TemplateError:  # one written for `c` alone: its errors show below
                macro = None
            if isinstance(macro, jinja2.runtime.Macro):
                found = macro
            else:
                def found(contact: Contact) -> str:
                    return compiled.render(**self.common, c=contact, root=root)
            self._row_makers[key] = found
        return found

    def table_rows(self, template: str, contacts: Iterable[Contact], root: str) -> Markup:
        """The rows of a table of contacts, one per line, joined here rather than in a
        template loop: a list of 10,000 unchanged rows costs one join."""
        contacts = contacts if isinstance(contacts, list) else list(contacts)
        # A contact's rows, then the one of this template and depth (see _filled).
        mine = map(self.cache.html.get, self.ids(contacts), repeat(_NO_ROWS))
        rows: list[str | None] = list(map(methodcaller("get", (template, root)), mine))
        return Markup("\n".join(_filled(rows, contacts,
                                        lambda c: self.row(template, c, root))))

    def page(self, spec: PageSpec) -> list[Page]:
        """The page, and its JSON twin for list pages."""
        config = self.derived.config
        root = _root(spec.path)
        if spec.path == "404.html" and config.base_url:
            root = config.base_url.rstrip("/") + "/"  # served at any depth by a web server
        twin = spec.twin_path.rsplit("/", 1)[-1] if spec.twin_path else None
        try:
            template = self.env.get_template(spec.template)
            html = template.render(**self.common, **spec.context(), root=root,
                                   page_path=spec.path, alternate=twin)
        except jinja2.TemplateError as exc:
            raise TemplateFailed(template_problem(exc, spec.template, config.root)) from exc
        pages = [Page(spec.path, html.encode("utf-8"))]
        if spec.twin is not None and spec.twin_path:
            pages.append(Page(spec.twin_path, to_json(spec.twin())))
        return pages

    def assets(self) -> list[Page]:
        """The theme's static files, the data files and persona photos."""
        return [*self.static_files(), *self.data_files()]

    def static_files(self) -> list[Page]:
        """The theme's static files and persona photos: copied, cheap to make again."""
        pages: list[Page] = []
        static = resources.files("custsite") / "static"
        for item in sorted(static.iterdir(), key=lambda t: t.name):
            if item.is_file():
                pages.append(Page(f"static/{item.name}", item.read_bytes()))
        pages.extend(persona_photos(self.derived))
        return pages

    def data_files(self) -> list[Page]:
        """Every contact as JSON and as CSV (the paths are DATA_FILES)."""
        ordered = self.with_ids(sorted(self.derived.contacts))
        return [Page(DATA_FILES[0], portfolio_json(self.derived, ordered, self.records_json)),
                Page(DATA_FILES[1], customers_csv(ordered, self.csv_columns(),
                                                  self.csv_lines))]


def render_site(derived: Derived, notes: NoteStore | None = None) -> list[Page]:
    """Every file of the site, in memory, sorted by path; `notes` keeps rendered notes."""
    renderer = Renderer(derived, notes=notes)
    pages = [page for spec in renderer.specs() for page in renderer.page(spec)]
    pages.extend(renderer.assets())
    return sorted(pages, key=lambda pg: pg.path)


def photo_path(persona_id: str, photo: str) -> str:
    """Where a persona's photo lands in the site: beside its page, under its own name."""
    return f"personas/{persona_id}/{PurePosixPath(photo).name}"


def persona_photos(derived: Derived) -> list[Page]:
    """Copy each persona's photo (checked to exist inside the portfolio) next to its page."""
    out = []
    root = derived.config.root
    for persona in derived.portfolio.personas.values():
        if persona.photo:
            source = root / PurePosixPath(persona.path).parent / persona.photo
            try:
                out.append(Page(photo_path(persona.id, persona.photo), source.read_bytes()))
            except OSError as exc:
                raise CustsiteError(f"cannot read {source}: {exc.strerror}") from exc
    return out
