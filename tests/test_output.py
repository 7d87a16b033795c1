"""The site is never half-written: killed builds and builds at once leave a complete site."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from custsite.output import Page

from .conftest import REPO


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _portfolio(tmp: Path) -> Path:
    root = tmp / "portfolio"
    for part in ("records", "personas", "templates", "custsite.yaml"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / part)
    return root


def _build(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "custsite", "-C", str(root), "build"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_killed_builds_leave_the_old_or_the_new_site(tmp_path: Path) -> None:
    root = _portfolio(tmp_path)
    record = root / "records/customers/jenny-park.yaml"
    original = record.read_text()
    edited = original.replace("Jenny Park", "Jenny Parker")

    def full_build(text: str) -> float:
        record.write_text(text)
        start = time.monotonic()
        assert _build(root).wait() == 0
        return time.monotonic() - start

    full_build(edited)
    new = digest(root / "site")
    seconds = full_build(original)
    old = digest(root / "site")
    assert new != old
    rnd = random.Random(4)
    outcomes = []
    for _ in range(12):
        record.write_text(edited)
        proc = _build(root)
        time.sleep(rnd.uniform(0, seconds * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = digest(root / "site")
        assert state in (old, new), "site/ is neither the old nor the new site"
        outcomes.append(state == new)
        if state == new:
            full_build(original)  # back to the old site for the next try
    assert False in outcomes  # some builds were really cut short
    assert _build(root).wait() == 0  # the next build removes what killed ones left
    assert [p.name for p in root.iterdir() if p.name.startswith(".site.")] == []


def test_builds_at_once_do_not_corrupt(tmp_path: Path) -> None:
    root = _portfolio(tmp_path)
    procs = [_build(root) for _ in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "custsite", "-C", str(root), "build", "-o",
                    str(reference)], check=True, capture_output=True)
    assert digest(root / "site") == digest(reference)
    assert [p.name for p in root.iterdir() if p.name.startswith(".site.")] == []


def test_a_full_disk_leaves_the_old_site(tmp_path: Path) -> None:
    import errno

    import pytest

    from custsite.errors import CustsiteError
    from custsite.output import MARKER, Page, write_site

    out = tmp_path / "site"
    write_site([Page("index.html", b"old")], out, root=tmp_path / "portfolio")
    before = digest(out)

    def pages() -> object:
        yield Page("index.html", b"new")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(CustsiteError, match="No space left on device"):
        write_site(pages(), out, root=tmp_path / "portfolio")  # type: ignore[arg-type]
    assert digest(out) == before and (out / MARKER).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.")] == []


def test_no_command_modifies_a_record(tmp_path: Path) -> None:
    root = _portfolio(tmp_path)
    records = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for args in (["validate"], ["build"], ["stats"], ["schema"],
                 ["export", "--format", "sqlite", "-o", str(tmp_path / "x.db")],
                 ["export", "--format", "csv", "-o", str(tmp_path / "csv")]):
        subprocess.run([sys.executable, "-m", "custsite", "-C", str(root), *args],
                       check=False, capture_output=True)
    for path, data in records.items():
        assert path.read_bytes() == data, path


def _read_only(folder: Path, on: bool) -> bool:
    """Make a folder unwritable, for root too (the immutable attribute; root ignores modes);
    False when this machine cannot."""
    import os

    if os.geteuid() != 0:
        folder.chmod(0o555 if on else 0o755)
        return True
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", "+i" if on else "-i", str(folder)], capture_output=True)
    return done.returncode == 0


def test_a_read_only_output_folder_leaves_the_old_site(tmp_path: Path) -> None:
    import os

    import pytest

    root = _portfolio(tmp_path)
    out = tmp_path / "published" / "site"
    command = [sys.executable, "-m", "custsite", "-C", str(root), "build", "-o", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    before = digest(out)
    record = next((root / "records/customers").iterdir())
    for n, folder in enumerate((out.parent, out)):  # no room for the new site; or not in it
        record.write_text(record.read_text() + f"\n# edit {n}\n")  # so that it must write
        if not _read_only(folder, True):
            if os.environ.get("CI"):
                pytest.fail("cannot make a folder read-only here (chattr)")
            pytest.skip("cannot make a folder read-only here (chattr)")
        try:
            done = subprocess.run(command, capture_output=True, text=True)
        finally:
            _read_only(folder, False)
        assert done.returncode == 1, done.stderr
        assert f"Error: cannot write the site into {out}: " in done.stderr
        assert "Traceback" not in done.stderr
        assert digest(out) == before


def test_only_changed_files_are_written(tmp_path: Path) -> None:
    """A page whose bytes did not change is the previous site's file (linked, same inode and
    time); a changed one is written anew; the result is the same bytes as a fresh build."""
    root = _portfolio(tmp_path)
    subprocess.run([sys.executable, "-m", "custsite", "-C", str(root), "build"], check=True,
                   capture_output=True)
    site = root / "site"
    pages = sorted(p for p in (root / "records/customers").iterdir())
    edited = pages[0]
    edited.write_text(edited.read_text().replace("name: ", "name: Renamed ", 1))
    same = site / f"customers/{pages[-1].stem}/index.html"
    changed = site / f"customers/{edited.stem}/index.html"
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (same, changed)}
    subprocess.run([sys.executable, "-m", "custsite", "-C", str(root), "build"], check=True,
                   capture_output=True)
    assert (same.stat().st_ino, same.stat().st_mtime_ns) == before[same]
    assert changed.stat().st_ino != before[changed][0]
    assert b"Renamed" in changed.read_bytes()
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "custsite", "-C", str(root), "build", "-o",
                    str(fresh)], check=True, capture_output=True)
    assert digest(site) == digest(fresh)


def test_page_paths_never_leave_the_site(tmp_path: Path) -> None:
    import pytest

    from custsite.errors import CustsiteError
    from custsite.output import Page, write_site

    for bad in ("../x.html", "/etc/x.html", "a/../../x.html", "a\\..\\x.html", "", "a/\0"):
        with pytest.raises(CustsiteError, match="outside the site folder"):
            write_site([Page(bad, b"x")], tmp_path / "site", root=tmp_path / "portfolio")
    assert not (tmp_path / "x.html").exists()


def _small_site(version: str) -> list[Page]:
    return [Page("index.html", b"home"), Page(f"customers/{version}/index.html", b"v"),
            Page("customers/ann/index.html", f"ann {version}".encode()),
            Page("data/all.json", version.encode())]


def _damage(spare: Path, out: Path) -> None:
    """Damage a spare every way: a changed file (replaced: it may be the live one's link),
    extra files and folders, a folder where a file goes, a file where a folder goes, links."""
    (spare / "customers/ann/index.html").unlink()
    (spare / "customers/ann/index.html").write_bytes(b"tampered")
    (spare / "stray/deep").mkdir(parents=True)
    (spare / "stray/deep/x.html").write_bytes(b"x")
    (spare / "index.html").unlink()
    (spare / "index.html").mkdir()
    (spare / "index.html/inside.html").write_bytes(b"in the way")
    shutil.rmtree(spare / "data")
    (spare / "data").write_bytes(b"not a folder")
    (spare / "customers/link").symlink_to(out)


def test_a_damaged_spare_is_brought_back_to_the_new_site(tmp_path: Path) -> None:
    """The spare (the site before the last, reused to avoid making every folder again) is
    whatever a killed build or a user left there: every file is checked, and the live site
    is never written into through its hard links."""
    from custsite.output import MARKER, write_site

    out, spare, root = tmp_path / "site", tmp_path / "cache/spare", tmp_path / "portfolio"
    write_site(_small_site("one"), out, root=root, spare=spare)
    assert not spare.exists()  # a first build makes none
    write_site(_small_site("two"), out, root=root, spare=spare)
    assert (spare / "customers/one/index.html").is_file()  # the previous site waits
    live = digest(out)
    _damage(spare, out)
    write_site(_small_site("three"), out, root=root, spare=spare)
    fresh = tmp_path / "fresh"
    write_site(_small_site("three"), fresh, root=root)
    assert digest(out) == digest(fresh)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*"))
    assert digest(spare) == live and (spare / MARKER).is_file()  # the last site, untouched
    # Unchanged files are the previous site's: no copy, no new write.
    assert (out / "index.html").stat().st_ino == (spare / "index.html").stat().st_ino


def test_a_failed_build_through_the_spare_leaves_the_live_site(tmp_path: Path) -> None:
    """The spare's unchanged files are the live site's own (hard links): a new page is a new
    file, so a build that fails halfway has changed nothing the live site shows."""
    import pytest

    from custsite.errors import CustsiteError
    from custsite.output import Page, write_site

    out, spare, root = tmp_path / "site", tmp_path / "spare", tmp_path / "portfolio"
    for _ in range(3):
        write_site([Page("index.html", b"home"), Page("a/index.html", b"a")], out, root=root,
                   spare=spare)
    assert (spare / "index.html").stat().st_ino == (out / "index.html").stat().st_ino
    before = digest(out)

    def pages() -> object:
        yield Page("index.html", b"a new home")
        yield Page("a/index.html", b"a new a")
        raise CustsiteError("a template failed")

    with pytest.raises(CustsiteError, match="a template failed"):
        write_site(pages(), out, root=root, spare=spare)  # type: ignore[arg-type]
    assert digest(out) == before


def test_spares_of_output_folders_since_removed_are_pruned(tmp_path: Path) -> None:
    """A build into a folder deleted since (a preview) leaves no spare behind for good; the
    spare of every site that still exists stays."""
    import datetime as dt
    import os

    from custsite.build import SPARE_PREFIX, build, spare_site
    from custsite.config import load_config

    root = _portfolio(tmp_path)
    config = load_config(root, [])
    preview, cache = tmp_path / "preview", root / ".custsite-cache"
    main_spare, preview_spare = spare_site(config, root / "site"), spare_site(config, preview)
    build(root)
    build(root, output=preview)
    assert not main_spare.exists() and not preview_spare.exists()  # a first build makes none
    build(root)
    build(root, output=preview)
    assert main_spare.is_dir() and preview_spare.is_dir()
    assert (cache / f"{preview_spare.name}.output").read_text() == str(preview.resolve())
    # A spare left by an older custsite, which did not record its folder: pruned once old.
    old, recent = cache / f"{SPARE_PREFIX}0000", cache / f"{SPARE_PREFIX}1111"
    old.mkdir()
    recent.mkdir()
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))

    build(root, as_of=dt.date(2026, 6, 2))  # the preview is still there
    assert preview_spare.is_dir() and main_spare.is_dir()
    shutil.rmtree(preview)
    build(root, as_of=dt.date(2026, 6, 3))
    assert not preview_spare.exists() and not (cache / f"{preview_spare.name}.output").exists()
    assert main_spare.is_dir() and (cache / f"{main_spare.name}.output").is_file()
    assert not old.exists() and recent.is_dir()


def _inodes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.lstat().st_ino for p in folder.rglob("*")
            if not p.is_dir() or p.is_symlink()}


def test_a_spare_levelled_with_the_live_site_holds_its_files(tmp_path: Path) -> None:
    """Levelling (done while a build reads, see output.Level) leaves the spare, however
    damaged, holding every folder and regular file of the live site as links to the live
    files, and nothing else; the live site is not touched."""
    from custsite.output import level, write_site

    out, spare, root = tmp_path / "site", tmp_path / "cache/spare", tmp_path / "portfolio"
    write_site(_small_site("one"), out, root=root, spare=spare)
    write_site(_small_site("two"), out, root=root, spare=spare)
    (out / "customers/link.html").symlink_to(out / "index.html")  # not a regular file
    live, live_inodes = digest(out), _inodes(out)
    _damage(spare, out)
    dirs, files = level(spare, out)
    assert digest(out) == live and _inodes(out) == live_inodes  # untouched
    assert dirs == {"", "customers", "customers/ann", "customers/two", "data"}
    regular = {rel: ino for rel, ino in live_inodes.items() if rel != "customers/link.html"}
    assert files == regular and _inodes(spare) == regular
    assert {p.relative_to(spare).as_posix() for p in spare.rglob("*") if p.is_dir()} == \
        dirs - {""}
    assert level(spare, out) == (dirs, files)  # once level, nothing more to do


def test_the_second_build_makes_the_spare_while_it_reads(tmp_path: Path) -> None:
    """A first build makes no spare (it may be the only one); levelling makes it from
    nothing for the next, which writes through it: the previous site is the spare then."""
    from custsite.output import Level, write_site

    out, spare, root = tmp_path / "site", tmp_path / "cache/spare", tmp_path / "portfolio"
    write_site(_small_site("one"), out, root=root, spare=spare)
    assert not spare.exists()
    first, first_inodes = digest(out), _inodes(out)
    levelled = Level.start(out, spare)
    assert levelled is not None
    told = levelled.live_listing()  # what the live site holds, told before it is levelled
    dirs, files = levelled.listing() or (set(), {})
    assert told == (dirs, files)
    assert dirs == {"", "customers", "customers/ann", "customers/one", "data"}
    assert _inodes(spare) == files == first_inodes  # the live files, linked
    write_site(_small_site("two"), out, root=root, spare=spare, levelled=levelled)
    fresh = tmp_path / "fresh"
    write_site(_small_site("two"), fresh, root=root)
    assert digest(out) == digest(fresh) and digest(spare) == first
    assert (out / "index.html").stat().st_ino == first_inodes["index.html"]


def test_pages_are_rendered_while_the_spare_is_levelled(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A build does not wait for a slow spare (made from nothing, say) before rendering:
    the pages are made while it is levelled (up to output.AHEAD_BYTES of them), then
    written through it as ever."""
    from custsite import output
    from custsite.output import Level, write_site

    out, spare, root = tmp_path / "site", tmp_path / "cache/spare", tmp_path / "portfolio"
    write_site(_small_site("one"), out, root=root, spare=spare)
    real = output.level

    def slow(spare: Path, live: Path, tell: Any = None) -> object:
        time.sleep(1)
        return real(spare, live, tell)

    monkeypatch.setattr(output, "level", slow)
    levelled = Level.start(out, spare)
    assert levelled is not None and not levelled.ready()
    made: list[tuple[str, bool]] = []

    def pages() -> object:
        for page in _small_site("two"):
            made.append((page.path, levelled.ready()))
            yield page

    write_site(pages(), out, root=root, spare=spare, levelled=levelled)  # type: ignore[arg-type]
    assert [path for path, _ in made] == [p.path for p in _small_site("two")]
    assert not any(ready for _, ready in made)  # all made before the spare was ready
    fresh = tmp_path / "fresh"
    write_site(_small_site("two"), fresh, root=root)
    assert digest(out) == digest(fresh)
    # At most AHEAD_BYTES are made ahead: the rest waits for the spare.
    monkeypatch.setattr(output, "AHEAD_BYTES", 1)
    levelled = Level.start(out, spare)
    assert levelled is not None
    made.clear()
    write_site(pages(), out, root=root, spare=spare, levelled=levelled)  # type: ignore[arg-type]
    assert [ready for _, ready in made] == [False, True, True, True]
    assert digest(out) == digest(fresh)


@pytest.mark.parametrize("levelling", [True, False])
def test_pages_kept_at_once_are_the_live_sites_files(tmp_path: Path, levelling: bool) -> None:
    """Pages kept from the previous site, named all at once (see output.KeptPages), are its
    very files, through a levelled spare or not; one no longer there is an error."""
    from custsite.errors import CustsiteError
    from custsite.output import KeptPages, Level, write_site

    out, spare, root = tmp_path / "site", tmp_path / "cache/spare", tmp_path / "portfolio"
    for version in ("one", "two"):  # the second makes the spare
        write_site(_small_site(version), out, root=root, spare=spare)
    live = _inodes(out)
    levelled = Level.start(out, spare) if levelling else None
    kept = KeptPages(("customers/ann/index.html", "customers/two/index.html"))
    count = write_site([Page("index.html", b"new home"), kept, Page("data/all.json", b"3")],
                       out, root=root, spare=spare, levelled=levelled)
    assert count == 4
    now = _inodes(out)
    assert now["customers/ann/index.html"] == live["customers/ann/index.html"]
    assert now["customers/two/index.html"] == live["customers/two/index.html"]
    assert (out / "index.html").read_bytes() == b"new home"
    with pytest.raises(CustsiteError, match="kept from a site that is gone"):
        write_site([KeptPages(("customers/zed/index.html",))], out, root=root, spare=spare,
                   levelled=Level.start(out, spare) if levelling else None)


def test_a_build_writes_through_the_levelled_spare_or_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an edit, the process building looks at neither folder (the spare was levelled
    meanwhile by another); when levelling fails, it checks the spare itself. Either way the
    site is the one a cold build writes."""
    from custsite import output
    from custsite.build import build

    root = _portfolio(tmp_path)
    record = root / "records/customers/jenny-park.yaml"
    text = record.read_text()
    build(root)
    build(root, as_of=dt.date(2026, 6, 2))  # the first made no spare: this one made it
    scanned: list[str] = []
    real_scan, real_level = output._scan, output.level

    def scan(folder: str, **kwargs: bool) -> object:
        scanned.append(folder)  # in this process only: the levelling one has its own list
        return real_scan(folder, **kwargs)

    def failing(spare: Path, live: Path) -> object:
        raise OSError("no hard links here")

    monkeypatch.setattr(output, "_scan", scan)
    for n, broken in enumerate((False, True, False)):
        monkeypatch.setattr(output, "level", failing if broken else real_level)
        record.write_text(text.replace("name: Jenny Park", f"name: Jenny Park {n}"))
        scanned.clear()
        build(root)
        assert len(scanned) == (1 if broken else 0)
        cold = tmp_path / f"cold{n}"
        shutil.copytree(root, cold, ignore=shutil.ignore_patterns("site", ".custsite-cache"))
        build(cold)
        assert digest(root / "site") == digest(cold / "site")
        assert f"Jenny Park {n}" in (root / "site/customers/jenny-park/index.html").read_text()


def test_builds_of_one_site_take_turns(tmp_path: Path) -> None:
    """A build holds its output folder's turn from before it looks at the sites to its
    swap: a write waits while another process or thread holds it, and the thread holding it
    may write (the turn is already its own)."""
    from custsite.output import Page, turn, write_site

    out, root = tmp_path / "site", tmp_path / "portfolio"
    released = tmp_path / "released"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from custsite.output import turn\n"
         f"with turn(Path({str(tmp_path)!r})):\n"
         "    print('held', flush=True); time.sleep(1.0)\n"
         f"    Path({str(released)!r}).write_text(str(time.time()))\n"],
        stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    write_site([Page("index.html", b"home")], out, root=root)
    done = time.time()
    assert holder.wait(timeout=30) == 0
    holder.stdout.close()
    assert float(released.read_text()) <= done
    order: list[str] = []

    def other_thread() -> None:
        write_site([Page("index.html", b"from another thread")], out, root=root)
        order.append("other thread")

    with turn(tmp_path):
        waiting = threading.Thread(target=other_thread)
        waiting.start()
        write_site([Page("index.html", b"again")], out, root=root)
        time.sleep(0.3)  # the other thread waits meanwhile, whether it reached the lock or not
        order.append("holder")
    waiting.join(timeout=30)
    assert order == ["holder", "other thread"]
    assert (out / "index.html").read_bytes() == b"from another thread"
