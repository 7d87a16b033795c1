"""A build with nothing to do does nothing, and says so; any change to what the site is made
from builds again."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from custsite.build import build

from .conftest import ScratchFactory, run

FILES: dict[str, str | bytes] = {
    "custsite.yaml": "as_of: 2026-06-01\n",
    "records/customers/ann.yaml": "name: Ann Lee\nstatus: customer\n",  # a warning
    "records/interactions/ann.yaml":
        "- {customer: ann, date: 2026-01-10, kind: call, notes: 'Called.'}\n",
    "personas/p.md": "---\nname: Everyone\nphoto: p.png\nmatch: {kind: person}\n---\nStory.\n",
    "personas/p.png": b"\x89PNG first",
    "templates/_footer.html": "<p>Our footer</p>\n",
}


def _edit(root: Path, rel: str, text: str | bytes) -> None:
    time.sleep(0.01)  # a new modification time even on coarse clocks
    target = root / rel
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)


def test_nothing_changed_nothing_written(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    first = run("build", root=root)
    assert first.exit_code == 0 and "built " in first.output
    page = root / "site/customers/ann/index.html"
    stamp = page.stat().st_mtime_ns
    again = run("build", root=root)
    assert again.exit_code == 0, again.output
    assert "nothing changed since the last build" in again.output
    assert "[status-mismatch]" in again.output  # the warnings of the last build, again
    assert page.stat().st_mtime_ns == stamp
    strict = run("build", "--strict", root=root)
    assert strict.exit_code == 1 and "[status-mismatch]" in strict.output


CHANGES: list[tuple[str, Callable[[Path], None]]] = [
    ("record", lambda r: _edit(r, "records/customers/ann.yaml", "name: Ann Lea\n")),
    ("new record", lambda r: _edit(r, "records/customers/bob.yaml", "name: Bob\n")),
    ("deleted record", lambda r: (r / "records/interactions/ann.yaml").unlink()),
    ("photo", lambda r: _edit(r, "personas/p.png", b"\x89PNG second")),
    ("template", lambda r: _edit(r, "templates/_footer.html", "<p>New footer</p>\n")),
    ("config", lambda r: _edit(r, "custsite.yaml", "as_of: 2026-06-02\n")),
    ("site removed", lambda r: __import__("shutil").rmtree(r / "site")),
    ("state damaged", lambda r: _edit(r, ".custsite-cache/last-build.json", "{")),
]


@pytest.mark.parametrize(("what", "change"), CHANGES, ids=[c[0] for c in CHANGES])
def test_any_change_builds_again(what: str, change: Callable[[Path], None],
                                 scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    assert run("build", root=root).exit_code == 0
    change(root)
    result = run("build", root=root)
    assert result.exit_code == 0, result.output
    assert "built " in result.output, what
    assert "nothing changed" in run("build", root=root).output  # and then it is fresh again


def test_another_date_or_folder_builds_again(scratch_portfolio: ScratchFactory,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    root = scratch_portfolio(FILES)
    assert not build(root).fresh
    assert build(root).fresh
    import datetime as dt

    assert not build(root, as_of=dt.date(2026, 6, 5)).fresh
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "site"
    assert not build(root, output=elsewhere).fresh
    # The last build wrote elsewhere: the default folder is not trusted without a record.
    assert not build(root).fresh


def test_a_build_looks_for_changes_itself_when_the_looking_process_fails(
        scratch_portfolio: ScratchFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked process fingerprints the inputs while the build reads its memos (see
    build.build); if that process fails, the build looks itself, with the same outcome."""
    from custsite import build as building

    def failing(*args: object, **kwargs: object) -> bool:
        raise OSError("cannot look")

    root = scratch_portfolio(FILES)
    assert not build(root).fresh
    monkeypatch.setattr(building, "look", failing)
    assert build(root).fresh
    _edit(root, "records/customers/ann.yaml", "name: Ann Leigh\nstatus: customer\n")
    assert not build(root).fresh
    assert "Ann Leigh" in (root / "site/customers/ann/index.html").read_text()
    assert build(root).fresh


def test_a_build_with_nothing_to_do_stops_reading_its_memos(
        scratch_portfolio: ScratchFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memos are read in parts while a forked process looks for changes; once it has
    told that nothing changed, no further part is read."""
    from custsite import build as building
    from custsite import memos

    root = scratch_portfolio(FILES)
    build(root)
    asked: list[bool] = []
    real = building.nothing_changed

    def noted(*args: object) -> bool:
        answer = real(*args)  # type: ignore[arg-type]
        asked.append(answer)
        return answer

    monkeypatch.setattr(building, "nothing_changed", noted)
    def reading(path: Path, stop: Callable[[], bool], read: list[object]) -> memos.BuildMemos:
        asks = itertools.count()  # the first part always read; each a while after it

        def slowly() -> bool:
            return next(asks) > 0 and (stop() or bool(time.sleep(0.05)))

        return memos.load_memos(path, stop=slowly, read=read)

    monkeypatch.setattr(building, "load_memos", reading)
    monkeypatch.setattr(building, "LEFT_TO_EXIT", [])  # as under the console entry point
    assert build(root).fresh
    assert asked[-1] is True and len(asked) < memos.FILE_PARTS + 4
    # What was read before it stopped is left to the exit, not freed object by object.
    assert any(isinstance(part, list) for part in building.LEFT_TO_EXIT)
