"""Bundles: candidate bundles, why each is there, the strongest pairs, and a bundle builder."""

from __future__ import annotations

import plotly.express as px
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from engine import bundles
from engine.bundles import BundleQuery, BundleResult
from engine.markup import escape_plotly
from pages._common import current_dataset, get_connection, run_or_error

BUNDLE_ITEMS_KEY = "bundle_items"  # read by the Pricing page (survives the page switch)
BUNDLE_LEVEL_KEY = "bundle_level"
PRICING_PAGE = "pages/pricing.py"
ALL = "All"
RANK_LABELS = {
    "default": "Best available (margin, else model, else co-purchase)",
    "margin": "Expected incremental margin",
    "complementarity": "Model complementarity",
    "score": "Co-purchase score (lift x log baskets)",
    "lift": "Lift",
    "support": "Support",
    "confidence": "Confidence",
}


@st.cache_data(show_spinner="Finding bundles…", max_entries=64)
def find_cached(dataset: str, token: str, query: BundleQuery) -> BundleResult:
    """Candidates, cached on dataset + version and model run (``token``) + every filter."""
    return bundles.find_bundles(get_connection(), dataset, query)


@st.cache_data(show_spinner=False, max_entries=64)
def matrix_cached(token: str, result: BundleResult, metric: str) -> bundles.PairMatrix:
    return bundles.pair_matrix(get_connection(), result, metric)


def filters(dataset: str) -> BundleQuery:
    """The filter widgets; returns the query they describe."""
    con = get_connection()
    left, middle, right = st.columns(3)
    level = left.radio("Items", bundles.LEVELS, horizontal=True, key="bx_level")
    size = middle.radio("Items per bundle", [2, 3], horizontal=True, key="bx_size")
    rank_by = right.selectbox("Rank by", list(RANK_LABELS), format_func=RANK_LABELS.get, key="bx_rank")
    department = left.selectbox("Department", [ALL, *bundles.filter_options(con, dataset).departments], key="bx_dept")
    options = bundles.filter_options(con, dataset, None if department == ALL else department)
    category = middle.selectbox("Category", [ALL, *options.categories], key="bx_category")
    segment = right.selectbox(
        "Segment",
        [None, *options.segments],
        key="bx_segment",
        format_func=lambda s: "All customers" if s is None else s.label,
    )
    support_pct = left.number_input(
        "Minimum support (% of baskets)", 0.0, 100.0, 0.1, 0.05, format="%.3f", key="bx_support"
    )
    min_baskets = middle.number_input("Minimum baskets together", 1, 1_000_000, 10, key="bx_min_baskets")
    search = right.text_input("Search by name", key="bx_search")
    across = left.checkbox(
        "Only bundles across categories",
        key="bx_across",
        help="Leave out multi-buys of one category (two flavours of one drink, say).",
    )
    return BundleQuery(
        level=level,
        size=size,
        min_support=support_pct / 100.0,
        min_baskets=int(min_baskets),
        segment=segment,
        department=None if department == ALL else department,
        category=None if category == ALL else category,
        search=search or None,
        across_categories=across,
        rank_by=rank_by,
        top=20,
    )


def price_button(items: tuple[str, ...] | list[str], level: str, key: str) -> None:
    """Store the bundle for the Pricing page and go there (if that page exists yet)."""
    if st.button("Price this bundle", key=key, type="primary", disabled=len(items) < 2):
        st.session_state[BUNDLE_ITEMS_KEY] = list(items)
        st.session_state[BUNDLE_LEVEL_KEY] = level
        try:
            st.switch_page(PRICING_PAGE)
        except StreamlitPageNotFoundError:
            st.success("Bundle stored: the Pricing page will open with it.")


def candidates_section(result: BundleResult) -> None:
    run = result.complementarity_run
    st.caption(
        f"{result.considered:,} candidates pass the filters among {result.baskets:,} baskets "
        f"(at least {result.min_count:,} together); ranked by {result.ranked_by}; "
        + (
            f"{result.suppressed:,} left out as fewer customers than the minimum group size bought them together; "
            if result.suppressed
            else ""
        )
        + (f"complementarity from model run '{run}'." if run else "train the model to see complementarity.")
    )
    if not result.candidates:
        st.info("No bundle passes these filters: lower the minimum support or widen the filters.")
        return
    st.dataframe(
        bundles.candidates_frame(result),
        hide_index=True,
        width="stretch",
        column_config={
            "margin": st.column_config.NumberColumn("margin", format="%.2f"),
            "complementarity": st.column_config.NumberColumn("complementarity", format="%.2f"),
            "lift": st.column_config.NumberColumn("lift", format="%.2f"),
            "support": st.column_config.NumberColumn("support", format="percent"),
        },
    )
    labels = bundles.candidate_labels(result)  # as options (not indices), so a new list shows new labels
    chosen = st.selectbox("Candidate", labels, key="bx_choice")
    price_button(result.candidates[labels.index(chosen)].items, result.query.level, key="bx_price_candidate")


def heatmap_section(token: str, result: BundleResult) -> None:
    if len(result.candidates) == 0:
        return
    metrics = ["complementarity", "lift"] if result.complementarity_run else ["lift"]
    metric = st.radio("Heatmap of", metrics, horizontal=True, key="bx_heatmap_metric")
    matrix = matrix_cached(token, result, metric)
    labels = [escape_plotly(label) for label in matrix.labels]  # item names: text, not Plotly HTML
    if metric == "lift":  # ratio to independence: 1 is neutral, large values are common in sparse data
        fig = px.imshow(
            matrix.frame(), x=labels, y=labels, text_auto=".1f", aspect="auto", color_continuous_scale="Reds"
        )
    else:  # utility units: > 0 complements, < 0 substitutes
        fig = px.imshow(
            matrix.frame(),
            x=labels,
            y=labels,
            text_auto=".2f",
            aspect="auto",
            color_continuous_scale="RdBu_r",
            color_continuous_midpoint=0.0,
        )
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=f"{metric} of the strongest pairs")
    st.plotly_chart(fig, width="stretch")


def builder_section(dataset: str, query: BundleQuery) -> None:
    con = get_connection()
    options = run_or_error(lambda: bundles.builder_items(con, dataset, query.level, query.segment))
    if options is None:
        return
    labels = dict(zip(options["item"], options["label"], strict=True))
    items = st.multiselect(
        "Items (2 to 4, the most bought first)",
        list(labels),
        format_func=labels.get,
        max_selections=4,
        key="bx_builder_items",
    )
    if len(items) < 2:
        st.caption("Choose at least two items.")
        return
    bundle = run_or_error(lambda: bundles.describe_bundle(con, dataset, items, query.level, query.segment))
    if bundle is None:
        return
    cols = st.columns(5)
    cols[0].metric(
        "Bought together", f"{bundle.together_baskets:,} baskets", f"{bundle.support:.2%} support", delta_color="off"
    )
    cols[1].metric("Lift", f"{bundle.lift:.2f}")
    cols[2].metric("Complementarity", "—" if bundle.complementarity is None else f"{bundle.complementarity:.2f}")
    cols[3].metric("Shared customers", f"{bundle.shared_customers:,}")
    margin = bundle.expected_incremental_margin
    cols[4].metric("Incremental margin", "—" if margin is None else f"{margin:,.2f}")
    price_button(items, query.level, key="bx_price_builder")


st.title("Bundles")
dataset = current_dataset()
if dataset is None:
    st.info("No dataset yet: ingest one on the Data page or with `python -m engine ingest sample`.")
    st.stop()
query = run_or_error(lambda: filters(dataset))
token = run_or_error(lambda: bundles.dataset_token(get_connection(), dataset))
result = run_or_error(lambda: find_cached(dataset, token, query)) if query and token else None
if result is not None:
    candidates_section(result)
    heatmap_section(token, result)
    with st.expander("Build a bundle of your own (2 to 4 items)"):
        builder_section(dataset, query)
