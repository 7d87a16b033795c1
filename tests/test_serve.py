"""`custsite serve`: incremental rebuilds, the dev server in a subprocess, live reload."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from custsite.incremental import Session
from custsite.serve import site_path

from .conftest import AS_OF, ScratchFactory

FILES: dict[str, str | bytes] = {
    "custsite.yaml": f"as_of: {AS_OF.isoformat()}\n",
    "records/customers/ann.yaml": "name: Ann Lee\nreferred_by: bob\n",
    "records/customers/bob.yaml": "name: Bob Stone\norganization: acme\n",
    "records/customers/cid.yaml": "name: Cid Ray\n",
    "records/organizations/acme.yaml": "name: ACME\n",
    "records/interactions/ann.yaml":
        "- {customer: ann, date: 2026-01-10, kind: purchase, amount: 100}\n",
    "personas/p.md": "---\nname: Everyone\nmatch: {kind: person}\n---\nStory.\n",
}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    time.sleep(0.01)  # a new mtime even on coarse clocks
    path.write_text(text.replace(old, new))


# --- the incremental engine, in process -----------------------------------------------------

def test_edit_one_customer_renders_its_pages_only(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    session = Session(root)
    first = session.rebuild()
    assert first.ok and first.full and len(first.parsed) == 6
    assert "customers/cid/index.html" in first.rendered
    _edit(root / "records/customers/cid.yaml", "Cid Ray", "Cid Rayner")
    report = session.rebuild(["records/customers/cid.yaml"])
    assert report.ok and not report.full
    assert report.parsed == ("records/customers/cid.yaml",)
    customer_pages = [p for p in report.rendered if p.startswith("customers/") and
                      p != "customers/index.html"]
    assert customer_pages == ["customers/cid/index.html"]
    assert "organizations/acme/index.html" not in report.rendered
    assert b"Cid Rayner" in session.snapshot.files["customers/cid/index.html"]
    assert b"Cid Rayner" in session.snapshot.files["customers/index.html"]
    # A name shown on other pages re-renders them: Bob's name is on Ann's and ACME's pages.
    _edit(root / "records/customers/bob.yaml", "Bob Stone", "Robert Stone")
    report = session.rebuild(["records/customers/bob.yaml"])
    assert {"customers/bob/index.html", "customers/ann/index.html",
            "organizations/acme/index.html"} <= set(report.rendered)
    assert "customers/cid/index.html" not in report.rendered
    assert b"Robert Stone" in session.snapshot.files["customers/ann/index.html"]


def test_nothing_changed_renders_nothing(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    session = Session(root)
    first = session.rebuild()
    for changed in ([], ["records/customers/cid.yaml"]):  # e.g. a second event for one save
        report = session.rebuild(changed)
        assert report.ok and report.parsed == () and report.rendered == ()
        assert report.epoch == first.epoch  # open pages do not reload
    (root / "records/customers/cid.yaml").unlink()
    assert session.rebuild(["records/customers/cid.yaml"]).epoch == first.epoch + 1


def test_create_rename_delete(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    session = Session(root)
    session.rebuild()
    new = root / "records/customers/dee.yaml"
    new.write_text("name: Dee Fox\n")
    report = session.rebuild(["records/customers/dee.yaml"])
    assert "customers/dee/index.html" in report.rendered
    new.rename(root / "records/customers/dora.yaml")
    report = session.rebuild(["records/customers/dee.yaml", "records/customers/dora.yaml"])
    assert "customers/dee/index.html" in report.removed
    assert "customers/dora/index.html" in session.snapshot.files
    (root / "records/customers/dora.yaml").unlink()
    report = session.rebuild(["records/customers/dora.yaml"])
    assert "customers/dora/index.html" in report.removed
    assert "customers/dora/index.html" not in session.snapshot.files


def test_template_or_config_change_rebuilds_everything(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    session = Session(root)
    session.rebuild()
    (root / "templates").mkdir()
    (root / "templates/_footer.html").write_text("<p>Our footer</p>\n")
    report = session.rebuild(["templates/_footer.html"])
    assert report.full and b"Our footer" in session.snapshot.files["customers/ann/index.html"]
    _edit(root / "custsite.yaml", "as_of", "title: Renamed\nas_of")
    report = session.rebuild(["custsite.yaml"])
    assert report.full and len(report.parsed) == 6
    assert b"Renamed" in session.snapshot.files["index.html"]


def test_broken_then_fixed(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    session = Session(root)
    session.rebuild()
    good = dict(session.snapshot.files)
    _edit(root / "records/customers/cid.yaml", "name: Cid Ray", "name: Cid Ray\nemial: x")
    report = session.rebuild(["records/customers/cid.yaml"])
    assert not report.ok
    assert [p.format() for p in session.snapshot.problems] == [
        "records/customers/cid.yaml:2:1: error: unknown field 'emial' for a customer "
        "(did you mean 'email'?) [unknown-field]"]
    assert session.snapshot.files == good  # the last good pages are kept, not half-updated
    _edit(root / "records/customers/cid.yaml", "\nemial: x", "")
    report = session.rebuild(["records/customers/cid.yaml"])
    assert report.ok and session.snapshot.problems == ()
    assert session.snapshot.files == good


def test_template_error_is_a_located_problem(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio({**FILES, "templates/_footer.html": "ok\n"})
    session = Session(root)
    assert session.rebuild().ok
    (root / "templates/_footer.html").write_text("line one\n{{ nope.missing }}\n")
    report = session.rebuild(["templates/_footer.html"])
    assert not report.ok
    (found,) = report.problems
    assert (found.code, found.location.path, found.location.line) == (
        "template-error", "templates/_footer.html", 2)


def test_lists_are_rendered_after_publishing(scratch_portfolio: ScratchFactory) -> None:
    """After an edit the contact's own page is ready when the site is published; the lists it
    appears in follow, or are rendered first when asked for: never the build before's."""
    root = scratch_portfolio(FILES)
    session = Session(root)
    session.rebuild()
    _edit(root / "records/customers/cid.yaml", "Cid Ray", "Cid Rayner")
    report = session.rebuild(["records/customers/cid.yaml"])
    files = session.snapshot.files
    assert "customers/index.html" in report.rendered and files.pending() > 0
    assert b"Cid Rayner" in files["customers/index.html"]  # rendered for this request
    assert session.finish() is None and files.pending() == 0
    assert b"Cid Rayner" in files["data/portfolio.json"]


def test_a_page_rendered_late_can_still_fail(scratch_portfolio: ScratchFactory) -> None:
    """A template that fails only for some records fails in a page rendered after
    publishing: the site turns into the error page, and the next good save renders all."""
    from custsite.build import check
    from custsite.render import render_site

    template = "{% if contacts|length > 3 %}{{ nope.missing }}{% endif %}ok\n"
    root = scratch_portfolio({**FILES, "templates/customers.html": template})
    session = Session(root)
    session.rebuild()
    before = session.snapshot.files["customers/index.html"]
    (root / "records/customers/dee.yaml").write_text("name: Dee Fox\n")
    assert session.rebuild(["records/customers/dee.yaml"]).ok
    late = session.finish()
    assert late is not None and not late.ok
    (found,) = session.snapshot.problems
    assert (found.code, found.location.path, found.location.line) == (
        "template-error", "templates/customers.html", 1)
    assert session.snapshot.files["customers/index.html"] == before
    (root / "records/customers/dee.yaml").unlink()
    report = session.rebuild(["records/customers/dee.yaml"])
    assert report.ok and session.snapshot.problems == ()
    assert "customers/ann/index.html" in report.rendered  # everything, not only what changed
    assert session.snapshot.files == {p.path: p.content for p in render_site(check(root).derived)}


@pytest.mark.parametrize(("raw", "expected"), [
    ("/", "index.html"), ("/customers/", "customers/index.html"),
    ("/customers/ann/index.html?x=1", "customers/ann/index.html"),
    ("/../custsite.yaml", None), ("/%2e%2e/custsite.yaml", None),
    ("/static/%2E%2E/%2E%2E/etc/passwd", None), ("/a/..%2f..%2fb", None),
    ("/index.html%00.png", None), ("/a\\..\\b", None), ("//etc/passwd", None),
    ("/" + "a" * 3000, None), ("relative", None),
])
def test_request_paths(raw: str, expected: str | None) -> None:
    assert site_path(raw) == expected


# --- the server in a subprocess ---------------------------------------------------------------

class Served:
    def __init__(self, proc: subprocess.Popen[str], url: str, root: Path) -> None:
        self.proc, self.url, self.root = proc, url, root

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def status(self) -> dict[str, object]:
        return json.loads(self.get("__custsite/status")[1])

    def wait_epoch(self, after: int, timeout: float = 15) -> dict[str, object]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = self.status()
            if int(state["epoch"]) > after:  # type: ignore[call-overload]
                return state
            time.sleep(0.05)
        raise AssertionError(f"no rebuild after epoch {after}")


def _start(root: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "custsite", "-C", str(root), "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for _ in range(50):
        line = proc.stdout.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
        if found:
            return proc, found.group(1)
    proc.kill()
    proc.communicate()
    raise AssertionError("the server did not say where it listens")


@pytest.fixture(params=["events", "poll"])
def served(request: pytest.FixtureRequest, scratch_portfolio: ScratchFactory) -> Iterator[Served]:
    root = scratch_portfolio(FILES)
    proc, url = _start(root, *(["--poll"] if request.param == "poll" else []))
    yield Served(proc, url, root)
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_server_follows_edits(served: Served) -> None:
    root = served.root
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    status, body = served.get("customers/cid/")
    assert status == 200 and "Cid Ray" in body
    assert '<script src="/__custsite/livereload.js"' in body
    epoch = int(served.status()["epoch"])  # type: ignore[call-overload]

    _edit(root / "records/customers/cid.yaml", "Cid Ray", "Cid Rayner")
    state = served.wait_epoch(epoch)
    # Only the saved file is looked at again (not its folder, which "changes" with it).
    assert state["changed"] == ["records/customers/cid.yaml"]
    assert state["parsed"] == ["records/customers/cid.yaml"]
    rendered = state["rendered"]
    assert "customers/cid/index.html" in rendered  # type: ignore[operator]
    assert "customers/ann/index.html" not in rendered  # type: ignore[operator]
    assert "Cid Rayner" in served.get("customers/cid/index.html")[1]

    (root / "records/customers/dee.yaml").write_text("name: Dee Fox\n")
    state = served.wait_epoch(int(state["epoch"]))  # type: ignore[call-overload]
    assert served.get("customers/dee/")[0] == 200
    (root / "records/customers/dee.yaml").rename(root / "records/customers/dora.yaml")
    state = served.wait_epoch(int(state["epoch"]))  # type: ignore[call-overload]
    assert served.get("customers/dora/")[0] == 200
    assert served.get("customers/dee/")[0] == 404
    (root / "records/customers/dora.yaml").unlink()
    state = served.wait_epoch(int(state["epoch"]))  # type: ignore[call-overload]
    assert served.get("customers/dora/")[0] == 404

    _edit(root / "records/customers/cid.yaml", "name: Cid Rayner", "name: Cid\nemial: x")
    state = served.wait_epoch(int(state["epoch"]))  # type: ignore[call-overload]
    for page in ("index.html", "customers/ann/index.html"):
        status, body = served.get(page)
        assert status == 500
        assert "records/customers/cid.yaml:2:1" in body and "[unknown-field]" in body
    _edit(root / "records/customers/cid.yaml", "\nemial: x", "")
    served.wait_epoch(int(state["epoch"]))  # type: ignore[call-overload]
    status, body = served.get("customers/cid/")
    assert status == 200 and "<h1>Cid" in body

    # Requests outside the site are refused; the server never wrote into the portfolio.
    assert served.get("%2e%2e/custsite.yaml")[0] == 400
    after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert after == before

    served.proc.send_signal(signal.SIGINT)
    out, _ = served.proc.communicate(timeout=10)
    assert served.proc.returncode == 0
    assert "stopped" in out and "Traceback" not in out


def test_ctrl_c_does_not_wait_for_an_open_page(scratch_portfolio: ScratchFactory) -> None:
    """An open page keeps a long poll waiting for the next build: Ctrl-C stops the server
    at once all the same."""
    import threading

    root = scratch_portfolio(FILES)
    proc, url = _start(root)
    epoch = json.loads(urllib.request.urlopen(url + "__custsite/status", timeout=10).read())

    def poll() -> None:
        with contextlib.suppress(OSError):  # the server goes away meanwhile
            urllib.request.urlopen(f"{url}__custsite/epoch?since={epoch['epoch']}",
                                   timeout=30).read()

    waiting = threading.Thread(target=poll, daemon=True)
    waiting.start()
    time.sleep(0.5)  # the poll is now waiting in the server
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=5)
    assert proc.returncode == 0 and "stopped" in out


def test_port_in_use_is_a_clear_error(scratch_portfolio: ScratchFactory) -> None:
    root = scratch_portfolio(FILES)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "custsite", "-C", str(root), "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_reload_script_is_never_in_build_output(example_site: Path) -> None:
    for f in example_site.rglob("*"):
        if f.is_file():
            assert b"__custsite" not in f.read_bytes(), f


def test_browser_page_reloads_after_an_edit(scratch_portfolio: ScratchFactory) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed")
        pytest.skip("Debian's chromium is not installed")
    root = scratch_portfolio(FILES)
    proc, url = _start(root)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(bypass_csp=True)  # wait_for_function evaluates strings
            page.goto(url + "customers/cid/")
            assert page.inner_text("h1").startswith("Cid Ray")
            _edit(root / "records/customers/cid.yaml", "Cid Ray", "Cid Rayner")
            page.wait_for_function(
                "document.querySelector('h1').textContent.startsWith('Cid Rayner')",
                timeout=15_000)
            _edit(root / "records/customers/cid.yaml", "name: Cid Rayner", "name: [broken")
            page.wait_for_selector("#problems", timeout=15_000)
            assert "records/customers/cid.yaml:2:1" in page.inner_text("#problems")
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)


def test_incremental_site_equals_a_fresh_build(scratch_portfolio: ScratchFactory) -> None:
    """Whatever the caches keep, the served site is byte for byte a cold build's."""
    from custsite.build import check
    from custsite.render import render_site

    root = scratch_portfolio(FILES)
    session = Session(root)
    session.rebuild()
    steps: list[tuple[str, str | None, str | None]] = [
        ("records/customers/cid.yaml", "Cid Ray", "Cid Rayner"),
        # Fits no persona, yet changes the share of all contacts each persona's page shows.
        ("records/customers/fay.yaml", None, "name: Fay Corp\nkind: company\n"),
        ("records/customers/bob.yaml", "organization: acme", "organization: acme\nrole: ally"),
        ("records/organizations/acme.yaml", "ACME", "ACME Corp"),
        ("records/interactions/ann.yaml", "amount: 100", "amount: 250"),
        ("personas/p.md", "kind: person", "kind: company"),
        ("records/customers/ann.yaml", "referred_by: bob", "referred_by: cid"),
        ("personas/p.md", "name: Everyone", "name: All of them"),
        ("records/customers/bob.yaml", "role: ally", "role: decision-maker"),
        ("records/customers/bob.yaml", "Bob Stone", "Bob Stoner"),
        ("records/interactions/cid.md", None,
         "---\ncustomer: cid\ndate: 2026-05-30\nkind: call\nsummary: Latest call\n---\n"),
        ("records/customers/cid.yaml", "Cid Rayner", "Cid Raynor"),
        ("records/customers/eve.yaml", None, "name: Eve\norganization: acme\n"),
        ("records/customers/eve.yaml", None, None),
    ]
    for rel, old, new in steps:
        if old is not None:
            _edit(root / rel, old, new or "")
        elif new is not None:
            (root / rel).write_text(new)
        else:
            (root / rel).unlink()
        assert session.rebuild([rel]).ok
        cold = {p.path: p.content for p in render_site(check(root).derived)}
        assert session.snapshot.files == cold, rel


def test_incremental_problems_equal_a_fresh_check(scratch_portfolio: ScratchFactory,
                                                 tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    """Sources found again only where the watcher saw a change, interactions regrouped only
    when their files change, cross-checks kept per customer: the problems are still a cold
    check's, and so is the site once they are fixed."""
    from custsite.build import check
    from custsite.errors import Severity
    from custsite.render import render_site

    root = scratch_portfolio(FILES)
    outside = tmp_path_factory.mktemp("outside") / "x.yaml"
    outside.write_text("customer: ann\ndate: 2026-01-01\nkind: note\n")
    session = Session(root)
    session.rebuild()
    interactions = root / "records/interactions"

    def make_folder() -> None:
        (interactions / "2026/q1").mkdir(parents=True)
        (interactions / "2026/q1/call.md").write_text(
            "---\ncustomer: cid\ndate: 2026-02-01\nkind: call\ndirection: in\n---\nHi.\n")

    steps: list[tuple[list[str], object]] = [
        (["records/interactions/2026"], make_folder),
        (["records/interactions/2026", "records/interactions/old"],
         lambda: (interactions / "2026").rename(interactions / "old")),
        (["records/interactions/bad.yaml"], lambda: (interactions / "bad.yaml").write_text(
            "- {customer: nobody, date: 2026-01-02, kind: note}\n"
            "- {customer: ann, date: 2026-01-03, kind: purchase, amount: 5, currency: JPY}\n")),
        (["records/interactions/bad.yaml"], lambda: (interactions / "bad.yaml").write_text(
            "- {customer: ann, date: 2026-01-02, kind: note, id: ann-1}\n")),
        (["records/customers/cid.yaml"], lambda: (root / "records/customers/cid.yaml")
         .write_text("name: Cid Ray\ncreated: 2026-03-01\n")),
        (["records/customers/ann.md"], lambda: (root / "records/customers/ann.md").write_text(
            "---\nname: Ann Again\n---\n")),
        (["records/interactions/link.yaml"], lambda: (interactions / "link.yaml")
         .symlink_to(outside)),
        (["records/interactions/link.yaml", "records/customers/ann.md",
          "records/interactions/bad.yaml"], lambda: [
            (interactions / "link.yaml").unlink(), (root / "records/customers/ann.md").unlink(),
            (interactions / "bad.yaml").unlink()]),
        (["records/customers/cid.yaml"], lambda: (root / "records/customers/cid.yaml")
         .write_text("name: Cid Ray\n")),
        (["records/customers/.dee.yaml"], lambda: (root / "records/customers/.dee.yaml")
         .write_text("name: Dee\n")),
        (["records/customers/.dee.yaml"], lambda: (root / "records/customers/.dee.yaml")
         .unlink()),
        (["records/interactions/old"],
         lambda: [p.unlink() for p in (interactions / "old/q1").iterdir()]),
    ]
    for changed, act in steps:
        time.sleep(0.01)
        assert callable(act)
        act()
        report = session.rebuild(changed)
        fresh = check(root)
        expected = [p for p in fresh.problems
                    if report.ok or p.severity is Severity.ERROR]
        assert [p.format() for p in report.problems] == [p.format() for p in expected], changed
        if report.ok:
            cold = {p.path: p.content for p in render_site(fresh.derived)}
            assert session.snapshot.files == cold, changed
    assert session.snapshot.problems == ()


def test_load_while_records_change(scratch_portfolio: ScratchFactory) -> None:
    """A few concurrent clients, a few hundred requests, records edited meanwhile: every
    answer is complete and nothing fails (loopback only, bounded in count and time)."""
    import random
    import threading

    root = scratch_portfolio(FILES)
    proc, url = _start(root)
    pages = ["", "customers/", "customers/ann/", "customers/cid/", "segments/index.html",
             "data/portfolio.json", "static/style.css", "organizations/acme/"]
    failures: list[str] = []

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(80):
            page = rnd.choice(pages)
            try:
                with urllib.request.urlopen(url + page, timeout=20) as resp:
                    body = resp.read()
                    if resp.status != 200:
                        failures.append(f"{page}: {resp.status}")
                    html = page.endswith("/") or page == ""
                    if html and not body.rstrip().endswith(b"</html>"):
                        failures.append(f"{page}: incomplete")
            except Exception as exc:
                failures.append(f"{page}: {exc}")

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for n in range(8):
            _edit(root / "records/customers/cid.yaml", "name: Cid", f"name: Cid{n} ")
            time.sleep(0.1)
            text = (root / "records/customers/cid.yaml").read_text()
            (root / "records/customers/cid.yaml").write_text(
                re.sub(r"name: Cid\d+ ", "name: Cid", text))
        for t in threads:
            t.join(timeout=120)
        assert failures == []
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
