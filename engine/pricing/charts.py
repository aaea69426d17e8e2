"""Plotly figures and number formats for the Pricing studio (no streamlit here: testable alone)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.markup import escape_plotly
from engine.pricing.curves import PriceCurve
from engine.pricing.whatif import BundleProjection

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
FIGURE_HELP = {
    "take_rate": "Share of the targeted customers' trips on which the bundle is bought.",
    "margin": "Margin of the bundle's items (bundle and stand-alone sales) over the horizon; the delta is the "
    "change versus selling the items separately with no bundle.",
    "revenue": "Revenue of the bundle's items (bundle and stand-alone sales) over the horizon; the delta is the "
    "change versus selling the items separately with no bundle.",
    "cannibalized_revenue": "Stand-alone revenue of the items that moves into the bundle.",
    "consumer_surplus_change": "Customers' gain in currency (Small & Rosen), summed over the horizon.",
    "share_better_off": "Share of targeted customers who gain at least one cent over the horizon.",
}
CURVE_PANELS = (  # (figure, title, is money)
    ("take_rate", "Bundle take rate", False),
    ("incremental_revenue", "Incremental revenue", True),
    ("incremental_margin", "Incremental margin", True),
    ("consumer_surplus_change", "Consumer surplus change", True),
)


def money(value: float, currency: str = "USD", decimals: int = 2) -> str:
    """``-1234.5`` -> ``-$1,234.50`` (symbol for USD/EUR/GBP, else the code after the amount)."""
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.{decimals}f}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def percent(value: float, decimals: int = 1) -> str:
    return f"{100 * value:.{decimals}f}%"


def curves_figure(curve: PriceCurve, price: float, optimum: float | None = None, currency: str = "USD") -> go.Figure:
    """Take rate, incremental revenue and margin, and surplus over the price range; the current
    price (solid line) and the optimizer's price (dashed) marked."""
    symbol = SYMBOLS.get(currency, currency + " ")
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=[title for _, title, _ in CURVE_PANELS],
        horizontal_spacing=0.12,
        vertical_spacing=0.18,
    )
    for k, (name, title, is_money) in enumerate(CURVE_PANELS):
        row, col = divmod(k, 2)
        values = [100 * v for v in curve.figures[name]] if name == "take_rate" else list(curve.figures[name])
        fig.add_trace(
            go.Scatter(
                x=list(curve.prices),
                y=values,
                mode="lines",
                name=title,
                showlegend=False,
                hovertemplate=f"price {symbol}%{{x:.2f}}<br>{title}: "
                + (f"{symbol}%{{y:,.2f}}" if is_money else "%{y:.2f}%")
                + "<extra></extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
        fig.update_yaxes(
            tickprefix=symbol if is_money else "", ticksuffix="" if is_money else "%", row=row + 1, col=col + 1
        )
        fig.update_xaxes(title_text="Bundle price", tickprefix=symbol, row=row + 1, col=col + 1)
    fig.add_vline(
        x=price, line_color="#d62728", annotation_text=f"current {symbol}{price:.2f}", annotation_position="top left"
    )
    if optimum is not None:
        fig.add_vline(
            x=optimum,
            line_dash="dash",
            line_color="#2ca02c",
            annotation_text=f"optimum {symbol}{optimum:.2f}",
            annotation_position="top right",
        )
    fig.update_layout(height=560, margin={"t": 60, "b": 40, "l": 40, "r": 20})
    return fig


def cannibalization_figure(projection: BundleProjection) -> go.Figure:
    """Stand-alone units of each item without and with the bundle, and the bundle's own units."""
    names = [escape_plotly(f"{item.name} ({item.item_id})") for item in projection.total.items]
    fig = go.Figure()
    fig.add_bar(name="Stand-alone, no bundle", x=names, y=[u.units_before.value for u in projection.total.items])
    fig.add_bar(name="Stand-alone, with bundle", x=names, y=[u.units_after.value for u in projection.total.items])
    fig.add_bar(name="In the bundle", x=names, y=[projection.total.figures["bundle_units"].value] * len(names))
    fig.update_layout(
        barmode="group",
        height=360,
        yaxis_title=f"Units over {projection.weeks:g} weeks",
        margin={"t": 30, "b": 40, "l": 40, "r": 20},
        legend={"orientation": "h", "y": 1.12},
    )
    return fig
