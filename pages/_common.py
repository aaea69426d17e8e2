"""App-side glue shared by every page: the cached connection, first-launch data, cached engine
calls, the dataset picker, error display and number formatting.

The only module besides ``app.py`` that knows about Streamlit caching. Pages import from here;
the engine never imports streamlit.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import duckdb
import pandas as pd
import streamlit as st

from engine import kpi, store
from engine.cleaning import RULES
from engine.errors import StudioError
from engine.markup import escape_markdown
from engine.schema import CANONICAL_TABLES, DESCRIBE_TABLE

T = TypeVar("T")
log = logging.getLogger(__name__)


def _route_through_app() -> None:
    """Make the first request of a fresh server run ``app.py``'s navigation, whatever its URL.

    Streamlit 1.67 treats an app with a ``pages/`` folder as an old-style multipage app until
    ``st.navigation`` has run once in the process: a first request to ``/data`` would run that
    page alone (no sidebar, no first-launch ingest, every file of ``pages/`` in the menu). Every
    page imports this module, so on that first import switch the flag and rerun the request.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if PagesManager.uses_pages_directory and get_script_run_ctx(suppress_warning=True) is not None:
        PagesManager.uses_pages_directory = False
        st.rerun()


_route_through_app()

DATASET_KEY = "dataset"  # st.session_state key (not a widget key: survives page switches)
DEFAULT_DATASET = "completejourney"
SAMPLE_DATASET = "sample"


def db_path() -> Path:
    """The studio database: ``$STUDIO_DB`` or ``data/studio.duckdb``."""
    return Path(os.environ.get("STUDIO_DB", str(store.DEFAULT_DB)))


@st.cache_resource(show_spinner=False)
def get_connection() -> duckdb.DuckDBPyConnection:
    """One DuckDB connection per process; every call site takes its own cursor."""
    return store.connect(db_path())


@st.cache_resource(show_spinner=False)
def _first_launch_lock() -> threading.Lock:
    return threading.Lock()


def optional_module(name: str) -> ModuleType | None:
    """An engine module that another branch may not have delivered yet (None when absent)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def ensure_default_datasets() -> None:
    """First launch: an empty database gets The Complete Journey and the synthetic sample.

    Shown in an ``st.status`` box that says what is being ingested and how many rows came in.
    """
    con = get_connection()
    if store.list_datasets(con):
        return
    with _first_launch_lock():
        if store.list_datasets(con):  # another session did it while we waited
            return
        with st.status("First launch: preparing the demo datasets (under a minute, once)...", expanded=True) as box:
            try:
                st.write(
                    "Ingesting **The Complete Journey** (84.51°): a year of grocery baskets of 2,469 households..."
                )
                from engine.sources import completejourney

                ingested = [completejourney.ingest(con, DEFAULT_DATASET)]
                st.write(_ingested(ingested[0], "The Complete Journey"))
                synthetic = optional_module("engine.sources.synthetic")
                if synthetic is None or not hasattr(synthetic, "ingest_sample"):
                    st.write("The synthetic sample (known true preferences) is not part of this build yet: skipped.")
                else:
                    st.write("Ingesting the **synthetic sample** market (known true preferences)...")
                    ingested.append(synthetic.ingest_sample(con, name=SAMPLE_DATASET))
                    st.write(_ingested(ingested[-1], "Synthetic sample"))
                st.write("Preparing the KPI tables...")
                kpi.ensure_facts(con, DEFAULT_DATASET)
            except StudioError as exc:
                box.update(label="First launch: the demo data could not be ingested", state="error")
                st.error(escape_markdown(exc))
                st.stop()
            names = " and ".join(info.name for info in ingested)
            lines = sum(info.lines for info in ingested)
            box.update(
                label=f"First launch: datasets ready ({names}, {lines:,} lines ingested)",
                state="complete",
                expanded=False,
            )
    clear_data_caches()


def _ingested(info: store.DatasetInfo, title: str) -> str:
    return (
        f"{title}: {info.lines:,} lines in {info.baskets:,} baskets of {info.customers:,} customers, "
        f"{info.products:,} products, {info.first_day} to {info.last_day} (cleaning report on the Data page)."
    )


def current_dataset() -> str | None:
    """The dataset chosen in the sidebar (None when the database has none)."""
    return st.session_state.get(DATASET_KEY)


def require_dataset() -> str:
    """The current dataset, or stop the page with a hint when there is none."""
    name = current_dataset()
    if name is None:
        st.info("No dataset yet: import one on the Data page.")
        st.stop()
    return name


def run_or_error(action: Callable[[], T]) -> T | None:
    """Run an engine call; show an engine error as one ``st.error`` line and return None."""
    try:
        return action()
    except StudioError as exc:
        st.error(escape_markdown(exc))  # messages quote names from data
        return None


# ---- cached engine calls: keyed on dataset + registry version (+ filters); `_con` is not hashed


def dataset_version(name: str) -> str:
    return store.get_dataset(get_connection(), name).version


def datasets() -> list[store.DatasetInfo]:
    return store.list_datasets(get_connection())


def dataset_info(name: str) -> store.DatasetInfo:
    return store.get_dataset(get_connection(), name)


@st.cache_data(show_spinner=False, max_entries=256)
def _headline(_con: duckdb.DuckDBPyConnection, dataset: str, version: str, flt: kpi.KpiFilter) -> dict:
    return kpi.headline(_con, dataset, flt)


@st.cache_data(show_spinner=False, max_entries=256)
def _breakdown(
    _con: duckdb.DuckDBPyConnection, dataset: str, version: str, flt: kpi.KpiFilter, by: str, attribute: str | None
) -> pd.DataFrame:
    return kpi.breakdown(_con, dataset, flt, by, attribute)  # type: ignore[arg-type]


@st.cache_data(show_spinner=False, max_entries=64)
def _choices(_con: duckdb.DuckDBPyConnection, dataset: str, version: str) -> dict[str, list[str]]:
    choices = {"departments": kpi.departments(_con, dataset)}
    for attribute in kpi.segment_attributes(_con, dataset):
        choices[attribute] = kpi.segment_values(_con, dataset, attribute)
    return choices


@st.cache_data(show_spinner=False, max_entries=64)
def _table_columns(_con: duckdb.DuckDBPyConnection, dataset: str, version: str) -> pd.DataFrame:
    with store.dataset_cursor(_con, dataset) as cur:
        return pd.concat([cur.execute(DESCRIBE_TABLE, {"table": t}).df() for t in CANONICAL_TABLES], ignore_index=True)


def kpi_headline(dataset: str, flt: kpi.KpiFilter) -> dict:
    return _headline(get_connection(), dataset, dataset_version(dataset), flt)


def kpi_breakdown(dataset: str, flt: kpi.KpiFilter, by: str, attribute: str | None = None) -> pd.DataFrame:
    return _breakdown(get_connection(), dataset, dataset_version(dataset), flt, by, attribute)


def filter_choices(dataset: str) -> dict[str, list[str]]:
    """``departments`` and each customer attribute -> its values."""
    return _choices(get_connection(), dataset, dataset_version(dataset))


def table_columns(dataset: str) -> pd.DataFrame:
    """Columns and types of every canonical table of ``dataset``."""
    return _table_columns(get_connection(), dataset, dataset_version(dataset))


def cost_ratios(dataset: str) -> pd.DataFrame:
    return kpi.cost_ratios(get_connection(), dataset)


def set_cost_ratio(dataset: str, department: str, ratio: float) -> bool:
    """Save an edited cost ratio and drop the cached KPI results it changes (True when saved)."""
    kpi.set_cost_ratio(get_connection(), dataset, department, ratio)
    _headline.clear()
    _breakdown.clear()
    return True


def clear_data_caches() -> None:
    """After an ingest: every cached query result may be stale."""
    st.cache_data.clear()


def cleaning_report(info: store.DatasetInfo) -> pd.DataFrame:
    """The cleaning rules in order, with what each did to this dataset."""
    return pd.DataFrame(
        [
            {"rule": r.name, "action": r.action, "rows": info.cleaning.get(r.name, 0), "description": r.description}
            for r in RULES
        ]
    )


# ---- file import (engine.sources.files arrives from another branch; pages check it is there)

UPLOAD_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".gz")


def import_files(name: str, transactions, products, customers, mapping: str) -> store.DatasetInfo:
    """Save uploaded files to a temporary folder and ingest them as dataset ``name``.

    ``transactions``, ``products``, ``customers`` are Streamlit ``UploadedFile`` objects (the
    last two may be None); ``mapping`` is the TOML column mapping.
    """
    import tempfile

    files = optional_module("engine.sources.files")
    if files is None:
        raise StudioError("file import needs engine.sources.files, which this build does not include yet")
    store.check_dataset_name(name)
    with tempfile.TemporaryDirectory(prefix="studio_upload_") as folder:
        paths = {}
        for role, upload in (("transactions", transactions), ("products", products), ("customers", customers)):
            if upload is not None:
                suffix = "".join(s for s in Path(upload.name).suffixes[-2:] if s.lower() in UPLOAD_SUFFIXES) or ".csv"
                paths[role] = Path(folder) / f"{role}{suffix.lower()}"
                paths[role].write_bytes(upload.getbuffer())
        info = files.ingest(get_connection(), name, mapping=mapping, **paths)
    clear_data_caches()
    return info


# ---- customer segments (engine.segments) and privacy settings


@st.cache_data(show_spinner=False, max_entries=64)
def _segment_profile(_con: duckdb.DuckDBPyConnection, dataset: str, version: str, attribute: str, k: int):
    from engine import segments

    return segments.profile(_con, dataset, attribute)


def segment_profile(dataset: str, attribute: str):
    """Per-segment figures (``engine.segments.SegmentProfile``), cached per dataset version."""
    con = get_connection()
    return _segment_profile(con, dataset, dataset_version(dataset), attribute, store.get_setting(con, "min_group_size"))


def build_segments(dataset: str, kind: str, clusters: int = 5) -> str:
    """(Re)build RFM or preference-cluster segments; cached results that list attributes are dropped."""
    from engine import segments

    con = get_connection()
    attribute = segments.build_rfm(con, dataset) if kind == "rfm" else segments.build_learned(con, dataset, clusters)
    clear_data_caches()
    return attribute


def segment_attributes(dataset: str) -> list[str]:
    from engine import segments

    return segments.attributes(get_connection(), dataset)


# ---- scenarios (engine.scenarios): saved pricing decisions

PRICING_PAGE = "pages/pricing.py"


def open_in_studio(scenario) -> None:
    """Restore a scenario's bundle, segment, horizon and price in the Pricing studio and go there."""
    attribute, _, value = (scenario.segment_attribute or "").partition("=")
    st.session_state["bundle_items"] = list(scenario.items)
    st.session_state["px_items"] = list(scenario.items)
    st.session_state["px_attribute"] = attribute or "Everyone"
    if attribute:
        st.session_state["px_value"] = value or "All values (a price per segment)"
    st.session_state["px_weeks"] = int(scenario.weeks)
    prices = list(scenario.prices.values())
    st.session_state["px_price_" + "_".join(scenario.items)] = round(sum(prices) / len(prices), 2)
    st.switch_page(PRICING_PAGE)


def save_scenario(name: str, notes: str, projection, curve=None, guardrails: dict | None = None):
    """Save the studio's current projection as a named scenario."""
    return scenarios_module().save(
        get_connection(),
        scenarios_module().from_projection(
            get_connection(), name, projection, notes=notes, guardrails=guardrails, curve=curve
        ),
    )


def scenarios_module():
    from engine import scenarios

    return scenarios


# ---- the stakeholder tour (engine.tour)


@st.cache_data(show_spinner="Preparing the tour: KPIs, the model, the best bundle and its price...", max_entries=8)
def _tour(_con: duckdb.DuckDBPyConnection, dataset: str, versions: tuple[str, ...]):
    from engine.tour import tour_story

    return tour_story(_con, dataset)


def tour_story(dataset: str):
    """The tour for ``dataset``, cached per version of every dataset (pricing may use the sample)."""
    con = get_connection()
    return _tour(con, dataset, tuple(d.version for d in store.list_datasets(con)))
