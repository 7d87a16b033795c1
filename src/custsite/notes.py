"""Markdown notes into safe HTML: Python-Markdown, then the sanitiser; the simple notes most
people write take a short way to the same bytes.

Python-Markdown takes 100–200 µs for a note of two sentences, and a portfolio holds a
hundred thousand of them: more time than the rest of a cold build. Most notes are one
paragraph of sentences, with at most some **bold**, *emphasis*, `code` and [links](https://…).
For such a note, what Python-Markdown and the sanitiser make of it is known in advance; such
notes (`quick_html`) are written here directly. Everything else, and anything in doubt, goes
through the libraries. tests/test_notes.py holds the short way to what the libraries make of
every text it takes, with generated texts built from every character that matters.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING

import nh3
from markupsafe import Markup

if TYPE_CHECKING:
    from markdown import Markdown

MD_EXTENSIONS = ["extra", "sane_lists"]
# No <img>: an image URL in a note would make the site call out to another host.
ALLOWED_TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em",
                "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "ol",
                "p", "pre", "s", "small", "strong", "sub", "sup", "table", "tbody", "td",
                "tfoot", "th", "thead", "tr", "ul"}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
LINK_REL = "noopener noreferrer nofollow"


def notes_version() -> str:
    """What rendered notes depend on, as a short hash: cached notes made by another version
    of the Markdown library, of the sanitiser or of these settings are never used."""
    settings = (metadata.version("markdown"), metadata.version("nh3"), MD_EXTENSIONS,
                sorted(ALLOWED_TAGS), sorted(URL_SCHEMES), LINK_REL)
    return hashlib.blake2b(repr(settings).encode(), digest_size=6).hexdigest()


def markdown_to_html(text: str, convert: Callable[[str], str] | None = None) -> Markup:
    """Markdown with any raw HTML sanitised: a record can never inject script into the site.
    A note the short way cannot make goes to `convert` (a cache of `converted`, say)."""
    if not text:
        return Markup("")
    quick = quick_html(text)
    return Markup(quick if quick is not None else (convert or converted)(text))


@functools.cache
def _markdown() -> Markdown:
    """Python-Markdown, imported and set up when a note first needs it: most notes take the
    short way, and a build after an edit converts a few if any (the import and the
    extensions' set-up were a tenth of a second of its start)."""
    from markdown import Markdown

    return Markdown(extensions=MD_EXTENSIONS, output_format="html")


def converted(text: str) -> str:
    """What Python-Markdown makes of `text`, sanitised."""
    converter = _markdown()
    converter.reset()
    html = converter.convert(text)
    return nh3.clean(html, tags=ALLOWED_TAGS, url_schemes=URL_SCHEMES, link_rel=LINK_REL)


# The short way. Plain text holds no character that any Markdown syntax of Python-Markdown or
# of the extensions above starts with (emphasis, code, links, footnotes, abbreviations,
# attributes, tables, fences, raw HTML, entities, escapes); a line starts with nothing that
# opens a block (lists, headings, quotes, definitions, indented code) and ends with no space
# (two spaces are a line break). Between plain runs, four inline forms whose output is plain:
# **strong** and *emphasis* of plain text that starts and ends with no space, `code` of text
# without backslash, `&`, `<` or `>`, and [plain text](URL) where the URL is http(s) with a
# host the sanitiser's URL parser takes as it is, mailto: or tel:, of characters that need
# no escaping and hold no title. An opening mark right after a closing one of the same kind
# (`**a***b*`, `` `a``b` ``) and a link right after `!` (an image) are left to the libraries.
_MARKUP_CHARS = r"*_`\[\]\\{}|~^<>&#"
_PLAIN = rf"[^\n{_MARKUP_CHARS}]"
_INNER = rf"[^\s{_MARKUP_CHARS}](?:{_PLAIN}*[^\s{_MARKUP_CHARS}])?"
_CODE_CHAR = r"[^\s`\\&<>]"
_CODE = rf"{_CODE_CHAR}(?:[^\n`\\&<>]*{_CODE_CHAR})?"
_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_HOST = rf"(?:{_LABEL}\.)*[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*"  # last label no number
_URL_CHAR = r"(?:[A-Za-z0-9\-._~:/?#@!$+,;=]|%[0-9A-Fa-f]{2})"
_URL = rf"(?:https?://{_HOST}(?:[/?#]{_URL_CHAR}*)?|(?:mailto|tel):{_URL_CHAR}+)"
# A link's `[` not after `!` is looked behind from after it: with every form starting with a
# plain character, the scan skips to the next `*`, `` ` `` or `[` in C (a lookbehind first
# made it try the whole pattern at every character: three times as slow).
_TOKEN = (rf"\*\*(?P<strong>{_INNER})\*\*(?!\*)|\*(?P<em>{_INNER})\*(?!\*)"
          rf"|`(?P<code>{_CODE})`(?!`)|\[(?<!!\[)(?P<text>{_INNER})\]\((?P<url>{_URL})\)")
_TOKENS = re.compile(_TOKEN)
_BARE_TOKEN = re.sub(r"\?P<\w+>", "", _TOKEN)
# A line starts with plain text that opens no block, or with one of the inline forms. Every
# form starts with a character plain text never holds: possessive runs, never backtracked
# into, match the same (in a quarter of the time).
_LINE = (rf"(?:[^\s\d\-+=:{_MARKUP_CHARS}]|{_BARE_TOKEN})(?:{_PLAIN}++|{_BARE_TOKEN})*+"
         r"(?<!\s)")
_QUICK_NOTE = re.compile(rf"{_LINE}(?:\n{_LINE})*+")
_HAS_TOKEN = re.compile(r"[*`\[]")


def _token_html(match: re.Match[str]) -> str:
    strong, em, code, text, url = match.groups()
    if strong is not None:
        return f"<strong>{strong}</strong>"
    if em is not None:
        return f"<em>{em}</em>"
    if code is not None:
        return f"<code>{code}</code>"
    return f'<a href="{url}" rel="{LINK_REL}">{text}</a>'


def quick_html(text: str) -> str | None:
    """The HTML of a simple note (see above), made without the libraries; None for any
    other note. Line breaks at the end (a YAML block scalar keeps one) make no difference to
    Python-Markdown."""
    body = text.rstrip("\n")
    if not _QUICK_NOTE.fullmatch(body) or not body.replace("\n", "").isprintable():
        return None
    if _HAS_TOKEN.search(body) is None:
        return f"<p>{body}</p>"
    return f"<p>{_TOKENS.sub(_token_html, body)}</p>"
