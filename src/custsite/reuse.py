"""Pages kept from the previous build when nothing they show has changed.

Most of a build after an edit is rendering the page of every contact again, though the edit
changed a few of them. A contact's page shows the contact itself and the records its
dependencies name (see pages.PageSpec.deps, which the dev server uses the same way; an
organization's page, its account and its contacts, each shown with the organization): the
build hashes each of them, with everything every page shows (custsite's code, custsite.yaml,
the templates, the date, the segments' titles, the lifetime model), and keeps in the cache
folder the hash of each page with the identity of the output folder it wrote. The next build
links the pages whose hash is the same from that folder instead of rendering them, and only
if that folder is still the one it wrote (tests/test_cache.py builds warm after edits and
cold, and compares the trees). The lists that name what they show (a segment's, a stage's,
a persona's members, the organizations) are kept the same way; those that show every contact
(the customers table, the dashboard, the data files) are rendered always, but from the table
rows and data records of contacts kept with the same hash (`RowStore`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Collection, Iterable
from itertools import repeat
from pathlib import Path
from typing import Any, cast

from .cache import (
    ROW_SHARDS,
    ROWS_FOLDER,
    read_json,
    read_signed_pickle,
    row_file,
    write_json,
    write_signed_pickle,
)
from .config import CONFIG_FILE, Config
from .derive import Contact, Derived
from .freshness import code_version, folder_id
from .output import Listing
from .pages import (
    CONTACTS,
    INTERACTIONS,
    LIFETIME,
    customer_deps,
    customer_path,
    organization_deps,
    organization_path,
    site_pages,
)
from .parse import content_digest
from .render import RowCache

STATE_FILE = "pages.json"
# The fields of a contact that hold interactions (tests/test_cache.py keeps this in step).
INTERACTION_FIELDS = frozenset({"interactions", "purchases", "active_subscriptions"})


def _hash(*parts: object) -> str:
    return content_digest(repr(parts).encode())


def _shown_everywhere(derived: Derived) -> str:
    """What any contact's page may show besides its dependencies."""
    config = derived.config
    config_file = config.root / CONFIG_FILE
    templates = config.root / config.paths.templates
    own = sorted((p.relative_to(templates).as_posix(), p.read_bytes())
                 for p in templates.rglob("*") if p.is_file()) if templates.is_dir() else []
    return _hash(code_version(), config_file.read_bytes() if config_file.is_file() else b"",
                 own, derived.as_of, derived.lifetime,
                 sorted((s.id, s.title) for s in derived.segments.values()))


# A contact's page's hash, with what it was made of: the hash of what every page shows, the
# keys the page depends on (see pages.customer_deps: the contact's own) and their hashes in
# the keys' order.
PageInputs = tuple[str, frozenset[str], tuple[str, ...], str]
# A contact's hash by id, with the contact, its organization's record and its last change it
# was made of (the same objects next time, see memos, give the same hash), and its page's
# inputs (None until made).
ContactHashes = dict[str, tuple[Contact, object, object, str, PageInputs | None]]


def _dependency(derived: Derived, memo: ContactHashes, everywhere: str) -> tuple[
        Callable[[Collection[str]], list[str]], Callable[[str, Contact], str]]:
    """The hashes of dependency keys' contents, sorted, each made once per key; and the hash
    of a contact's page. Contacts' are kept in `memo` and taken from it while their inputs
    are the very same objects, their pages' while their dependencies' hashes are the same."""
    known: dict[str, str] = {}
    before = dict(memo)
    memo.clear()

    def persona(pid: str) -> object:
        found = derived.portfolio.personas.get(pid)
        # Its rule is not shown (membership is part of each contact); its object has no
        # stable text.
        return None if found is None else [(f.name, getattr(found, f.name))
                                           for f in dataclasses.fields(found)
                                           if f.name != "match"]

    digests = derived.portfolio.digests

    def shown(contact: Contact) -> list[tuple[str, object]]:
        """The contact's fields, its interactions named by id, and what they show by the
        content of the files they are in, each file once, rather than written out (the repr
        of 100,000 interactions was most of the hashing): an interaction is what its file
        says of it, so the same ids from files with the same paths and contents show the
        same."""
        state = vars(contact)
        files = {(i.path, digests.get(i.path) or repr(i))
                 for name in INTERACTION_FIELDS for i in state[name]}
        return [*((name, tuple([i.id for i in value]) if name in INTERACTION_FIELDS else value)
                  for name, value in state.items()), ("files", sorted(files))]

    def of(key: str) -> str:
        found = known.get(key)
        if found is None:
            value: Any
            if key.startswith("org:"):
                value = derived.accounts.get(key[4:])
            elif key.startswith("persona:"):
                value = persona(key[8:])
            elif key.startswith("segment:"):
                value = derived.segments.get(key[8:])
            elif key == INTERACTIONS:  # what they show is their files' (see `shown`)
                value = sorted(digests.items())
            elif key == CONTACTS:
                value = len(derived.contacts)
            else:
                contact = derived.contacts.get(key)
                if contact is not None:
                    found = known[key] = _contact_hash(key, contact)
                    return found
                value = None
            found = known[key] = _hash(key, value)
        return found

    def _contact_hash(key: str, contact: Contact) -> str:
        # Every list shows a contact with its organization's name.
        account = derived.accounts.get(contact.customer.organization or "")
        org = account.organization if account is not None else None
        change = derived.changes.get(contact.customer.path)
        kept = before.get(key)
        page = None
        if kept is not None and kept[0] is contact and kept[1] is org and kept[2] == change:
            digest, page = kept[3], kept[4]
        else:
            digest = _hash(key, (shown(contact), change, org))
        memo[key] = (contact, org, change, digest, page)
        return digest

    def contact_page(cid: str, contact: Contact) -> str:
        of(cid)  # the contact's own hash, and what its page was made of if it is the same
        _, org, change, digest, page = memo[cid]  # memo[cid][0] is `contact`
        if page is not None and page[0] == everywhere:
            deps = page[1]  # the same contact: the same keys
            if tuple(map(known.get, deps)) == page[2]:  # each key already made, the same
                return page[3]
        else:
            deps = customer_deps(contact)
        found = tuple(d if d is not None else of(key)
                      for d, key in zip(map(known.get, deps), deps, strict=True))
        made = _hash(everywhere, sorted(found))
        memo[cid] = (contact, org, change, digest, (everywhere, deps, found, made))
        return made

    def sorted_hashes(keys: Collection[str]) -> list[str]:
        # Looked up in C, each key made only if it is new: the lists name 70,000 keys. The
        # new ones (a list's segment, say) are found in C too, not by a pass over them all.
        found = list(map(known.get, keys))
        if None in found:
            for key in (keys if isinstance(keys, frozenset) else set(keys)).difference(known):
                of(key)
            found = list(map(known.get, keys))
        done = cast("list[str]", found)  # none is left
        done.sort()
        return done

    return sorted_hashes, contact_page


def page_hashes(derived: Derived, memo: ContactHashes | None = None) -> dict[str, str]:
    """The hash of what each contact's and organization's page shows, by page path. A
    contact's own hash is taken from `memo` (the last build's) while the contact is the same
    object, its page's while what it depends on has the same hashes too (a tenth of the time
    it took to make again), and `memo` is left with this build's."""
    everywhere = _shown_everywhere(derived)
    hashes_of, contact_page = _dependency(derived, {} if memo is None else memo, everywhere)
    contacts = derived.contacts
    hashes_of(contacts.keys())  # each contact's own hash first: the pages' keys are found
    out = {customer_path(cid): contact_page(cid, contact) for cid, contact in contacts.items()}
    for oid, account in derived.accounts.items():
        out[organization_path(oid)] = _hash(everywhere, hashes_of(organization_deps(account)))
    # The lists that name what they show (not "*": the dashboard, the customers table), and
    # their JSON twins: a list of a segment, a stage or a persona whose members are the same.
    # The model's page sums every buyer's estimates: made every time.
    for spec in site_pages(derived, None, customers=False):
        if "*" in spec.deps or LIFETIME in spec.deps or spec.path in out:
            continue
        digest = _hash(everywhere, spec.path, spec.template, hashes_of(spec.deps))
        out[spec.path] = digest
        if spec.twin_path is not None:
            out[spec.twin_path] = digest
    return out


def _state(root: Path, cache: str) -> Path:
    return root / cache / STATE_FILE


def none_reusable(config: Config) -> bool:
    """Whether no page of the last build can be kept whatever the hashes (see `reusable`):
    none is recorded."""
    return not _state(config.root, config.paths.cache).is_file()


def reusable(derived: Derived, hashes: dict[str, str], output: Path,
             listing: Listing | None = None) -> frozenset[str]:
    """The pages the last build wrote into this very output folder with the same hash, and
    that are still there (as regular files: in its `listing`, when one was made)."""
    config = derived.config
    data = read_json(_state(config.root, config.paths.cache))
    if not isinstance(data, dict) or data.get("output") != str(output.resolve()):
        return frozenset()
    folder = folder_id(output)
    if folder is None or data.get("folder") != list(folder):
        return frozenset()
    before = data.get("pages")
    if not isinstance(before, dict):
        return frozenset()
    top = os.fspath(output)
    there: Callable[[str], bool] = listing[1].__contains__ if listing is not None else \
        (lambda path: os.path.isfile(os.path.join(top, path)))
    return frozenset(path for path, digest in hashes.items()
                     if before.get(path) == digest and there(path))


def remember_pages(config: Config, hashes: dict[str, str], output: Path) -> None:
    """After a build: the hashes of its contacts' pages, with the folder that holds them."""
    folder = folder_id(output)
    state = _state(config.root, config.paths.cache)
    if folder is None:
        with contextlib.suppress(OSError):
            state.unlink(missing_ok=True)
        return
    write_json(state, {"output": str(output.resolve()), "folder": list(folder),
                       "pages": hashes})


# A contact's entry in a RowStore shard: the hash, then its rows, data record, CSV line and
# facet row.
ENTRY_SIZE = 5


class RowStore:
    """Contacts' table rows (HTML by template and page depth), data records (JSON), CSV
    lines and facet rows (the customers table's filters), kept between builds with the hash
    of what the contact's page shows (see `page_hashes`), which covers what they show: after
    an edit, lists of 10,000 contacts and the data files are joined from kept pieces rather
    than made again. Kept in shards by contact, so that an edit rewrites the shard of the
    contacts it changed, not all of them; each contact's pieces together, in one entry. The
    HTML goes into pages as it is, so the files are signed like the record store (see
    cache.write_signed)."""

    FOLDER = ROWS_FOLDER
    SHARDS = ROW_SHARDS

    def __init__(self, derived: Derived, hashes: dict[str, str]) -> None:
        config = derived.config
        self.folder = config.root / config.paths.cache / self.FOLDER
        self.hashes: dict[str, str] = {}
        self.hashed(derived, hashes)
        self.shards: list[dict[str, Any]] = []
        self.where: dict[str, int] = {}  # each contact's shard, as read
        for k in range(self.SHARDS):
            found = read_signed_pickle(self._path(k))
            if not isinstance(found, dict) or not isinstance(found.get("rows"), dict):
                found = {"rows": {}}  # none yet, or kept by another version
            self.shards.append(found)
            self.where.update(zip(found["rows"], repeat(k)))

    def hashed(self, derived: Derived, hashes: dict[str, str]) -> None:
        """Take the hashes of the contacts' pages (see `page_hashes`): those of the pieces
        `cache` takes, and `save` keeps."""
        self.hashes = {cid: digest for cid in derived.contacts
                       if (digest := hashes.get(customer_path(cid))) is not None}

    def _path(self, k: int) -> Path:
        return row_file(self.folder, k)

    def _shard(self, cid: str) -> int:
        return int(content_digest(cid.encode())[:8], 16) % self.SHARDS

    def _shards_of(self, ids: Iterable[str]) -> list[int]:
        """Each contact's shard: the one it was read from, if any (no hash made again)."""
        where = self.where
        return [k if (k := where.get(cid)) is not None else self._shard(cid) for cid in ids]

    def cache(self) -> RowCache:
        """A row cache holding the kept pieces of contacts whose hash is the same."""
        rows = RowCache()
        html, data, csv = rows.html, rows.json, rows.csv
        facets: dict[str, Any] = {}
        hashes = self.hashes
        for shard in self.shards:
            for cid, entry in shard["rows"].items():
                if not isinstance(entry, tuple) or len(entry) != ENTRY_SIZE or \
                        hashes.get(cid) != entry[0]:
                    continue
                _, mine, record, line, facet = entry
                if mine:
                    html[cid] = mine
                if record is not None:
                    data[cid] = record
                if line is not None:
                    csv[cid] = line
                if facet is not None:
                    facets[cid] = facet
        rows.add_facet_rows(facets)
        columns = self.shards[0].get("csv_columns")
        rows.csv_columns = columns if isinstance(columns, tuple) else ()
        return rows

    def save(self, rows: RowCache) -> None:
        """Keep the pieces of this build's contacts; only the shards that changed are
        written (a kept piece is the very object read: told apart by identity first)."""
        made: list[dict[str, tuple[Any, ...]]] = [{} for _ in range(self.SHARDS)]
        html, data, csv, facets = rows.html, rows.json, rows.csv, rows.facets
        hashes = self.hashes
        for k, (cid, digest) in zip(self._shards_of(hashes), hashes.items(), strict=True):
            made[k][cid] = (digest, html.get(cid) or None, data.get(cid), csv.get(cid),
                            facets.get(cid))
        for k, entries in enumerate(made):
            shard = self.shards[k]
            # Compared in C, each piece by identity first: those kept are the objects read.
            if shard.get("csv_columns") == rows.csv_columns and shard["rows"] == entries:
                continue
            fresh = {"csv_columns": rows.csv_columns, "rows": entries}
            if write_signed_pickle(self._path(k), fresh):
                self.shards[k] = fresh
        old = self.folder.parent / "rows.pickle"  # one file, before shards
        with contextlib.suppress(OSError):
            old.unlink(missing_ok=True)
