"""App-side glue shared by every page: the cached connection, the dataset picker, error display.

The only module besides ``app.py`` that knows about Streamlit caching. Pages import from here;
the engine never imports streamlit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import streamlit as st

from engine import store
from engine.errors import StudioError

T = TypeVar("T")

DATASET_KEY = "dataset"  # st.session_state key (not a widget key: survives page switches)


def db_path() -> Path:
    """The studio database: ``$STUDIO_DB`` or ``data/studio.duckdb``."""
    return Path(os.environ.get("STUDIO_DB", str(store.DEFAULT_DB)))


@st.cache_resource(show_spinner=False)
def get_connection() -> duckdb.DuckDBPyConnection:
    """One DuckDB connection per process; every call site takes its own cursor."""
    return store.connect(db_path())


def current_dataset() -> str | None:
    """The dataset chosen in the sidebar (None when the database has none)."""
    return st.session_state.get(DATASET_KEY)


def run_or_error(action: Callable[[], T]) -> T | None:
    """Run an engine call; show an engine error as one ``st.error`` line and return None."""
    try:
        return action()
    except StudioError as exc:
        st.error(str(exc))
        return None
