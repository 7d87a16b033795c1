"""Notes as HTML: what Python-Markdown and the sanitiser make of them, whether or not the
note takes the short way for plain sentences (see render._PLAIN_NOTE)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from custsite import render

# Every character some Markdown syntax starts with or that the sanitiser rewrites, the
# characters that open blocks at the start of a line, whitespace of every kind and
# Python-Markdown's own placeholders.
TRICKY = [
    *"*_`[]\\{}|~^<>&#!-+=:.()'\"/%$@0123456789 \t\n\r",
    "\x02", "\x03", "\xa0", "\u2028", "\x85", "\ufeff", "é", "日", "  \n", "\n\n", "1. ",
    "- ", "> ", "    ", "---", "===", "http://a.example", "&amp;", "&#169;", "<b>", "*[A]: x",
    "[^1]", "{: #x}", ": def", "| a |", "~~~", "```"]
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


@settings(max_examples=3000, deadline=None)
@given(st.one_of(sentences(), st.text(max_size=40),
                 st.lists(st.sampled_from(TRICKY + WORDS), max_size=12).map("".join)))
def test_notes_are_what_python_markdown_and_the_sanitiser_make(text: str) -> None:
    assert render.markdown_to_html(text) == render._converted(text) if text else True


def test_the_short_way_is_taken_by_plain_sentences_only() -> None:
    plain = ["Called back about the quote.", "Prefers mornings, before 10.\nAsked for a visit.",
             "Zoë (the owner) said \"yes\": 50% now, the rest in May!",
             "Sent https://example.com/terms to x@y.example", "Issue 12 - done + paid"]
    for text in plain:
        assert render._PLAIN_NOTE.fullmatch(text), text
        assert render.markdown_to_html(text) == render._converted(text) == f"<p>{text}</p>"
    marked = ["Discussed the **roof**.", "1. first", "- item", "# Title", "> quoted",
              "a\n\nb", "ends with two spaces  \nnext", "    code", "Tom & Jerry", "a <b>",
              "see [terms](https://x.example)", "snake_case", "a\tb", "Title\n===",
              ": definition", "x | y", "\u00a0nbsp", "caf\u00e9 \x02"]
    for text in marked:
        taken = bool(render._PLAIN_NOTE.fullmatch(text)) and \
            text.replace("\n", "").isprintable()
        assert not taken, text
        assert render.markdown_to_html(text) == render._converted(text)
