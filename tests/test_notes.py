"""Notes as HTML: what Python-Markdown and the sanitiser make of them, whether or not the
note takes the short way for simple notes (see notes.quick_html)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custsite import notes

# Every character some Markdown syntax starts with or that the sanitiser rewrites, the
# characters that open blocks at the start of a line, whitespace of every kind and
# Python-Markdown's own placeholders.
TRICKY = [
    *"*_`[]\\{}|~^<>&#!-+=:.()'\"/%$@0123456789 \t\n\r",
    "\x02", "\x03", "\xa0", "\u2028", "\x85", "\ufeff", "é", "日", "  \n", "\n\n", "1. ",
    "- ", "> ", "    ", "---", "===", "http://a.example", "&amp;", "&#169;", "<b>", "*[A]: x",
    "[^1]", "{: #x}", ": def", "| a |", "~~~", "```", "**", "*", "`", "](", "[x](", "![",
    "https://", "http://a", "mailto:", "tel:", "a.example", "1.2", "-a", "%2", "%20", "'t'",
    "\"t\"", "@", ":80", "/", "?q=1", "#f", "_"]
WORDS = ["Called", "back", "about", "the", "quote", "Ann", "ok", "Zoë", "naïve", "Lyon",
         "2026", "10", "a/b", "50%", "$20", "(soon)", "\"yes\"", "it's", "x@y.example",
         "well-known", "a+b", "a=b", "Note:", "before", "today.", "why?", "great!", "end;"]
SEPARATORS = [" ", " ", " ", ", ", ". ", "\n", "  ", " - ", " + ", "\n1", "\n-", "\n ",
              " \n", ": ", "\n\n"]


@st.composite
def sentences(draw: st.DrawFn) -> str:
    """Text that is mostly plain sentences, where the short way is taken often."""
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12))
    out = words[0]
    for word in words[1:]:
        out += draw(st.sampled_from(SEPARATORS)) + word
    return out


PIECES = st.lists(st.sampled_from(TRICKY + WORDS), max_size=4).map("".join)
HOSTS = ["a.example", "x-y.example", "a", "1.example", "a.1", "a..b", "-a.example", "a-.b",
         "A.Example", "a.example:80", "10.0.0.1", "xn--a.b", "a_b.example", ""]
URLS = st.one_of(
    st.builds(lambda scheme, host, rest: scheme + host + rest,
              st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "//", "mailto:",
                               "tel:", "javascript:", ""]),
              st.sampled_from(HOSTS), PIECES),
    PIECES)


@st.composite
def marked(draw: st.DrawFn) -> str:
    """Sentences with **strong**, *emphasis*, `code` and [links](…) of tricky content in
    them, well-formed or nearly: where the short way is taken, and where it must not be."""
    inner = draw(st.one_of(sentences(), PIECES))
    form = draw(st.sampled_from(["**{}**", "*{}*", "`{}`", "[{}]({url})", "![{}]({url})",
                                 "**{}*", "***{}***", "*{}**", "``{}``", "[{}] ({url})"]))
    mark = form.format(inner, url=draw(URLS)) if "{url}" in form else form.format(inner)
    before, after = draw(sentences()), draw(sentences())
    return (before + draw(st.sampled_from([*SEPARATORS, "", "!", "*"])) + mark
            + draw(st.sampled_from([*SEPARATORS, "", ")", "*", "`", "(b)"])) + after)


@settings(max_examples=4000, deadline=None)
@given(st.one_of(sentences(), marked(), st.lists(marked(), min_size=2, max_size=3).map(
    " ".join), st.text(max_size=40), st.lists(st.sampled_from(TRICKY + WORDS),
                                               max_size=12).map("".join)))
def test_notes_are_what_python_markdown_and_the_sanitiser_make(text: str) -> None:
    for note in (text, text + "\n", text + "\n\n"):  # as block scalars keep them
        assert notes.markdown_to_html(note) == notes.converted(note) if note else True


def test_the_short_way_is_taken_by_plain_sentences_only() -> None:
    plain = ["Called back about the quote.", "Prefers mornings, before 10.\nAsked for a visit.",
             "Zoë (the owner) said \"yes\": 50% now, the rest in May!",
             "Sent https://example.com/terms to x@y.example", "Issue 12 - done + paid"]
    for text in plain:
        assert notes.quick_html(text) == notes.converted(text) == f"<p>{text}</p>", text
    simple = ["Discussed the **roof**.", "see [terms](https://x.example/a_b?c=1#d)",
              "*Very* happy; `snake_case` fixed.\n**Next:** call [Ann](mailto:ann@x.example)",
              "[call](tel:+1-555-0100) a*b*c", "Written as a block scalar.\n",
              "Two lines,\n**kept**.\n\n"]
    for text in simple:
        assert notes.quick_html(text) == notes.converted(text), text
    marked = ["1. first", "- item", "# Title", "> quoted", "* item", "**a***b*", "`a``b`",
              "a\n\nb", "ends with two spaces  \nnext", "    code", "Tom & Jerry", "a <b>",
              "snake_case", "a\tb", "Title\n===", ": definition", "x | y", "\u00a0nbsp",
              "caf\u00e9 \x02", "![logo](https://x.example/a)", "[a](https://10.0.0.1)",
              "[a](https://x.example 'title')", "[a](javascript:alert)", "[a](/relative)",
              "`a < b`", "** a **", "*[HTML]: markup", "[^1]", "\n", "ends with spaces  \n"]
    for text in marked:
        assert notes.quick_html(text) is None, text
        assert notes.markdown_to_html(text) == notes.converted(text)
