"""AppTest of the guided tour on the synthetic sample: every step renders, numbers match the engine."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from engine import kpi, store
from engine.markup import escape_markdown
from engine.tour import tour_story

IMAGE = "![img](https://example.com/x.png)"  # a product name that Markdown would render as an image


@pytest.mark.slow
def test_tour_walks_through_every_step(sample_app_db):
    at = AppTest.from_file("../app.py", default_timeout=300).run()
    at.switch_page("pages/tour.py").run()
    assert not at.exception and at.title[0].value == "Guided tour"
    story = tour_story(store.connect(sample_app_db), "sample")
    revenue = next(m.value for m in at.metric if m.label == kpi.KPI_DEFINITIONS["revenue"].label)
    assert revenue.replace("$", "").replace(",", "").startswith(str(int(story.kpis["revenue"]))[:3])
    seen = []
    for step in range(5):
        seen.append(at.get("progress")[0].proto.text)
        assert not at.exception
        if step == 2:  # the bundle step names the bundle the engine found
            assert any(escape_markdown(story.bundle.names[0]) in md.value for md in at.markdown)
        if step < 4:
            at.button(key="tour_next").click().run()
    assert at.button(key="tour_next").disabled and not at.button(key="tour_back").disabled
    assert [s.split(": ", 1)[1] for s in seen] == [
        "The business",
        "The model",
        "A bundle worth offering",
        "Its best price",
        "What it does",
    ]
    assert {m.label for m in at.metric} >= {"Take rate", "Incremental margin"}


def test_a_product_name_from_data_is_shown_as_text(sample_app_db):
    con = store.connect(sample_app_db)
    with store.dataset_cursor(con, "sample") as cur:  # every product: the tour's bundle is among them
        cur.execute("UPDATE products SET name = replace($name, 'x.png', product_id || '.png')", {"name": IMAGE})
    names = tour_story(con, "sample").bundle.names
    assert names[0].startswith("![img](https://example.com/P")
    con.close()
    at = AppTest.from_file("../app.py", default_timeout=300).run()
    at.switch_page("pages/tour.py").run()
    shown = []
    for _ in range(4):
        shown += [e.value for kind in ("markdown", "caption", "info", "success", "warning") for e in at.get(kind)]
        at.button(key="tour_next").click().run()
        assert not at.exception
    heading = next(value for value in shown if value.startswith("### "))
    assert heading == "### " + " + ".join(escape_markdown(n) for n in names)
    assert heading.startswith("### " + r"\!\[img\]\(https\://example\.com/P")  # escaped: text, not an image
    assert not [value for value in shown if "![img](" in value or "](https://example.com" in value]
