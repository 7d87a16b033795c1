"""Pages rendered by several processes: the same site, the same errors, the same notes cache."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from custsite import output, parallel
from custsite.build import build
from custsite.errors import TemplateFailed
from custsite.sources import RECORD_SUFFIXES

from .conftest import AS_OF, ScratchFactory
from .test_output import _portfolio, digest


@pytest.fixture
def every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Processes even for the small example portfolio, and small chunks: every process
    renders some pages, the data files included."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_PAGES", 0)
    monkeypatch.setattr(parallel, "CHUNK", 3)


def _notes(root: Path) -> dict[str, str]:
    (found,) = (root / ".custsite-cache").glob("notes-*.pickle")
    data: dict[str, str] = pickle.loads(found.read_bytes()[32:])  # signed
    return data


@pytest.mark.usefixtures("every_size")
def test_processes_make_the_same_site(tmp_path: Path) -> None:
    one, three = _portfolio(tmp_path / "a"), _portfolio(tmp_path / "b")
    serial = build(one, as_of=AS_OF, jobs=1)
    forked = build(three, as_of=AS_OF, jobs=3)
    assert (serial.files, serial.contacts) == (forked.files, forked.contacts)
    assert digest(one / "site") == digest(three / "site")
    # The notes each process rendered came back to the cache.
    assert _notes(one) == _notes(three) and _notes(three)


@pytest.mark.usefixtures("every_size")
def test_an_error_in_a_process_is_located_and_keeps_the_old_site(tmp_path: Path) -> None:
    root = _portfolio(tmp_path)
    build(root, as_of=AS_OF, jobs=2)
    before = digest(root / "site")
    (root / "templates").mkdir(exist_ok=True)
    (root / "templates/customer.html").write_text("{% if contact.id.startswith('z') %}"
                                                  "{% else %}{{ nope.missing }}{% endif %}\n")
    with pytest.raises(TemplateFailed) as caught:
        build(root, as_of=AS_OF, jobs=2)
    found = caught.value.problem
    assert (found.code, found.location.path, found.location.line) == (
        "template-error", "templates/customer.html", 1)
    assert digest(root / "site") == before
    assert not list(tmp_path.glob("portfolio/.site.new-*"))  # no half-written folder left


def test_processes_read_the_same_records(monkeypatch: pytest.MonkeyPatch,
                                         scratch_portfolio: ScratchFactory) -> None:
    """Files read in other processes come back as the same records and problems, in order,
    broken files included."""
    from custsite import validate
    from custsite.build import check

    root = _portfolio(scratch_portfolio({}))
    (root / "records/customers/broken.yaml").write_text("name: [unclosed\n")
    (root / "records/interactions/odd.yaml").write_text("- {customer: nobody, kind: call}\n")
    monkeypatch.setattr(validate, "MIN_PARALLEL_FILES", 0)
    serial, forked = check(root, as_of=AS_OF, jobs=1), check(root, as_of=AS_OF, jobs=3)
    assert [p.format() for p in forked.problems] == [p.format() for p in serial.problems]
    assert any(p.code == "yaml-syntax" for p in forked.problems)
    assert forked.derived.contacts == serial.derived.contacts
    assert forked.derived.portfolio.personas.keys() == serial.derived.portfolio.personas.keys()
    assert forked.derived.segments == serial.derived.segments


def test_records_read_by_processes_are_kept(monkeypatch: pytest.MonkeyPatch,
                                            scratch_portfolio: ScratchFactory,
                                            tmp_path: Path) -> None:
    """The records other processes converted (sent back pickled, kept in the build's
    memos) serve the next build: it converts no file again and writes the same site.
    Without the memos every file is converted again (the record store holds only the
    records of files edited since memos were made) and the site is the same."""
    from custsite import validate

    from .test_cache import _converting

    root = _portfolio(scratch_portfolio({}))
    monkeypatch.setattr(validate, "MIN_PARALLEL_FILES", 0)
    build(root, as_of=AS_OF, jobs=3)
    seen = _converting(monkeypatch)
    build(root, as_of=AS_OF, jobs=1, output=tmp_path / "memos")
    assert seen == []  # all in the last build's memos (see memos)
    for memos in (root / ".custsite-cache").glob("memos-*"):
        memos.unlink()
    build(root, as_of=AS_OF, jobs=1, output=tmp_path / "again")
    records = {p.relative_to(root).as_posix() for folder in ("records", "personas")
               for p in (root / folder).rglob("*")
               if p.is_file() and p.name.endswith(RECORD_SUFFIXES)}
    assert set(seen) == records
    assert digest(tmp_path / "again") == digest(root / "site")
    assert digest(tmp_path / "memos") == digest(root / "site")


@pytest.mark.usefixtures("every_size")
def test_a_cold_build_has_its_pages_written_by_the_processes_rendering_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No previous site: each rendering process writes its pages into the new folder and
    names them; the main process makes no spare (the next build does). The site, and the
    warm build after an edit that makes the spare and writes through it, are those of one
    process."""
    root, alone = _portfolio(tmp_path / "a"), _portfolio(tmp_path / "b")
    seen: list[tuple[str, bool]] = []
    put = output._Tree.put

    def noted(self: output._Tree, page: output.Page) -> None:
        if not page.kept:  # the pages rendered, not those kept from the previous site
            seen.append((page.path, page.written))
        put(self, page)

    monkeypatch.setattr(output._Tree, "put", noted)
    build(root, as_of=AS_OF, jobs=2)
    assert {written for path, written in seen if path != output.MARKER} == {True}
    build(alone, as_of=AS_OF, jobs=1)
    assert digest(root / "site") == digest(alone / "site")
    assert not list((root / ".custsite-cache").glob("site-*[!t]"))  # the .output record stays
    first = digest(root / "site")
    for portfolio in (root, alone):
        customer = portfolio / "records/customers/ahmed-hassan.yaml"
        customer.write_text(customer.read_text().replace("name: ", "name: Dr ", 1))
    seen.clear()
    build(root, as_of=AS_OF, jobs=2)  # into the spare made meanwhile, of the first's links
    assert seen and not any(written for _, written in seen)
    spare = next((root / ".custsite-cache").glob("site-*[!t]"))  # not the .output record
    assert digest(spare) == first
    shutil.rmtree(alone / "site")
    shutil.rmtree(alone / ".custsite-cache")
    build(alone, as_of=AS_OF, jobs=1)
    assert digest(root / "site") == digest(alone / "site")


def test_the_first_process_takes_pages_from_the_front_the_others_from_the_back() -> None:
    """The first rendering process takes the list pages and the data files from the front,
    the others contacts' pages from the back, until they meet (see parallel._work): the
    table rows, data records and CSV lines the lists are joined from are made by one
    process, not by every process that renders a list."""
    import multiprocessing

    from custsite.forking import take_next

    taken = multiprocessing.get_context("fork").Array("i", [0, 10])
    assert take_next(taken, front=True, size=3) == (0, 3)
    assert take_next(taken, front=False, size=3) == (7, 10)
    assert take_next(taken, front=False, size=3) == (4, 7)
    assert take_next(taken, front=True, size=3) == (3, 4)
    assert take_next(taken, front=True, size=3) is None
    assert take_next(taken, front=False, size=3) is None
