"""Loading every record and checking it, alone and against the others.

Nothing stops early: every file is read, every field converted, and the references are checked
only once everything is loaded, so one run reports every problem of the portfolio.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from . import fields, quickrecords, records
from .cache import RecordStore
from .config import Config
from .errors import Location, Problem, did_you_mean
from .fields import ID_RE, Context, Field
from .forking import can_fork, cpu_count, forked_map
from .model import (
    DIRECTED_KINDS,
    Customer,
    Interaction,
    Organization,
    Persona,
    Portfolio,
    Record,
    dated_until,
    same_objects,
    sort_interactions,
)
from .parse import content_digest, read_document, read_text
from .sources import SourceFile, discover

R = TypeVar("R", bound=Record)
# Interaction fields that mean something only for some kinds of interaction.
_ONLY_FOR: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("amount", "currency", "quantity", "recurring", "consumer"), ("purchase",)),
    (("rating", "nps"), ("feedback",)),
    (("due", "done"), ("reminder",)),
    (("direction",), DIRECTED_KINDS),
)


# Names Windows reserves for devices: a folder called con/ cannot exist there.
RESERVED = {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(1, 10)),
            *(f"lpt{n}" for n in range(1, 10))}


def _check_id(source: SourceFile, stem: str, ctx: Context) -> bool:
    if stem in RESERVED:
        ctx.report(Location(source.rel, 1, 1), "invalid-id",
                   f"'{stem}' is a reserved device name on Windows; the site folder "
                   f"customers/{stem}/ could not exist there: rename the file")
        return False
    if ID_RE.match(stem):
        return True
    suggestion = stem.lower().replace(" ", "-")
    hint = f"; rename it to '{suggestion}{source.path.suffix}'" if ID_RE.match(suggestion) else ""
    ctx.report(Location(source.rel, 1, 1), "invalid-id",
               f"the file name '{stem}' is not a valid id (lowercase letters, digits, "
               f"'-' and '_', starting with a letter or digit){hint}")
    return False


def _unique(items: Iterable[R], what: str, ctx: Context) -> dict[str, R]:
    """Index records by id, reporting ids used twice."""
    out: dict[str, R] = {}
    for item in items:
        first = out.get(item.id)
        if first is not None:
            ctx.report(item.loc("id") if "id" in item.locs else item.loc(), "duplicate-id",
                       f"{what} id '{item.id}' is already used by {first.path}")
            continue
        out[item.id] = item
    return out


@dataclass(frozen=True)
class FileRecords:
    """What one source file holds once converted: its records and its own problems."""

    signature: tuple[int, int, int]  # (mtime_ns, size, inode): unchanged file, same records
    customers: tuple[Customer, ...] = ()
    organizations: tuple[Organization, ...] = ()
    interactions: tuple[Interaction, ...] = ()
    personas: tuple[Persona, ...] = ()
    problems: tuple[Problem, ...] = ()
    digest: str = ""  # of the bytes converted; "" when the file could not be read


# Parsed files by path, reused while a file's signature is unchanged (the dev server keeps one
# across rebuilds; it must be dropped when custsite.yaml changes, as conversion depends on it).
FileCache = dict[str, FileRecords]


def signature(path: str | Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


MIN_PARALLEL_FILES = 2_000  # below, starting processes costs more than it saves
FILE_COST = 400  # reading a file costs about as much as converting this many bytes of it
# The size of a file not looked at before it is read, to share the work (see forked_map):
# a contact's interactions, a contact or an organization.
GUESSED_SIZE = {"interaction": 4000, "customer": 300, "organization": 200, "persona": 1000}


def load_file(source: SourceFile, config: Config, customer_schema: dict[str, Field],
              known: tuple[int, int, int] | None = None) -> FileRecords:
    """Read and convert one record file, alone; `known` is its signature when taken before
    (else it is taken from the file as it is read)."""
    problems: list[Problem] = []
    ctx = config.context(problems)
    stem = source.stem
    # A badly named file is still read, so that all its problems show in this run.
    valid_id = _check_id(source, stem, ctx)
    read = read_text(source.file, source.rel, problems)
    current = known or (read.signature if read is not None else signature(source.file))
    quick = quickrecords.records(source.kind, read.text, source.rel, stem,
                                 customer_schema, ctx) \
        if read is not None and source.rel[-3:] != ".md" else None
    doc = read_document(source.file, source.rel, problems, read) \
        if read is not None and quick is None else None
    found: dict[str, Any] = {}
    if quick is not None:
        found = quick
        for i in quick.get("interactions", ()):
            _check_interaction(i, ctx)
    elif doc is not None and doc.root is not None:
        if source.kind == "interaction":
            found["interactions"] = tuple(records.to_interactions(doc, stem, ctx))
            for i in found["interactions"]:
                _check_interaction(i, ctx)
        elif source.kind == "customer":
            c = records.to_customer(doc, stem, customer_schema, ctx)
            found["customers"] = (c,) if c else ()
        elif source.kind == "organization":
            o = records.to_organization(doc, stem, ctx)
            found["organizations"] = (o,) if o else ()
        else:
            p = records.to_persona(doc, stem, config, ctx)
            found["personas"] = (p,) if p else ()
    if not valid_id:
        found = {}
    made = doc is not None or quick is not None  # read, and a tree or records made of it
    return FileRecords(current, problems=tuple(problems),
                       digest=read.digest if read is not None and made else "", **found)


def load_portfolio(config: Config, problems: list[Problem], *,
                   cache: FileCache | None = None,
                   parsed: list[str] | None = None,
                   sources: list[SourceFile] | None = None,
                   changed: set[str] | None = None,
                   memo: AssembleMemo | None = None,
                   jobs: int | None = None,
                   store: RecordStore | None = None,
                   earlier: FileCache | None = None) -> Portfolio:
    """Read, convert and cross-check every record; problems are appended.

    With a `cache`, files whose signature has not changed are not read again; the paths that
    were read are appended to `parsed`. The dev server passes the `sources` it keeps, the
    paths a save `changed` (only those are looked at again; None: look at every file) and
    the `memo` of the previous assembly. Many files are read by `jobs` processes (default:
    one per core); a `store` keeps converted files between builds; `earlier`, the files as
    they were last converted (the last build's memos had them: see read_files).
    """
    if sources is None:
        sources = discover(config, problems)
    cache = {} if cache is None else cache
    # A file nothing is kept for is read whatever its signature, taken as it is read.
    compared = bool(store)
    todo: list[tuple[SourceFile, tuple[int, int, int] | None]] = []
    for source in sources:
        cached = cache.get(source.rel)
        if cached is None and not compared:
            todo.append((source, None))
        elif cached is None or changed is None or source.rel in changed:
            current = signature(source.file)
            if cached is None or cached.signature != current:
                todo.append((source, current))
    found_files = read_files(config, todo, jobs, store, earlier)
    for (source, _), found in zip(todo, found_files, strict=True):
        cache[source.rel] = found
        if parsed is not None:
            parsed.append(source.rel)
    if len(cache) != len(sources):
        for gone in set(cache) - {s.rel for s in sources}:
            del cache[gone]
    return assemble(config, [cache[s.rel] for s in sources], problems, memo)


def read_files(config: Config, todo: list[tuple[SourceFile, tuple[int, int, int] | None]],
               jobs: int | None = None, store: RecordStore | None = None,
               earlier: FileCache | None = None) -> list[FileRecords]:
    """Read and convert these files (with their signatures, or None: taken as they are
    read), in order: those the `store` holds with the same content are taken from it, many
    others are read by `jobs` processes. Personas are read here: their compiled rules stay
    in this process. What the others held when last converted (`earlier`, or the store's)
    tells which addresses and numbers are known good (see _trust_stored)."""
    schema = records.customer_schema(config)
    started = time.time_ns()  # every file is read after this
    out: dict[int, FileRecords] = {}
    touched: list[int] = []  # kept for their content, with another signature
    if store:
        for i, (source, current) in enumerate(todo):
            if source.kind == "persona":
                continue
            current = current or signature(source.file)
            found = store.unchanged(source.rel, current)
            if found is not None:
                out[i] = found
                continue
            with contextlib.suppress(OSError):
                found = store.get(source.rel, content_digest(source.path.read_bytes()))
            if found is not None:
                out[i] = replace(found, signature=current)
                touched.append(i)
    rest = [i for i in range(len(todo)) if i not in out]
    if store or earlier:
        _trust_stored(store, earlier or {}, [todo[i][0].rel for i in rest])

    def load(i: int) -> FileRecords:
        return load_file(todo[i][0], config, schema, todo[i][1])

    jobs = cpu_count() if jobs is None else jobs
    if jobs > 1 and len(rest) >= MIN_PARALLEL_FILES and can_fork():
        # The validators fields.py imports when first used are imported before forking: once,
        # and never by a forked process while another thread (the dev server's) might hold
        # the import lock it inherited.
        import email_validator  # noqa: F401
        import phonenumbers  # noqa: F401

        for i in rest:
            if todo[i][0].kind == "persona":
                out[i] = load(i)
        # Interactions first: this process reads them from the front while the others read
        # customers and organizations from the back (see forked_map), which are fewer
        # objects to send back for the same work.
        others = sorted((i for i in rest if i not in out),
                        key=lambda i: todo[i][0].kind != "interaction")

        def cost(i: int) -> int:
            known = todo[i][1]
            size = known[1] if known is not None else GUESSED_SIZE[todo[i][0].kind]
            return size + FILE_COST

        out.update(zip(others, forked_map(load, others, jobs, cost), strict=True))
    else:
        out.update((i, load(i)) for i in rest)
    quickrecords.forget()
    if store is not None:
        for i in (*rest, *touched):
            source, made = todo[i][0], out[i]
            if made.digest and source.kind != "persona":
                store.keep(source.rel, made.digest, made, made.signature, read_since=started)
    return [out[i] for i in range(len(todo))]


def _trust_stored(store: RecordStore | None, earlier: FileCache, rels: list[str]) -> None:
    """The addresses and phone numbers of these files as they were last converted, with this
    same key (by the store's entry, or `earlier`), need not be checked again (see
    fields.known_good)."""
    before = [made for rel in rels
              if isinstance(made := (store.last(rel) if store else None) or earlier.get(rel),
                            FileRecords)]
    customers = [c for made in before for c in made.customers]
    fields.known_good([c.email for c in customers], [c.phone for c in customers])


@dataclass
class AssembleMemo:
    """What the previous assembly computed, for the dev server: the sorted interactions and
    their grouping by customer stay as long as no file with interactions changed, and the
    cross-record checks of a customer stay as long as it and its interactions are the same
    objects."""

    interaction_files: list[FileRecords] = field(default_factory=list)
    interactions: tuple[Interaction, ...] = ()
    by_customer: dict[str, tuple[Interaction, ...]] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)
    checked: dict[str, tuple[Customer, tuple[Interaction, ...], list[Problem]]] = \
        field(default_factory=dict)


def _sorted_interactions(files: list[FileRecords], ctx: Context) -> tuple[
        tuple[Interaction, ...], dict[str, tuple[Interaction, ...]]]:
    unique = _unique((i for f in files for i in f.interactions), "interaction", ctx)
    ordered = tuple(sort_interactions(unique.values()))
    by_customer: dict[str, list[Interaction]] = defaultdict(list)
    for i in ordered:
        for cid in i.customers:
            by_customer[cid].append(i)
    return ordered, {cid: tuple(items) for cid, items in by_customer.items()}


def assemble(config: Config, files: list[FileRecords], problems: list[Problem],
             memo: AssembleMemo | None = None) -> Portfolio:
    """The portfolio from converted files: ids made unique, references checked."""
    ctx = config.context(problems)
    memo = memo if memo is not None else AssembleMemo()
    for f in files:
        problems.extend(f.problems)
    with_interactions = [f for f in files if f.interactions]
    if not same_objects(with_interactions, memo.interaction_files):
        memo.duplicates = []
        memo.interactions, memo.by_customer = _sorted_interactions(
            with_interactions, config.context(memo.duplicates))
        memo.interaction_files = with_interactions
    problems.extend(memo.duplicates)
    portfolio = Portfolio(
        config=config,
        customers=_unique((c for f in files for c in f.customers), "customer", ctx),
        organizations=_unique((o for f in files for o in f.organizations), "organization",
                              ctx),
        interactions=memo.interactions,
        personas=_unique((p for f in files for p in f.personas), "persona", ctx),
        by_customer=memo.by_customer,
        digests={f.interactions[0].path: f.digest for f in with_interactions if f.digest},
    )
    check_portfolio(portfolio, ctx, memo)
    return portfolio


def check_portfolio(p: Portfolio, ctx: Context, memo: AssembleMemo | None = None) -> None:
    """The checks that need more than one record."""
    _check_customers(p, ctx)
    _check_references(p, ctx, memo if memo is not None else AssembleMemo())
    _check_personas(p, ctx)


def _ref_error(ctx: Context, loc: Location, what: str, ref: str, known: Iterable[str]) -> None:
    ctx.report(loc, "unknown-reference",
               f"no {what} with id '{ref}'" + did_you_mean(ref, list(known)))


def _check_customers(p: Portfolio, ctx: Context) -> None:
    emails: dict[str, Customer] = {}
    for c in p.customers.values():
        if c.organization and c.organization not in p.organizations:
            _ref_error(ctx, c.loc("organization"), "organization", c.organization,
                       p.organizations)
        if c.role and not c.organization:
            ctx.report(c.loc("role"), "misplaced-field",
                       "'role' is the contact's buying role inside an organization; "
                       "set 'organization' too")
        if c.referred_by:
            if c.referred_by == c.id:
                ctx.report(c.loc("referred_by"), "invalid-value",
                           "a contact cannot be referred by itself")
            elif c.referred_by not in p.customers:
                _ref_error(ctx, c.loc("referred_by"), "customer", c.referred_by, p.customers)
        if c.age is not None and c.birth_date is not None:
            ctx.report(c.loc("age"), "misplaced-field", "give either 'age' or 'birth_date', "
                                                        "not both")
        if c.email:
            key = c.email.strip().lower()
            first = emails.get(key)
            if first:
                ctx.report(c.loc("email"), "duplicate-email",
                           f"e-mail '{c.email}' is also the address of '{first.id}' "
                           f"({first.path}); merge the two records")
            else:
                emails[key] = c


def _check_interaction(i: Interaction, ctx: Context) -> None:
    """The checks of one interaction alone: made once, when its file is read."""
    if i.kind == "purchase" and i.amount is None:
        ctx.report(i.loc("kind"), "missing-amount",
                   "a purchase needs an 'amount' (0 for a free one)")
    for name, kinds in _misplaced(i.where[1], i.kind):
        ctx.report(i.loc(name), "misplaced-field",
                   f"'{name}' applies to {' or '.join(kinds)}, not to a {i.kind}")


@functools.lru_cache(maxsize=4096)
def _misplaced(given: tuple[str, ...], kind: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The fields given that do not apply to this kind of interaction, with the kinds they
    apply to: found once per shape of record (the names are shared, see errors.Locs)."""
    return tuple((name, kinds) for names, kinds in _ONLY_FOR if kind not in kinds
                 for name in names if name in given)


def _check_references(p: Portfolio, ctx: Context, memo: AssembleMemo) -> None:
    """Interactions against their customers: known, created before, one currency each.
    A customer's results are kept while it and its interactions are the same objects."""
    checked: dict[str, tuple[Customer, tuple[Interaction, ...], list[Problem]]] = {}
    for cid, mine in p.by_customer.items():
        customer = p.customers.get(cid)
        if customer is None:
            for i in dict.fromkeys(mine):
                for n, ref in enumerate(i.customers):
                    if ref == cid:
                        loc = i.loc("customer") if "customer" in i.locs else \
                            i.loc(f"customers.{n}")
                        _ref_error(ctx, loc, "customer", cid, p.customers)
            continue
        before = memo.checked.get(cid)
        if before is not None and before[0] is customer and before[1] is mine:
            found = before[2]
        else:
            found = []
            _check_customer_interactions(customer, mine, p.config, p.config.context(found))
        checked[cid] = (customer, mine, found)
        ctx.problems.extend(found)
    memo.checked = checked


def _check_customer_interactions(customer: Customer, mine: tuple[Interaction, ...],
                                 config: Config, ctx: Context) -> None:
    created = customer.created
    first: tuple[str, Interaction] | None = None
    for i in mine:
        if created and i.day < created:
            ctx.report(i.loc("date"), "before-created",
                       f"dated {i.day}, before '{customer.id}' was created ({created})")
        if i.kind == "purchase":
            currency = i.currency or config.currency
            if first is None:
                first = (currency, i)
            elif first[0] != currency:
                ctx.report(i.loc("currency") if i.currency else i.loc("kind"),
                           "mixed-currencies",
                           f"purchase in {currency}, but '{customer.id}' already bought in "
                           f"{first[0]} ({first[1].path}); totals cannot mix currencies")


def check_dates(p: Portfolio, as_of: dt.date, ctx: Context) -> None:
    """Interactions after the date the build reasons about are ignored; say so."""
    # Sorted by date: the future is the end of the list.
    for i in p.interactions[dated_until(p.interactions, as_of):]:
        ctx.report(i.loc("date"), "future-interaction",
                   f"dated {i.day}, after the build date {as_of}; it is ignored until then")


def _check_personas(p: Portfolio, ctx: Context) -> None:
    for persona in p.personas.values():
        if not persona.photo:
            continue
        photo = PurePosixPath(persona.photo)
        if photo.is_absolute() or ".." in photo.parts or "\\" in persona.photo:
            ctx.report(persona.loc("photo"), "unsafe-path",
                       f"photo '{persona.photo}' must be a path inside the personas folder")
            continue
        file = p.config.root / Path(persona.path).parent / photo
        if not file.resolve().is_relative_to(p.config.root.resolve()):
            ctx.report(persona.loc("photo"), "unsafe-path",
                       f"photo '{persona.photo}' is a link to a file outside the portfolio")
        elif not file.is_file():
            ctx.report(persona.loc("photo"), "missing-file",
                       f"photo '{persona.photo}' does not exist next to {persona.path}")
