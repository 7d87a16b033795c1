"""The example site in a real headless Chromium (Playwright), from file:// and from an HTTP
server under a sub-path: navigation, the customers explorer, accessibility (axe-core), and
no request to any other host. Screenshots are kept in test-artifacts/screenshots/."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from custsite.build import build

from .conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
# Chromium's own background traffic is switched off: the site must be the only thing talking.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api")


def _require(ok: bool, why: str) -> None:
    """Skip on a developer machine without the browser; in CI a missing piece is a failure."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "www" / "portfolio" / "site"
    build(REPO, output=out)
    return out


@contextlib.contextmanager
def _served(folder: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """The site served over HTTP under a sub-path: /portfolio/site/."""
    with _served(site.parent.parent) as url:
        yield url + "portfolio/site/"


@pytest.fixture(scope="module")
def fitted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The CDNOW sample's site: enough buyers for the lifetime model."""
    from .test_lifetime import write_cdnow

    root = tmp_path_factory.mktemp("cdnow-browser")
    write_cdnow(root)
    build(root)
    with _served(root / "site") as url:
        yield url


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require(CHROMIUM.exists(), "Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page with its console errors and every request it made."""

    def __init__(self, page: object, allowed_hosts: set[str]) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.allowed_hosts = allowed_hosts
        page.on("console", lambda msg: self.errors.append(msg.text)  # type: ignore[attr-defined]
                if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))  # type: ignore[attr-defined]
        page.on("request", lambda req: self.requests.append(req.url))  # type: ignore[attr-defined]

    def check(self) -> None:
        assert self.errors == []
        for url in self.requests:
            parts = urlsplit(url)
            assert parts.scheme in ("file", "http", "data"), url
            if parts.scheme == "http":
                assert parts.hostname in self.allowed_hosts, url


@pytest.fixture
def open_page(browser: object) -> Iterator[object]:
    contexts = []
    watched: list[Watched] = []

    def make(width: int = 1280, height: int = 900, javascript: bool = True,
             csp: bool = False) -> Watched:
        # Playwright's wait_for_function evaluates strings, which the site's Content-Security-
        # Policy forbids: tests that drive the page bypass it; test_csp keeps it.
        context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": width, "height": height}, java_script_enabled=javascript,
            bypass_csp=not csp)
        contexts.append(context)
        w = Watched(context.new_page(), {"127.0.0.1"})
        watched.append(w)
        return w

    yield make
    for w in watched:
        w.check()
    for context in contexts:
        context.close()


def _rows(page: object) -> list[str]:
    return page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#customers-table tbody tr:not([hidden])",
        "rows => rows.map(r => r.cells[0].innerText.replace(' do not contact', '').trim())")


def _status(page: object) -> str:
    return str(page.inner_text("#status"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("origin", ["file", "http"])
def test_navigate_dashboard_to_persona(origin: str, site: Path, server: str,
                                       open_page: object) -> None:
    base = site.as_uri() + "/" if origin == "file" else server
    w = open_page()  # type: ignore[operator]
    page = w.page
    page.goto(base + "index.html")
    assert page.inner_text("h1") == "Solstice Roofing & Solar — customers"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.wait_for_url("**/customers/index.html*")
    assert _status(page) == "48 contacts"
    page.locator("fieldset[data-facet=stage]").get_by_label("prospect").check()
    page.wait_for_function("document.getElementById('status').textContent.startsWith('10 of')")
    assert parse_qs(urlsplit(page.url).query) == {"stage": ["prospect"]}
    first = _rows(page)[0]
    page.get_by_role("link", name=first, exact=True).first.click()
    page.wait_for_url("**/customers/*/index.html")
    assert page.inner_text("h1").startswith(first)
    assert "prospect since" in page.inner_text(".reason")
    persona = page.locator("#value-h ~ dl a[href*='personas/']").first
    name = persona.inner_text()
    persona.click()
    page.wait_for_url("**/personas/*/index.html")
    assert page.inner_text("h1") == name
    assert page.get_by_role("heading", name="Who to go after next").is_visible()


def test_sort_filter_search_and_shareable_urls(site: Path, open_page: object) -> None:
    w = open_page()  # type: ignore[operator]
    page = w.page
    url = site.as_uri() + "/customers/index.html"
    page.goto(url)
    page.get_by_role("button", name="Sort by Revenue").click()
    top = _rows(page)[0]
    assert top == "Sofia Lindqvist"  # the largest account, sorted descending first
    assert page.locator("th[data-key=revenue]").get_attribute("aria-sort") == "descending"
    page.get_by_role("button", name="Sort by Revenue").click()
    assert page.locator("th[data-key=revenue]").get_attribute("aria-sort") == "ascending"
    page.get_by_role("button", name="Sort by Name").click()
    names = _rows(page)
    assert names == sorted(names, key=str.casefold)

    page.get_by_label("Search name, e-mail, organization and tags").fill("lakeshore")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('4 of')")
    assert set(_rows(page)) == {"Marcus Bell", "Priya Raman", "Tom Kowalski", "Dana Whitfield"}
    assert "q=lakeshore" in page.url

    page.get_by_role("button", name="Clear filters").click()
    page.locator("fieldset[data-facet=tag]").get_by_label("solar-interest").check()
    page.locator("fieldset[data-facet=owner]").get_by_label("Dana").check()
    page.wait_for_function("!document.getElementById('status').textContent.startsWith('48')")
    filtered = _rows(page)
    shared = page.url
    # Facet counts follow the other filters: the 'Dana' count is within the tag filter.
    count = page.locator("fieldset[data-facet=owner] .n[data-value=Dana]").inner_text()
    assert int(count) == len(filtered)

    page.go_back()
    page.wait_for_function("!document.querySelector('input[value=Dana]').checked")
    assert len(_rows(page)) > len(filtered)
    page.go_forward()
    page.wait_for_function("document.querySelector('input[value=Dana]').checked")
    assert _rows(page) == filtered

    page.reload()  # a reload keeps the view
    page.wait_for_function("document.querySelector('input[value=Dana]').checked")
    assert _rows(page) == filtered

    other = open_page()  # type: ignore[operator]
    other.page.goto(shared)  # a shared link shows the same view
    assert _rows(other.page) == filtered
    assert other.page.locator("input[value=solar-interest]").is_checked()


def test_without_javascript_the_table_is_complete(site: Path, open_page: object) -> None:
    w = open_page(javascript=False)  # type: ignore[operator]
    page = w.page
    page.goto(site.as_uri() + "/customers/index.html")
    assert page.locator("#customers-table tbody tr").count() == 48
    assert not page.locator("#facets").is_visible()
    assert page.locator("#customers-table tbody tr").first.is_visible()


PAGE_TYPES = ["index.html", "customers/index.html", "customers/marcus-bell/index.html",
              "organizations/index.html", "organizations/lakeshore-properties/index.html",
              "personas/index.html", "personas/homeowner-hannah/index.html",
              "segments/index.html", "segments/illinois-homeowners/index.html",
              "stages/index.html", "stages/lapsed/index.html", "model/index.html",
              "activity/index.html", "404.html"]


def _assert_accessible(url: str, open_page: object) -> None:
    # Over HTTP: axe-core reads stylesheets with XMLHttpRequest, which file:// refuses.
    _require(AXE.exists(), "axe-core is not installed (npm ci --prefix tests/browser)")
    for scheme in ("light", "dark"):
        w = open_page()  # type: ignore[operator]
        page = w.page
        page.emulate_media(color_scheme=scheme)
        page.goto(url)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        bad = [f"{v['id']} ({v['impact']}): {v['help']} — "
               + "; ".join(n["target"][0] for n in v["nodes"][:3])
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
        assert bad == [], f"{url} in {scheme} mode"


@pytest.mark.parametrize("path", PAGE_TYPES)
def test_accessibility_axe(path: str, server: str, open_page: object) -> None:
    _assert_accessible(server + path, open_page)


@pytest.mark.parametrize("path", ["model/index.html", "index.html", "customers/c-0001/index.html",
                                  "customers/index.html"])
def test_lifetime_pages_accessible(path: str, fitted_server: str, open_page: object) -> None:
    _assert_accessible(fitted_server + path, open_page)


@pytest.mark.parametrize("path", ["index.html", "customers/marcus-bell/index.html"])
def test_screenshots(path: str, site: Path, open_page: object) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = path.replace("/index.html", "").replace(".html", "").replace("/", "-")
    for label, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        w = open_page(width, height)  # type: ignore[operator]
        w.page.goto(site.as_uri() + "/" + path)
        target = ARTIFACTS / f"{name}-{label}.png"
        w.page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000
        # Nothing may be wider than the screen, on a phone included.
        overflow = w.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{path} is {overflow}px wide on a {width}px screen"


def test_long_tables_show_the_first_rows_then_all(tmp_path: Path, open_page: object) -> None:
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    from generate import generate

    generate(tmp_path / "big", contacts=620, per_contact=1)
    build(tmp_path / "big", output=tmp_path / "big" / "site")
    url = (tmp_path / "big/site/customers/index.html").as_uri()
    w = open_page()  # type: ignore[operator]
    page = w.page
    page.goto(url)
    assert _status(page) == "620 contacts, the first 500 shown"
    assert len(_rows(page)) == 500
    page.get_by_role("button", name="Show all 620").click()
    assert len(_rows(page)) == 620 and _status(page) == "620 contacts"
    page.get_by_role("button", name="Sort by Name").click()
    assert len(_rows(page)) == 620  # "show all" holds until the filters change
    no_js = open_page(javascript=False)  # type: ignore[operator]
    no_js.page.goto(url)
    assert no_js.page.locator("#customers-table tbody tr:visible").count() == 620


def test_print_hides_navigation_and_filters(site: Path, open_page: object) -> None:
    w = open_page()  # type: ignore[operator]
    page = w.page
    page.goto(site.as_uri() + "/customers/index.html")
    page.emulate_media(media="print")
    assert not page.locator("header nav").is_visible()
    assert not page.locator("#facets").is_visible()
    assert page.locator("#customers-table").is_visible()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000


@pytest.mark.parametrize("path", PAGE_TYPES)
def test_pages_work_under_their_content_security_policy(path: str, site: Path, server: str,
                                                        open_page: object) -> None:
    for base in (site.as_uri() + "/", server):
        w = open_page(csp=True)  # type: ignore[operator]
        w.page.goto(base + path)
        policy = w.page.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
        assert policy and "default-src 'none'" in policy and "script-src 'self'" in policy
        if path == "customers/index.html":  # the table's script runs under the policy
            assert w.page.locator("#facets").is_visible()
        # Watched.check (at teardown) fails on any console error, CSP violations included.


XSS = [
    "<script>window.__xss=1</script>", "<img src=x onerror=window.__xss=2>",
    "<svg onload=window.__xss=3>", "\"><script>window.__xss=4</script>",
    "'><b onmouseover=window.__xss=5>x</b>", "javascript:window.__xss=6", "{{ 7*7 }}",
    "<a href=\"javascript:window.__xss=7\">x</a>",
    "<iframe srcdoc='<script>parent.__xss=8</script>'>",
    "[x](javascript:window.__xss=9)", "<math><mtext><script>window.__xss=10</script>",
    "[d](data:text/html,<script>parent.__xss=11</script>)",
    "<object data=\"data:text/html,<script>parent.__xss=12</script>\"></object>",
]


def test_hostile_text_renders_inert(tmp_path: Path, open_page: object) -> None:
    import json as _json

    root = tmp_path / "evil"
    (root / "records/customers").mkdir(parents=True)
    (root / "records/interactions").mkdir(parents=True)
    (root / "personas").mkdir()
    title = _json.dumps("Evil " + XSS[0])
    (root / "custsite.yaml").write_text(
        f"title: {title}\nas_of: 2026-06-01\nsegments:\n  evil:\n    title: {_json.dumps(XSS[1])}"
        "\n    where: {kind: person}\n")
    for n, payload in enumerate(XSS):
        text = _json.dumps(payload)
        (root / f"records/customers/c{n}.yaml").write_text(
            f"name: {text}\ntags: [{text}]\nowner: {text}\nsource: {text}\n"
            f"fields: {{note: {text}}}\nnotes: {text}\n")
        (root / f"records/interactions/i{n}.yaml").write_text(
            f"customer: c{n}\ndate: 2026-01-0{1 + n % 9}\nkind: purchase\namount: 1\n"
            f"summary: {text}\nproduct: {text}\nnotes: {text}\n")
    (root / "personas/p.md").write_text(
        f"---\nname: {_json.dumps(XSS[2])}\nheadline: {_json.dumps(XSS[3])}\n"
        f"goals: [{_json.dumps(XSS[4])}]\nmatch: {{kind: person}}\n---\n" + "\n\n".join(XSS))
    build(root, output=root / "site")
    site = root / "site"
    pages = ["index.html", "customers/index.html", "customers/c0/index.html",
             "customers/c4/index.html", "customers/c9/index.html", "customers/c11/index.html",
             "customers/c12/index.html", "personas/p/index.html",
             "segments/evil/index.html", "activity/index.html", "stages/customer/index.html"]
    for path in pages:
        w = open_page()  # type: ignore[operator]
        dialogs: list[str] = []
        w.page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
        w.page.goto((site / path).as_uri())
        for link in w.page.locator("a").all()[:200]:
            href = link.get_attribute("href") or ""
            assert not href.lower().startswith(("javascript:", "data:")), (path, href)
        w.page.mouse.move(10, 10)
        assert w.page.evaluate("window.__xss") is None, path
        assert dialogs == [], path
    html = (site / "customers/c6/index.html").read_text()
    assert "{{ 7*7 }}" in html
