"""Shared fixtures: a fresh studio database per test, real DuckDB (never mocked)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import store  # noqa: E402


@pytest.fixture
def con(tmp_path):
    """A new, empty studio database in a temporary file."""
    connection = store.connect(tmp_path / "studio.duckdb")
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def cj_con(tmp_path_factory):
    """The full Complete Journey ingested once per test session (about 5 s)."""
    from engine.sources import completejourney

    connection = store.connect(tmp_path_factory.mktemp("cj") / "studio.duckdb")
    completejourney.ingest(connection, "completejourney")
    yield connection
    connection.close()


@pytest.fixture
def sample_app_db(tmp_path, monkeypatch):
    """A database holding only the committed sample, as the app's ``$STUDIO_DB``; fresh st caches."""
    import streamlit as st

    from engine.sources import synthetic

    db = tmp_path / "studio.duckdb"
    connection = store.connect(db)
    synthetic.ingest_sample(connection, "sample")
    connection.close()
    monkeypatch.setenv("STUDIO_DB", str(db))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield db
    st.cache_data.clear()
    st.cache_resource.clear()
