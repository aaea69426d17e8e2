"""The Model page (AppTest, no browser) and the training job it drives."""

from __future__ import annotations

import time

import pytest
import streamlit as st
from model_fixtures import TINY
from streamlit.testing.v1 import AppTest

from engine import store
from engine.model.jobs import TrainingJob
from engine.model.runs import list_runs
from engine.sources import synthetic

WAIT_S = 420


@pytest.fixture
def sample_db(tmp_path, monkeypatch):
    db = tmp_path / "studio.duckdb"
    con = store.connect(db)
    synthetic.ingest_sample(con, "sample")
    monkeypatch.setenv("STUDIO_DB", str(db))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield db, con
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.slow
def test_model_page_trains_on_the_sample_and_shows_the_evaluation(sample_db):
    db, con = sample_db
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert at.title[0].value == "Model"
    assert any("CPU" in c.value or "GPU" in c.value for c in at.caption)  # the training device is shown
    assert any("No trained model" in i.value for i in at.info)
    at.number_input(key="train_epochs").set_value(2)
    at.button(key="train_submit").click().run()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and not at.success:
        assert not at.error, [e.value for e in at.error]
        time.sleep(2)
        at.run()
    assert at.success and "registered" in at.success[0].value
    at.run()  # the page after the finished training: the new run and its evaluation
    assert not at.exception
    runs = [r for r in list_runs(con, "sample") if r.kind == "trained"]
    assert len(runs) == 1 and runs[0].config["max_epochs"] == 2
    assert at.selectbox(key="model_run").value.startswith(runs[0].run_id)
    metrics = at.dataframe[0].value
    assert list(metrics["scorer"]) == ["Choice model", "Global popularity", "Personal frequency"]
    assert metrics.iloc[0, 1] == pytest.approx(runs[0].metrics["model"]["nll"])
    assert len(at.get("plotly_chart")) >= 3  # metrics, calibration, elasticities


@pytest.mark.slow
def test_a_cancelled_training_job_registers_nothing(sample_db):
    db, con = sample_db
    job = TrainingJob(con, db, "sample", TINY.replace(max_epochs=50, batch_trips=64)).start()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and job.state().fraction == 0 and job.state().active:
        time.sleep(0.5)
    assert job.state().status == "training", job.state()
    job.cancel()
    state = job.wait(timeout=WAIT_S)
    assert state.status == "cancelled", state
    assert [r.run_id for r in list_runs(con, "sample") if r.kind == "trained"] == []
