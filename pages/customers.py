"""Customers: segments (demographic, RFM, learned preference clusters) and privacy settings."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from engine import store
from engine.markup import escape_plotly
from engine.segments import DERIVED, kind_of
from pages import _common as common
from pages import _display as display

KIND_LABELS = {
    "demographic": "Demographic",
    "rfm": "RFM (recency, frequency, money)",
    "learned": "Learned preference clusters",
}


def derived_segment_buttons(dataset: str) -> None:
    """Build or refresh the RFM and preference-cluster segmentations."""
    left, right = st.columns(2)
    if left.button("Compute RFM segments", icon=":material/leaderboard:", key="build_rfm"):
        common.run_or_error(lambda: common.build_segments(dataset, "rfm"))
    clusters = right.number_input("Preference clusters", 2, 12, 5, key="cluster_count")
    if right.button("Cluster customers on learned preferences", icon=":material/hub:", key="build_learned"):
        common.run_or_error(lambda: common.build_segments(dataset, "learned", int(clusters)))


def choose_attribute(dataset: str) -> str | None:
    attributes = common.segment_attributes(dataset)
    if not attributes:
        st.info("This dataset has no segments yet: compute RFM segments or preference clusters above.")
        return None
    preferred = next((a for a in (DERIVED["rfm"], "income_band") if a in attributes), attributes[0])
    return st.selectbox(
        "Segmentation",
        attributes,
        index=attributes.index(preferred),
        format_func=lambda a: f"{display.attribute_title(a)} - {KIND_LABELS[kind_of(a)]}",
        key="customers_attribute",
    )


def sensitivity_chart(table, attribute: str) -> go.Figure:
    """Price sensitivity per segment: p25-p75 as a bar, p10-p90 as whiskers, the median marked."""
    shown = table.dropna(subset=["sensitivity_p50"])
    shown = shown.assign(segment=shown.segment.map(escape_plotly))  # names from data: text, not Plotly HTML
    fig = go.Figure()
    fig.add_bar(
        x=shown.segment,
        base=shown.sensitivity_p25,
        y=shown.sensitivity_p75 - shown.sensitivity_p25,
        marker_color="#8ecae6",
        name="middle half (p25-p75)",
        error_y={
            "type": "data",
            "symmetric": False,
            "array": shown.sensitivity_p90 - shown.sensitivity_p75,
            "arrayminus": [0] * len(shown),
        },
    )
    fig.add_scatter(
        x=shown.segment,
        y=shown.sensitivity_p50,
        mode="markers",
        marker={"color": "#023047", "size": 10, "symbol": "line-ew-open"},
        name="median",
    )
    fig.add_scatter(
        x=shown.segment,
        y=shown.sensitivity_p10,
        mode="markers",
        marker={"color": "#219ebc", "symbol": "triangle-up"},
        name="p10",
    )
    fig.update_layout(
        title=f"Price sensitivity by {display.attribute_title(attribute).lower()}",
        height=380,
        yaxis_title="Utility lost per $1 of price (b)",
        xaxis_title=display.attribute_title(attribute),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def revenue_chart(table, attribute: str) -> go.Figure:
    shown = table.dropna(subset=["revenue"])
    shown = shown.assign(segment=shown.segment.map(escape_plotly))
    fig = go.Figure(
        go.Bar(
            x=shown.segment,
            y=shown.revenue,
            marker_color="#2a6f97",
            customdata=shown.basket_share,
            hovertemplate="%{x}: $%{y:,.0f}, %{customdata:.1%} of baskets<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Revenue by {display.attribute_title(attribute).lower()}",
        yaxis_title="Revenue ($)",
        yaxis_tickformat=",.0f",
        height=380,
        xaxis_title=display.attribute_title(attribute),
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return fig


def profile_section(dataset: str, attribute: str) -> None:
    profile = common.run_or_error(lambda: common.segment_profile(dataset, attribute))
    if profile is None:
        return
    table = profile.table
    left, right = st.columns(2)
    left.plotly_chart(revenue_chart(table, attribute), width="stretch")
    if profile.run_id is None:
        right.info("Train the model (Model page) to see each segment's price sensitivity.")
    else:
        right.plotly_chart(sensitivity_chart(table, attribute), width="stretch")
        right.caption(
            f"Price sensitivity from model run `{profile.run_id}`: mean over items of b(h,i), in utility per dollar."
        )
    sensitivity = [f"sensitivity_{p}" for p in ("p10", "p25", "p50", "p75", "p90")]
    shown = table.drop(columns=sensitivity) if profile.run_id is None else table
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "segment": "Segment",
            "customers": st.column_config.NumberColumn("Customers", format="localized"),
            "active_customers": None,
            "baskets": st.column_config.NumberColumn("Baskets", format="localized"),
            "revenue": st.column_config.NumberColumn("Revenue", format="dollar"),
            "basket_share": st.column_config.NumberColumn("Share of baskets", format="percent"),
            "top_categories": "Top categories (by revenue)",
            **{
                f"sensitivity_{p}": st.column_config.NumberColumn(f"Sensitivity {p}", format="%.2f")
                for p in ("p10", "p25", "p50", "p75", "p90")
            },
            "suppressed": st.column_config.TextColumn("Suppressed (privacy)"),
        },
    )
    st.caption(
        f"Segments with fewer than {profile.min_group_size} customers show no figures (privacy). "
        "No table or chart here shows an individual customer."
    )
    display.download_csv(table, f"segments_{attribute}.csv", "Download segment profile (CSV)")


def privacy_settings() -> None:
    """Minimum group size, sensitive attributes, and whether they may be pricing segments."""
    con = common.get_connection()
    with st.expander("Privacy and fair-pricing settings"):
        st.write(
            "Customer identifiers are pseudonymized at ingest (keyed hash; the key is kept apart from the database file)."
        )
        with st.form("privacy_form"):
            k = st.number_input(
                "Minimum group size (figures over fewer customers are suppressed)",
                2,
                1000,
                int(store.get_setting(con, "min_group_size")),
                key="privacy_k",
            )
            known = sorted(
                set(common.segment_attributes(common.require_dataset()))
                | set(store.get_setting(con, "sensitive_attributes"))
            )
            sensitive = st.multiselect(
                "Sensitive attributes (personal data)",
                known,
                default=store.get_setting(con, "sensitive_attributes"),
                key="privacy_sensitive",
            )
            allow = st.toggle(
                "Allow sensitive attributes as pricing segments (prices then carry a personal-data notice)",
                value=bool(store.get_setting(con, "allow_sensitive_segments")),
                key="privacy_allow",
            )
            if st.form_submit_button("Save settings"):
                for key, value in (
                    ("min_group_size", int(k)),
                    ("sensitive_attributes", sensitive),
                    ("allow_sensitive_segments", allow),
                ):
                    store.set_setting(con, key, value)
                common.clear_data_caches()
                st.success("Settings saved.")


st.title("Customers")
st.caption(
    "Segments to understand and target customers: demographics, RFM, and clusters of learned preferences. "
    "Segments defined here are the ones the pricing studio and the optimizer can target."
)
dataset = common.require_dataset()
derived_segment_buttons(dataset)
attribute = choose_attribute(dataset)
if attribute:
    profile_section(dataset, attribute)
privacy_settings()
