"""Pricing studio: pick a bundle, move its price and read the projection; optimize within guardrails."""

from __future__ import annotations

import streamlit as st

from engine import store
from engine.bundles import views as bundle_views
from engine.markup import escape_markdown
from engine.pricing import bundle as pricing_bundle
from engine.pricing import charts
from engine.pricing.curves import price_curve
from engine.pricing.guardrails import Guardrails
from engine.pricing.optimize import optimize_price
from engine.pricing.whatif import DEFAULT_WEEKS, project_bundle
from pages._common import current_dataset, get_connection, run_or_error, save_scenario

BUNDLE_ITEMS_KEY = "bundle_items"  # set by the Bundles page ("Price this bundle")
DECISION_KEY = "pricing_decision"  # the last optimizer decision (survives reruns)
EVERYONE, PER_SEGMENT = "Everyone", "All values (a price per segment)"
ENDINGS = [".99", ".49", ".95", ".00"]
# (figure, label, format, figure shown as the delta vs no bundle)
HEADLINES = [
    ("take_rate", "Take rate", "percent", None),
    ("margin", "Margin", "money", "incremental_margin"),
    ("revenue", "Revenue", "money", "incremental_revenue"),
    ("cannibalized_revenue", "Cannibalized", "money", None),
    ("consumer_surplus_change", "Surplus change", "money", None),
    ("share_better_off", "Better off", "percent", None),
]


def fmt(value: float, kind: str, currency: str) -> str:
    return charts.percent(value) if kind == "percent" else charts.money(value, currency)


def columns(currency: str) -> dict:
    """Readable headers and formats for the engine's tables."""
    symbol = charts.SYMBOLS.get(currency, "")
    money = {
        "objective_gain": "Objective gain",
        "revenue": "Revenue",
        "margin": "Margin",
        "incremental_revenue": "Incremental revenue",
        "incremental_margin": "Incremental margin",
        "cannibalized_revenue": "Cannibalized revenue",
        "consumer_surplus_change": "Surplus change",
        "regular_price": "Regular price",
        "revenue_moved": "Stand-alone revenue moved",
        "price": "Price",
    }
    share = {"take_rate": "Take rate", "share_better_off": "Better off"}
    units = {
        "bundle_units": "Bundle units",
        "units_no_bundle": "Units, no bundle",
        "units_with_bundle": "Units, with bundle",
        "units_moved": "Units moved",
        "customers": "Customers",
    }
    config = {k: st.column_config.NumberColumn(v, format=f"{symbol}%,.2f") for k, v in money.items()}
    config |= {k: st.column_config.NumberColumn(v, format="percent") for k, v in share.items()}
    config |= {k: st.column_config.NumberColumn(v, format="%,.1f") for k, v in units.items()}
    config |= {k + suffix: None for k in (*money, *share, *units) for suffix in ("_low", "_high")}  # bands: hidden
    config |= {
        "strategy": "Strategy",
        "prices": "Prices",
        "note": "Note",
        "segment": "Segment",
        "name": "Item",
        "item_id": "Id",
        "deployable": st.column_config.CheckboxColumn("Deployable"),
    }
    return config


def choose_bundle(con, dataset: str) -> tuple[list[str], pricing_bundle.Segment, float]:
    """Items (from a candidate or by hand), target segment and horizon."""
    catalog = {item.item_id: item for item in pricing_bundle.item_catalog(con, dataset)}
    label = {i: f"{item.name} · {i} · {item.regular_price:.2f}" for i, item in catalog.items()}
    handed = [i for i in st.session_state.get(BUNDLE_ITEMS_KEY, []) if i in catalog]
    candidates = bundle_views.priceable_candidates(con, dataset)
    if "px_items" not in st.session_state:
        suggested = list(candidates[0]) if candidates else pricing_bundle.suggested_items(con, dataset)
        st.session_state["px_items"] = handed or suggested
    if candidates:

        def take_candidate() -> None:
            if st.session_state["px_candidate"]:
                st.session_state["px_items"] = list(st.session_state["px_candidate"])

        st.selectbox(
            "Start from a bundle candidate",
            [None, *candidates],
            key="px_candidate",
            on_change=take_candidate,
            format_func=lambda c: "Build by hand" if c is None else " + ".join(catalog[i].name for i in c),
        )
    items = st.multiselect(
        "Items in the bundle (2 to 4)", list(catalog), format_func=label.get, max_selections=4, key="px_items"
    )
    left, middle, right = st.columns(3)
    choices = pricing_bundle.segment_choices(con, dataset)
    attribute = left.selectbox("Target segment", [EVERYONE, *choices], key="px_attribute")
    value = None
    if attribute != EVERYONE:
        value = middle.selectbox("Segment value", [PER_SEGMENT, *choices[attribute]], key="px_value")
    weeks = right.number_input("Horizon (weeks)", 1, 52, int(DEFAULT_WEEKS), key="px_weeks")
    segment = pricing_bundle.Segment(
        None if attribute == EVERYONE else attribute, None if value in (None, PER_SEGMENT) else value
    )
    return items, segment, float(weeks)


@st.fragment
def projection_section(items: list[str], segment, weeks: float, curve, currency: str) -> None:
    """The price slider and everything projected at that price (reruns alone when the slider moves)."""
    key = "px_price_" + "_".join(items)
    parts = curve.sum_of_parts
    st.session_state.setdefault(key, round(0.85 * parts, 2))
    price = st.slider(
        f"Bundle price (sum of the parts {charts.money(parts, currency)})",
        min(curve.prices),
        parts,
        step=0.01,
        key=key,
        format="%.2f",
    )
    projection = run_or_error(lambda: project_bundle(get_connection(), current_dataset(), items, price, segment, weeks))
    if projection is None:
        return
    st.caption(
        f"{100 * (1 - price / parts):.1f}% off · {projection.total.customers:,} customers · "
        f"{weeks:g} weeks · run {projection.run_id} · bands: {projection.band}"
    )
    figures = projection.total.figures
    for column, (name, title, kind, delta) in zip(st.columns(len(HEADLINES)), HEADLINES, strict=True):
        figure = figures[name]
        column.metric(
            title,
            fmt(figure.value, kind, currency),
            help=charts.FIGURE_HELP[name],
            delta=None if delta is None else fmt(figures[delta].value, kind, currency),
        )
        column.caption(f"band {fmt(figure.low, kind, currency)} – {fmt(figure.high, kind, currency)}")
    decision = st.session_state.get(DECISION_KEY)
    optimum = decision.price if decision is not None and isinstance(decision.price, float) else None
    st.plotly_chart(charts.curves_figure(curve, price, optimum, currency), width="stretch")
    if projection.segments:
        st.subheader("Per segment")
        st.dataframe(projection.segment_table(), hide_index=True, width="stretch", column_config=columns(currency))
    save_form(projection, curve)
    st.subheader("Cannibalization by item")
    st.plotly_chart(charts.cannibalization_figure(projection), width="stretch")
    st.dataframe(projection.item_table(), hide_index=True, width="stretch", column_config=columns(currency))


def save_form(projection, curve) -> None:
    """Keep this decision as a named scenario (Scenarios page: compare, export, report)."""
    with st.popover("Save as scenario", icon=":material/bookmark_add:"):
        with st.form("px_save"):
            name = st.text_input("Scenario name", key="px_scenario_name")
            notes = st.text_area("Notes", key="px_scenario_notes")
            if st.form_submit_button("Save"):
                if run_or_error(lambda: save_scenario(name, notes, projection, curve)):
                    st.success(f"Saved '{escape_markdown(name)}': see the Scenarios page.")


def guardrails_form() -> tuple[str, float, Guardrails] | None:
    """The optimizer's objective and guardrails; None until submitted."""
    with st.form("px_guardrails"):
        left, middle, right = st.columns(3)
        objective = left.radio("Objective", ["margin", "revenue", "welfare"], horizontal=True, key="px_objective")
        weight = left.number_input("Weight on consumer surplus (welfare)", 0.0, 10.0, 0.5, 0.1, key="px_weight")
        min_margin = middle.number_input("Minimum bundle margin % (0: none)", 0.0, 99.0, 0.0, 1.0, key="px_min_margin")
        max_discount = middle.number_input("Maximum discount %", 0.0, 99.0, 50.0, 1.0, key="px_max_discount")
        endings = right.multiselect("Price endings", ENDINGS, key="px_endings")
        spread = right.number_input("Maximum spread between segments %", 0.0, 99.0, 10.0, 1.0, key="px_spread")
        stock = right.number_input("Stock limit on bundle units (0: none)", 0.0, 1e9, 0.0, 10.0, key="px_stock")
        if not st.form_submit_button("Optimize price", type="primary"):
            return None
    rails = Guardrails(
        min_margin_pct=min_margin or None,
        max_discount_pct=max_discount,
        price_endings=tuple(endings),
        max_segment_spread_pct=spread,
        stock_limit=stock or None,
    )
    return objective, weight, rails


def optimizer_section(items: list[str], segment, weeks: float, currency: str) -> None:
    submitted = run_or_error(guardrails_form)
    if submitted:
        objective, weight, rails = submitted
        st.session_state[DECISION_KEY] = run_or_error(
            lambda: optimize_price(
                get_connection(), current_dataset(), items, segment, objective, rails, weeks, welfare_weight=weight
            )
        )
    decision = st.session_state.get(DECISION_KEY)
    if decision is None or [i.item_id for i in decision.items] != items or decision.segment != segment:
        return
    (st.success if decision.discount_pays else st.warning)(escape_markdown(decision.recommendation))
    if decision.binding_constraints:
        st.markdown(
            "**Binding guardrails**\n"
            + "\n".join(
                f"- {escape_markdown(b.detail)}"
                + (
                    f": dropping it would add {charts.money(b.gain_if_relaxed, currency)}"
                    if b.gain_if_relaxed == b.gain_if_relaxed
                    else ""
                )
                for b in decision.binding_constraints
            )
        )
    if decision.discount_pays and decision.projection.segments:
        st.caption("Projected at the recommended prices")
        st.dataframe(
            decision.projection.segment_table(), hide_index=True, width="stretch", column_config=columns(currency)
        )
    st.subheader("Strategies side by side")
    st.dataframe(decision.strategy_table(), hide_index=True, width="stretch", column_config=columns(currency))
    usable = decision.discount_pays and isinstance(decision.price, float)
    if usable and st.button("Use the recommended price", key="px_use_price"):
        st.session_state["px_price_" + "_".join(items)] = decision.price
        st.rerun()


st.title("Pricing studio")
dataset = current_dataset()
if dataset is None:
    st.info("No dataset yet: ingest one first (python -m engine ingest sample).")
    st.stop()
con = get_connection()
if run_or_error(lambda: pricing_bundle.pricing_run(con, dataset)) is None:
    st.info(
        f"Dataset '{escape_markdown(dataset)}' has no choice model yet, so bundles cannot be priced on it: "
        "train the choice model on it, or pick the synthetic sample in the sidebar, whose true preferences "
        "price bundles right away."
    )
    st.stop()
chosen = run_or_error(lambda: choose_bundle(con, dataset))
if chosen is None:
    st.stop()
items, segment, weeks = chosen
if len(items) < 2:
    st.info("Pick 2 to 4 items to price a bundle.")
    st.stop()
currency = str(store.get_dataset(con, dataset).details.get("currency", "USD"))
curve = run_or_error(lambda: price_curve(con, dataset, items, segment, weeks))
if curve is not None:
    projection_section(items, segment, weeks, curve, currency)
    st.header("Optimizer")
    optimizer_section(items, segment, weeks, currency)
