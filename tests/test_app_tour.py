"""AppTest of the guided tour on the synthetic sample: every step renders, numbers match the engine."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from engine import kpi, store
from engine.tour import tour_story


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
            assert any(story.bundle.names[0] in md.value for md in at.markdown)
        if step < 4:
            at.button(key="tour_next").click().run()
    assert at.button(key="tour_next").disabled and not at.button(key="tour_back").disabled
    assert [s.split(": ", 1)[1] for s in seen] == ["The business", "The model", "A bundle worth offering", "Its best price", "What it does"]
    assert {m.label for m in at.metric} >= {"Take rate", "Incremental margin"}
