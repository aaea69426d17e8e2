"""Expected incremental margin of a bundle at its optimized price: the link to ``engine.pricing``.

Bundle discovery needs one number from the pricing engine: the incremental margin of the
optimizer's recommendation (``engine.pricing.optimize.optimize_price``, default guardrails,
strategies not compared). When the bundle cannot be priced (no trained model, an item outside
the model's catalog) the margin is None and candidates fall back to the ranking documented in
``engine.bundles.candidates``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb

from engine.errors import StudioError
from engine.pricing.optimize import optimize_price

log = logging.getLogger(__name__)


def incremental_margin(con: duckdb.DuckDBPyConnection, dataset: str, items: Sequence[str]) -> float | None:
    """Expected incremental margin (currency, over the optimizer's horizon) of ``items`` as a bundle
    at its optimized price, or None when it cannot be priced.

    Parameters
    ----------
    con : the studio database.
    dataset : dataset name.
    items : product ids of the bundle (2 to 4).
    """
    try:
        return optimize_price(con, dataset, list(items), compare=False).incremental_margin
    except StudioError as exc:  # no trained model, item outside the model's catalog, ...
        log.info("no incremental margin for %s: %s", list(items), exc)
        return None
