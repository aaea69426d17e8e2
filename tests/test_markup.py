"""Names from data as text: Markdown escaping (Streamlit) and Plotly text escaping."""

from __future__ import annotations

import html

import pytest

from engine.markup import MARKDOWN_SPECIALS, escape_markdown, escape_plotly

HOSTILE = [
    "![img](https://example.com/x.png)",
    "[click](https://evil.example/)",
    '<a href="https://evil.example/">click</a>',
    "<img src=x onerror=alert(1)>",
    "<https://evil.example/>",
    "# Heading",
    "1. not a list",
    "- not a list",
    "**bold** __bold__ *it* _it_ ~~gone~~",
    "`code`",
    "Milk\n===",
    "a\r\n    indented code",
    ":red[coloured] :material/home: $x^2$",
    "&lt;b&gt; &amp;",
    "back\\slash \\*",
    "| a | b |",
]


def test_every_special_character_is_escaped():
    for char in MARKDOWN_SPECIALS:
        assert escape_markdown(f"a{char}b") == f"a\\{char}b"
    assert escape_markdown("Category 05 item 17") == "Category 05 item 17"  # plain names unchanged


def test_known_forms():
    assert escape_markdown("![img](https://example.com/x.png)") == r"\!\[img\]\(https\://example\.com/x\.png\)"
    assert escape_markdown("a\r\nb\nc\rd") == "a b c d"  # one line: no heading, list or code block
    assert escape_markdown(None) == "None" and escape_markdown(4.5) == r"4\.5"


@pytest.mark.parametrize("text", HOSTILE)
def test_commonmark_renders_the_escaped_text_as_exactly_that_text(text):
    """A CommonMark renderer (Streamlit's Markdown is CommonMark + GFM) shows the characters, no markup."""
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").enable(["strikethrough", "table"]).render(escape_markdown(text))
    assert rendered.startswith("<p>") and rendered.count("<") == 2  # one paragraph, no other tag
    one_line = " ".join(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    assert html.unescape(rendered.removeprefix("<p>").removesuffix("</p>\n")) == one_line


def test_plotly_text_has_no_tag_and_reads_back():
    for text in HOSTILE:
        escaped = escape_plotly(text)
        assert "<" not in escaped and ">" not in escaped
        assert html.unescape(escaped) == text  # plotly.js decodes these entities when it draws the text
    assert escape_plotly('<a href="x">&</a>') == '&lt;a href="x"&gt;&amp;&lt;/a&gt;'
