"""The built example site as files: well-formed HTML5, JSON twins, no outside requests."""

from __future__ import annotations

import itertools
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import html5lib
import pytest

from .conftest import REPO


def _pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_page_is_well_formed_html5(example_site: Path) -> None:
    pages = _pages(example_site)
    assert len(pages) > 100
    for page in pages:
        parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
        try:
            parser.parse(page.read_bytes())
        except html5lib.html5parser.ParseError as exc:  # pragma: no cover - shown on failure
            pytest.fail(f"{page.relative_to(example_site)}: {exc}")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.tags


def test_nothing_is_loaded_from_another_host(example_site: Path) -> None:
    for page in _pages(example_site):
        for tag, attrs in _tags(page):
            for name in ("src", "srcset", "data", "poster"):
                value = attrs.get(name) or ""
                assert not re.match(r"^\w+:|^//", value), f"{page}: <{tag} {name}={value}>"
            if tag == "link":
                href = attrs.get("href") or ""
                assert not re.match(r"^\w+:|^//", href), f"{page}: <link href={href}>"
    css = (example_site / "static/style.css").read_text()
    assert "url(" not in css and "@import" not in css


def test_list_pages_have_json_twins(example_site: Path) -> None:
    lists = ["customers/index.html", "organizations/index.html", "personas/index.html",
             "segments/index.html", "segments/illinois-homeowners/index.html",
             "stages/index.html", "stages/lapsed/index.html", "activity/index.html",
             "model/index.html"]
    for rel in lists:
        page = example_site / rel
        alternates = [a for tag, a in _tags(page)
                      if tag == "link" and a.get("rel") == "alternate"]
        assert [(a["type"], a["href"]) for a in alternates] == [("application/json",
                                                                "index.json")], rel
        data = json.loads((page.parent / "index.json").read_text())
        assert data, rel
    customers = json.loads((example_site / "customers/index.json").read_text())["contacts"]
    assert len(customers) == len(list((REPO / "records/customers").iterdir()))
    lapsed = json.loads((example_site / "stages/lapsed/index.json").read_text())
    assert {c["stage"] for c in lapsed["contacts"]} == {"lapsed"}


def test_customer_page_explains_rfm_and_links_its_source(example_site: Path) -> None:
    html = (example_site / "customers/marcus-bell/index.html").read_text()
    assert "R5 with F5 is the &#39;champions&#39; segment" in html
    assert "Scores are fifths among all" in html
    assert "records/customers/marcus-bell.md" in html
    assert ">Helen Marsh</a>" in html  # referred by Marcus
    assert "Annual maintenance plan (yearly, last invoiced 2026-08-02)" in html


def test_persona_page_targets_exclude_do_not_contact(example_site: Path) -> None:
    html = (example_site / "personas/homeowner-hannah/index.html").read_text()
    targets = html.split('id="next-h"')[1].split('id="all-h"')[0]
    assert "paula-greene" not in targets
    assert "Homeowner Hannah" in html and "Identity card" in html and "Story" in html
    assert re.search(r"\d+% of them have bought", html)


def test_headings_are_in_order(example_site: Path) -> None:
    for page in _pages(example_site):
        levels = [int(tag[1]) for tag, _ in _tags(page) if re.fullmatch(r"h[1-6]", tag)]
        assert levels.count(1) == 1, page
        assert levels[0] == 1, page
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, f"{page.relative_to(example_site)}: h{before} → h{after}"


def test_landmarks(example_site: Path) -> None:
    """Every page has a banner, navigation, main content and footer (axe checks labels)."""
    for page in _pages(example_site):
        names = {tag for tag, _ in _tags(page)}
        assert {"header", "nav", "main", "footer"} <= names, page
