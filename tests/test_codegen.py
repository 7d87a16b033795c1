"""The code custsite's templates compile to outputs what Jinja's own would (see codegen)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import jinja2
import pytest
from markupsafe import Markup

from custsite.codegen import SiteEnvironment, escape_output


class Html:
    """An object that knows its own HTML, as Markup-aware values do."""

    def __html__(self) -> str:
        return "<i>mine</i>"

    def __str__(self) -> str:
        return "<not this>"


VALUES: dict[str, Any] = {
    "text": "Tom & Jerry <b>\"quoted\" 'single'</b>", "plain": "abc", "empty": "",
    "markup": Markup("<em>kept</em>"), "number": 42, "amount": Decimal("3.50"),
    "day": dt.date(2026, 1, 2), "none": None, "html": Html(), "items": ["<a>", "b"],
    "mapping": {"key": "<v>"},
}
TEMPLATES = [
    "{{ text }}|{{ plain }}|{{ empty }}|{{ markup }}|{{ number }}|{{ amount }}|{{ day }}",
    "{{ none }}|{{ html }}|{{ items }}|{{ mapping.key }}|{{ mapping['key'] }}",
    "{% macro m(x) %}<p>{{ x }}</p>{% endmacro %}{{ m(text) }}{{ m(markup) }}",
    "{% for i in items %}{{ loop.index }}{{ i }}{% endfor %}{{ items | join(', ') }}",
    "{% set s %}{{ text }}{% endset %}{{ s }}{{ text ~ markup }}{{ markup ~ text }}",
    "{% autoescape false %}{{ text }}{% endautoescape %}{{ text | safe }}{{ text | e }}",
    "{% autoescape number > 1 %}{{ text }}{% endautoescape %}{{ '<lit>' }}{{ 1 + 2 }}{{ text }}",
]


def render(env: jinja2.Environment, source: str) -> str:
    return env.from_string(source).render(**VALUES)


@pytest.mark.parametrize("source", TEMPLATES)
def test_pages_are_what_jinja_makes(source: str) -> None:
    options: dict[str, Any] = {"autoescape": True, "undefined": jinja2.StrictUndefined}
    mine = render(SiteEnvironment(**options), source)
    assert mine == render(jinja2.Environment(**options), source)
    assert "escape_output" in SiteEnvironment(**options).compile(source, raw=True)


def test_output_is_escaped_text_and_markup_is_not_copied() -> None:
    assert escape_output("<a & 'b'>") == "&lt;a &amp; &#39;b&#39;&gt;"
    assert type(escape_output("<a>")) is str
    markup = Markup("<b>" * 1000)
    assert escape_output(markup) is markup
    assert escape_output(Html()) == Markup("<i>mine</i>")
    assert escape_output(7) == "7"


def test_an_undefined_value_still_fails() -> None:
    env = SiteEnvironment(autoescape=True, undefined=jinja2.StrictUndefined)
    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        env.from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ mapping.nothing }}").render(mapping={})
