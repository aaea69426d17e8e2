"""Data: the datasets side by side, the current one's cleaning report and schema, and file import."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import store
from engine.markup import escape_markdown
from engine.schema import CANONICAL_TABLES
from pages import _common as common

NOTICE_KEY = "data_page_notice"  # a message that survives the rerun after an import


def datasets_table() -> None:
    st.subheader("Datasets")
    infos = common.datasets()
    if not infos:
        st.info("No dataset yet: import one below.")
        return
    rows = pd.DataFrame([d.to_json() for d in infos]).drop(columns=["version", "dropped"])
    counts = {
        c: st.column_config.NumberColumn(c.capitalize(), format="localized")
        for c in ("customers", "products", "baskets", "lines")
    }
    st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        column_config=counts
        | {
            "dataset": "Dataset",
            "source": "Source",
            "first_day": "First day",
            "last_day": "Last day",
            "weeks": "Weeks",
        },
    )
    st.caption("Switch between datasets with the picker in the sidebar.")
    st.caption(storage_note(store.is_encrypted(common.get_connection())))


def storage_note(encrypted: bool) -> str:
    """How the studio file is kept, in one line."""
    if encrypted:
        return "The studio file is encrypted at rest (key from STUDIO_DB_ENCRYPTION_KEY)."
    return (
        "The studio file is not encrypted at rest; it is readable by its owner only. Set "
        "STUDIO_DB_ENCRYPTION_KEY to encrypt it (see the README, Privacy and security)."
    )


def cleaning_report(info) -> None:
    st.subheader(f"Cleaning report: {escape_markdown(info.name)}")
    st.caption("Each rule is applied in order to every raw line; a line is dropped by the first rule it matches.")
    report = common.cleaning_report(info)
    report["rows"] = report["rows"].map("{:,}".format)
    st.table(
        report.rename(columns={"rule": "Rule", "action": "Action", "rows": "Rows", "description": "What it does"}),
        hide_index=True,
    )


def schema_preview(dataset: str) -> None:
    st.subheader("Schema")
    columns = common.table_columns(dataset)
    for tab, table in zip(st.tabs(list(CANONICAL_TABLES)), CANONICAL_TABLES, strict=True):
        tab.dataframe(columns[columns["table"] == table].drop(columns="table"), hide_index=True, width="stretch")


def import_form() -> None:
    st.subheader("Import your own data")
    files = common.optional_module("engine.sources.files")
    if files is None:
        st.info(
            "Importing CSV or Parquet files arrives with the files source (engine.sources.files), "
            "which this build does not include yet."
        )
        return
    st.caption(
        "Upload the transactions (one row per basket line) and, optionally, products and customers, "
        "then map your column names to the canonical ones. Importing under an existing name replaces "
        "that dataset in one step: if the import fails, the old one stays as it was."
    )
    with st.form("import_form"):
        name = st.text_input("Dataset name", placeholder="lower-case letters, digits and _, e.g. my_store")
        transactions = st.file_uploader("Transactions (CSV or Parquet)", type=["csv", "tsv", "txt", "parquet", "gz"])
        left, right = st.columns(2)
        products = left.file_uploader("Products (optional)", type=["csv", "tsv", "txt", "parquet", "gz"])
        customers = right.file_uploader("Customers (optional)", type=["csv", "tsv", "txt", "parquet", "gz"])
        mapping = st.text_area("Column mapping (TOML)", value=files.EXAMPLE_MAPPING, height=420)
        submitted = st.form_submit_button("Import", type="primary")
    if not submitted:
        return
    if transactions is None:
        st.error("Choose a transactions file to import.")
        return
    with st.status(f"Importing {escape_markdown(name or 'the dataset')}...", expanded=True) as box:
        info = common.run_or_error(
            lambda: common.import_files(name.strip(), transactions, products, customers, mapping)
        )
        if info is None:
            box.update(label="Import failed", state="error")
            return
    st.session_state[common.DATASET_KEY] = info.name
    st.session_state[NOTICE_KEY] = (
        f"Imported {escape_markdown(info.name)}: {info.lines:,} lines, {info.baskets:,} baskets, "
        f"{info.customers:,} customers."
    )
    st.rerun()


st.title("Data")
if NOTICE_KEY in st.session_state:
    st.success(st.session_state.pop(NOTICE_KEY))
datasets_table()
dataset = common.current_dataset()
if dataset is not None:
    current = common.dataset_info(dataset)
    cleaning_report(current)
    schema_preview(dataset)
import_form()
