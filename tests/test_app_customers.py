"""AppTest of the Customers page on the synthetic sample: segments, charts, privacy settings."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from engine import store


def open_customers() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/customers.py").run()
    assert not at.exception
    return at


@pytest.mark.slow
def test_demographic_profile_then_rfm_and_clusters(sample_app_db):
    at = open_customers()
    assert at.title[0].value == "Customers"
    assert len(at.get("plotly_chart")) == 2  # revenue and (truth run) price sensitivity
    at.button(key="build_rfm").click().run()
    assert not at.exception
    at.selectbox(key="customers_attribute").select("rfm_segment").run()
    table = at.dataframe[0].value
    assert set(table.segment) <= {"Champions", "Loyal", "New", "At risk", "Hibernating", "Others"}
    assert table.customers.sum() == 500
    at.number_input(key="cluster_count").set_value(3).run()
    at.button(key="build_learned").click().run()
    at.selectbox(key="customers_attribute").select("preference_cluster").run()
    assert not at.exception and len(at.dataframe[0].value) == 3


def test_privacy_settings_suppress_small_groups(sample_app_db):
    at = open_customers()
    at.number_input(key="privacy_k").set_value(200)
    at.button[-1].click().run()  # the form's submit button
    assert not at.exception
    at.selectbox(key="customers_attribute").select("age_band").run()
    table = at.dataframe[0].value
    small = table[table.customers.isna()]
    assert len(small) > 0 and (small.suppressed.str.contains("fewer than 200")).all()
    con = store.connect(sample_app_db)
    assert store.get_setting(con, "min_group_size") == 200
