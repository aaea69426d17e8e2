"""Names from data shown as text, never as markup: Streamlit Markdown and Plotly's HTML subset.

Product names, segment values, scenario and dataset names come from imported files and from
users. Streamlit renders Markdown (plus its own ``:red[...]`` colours, ``$`` LaTeX and
``:icon:`` shortcodes) in ``st.markdown``, ``st.caption``, the ``st.info`` family and every widget
label and metric label: a product named ``![img](https://example.com/x.png)`` would load that
image, ``[x](https://...)`` would be a link. Plotly renders a subset of HTML (``<a href>``,
``<br>``, ``<b>``, ...) in every text of a figure: titles, axis and tick labels, legends,
annotations and hover labels.

``escape_markdown`` backslash-escapes every character that starts Markdown or a Streamlit
directive (CommonMark lets any ASCII punctuation be escaped, so the text reads the same) and
turns line breaks into spaces (a line break could open a heading, a list or a code block).
``escape_plotly`` writes ``&``, ``<`` and ``>`` as entities, which Plotly shows as those characters.
Use each where data meets that renderer, on the value only, never on a whole sentence written
as Markdown on purpose. Text shown by ``st.text``, ``st.dataframe`` or a select box's options is
plain already and needs neither.
"""

from __future__ import annotations

import html

MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!|<>~$:=&@"
_MARKDOWN = str.maketrans({c: "\\" + c for c in MARKDOWN_SPECIALS} | {"\n": " ", "\r": " "})


def escape_markdown(value: object) -> str:
    """``value`` as Markdown that Streamlit shows as exactly its text, on one line."""
    return str(value).replace("\r\n", " ").translate(_MARKDOWN)


def escape_plotly(value: object) -> str:
    """``value`` as Plotly text (titles, labels, annotations, hover) shown as exactly its text."""
    return html.escape(str(value), quote=False)
