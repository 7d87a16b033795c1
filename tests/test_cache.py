"""The cache folder: rendered notes are kept between builds, by their text, and never trusted
across versions or when damaged."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from custsite import render
from custsite.build import build, check, record_store
from custsite.cache import NoteStore, RecordStore
from custsite.config import load_config
from custsite.errors import ValidationFailed

from .conftest import ScratchFactory

FILES: dict[str, str | bytes] = {
    "custsite.yaml": "as_of: 2026-06-01\n",
    "records/customers/ann.md": "---\nname: Ann Lee\n---\nMet at the __fair__.\n",
    "records/customers/bob.yaml": "name: Bob Stone\n",
    "records/interactions/calls.yaml":
        "- {customer: ann, date: 2026-01-10, kind: call, notes: 'Left a _voicemail_.'}\n"
        "- {customer: bob, date: 2026-01-11, kind: call, notes: 'Left a _voicemail_.'}\n"
        "- {customer: bob, date: 2026-01-12, kind: call, notes: 'Asked for a __quote__.'}\n",
}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str,
           pick: Callable[[Any], Any] = lambda first: first) -> list[Any]:
    """What `pick` makes of the first argument of every call of `owner.name` from here on
    (the call itself still made)."""
    seen: list[Any] = []
    real = getattr(owner, name)

    def counted(first: Any, *args: Any, **options: Any) -> Any:
        seen.append(pick(first))
        return real(first, *args, **options)

    monkeypatch.setattr(owner, name, counted)
    return seen


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The notes rendered by Python-Markdown from here on."""
    return _calls(monkeypatch, render, "converted")


def test_notes_are_rendered_once_and_kept(scratch_portfolio: ScratchFactory, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = scratch_portfolio(FILES)
    seen = _counting(monkeypatch)
    build(root, output=tmp_path / "one")
    # The same note twice is rendered once.
    assert sorted(seen) == ["Asked for a __quote__.", "Left a _voicemail_.",
                            "Met at the __fair__."]
    stores = list((root / ".custsite-cache").glob("notes-*.pickle"))
    assert len(stores) == 1 and len(pickle.loads(stores[0].read_bytes()[32:])) == 3  # signed
    seen.clear()
    build(root, output=tmp_path / "two")
    assert seen == []  # nothing changed: every note from the cache
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
    calls = root / "records/interactions/calls.yaml"
    calls.write_text(calls.read_text().replace("__quote__", "__quote__ by Friday"))
    build(root, output=tmp_path / "three")
    assert seen == ["Asked for a __quote__ by Friday."]
    assert "<strong>quote</strong> by Friday" in \
        (tmp_path / "three/customers/bob/index.html").read_text()
    assert len(pickle.loads(stores[0].read_bytes()[32:])) == 3  # the old note is gone
    # The notes of another version of custsite, and an older custsite's unsigned ones, go.
    others = [root / ".custsite-cache/notes-0123456789ab.pickle",
              root / ".custsite-cache/notes-0123456789ab.json"]
    for other in others:
        other.write_bytes(b"{}")
    build(root, output=tmp_path / "four")
    assert not any(other.exists() for other in others) and stores[0].is_file()


def test_simple_notes_are_made_on_the_spot_not_kept(scratch_portfolio: ScratchFactory,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A note of sentences with bold, emphasis or links costs less to make than to look up:
    it never reaches Python-Markdown nor the notes file."""
    files = dict(FILES)
    files["records/interactions/calls.yaml"] = (
        "- {customer: bob, date: 2026-01-12, kind: call, notes: 'Asked for a **quote**, "
        "see [terms](https://x.example/t).'}\n"
        "- {customer: bob, date: 2026-01-13, kind: call, notes: 'Sent a __quote__.'}\n")
    root = scratch_portfolio(files)
    seen = _counting(monkeypatch)
    build(root, output=tmp_path / "one")
    assert sorted(seen) == ["Met at the __fair__.", "Sent a __quote__."]
    store = next((root / ".custsite-cache").glob("notes-*.pickle"))
    assert len(pickle.loads(store.read_bytes()[32:])) == 2
    page = (tmp_path / "one/customers/bob/index.html").read_text()
    assert 'Asked for a <strong>quote</strong>, see <a href="https://x.example/t" ' \
        'rel="noopener noreferrer nofollow">terms</a>.' in page
    assert "Sent a <strong>quote</strong>." in page


def test_a_damaged_or_foreign_cache_is_not_trusted(scratch_portfolio: ScratchFactory,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = scratch_portfolio(FILES)
    build(root, output=tmp_path / "one")
    store = next((root / ".custsite-cache").glob("notes-*.pickle"))
    store.write_text("{broken")
    seen = _counting(monkeypatch)
    build(root, output=tmp_path / "two")
    assert len(seen) == 3 and _tree(tmp_path / "two") == _tree(tmp_path / "one")
    # Another Markdown library or sanitiser version: another file, nothing reused.
    monkeypatch.setattr(render, "notes_version", lambda: "other")
    seen.clear()
    build(root, output=tmp_path / "three")
    assert len(seen) == 3 and (root / ".custsite-cache/notes-other.pickle").is_file()


def test_planted_html_in_the_cache_never_reaches_the_site(scratch_portfolio: ScratchFactory,
                                                          tmp_path: Path) -> None:
    """Kept notes and rows go into pages as they are: a cache file not signed with this
    user's key (a cache folder committed to the repository, say) is not used."""
    from custsite.parse import content_digest

    root = scratch_portfolio(FILES)
    build(root, output=tmp_path / "one")
    cache = root / ".custsite-cache"
    store = next(cache.glob("notes-*.pickle"))
    key = content_digest(b"Asked for a __quote__.")
    store.write_bytes(bytes(32) + pickle.dumps({key: "<script>alert(1)</script>"}))
    for rows in (cache / "rows").glob("*.pickle"):
        signed = rows.read_bytes()
        rows.write_bytes(bytes(32) + signed[32:].replace(b"</td>", b"<script>x</script></td>"))
    (root / "records/customers/bob.yaml").write_text(
        (root / "records/customers/bob.yaml").read_text() + "tags: [fresh]\n")
    build(root, output=tmp_path / "one")
    site = "".join(p.read_text() for p in (tmp_path / "one").rglob("*.html"))
    assert "<script>alert" not in site and "<script>x" not in site
    assert "<strong>quote</strong>" in site


@pytest.mark.parametrize("written_here", [0, RecordStore.WRITTEN_HERE])
def test_the_record_store_is_written_whole_before_check_returns(
        scratch_portfolio: ScratchFactory, monkeypatch: pytest.MonkeyPatch,
        written_here: int) -> None:
    """Shards are written by a forked process, or by the build for a few files (see
    RecordStore.save): `check` waits for it, and the records read back are the very ones it
    converted, in one shard each."""
    monkeypatch.setattr(RecordStore, "WRITTEN_HERE", written_here)
    root = scratch_portfolio(FILES)
    result = check(root, cache=True)
    assert result.writing is None
    store = record_store(load_config(root, []))
    entries = store.everything()
    assert set(entries) == {"records/customers/ann.md", "records/customers/bob.yaml",
                            "records/interactions/calls.yaml"}
    calls = entries["records/interactions/calls.yaml"][1]
    assert calls.interactions == tuple(i for i in result.derived.portfolio.interactions)
    assert len(list(store.path.glob("*.pickle"))) == len({store._shard(r) for r in entries})


def test_an_unwritable_cache_is_only_skipped(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    store = NoteStore(blocked / "notes.json", lambda text: f"<p>{text}</p>")
    assert store.html("x") == "<p>x</p>"
    store.save()  # cannot create the folder: no error
    assert blocked.read_text() == "not a folder"


def _converting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The record files converted from here on."""
    from custsite import validate

    return _calls(monkeypatch, validate, "load_file", lambda source: source.rel)


def test_warm_builds_after_edits_equal_cold_ones(scratch_portfolio: ScratchFactory,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted files, rendered notes, fits and the contacts' pages that show nothing that
    changed are kept between builds, and a build that uses them writes the very bytes of a
    build without any cache."""
    root = scratch_portfolio({**FILES, "personas/p.md":
                              "---\nname: Everyone\nmatch: {kind: person}\n---\nStory.\n",
                              "records/organizations/acme.yaml": "name: Acme\n",
                              "records/organizations/zeta.yaml": "name: Zeta\n",
                              "records/customers/dee.yaml": "name: Dee\norganization: acme\n"})
    seen = _converting(monkeypatch)
    rendered = _rendering(monkeypatch)
    build(root)
    assert "customers/ann/index.html" in rendered
    edits = [
        ("records/customers/bob.yaml", "name: Bob Stone", "name: Bob Stoner"),
        ("records/interactions/calls.yaml", "2026-01-12", "2026-01-13"),
        ("records/interactions/calls.yaml", "a __quote__", "a __quote__ twice"),
        ("records/customers/cid.yaml", None, "name: Cid Ray\nreferred_by: ann\n"),
        # No persona's member: the persona's page still says what share of all it holds.
        ("records/customers/eve.yaml", None, "name: Eve Corp\nkind: company\n"),
        ("personas/p.md", "kind: person", "kind: company"),
        ("records/customers/cid.yaml", None, None),
        # An organization renamed: its page, and every list that shows its contacts.
        ("records/organizations/acme.yaml", "name: Acme", "name: Acme Inc"),
        ("records/customers/bob.yaml", "name: Bob Stoner", "name: Bob Stoner\norganization: acme"),
        ("records/customers/dee.yaml", "name: Dee", "name: Dee Ray"),
    ]
    for rel, old, new in edits:
        path = root / rel
        if old is not None and new is not None:
            path.write_text(path.read_text().replace(old, new))
        elif new is not None:
            path.write_text(new)
        else:
            path.unlink()
        seen.clear()
        rendered.clear()
        build(root)
        # Only the edited file, and the personas (their compiled rules are not kept).
        assert set(seen) <= {rel, "personas/p.md"}, rel
        if rel == "records/customers/bob.yaml" and "organization" not in new:
            assert "customers/bob/index.html" in rendered  # Ann's page does not show Bob
            assert "customers/ann/index.html" not in rendered
            assert "organizations/acme/index.html" not in rendered  # nor does Acme's
            # Lists are made again if they show Bob; the others, and the 404 page, are kept.
            stage = f"stages/{check(root).derived.contacts['bob'].stage}/index.html"
            assert stage in rendered and "index.html" in rendered
            assert set(rendered) & {"404.html", "segments/index.html",
                                    "stages/customer/index.html"} == set()
        if rel == "records/customers/dee.yaml":
            assert "organizations/acme/index.html" in rendered
            assert "organizations/zeta/index.html" not in rendered
        assert _tree(root / "site") == _tree(_built_cold(root, tmp_path)), rel


def test_a_persona_edit_makes_again_only_the_contacts_it_moves(
        scratch_portfolio: ScratchFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """After a persona's rule is edited every contact is matched again, but one who fits the
    same personas as before stays as it was and its page is kept; the page of one whose fit
    changed is made again."""
    root = scratch_portfolio({
        **FILES, "records/customers/ann.md": "---\nname: Ann Lee\nsector: roofing\n---\nMet.\n",
        "personas/p.md": "---\nname: P\nmatch: {kind: person}\n---\nStory.\n"})
    build(root)
    rendered = _rendering(monkeypatch)
    persona = root / "personas/p.md"
    persona.write_text(persona.read_text().replace("{kind: person}",
                                                   "{kind: person, sector: roofing}"))
    build(root)
    assert "customers/bob/index.html" in rendered and "personas/p/index.html" in rendered
    assert "customers/ann/index.html" not in rendered
    assert _tree(root / "site") == _tree(_built_cold(root, tmp_path))


def _rendering(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the pages rendered from here on."""
    rendered: list[str] = []
    real = render.Renderer.page

    def page(self: render.Renderer, spec: Any) -> Any:
        rendered.append(spec.path)
        return real(self, spec)

    monkeypatch.setattr(render.Renderer, "page", page)
    return rendered


def _built_cold(root: Path, tmp_path: Path) -> Path:
    """The site a copy of the portfolio at `root` gets from a build without any cache."""
    cold = tmp_path / "cold"
    shutil.rmtree(cold, ignore_errors=True)
    shutil.copytree(root, cold, ignore=shutil.ignore_patterns(".custsite-cache", "site"))
    build(cold)
    return cold / "site"


def test_records_kept_by_someone_else_are_never_unpickled(scratch_portfolio: ScratchFactory,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Kept records are pickles, signed with this user's key: a cache folder from another
    user or machine (committed to a repository, say) is converted afresh, and a pickle that
    would run code is never loaded."""
    root = scratch_portfolio(FILES)
    build(root)
    shards = record_store(load_config(root, [])).path
    seen = _converting(monkeypatch)
    build(root, output=tmp_path / "again")
    assert seen == []  # all taken from the memos
    # Another user's key: nothing is taken.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-home"))
    build(root, output=tmp_path / "other")
    assert len(seen) == 3
    # A planted pickle that would run code when loaded, with a forged signature.
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (marker.write_text, ("ran",))

    shards.mkdir(parents=True, exist_ok=True)
    for k in range(RecordStore.SHARDS):  # the record store, which the memos are not in
        (shards / f"{k:02d}.pickle").write_bytes(
            b"\0" * 32 + pickle.dumps({"x": ("y", Exploit())}))
    for kept in (root / ".custsite-cache").glob("memos-*.pickle"):  # the last build's memos
        kept.write_bytes(b"\0" * 32 + pickle.dumps(Exploit()))
    seen.clear()
    build(root, output=tmp_path / "planted")
    assert not marker.exists() and len(seen) == 3
    assert _tree(tmp_path / "planted") == _tree(tmp_path / "again")


def test_validate_writes_no_cache(scratch_portfolio: ScratchFactory) -> None:
    from .conftest import run

    root = scratch_portfolio(FILES)
    assert run("validate", root=root).exit_code == 0
    assert not (root / ".custsite-cache").exists()


def test_a_kept_page_must_still_be_there(scratch_portfolio: ScratchFactory) -> None:
    """A contact's page is taken from the previous site only from the folder the last build
    wrote, and only if it is still there."""
    root = scratch_portfolio(FILES)
    build(root)
    page = root / "site/customers/ann/index.html"
    expected = page.read_bytes()
    page.unlink()
    (root / "records/customers/bob.yaml").write_text("name: Bob Stoner\n")
    build(root)
    assert page.read_bytes() == expected
    shutil.rmtree(root / "site")
    (root / "site").mkdir()  # another folder at the same path: nothing is taken from it
    (root / "site/.custsite-site").write_text("")
    (root / "records/customers/bob.yaml").write_text("name: Bob Stone\n")
    build(root)
    assert page.read_bytes() == expected


def test_every_field_of_contacts_holding_interactions_is_known_to_the_page_hashes() -> None:
    """Page hashes name interactions by their file's content (reuse.INTERACTION_FIELDS): a
    new field holding interactions must be named there, or its changes would go unseen."""
    import dataclasses

    from custsite.derive import Contact
    from custsite.reuse import INTERACTION_FIELDS

    holding = {f.name for f in dataclasses.fields(Contact) if "Interaction" in str(f.type)}
    assert holding == INTERACTION_FIELDS


def test_a_contact_page_is_hashed_again_only_if_what_it_shows_changed(
        scratch_portfolio: ScratchFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A contact's page hash is taken from the memos while the contact is the same object
    and what its page depends on has the same hashes (see reuse.page_hashes): after an edit,
    only the pages of the edited contact and of those that name it (a referral) are hashed
    again, and the site is the one a cold build writes."""
    from custsite import reuse

    root = scratch_portfolio({**FILES, "records/customers/cal.yaml":
                              "name: Cal Ray\nreferred_by: bob\n",
                              "records/customers/dee.yaml": "name: Dee Ray\n"})
    build(root)
    real = reuse._hash
    pages: list[tuple[Any, ...]] = []  # the hashes of contacts' pages: of a list of hashes

    def hashing(*parts: Any) -> str:
        if len(parts) == 2 and isinstance(parts[1], list) and \
                all(isinstance(p, str) for p in parts[1]):
            pages.append(parts)
        return real(*parts)

    monkeypatch.setattr(reuse, "_hash", hashing)
    bob = root / "records/customers/bob.yaml"
    bob.write_text("name: Bob Stoner\n")
    build(root)
    assert len(pages) == 2  # Bob's and Cal's, who was referred by him; not Ann's nor Dee's
    assert _tree(root / "site") == _tree(_built_cold(root, tmp_path))


def test_compiled_templates_are_kept_signed(scratch_portfolio: ScratchFactory,
                                           tmp_path: Path) -> None:
    """Jinja's compiled templates are kept between builds; compiled code runs when loaded,
    so a file not signed with this user's key (planted code, here) is compiled afresh."""
    import io
    import marshal

    from jinja2.bccache import bc_magic

    from custsite.cache import write_signed

    root = scratch_portfolio(FILES)
    build(root, output=tmp_path / "one")
    (folder,) = (root / ".custsite-cache").glob("templates-*")
    kept = sorted(folder.glob("*.bytecode"))
    assert len(kept) >= 5
    marker = tmp_path / "pwned"
    code = compile(f"with open({str(marker)!r}, 'w') as f: f.write('ran')", "x", "exec")

    def planted(path: Path) -> bytes:
        """The kept template with its code replaced, checksum kept: Jinja would run it."""
        kept = io.BytesIO(path.read_bytes()[32:])
        assert kept.read(len(bc_magic)) == bc_magic
        checksum = pickle.load(kept)
        return bc_magic + pickle.dumps(checksum, 2) + marshal.dumps(code)

    for path in kept:
        path.write_bytes(bytes(32) + planted(path))  # a forged signature
    build(root, output=tmp_path / "two")
    assert not marker.exists()
    assert _tree(tmp_path / "two") == _tree(tmp_path / "one")
    for path in kept:  # signed with the user's own key, the same file would run
        payload = planted(path)
        write_signed(path, lambda out, payload=payload: out.write(payload))
    with pytest.raises(Exception):  # noqa: B017 - the planted module is no template
        build(root, output=tmp_path / "three")
    assert marker.read_text() == "ran"


def _built_settled(scratch_portfolio: ScratchFactory) -> Path:
    """A portfolio of FILES whose records were last modified an hour ago (settled: see
    cache.SETTLED_NS), built once."""
    import time

    root = scratch_portfolio(FILES)
    hour_ago = time.time() - 3600
    for path in (root / "records").rglob("*.*"):
        os.utime(path, (hour_ago, hour_ago))
    build(root)
    return root


def test_files_settled_when_read_are_not_read_again(scratch_portfolio: ScratchFactory,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A file last modified well before a build read it is taken from the last build's
    memos by its signature alone; one written just before (a coarse file system clock could
    give its next version the same signature) is read again, and its new bytes are what the
    site shows."""
    from custsite import memos, parse, validate

    root = _built_settled(scratch_portfolio)
    digested: list[bytes] = []
    real = parse.content_digest
    for module in (memos, validate, parse):  # wherever read bytes are hashed
        monkeypatch.setattr(module, "content_digest",
                            lambda data: digested.append(data) or real(data))
    seen = _converting(monkeypatch)
    bob = root / "records/customers/bob.yaml"
    bob.write_text("name: Bob Stoner\n")
    build(root)
    assert seen == ["records/customers/bob.yaml"]
    others = {(root / rel).read_bytes() for rel in FILES
              if rel.startswith("records/") and rel != "records/customers/bob.yaml"}
    assert b"name: Bob Stoner\n" in digested and not others & set(digested)  # not read

    # Bob's file, just read, is rewritten with as many bytes and the same modification time.
    before = bob.stat()
    bob.write_text("name: Bob Stonex\n")
    os.utime(bob, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert validate.signature(bob) == (before.st_mtime_ns, before.st_size, before.st_ino)
    digested.clear()
    build(root, as_of=dt.date(2026, 6, 2))  # another day: something for the build to do
    assert b"name: Bob Stonex\n" in digested and not others & set(digested)
    assert "Bob Stonex" in (root / "site/customers/bob/index.html").read_text()


def test_a_warm_build_looks_at_each_file_once(scratch_portfolio: ScratchFactory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The signatures taken for the fingerprint are those the kept files are checked by:
    no file is looked at a second time, and an edit made before the build is still seen."""
    from custsite import memos

    root = _built_settled(scratch_portfolio)
    again = _calls(monkeypatch, memos, "signature")
    seen = _converting(monkeypatch)
    (root / "records/customers/bob.yaml").write_text("name: Bob Stoner\n")
    build(root)
    assert again == []
    assert seen == ["records/customers/bob.yaml"]
    assert "Bob Stoner" in (root / "site/customers/bob/index.html").read_text()


def test_a_portfolio_named_another_way_is_derived_warm(scratch_portfolio: ScratchFactory,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from its own folder after a build with `-C DIR` (a path written another way),
    the portfolio is the same: only the edited contact is derived again."""
    from custsite import derive

    root = scratch_portfolio(FILES)
    build(root)
    derived = _calls(monkeypatch, derive, "_base_contact", lambda customer: customer.id)
    (root / "records/customers/bob.yaml").write_text("name: Bob Stoner\n")
    monkeypatch.chdir(root)
    build(Path("."))
    assert derived == ["bob"]


def test_an_edit_rewrites_only_the_rows_of_the_contacts_it_changed(
        scratch_portfolio: ScratchFactory) -> None:
    """The kept table rows are in shards by contact: after one customer is edited, only the
    shard holding that customer's rows is written again, and it holds the new rows; when
    every page's hash changes, every shard is."""
    from custsite.reuse import RowStore

    names = [f"c{n:02d}" for n in range(40)]
    root = scratch_portfolio({**FILES, **{f"records/customers/{cid}.yaml": f"name: Person {cid}\n"
                                          for cid in names}})
    build(root)
    folder = root / ".custsite-cache" / RowStore.FOLDER

    def shards() -> dict[str, int]:
        return {p.name: p.stat().st_ino for p in folder.glob("*.pickle")}

    before = shards()
    assert len(before) == RowStore.SHARDS
    (root / "records/customers/c07.yaml").write_text("name: Person Seven\n")
    build(root)
    after = shards()
    changed = [name for name in before if after[name] != before[name]]
    assert len(changed) == 1
    assert b"Person Seven" in (folder / changed[0]).read_bytes()
    build(root, as_of=dt.date(2026, 6, 2))  # another day: every page's hash, every shard
    holding = {p.name for p in folder.glob("*.pickle")
               if pickle.loads(p.read_bytes()[32:])["rows"]}  # signed: the key, then rows
    assert len(holding) > 1
    assert all(shards()[name] != after[name] for name in holding)


def test_a_warm_build_derives_only_what_changed(scratch_portfolio: ScratchFactory,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A build starts from the last build's memos (see memos): after an edit, only the
    edited file is converted and only its contact derived and hashed again, as in the dev
    server; the memos are complete when the build returns, even after a build that failed."""
    from custsite import derive, memos, reuse

    root = scratch_portfolio({**FILES, "records/customers/cal.yaml": "name: Cal Ray\n",
                              "personas/p.md":
                              "---\nname: Everyone\nmatch: {kind: person}\n---\nStory.\n"})
    build(root)
    (kept,) = (root / ".custsite-cache").glob("memos-*.pickle")
    config = load_config(root, [])
    assert set(memos.load_memos(kept).files) == {
        "records/customers/ann.md", "records/customers/bob.yaml", "records/customers/cal.yaml",
        "records/interactions/calls.yaml", "personas/p.md"}
    seen = _converting(monkeypatch)
    derived = _calls(monkeypatch, derive, "_base_contact", lambda customer: customer.id)
    hashed = _calls(monkeypatch, reuse, "_hash", lambda key: key)
    figured = _calls(monkeypatch, render, "interaction_figures")  # the dashboard's
    recorded: list[str] = []  # contacts' data records made (the others' are kept)
    real_record = render.Renderer.record

    def record(self: render.Renderer, contact: Any) -> Any:
        recorded.append(contact.id)
        return real_record(self, contact)

    monkeypatch.setattr(render.Renderer, "record", record)
    bob = root / "records/customers/bob.yaml"
    bob.write_text("name: Bob Stoner\n")
    build(root)
    assert seen == ["records/customers/bob.yaml"]
    assert set(recorded) == {"ann", "bob"}  # Ann's: the first, for the CSV file's columns
    assert derived == ["bob"]
    assert "bob" in hashed and "ann" not in hashed
    assert figured == []  # no interaction changed
    calls = root / "records/interactions/calls.yaml"
    calls.write_text(calls.read_text().replace("2026-01-12", "2026-01-13"))
    build(root)
    assert len(figured) == 1 and sorted(derived) == ["ann", "bob", "bob"]
    # A build with an error keeps what it read: the fix is the only file read next.
    bob.write_text("name: [Bob\n")
    with pytest.raises(ValidationFailed):
        build(root)
    seen.clear()
    derived.clear()
    bob.write_text("name: Bob Stonest\n")
    build(root)
    assert seen == ["records/customers/bob.yaml"] and derived == ["bob"]
    assert "Bob Stonest" in (root / "site/customers/bob/index.html").read_text()
    # Those builds left the memos as they were (see memos.still_kept): the store holds what
    # they converted. Without the memos, which hold the files a build read, all the others
    # are converted again.
    assert set(record_store(config).everything()) == {"records/customers/bob.yaml"}
    kept.unlink()
    seen.clear()
    bob.write_text("name: Bob Stonier\n")
    build(root)
    assert sorted(seen) == ["personas/p.md", "records/customers/ann.md",
                            "records/customers/bob.yaml", "records/customers/cal.yaml",
                            "records/interactions/calls.yaml"]
    assert "Bob Stonier" in (root / "site/customers/bob/index.html").read_text()


def test_a_small_edit_leaves_the_memos_as_they_are(scratch_portfolio: ScratchFactory,
                                                  tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """After an edit of a few customers or organizations the memos on disk stay the last
    ones written (see memos.still_kept), and the record store keeps what was converted
    since: each later build still converts only what was edited, derives only the contacts
    changed since, and writes the bytes of a cold build. An edit of interactions or
    personas, or of more files, writes them anew, with the files as they are."""
    from custsite import derive, memos
    from custsite.parse import content_digest

    root = scratch_portfolio({**FILES, "records/customers/cal.yaml": "name: Cal Ray\n",
                              "personas/p.md":
                              "---\nname: Everyone\nmatch: {kind: person}\n---\nStory.\n"})
    config = load_config(root, [])
    build(root)
    (kept,) = (root / ".custsite-cache").glob("memos-*.pickle")
    written = kept.read_bytes()
    assert record_store(config).everything() == {}  # the memos hold every file
    bob = root / "records/customers/bob.yaml"

    def stored() -> dict[str, str]:
        return {rel: entry[0] for rel, entry in record_store(config).everything().items()}

    def in_memos(path: Path) -> str:
        return memos.load_memos(kept).files[path.relative_to(root).as_posix()].digest

    seen = _converting(monkeypatch)
    derived = _calls(monkeypatch, derive, "_base_contact", lambda customer: customer.id)
    first = in_memos(bob)
    for name in ("Bob Stoner", "Bob Stonest"):
        seen.clear()
        derived.clear()
        bob.write_text(f"name: {name}\n")
        build(root)
        assert kept.read_bytes() == written  # not written again
        assert seen == ["records/customers/bob.yaml"] and derived == ["bob"]
        assert stored() == {"records/customers/bob.yaml": content_digest(bob.read_bytes())}
        assert in_memos(bob) == first
        assert _tree(root / "site") == _tree(_built_cold(root, tmp_path))
    calls = root / "records/interactions/calls.yaml"
    calls.write_text(calls.read_text().replace("2026-01-12", "2026-01-13"))
    build(root)
    assert kept.read_bytes() != written
    assert in_memos(bob) == content_digest(bob.read_bytes())
    assert in_memos(calls) == content_digest(calls.read_bytes())
    written = kept.read_bytes()
    persona = root / "personas/p.md"
    persona.write_text(persona.read_text().replace("Story.", "A story."))
    build(root)
    assert kept.read_bytes() != written
    written = kept.read_bytes()
    monkeypatch.setattr(memos, "STALE_FILES", 1)
    seen.clear()
    for rel in ("records/customers/bob.yaml", "records/customers/cal.yaml"):
        (root / rel).write_text((root / rel).read_text().replace("name: ", "name: New "))
    build(root)
    assert sorted(seen) == ["records/customers/bob.yaml", "records/customers/cal.yaml"]
    assert kept.read_bytes() != written
    assert in_memos(root / "records/customers/cal.yaml") == \
        content_digest((root / "records/customers/cal.yaml").read_bytes())
    assert _tree(root / "site") == _tree(_built_cold(root, tmp_path))


def test_background_work_is_waited_for_and_its_failure_only_logged(tmp_path: Path) -> None:
    from custsite.forking import Background

    target = tmp_path / "made"
    done = Background(lambda: target.write_text("yes"))
    done.wait()
    assert target.read_text() == "yes"

    def fail() -> None:
        raise RuntimeError("nothing to see")

    failed = Background(fail)  # no traceback, no exception here
    failed.wait()
    failed.wait()  # waiting twice is harmless


def test_files_checked_ahead_are_read_as_they_were_checked(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A build has its cache files checked by a forked process while it does other work
    (cache.check_ahead): what it reads is what it would have read without, a file signed by
    no one is refused the same, and so is one changed after it was checked. Without the
    process (it could not be forked), each file is checked as it is read."""
    from custsite import cache

    good, other, forged, missing, unlisted = (tmp_path / f"{n}.pickle" for n in
                                              ("good", "other", "forged", "missing", "unlisted"))
    assert cache.write_signed_pickle(good, {"kept": [1, 2]})
    assert cache.write_signed_pickle(other, ("other", 3))
    assert cache.write_signed_pickle(unlisted, "unlisted")
    forged.write_bytes(bytes(32) + pickle.dumps("planted"))
    listed = [good, forged, missing, other]
    for forking in (True, False):
        if not forking:
            def refused() -> int:
                raise OSError("no fork here")
            monkeypatch.setattr(cache.os, "fork", refused)
        with cache.check_ahead(listed):
            assert cache._AHEAD is not None and (cache._AHEAD.pid != 0) is forking
            assert cache.read_signed_pickle(other) == ("other", 3)  # out of order
            assert cache.read_signed_pickle(good) == {"kept": [1, 2]}
            assert cache.read_signed_pickle(good) == {"kept": [1, 2]}  # again: as usual
            assert cache.read_signed_pickle(forged) is None
            assert cache.read_signed_pickle(missing) is None
            assert cache.read_signed_pickle(unlisted) == "unlisted"
        assert cache._AHEAD is None
    monkeypatch.undo()
    # Files not taken are closed, and the checking process is waited for.
    with cache.check_ahead(listed):
        ahead = cache._AHEAD
        assert ahead is not None
        opened = [data for _, data in ahead.files.values() if data is not None]
        pid = ahead.pid
    assert len(opened) == 3 and all(data.closed for data in opened)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)


def test_an_edit_checks_again_only_the_addresses_and_numbers_it_changed(
        scratch_portfolio: ScratchFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an edit, the address and number a file had when last converted are not
    checked by email_validator or phonenumbers again (fields.known_good); new ones are, and
    a wrong one is reported as ever."""
    import email_validator
    import phonenumbers

    from custsite import fields

    monkeypatch.setattr(fields, "_GOOD_DOMAINS", set())
    monkeypatch.setattr(fields, "_GOOD_PHONES", set())
    ann = "records/customers/ann.yaml"
    root = scratch_portfolio({**FILES, "custsite.yaml": "as_of: 2026-06-01\ndefault_region: FR\n",
                              ann: "name: Ann Lee\nemail: ann@lee.example.org\n"
                                   "phone: '+33612345678'\n"})
    (root / "records/customers/ann.md").unlink()
    build(root)
    asked = _calls(monkeypatch, email_validator, "validate_email")
    parsed = _calls(monkeypatch, phonenumbers, "parse")
    monkeypatch.setattr(fields, "_GOOD_DOMAINS", set())  # as in a new process
    monkeypatch.setattr(fields, "_GOOD_PHONES", set())

    def edit(text: str) -> None:
        (root / ann).write_text(text, encoding="utf-8")

    edit("name: Ann Leigh\nemail: ann@lee.example.org\nphone: '+33612345678'\n")
    build(root)
    assert (asked, parsed) == ([], [])
    edit("name: Ann Leigh\nemail: ann@leigh.example.org\nphone: '+33 6 12 34 56 79'\n")
    build(root)
    assert (asked, parsed) == (["ann@leigh.example.org"], ["+33 6 12 34 56 79"])
    edit("name: Ann Leigh\nemail: ann@@leigh.example.org\nphone: '+33 6 12'\n")
    with pytest.raises(ValidationFailed) as failed:
        build(root)
    assert {p.code for p in failed.value.problems} == {"invalid-email", "invalid-phone"}


def test_what_a_build_made_is_left_to_the_exit_only_when_the_process_ends_after_it(
        scratch_portfolio: ScratchFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the console entry point (which ends the process right after the command), a
    build's memos are left to the exit rather than freed object by object; called as a
    library, nothing is kept once a build returns."""
    import gc
    import weakref

    from custsite import build as building
    from custsite.memos import BuildMemos

    root = scratch_portfolio(FILES)
    build(root)
    seen: list[weakref.ref[BuildMemos]] = []
    real = building.load_memos

    def noted(*args: Any, **kwargs: Any) -> BuildMemos:
        memos = real(*args, **kwargs)
        seen.append(weakref.ref(memos))
        return memos

    monkeypatch.setattr(building, "load_memos", noted)
    ann = root / "records/customers/ann.md"
    ann.write_text(ann.read_text().replace("Ann Lee", "Ann Leigh"))
    build(root)
    gc.collect()
    assert seen and seen[-1]() is None  # freed
    monkeypatch.setattr(building, "LEFT_TO_EXIT", [])
    ann.write_text(ann.read_text().replace("Ann Leigh", "Ann Lea"))
    build(root)
    gc.collect()
    kept = seen[-1]()
    assert kept is not None and any(made is kept for made in building.LEFT_TO_EXIT)


def test_parts_pickled_one_after_the_other_read_back_sharing_what_they_share(
        tmp_path: Path) -> None:
    """The memos are pickled in parts by one pickler (see memos.FILE_PARTS): read back part
    by part, an object two parts hold is one object again; a file signed by no one gives
    nothing, checked ahead or not; reading stops at a part that cannot be loaded."""
    from custsite import cache

    shared = ["shared"]
    kept, forged = tmp_path / "kept.pickle", tmp_path / "forged.pickle"

    def parts(out: Any) -> None:
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        for part in ({"a": shared}, [shared, 2], "last"):
            pickler.dump(part)

    assert cache.write_signed(kept, parts)
    forged.write_bytes(bytes(32) + pickle.dumps("planted") + pickle.dumps("again"))
    for ahead in (False, True):
        with cache.check_ahead([kept, forged]) if ahead else contextlib.nullcontext():
            first, second, last = cache.read_signed_pickles(kept)
            assert first["a"] is second[0] and second == [["shared"], 2] and last == "last"
            assert list(cache.read_signed_pickles(forged)) == []
    payload = kept.read_bytes()
    kept.write_bytes(payload[:-4])  # the last part cut short, and so no longer signed
    assert list(cache.read_signed_pickles(kept)) == []
    # Signed, but the second part names a module no longer there (an older checkout's).
    gone = pickle.dumps(1, protocol=0) + b"cno_such_module\nthing\n." + pickle.dumps(3)
    assert cache.write_signed(kept, lambda out: out.write(gone))
    assert list(cache.read_signed_pickles(kept)) == [1]


def test_a_cold_build_leaves_the_pages_hashes_to_the_process_writing_the_memos(
        scratch_portfolio: ScratchFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No page of a cold build can be kept, so its pages' hashes (for the next build) are
    made by the process writing the memos, not before the pages are rendered; the next build
    keeps every page but those an edit changed. A build after an edit hashes them itself."""
    from custsite import reuse
    from custsite.render import Renderer

    where = tmp_path / "hashed-in"
    real = reuse.page_hashes

    def noted(*args: Any) -> dict[str, str]:
        with where.open("a") as log:
            log.write(f"{os.getpid()}\n")
        return real(*args)

    monkeypatch.setattr(reuse, "page_hashes", noted)
    root = scratch_portfolio(FILES)
    build(root)
    assert os.getpid() not in map(int, where.read_text().split())  # another process's
    rendered: list[str] = []
    page = Renderer.page

    def counted(self: Renderer, spec: Any) -> Any:
        rendered.append(spec.path)
        return page(self, spec)

    monkeypatch.setattr(Renderer, "page", counted)
    (root / "records/customers/bob.yaml").write_text("name: Bob Stoner\n")
    build(root)
    assert "customers/bob/index.html" in rendered and "customers/ann/index.html" not in rendered
    assert where.read_text().split()[-1] == str(os.getpid())
    assert _tree(root / "site") == _tree(_built_cold(root, tmp_path))
