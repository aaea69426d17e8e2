"""Expected incremental margin of a bundle at its optimized price: the link to ``engine.pricing``.

The pricing engine's optimizer (``engine.pricing.optimize.optimize_price``) prices a bundle
and projects its margin against selling the items stand-alone. Bundle discovery only needs one
number from it, so the whole dependency goes through ``_incremental_margin`` below: when the
optimizer's signature settles, wiring it is a change to that one function.

Until the pricing engine is present (or when it cannot price a bundle, e.g. no trained model),
the margin is None and the candidates are ranked by the fallback documented in
``engine.bundles.candidates``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import duckdb

from engine.errors import StudioError

log = logging.getLogger(__name__)

try:  # the pricing engine is written in parallel; bundles work without it
    from engine.pricing.optimize import optimize_price
except ImportError:  # pragma: no cover - depends on which branches are merged
    optimize_price = None

MARGIN_FIELDS = ("expected_incremental_margin", "incremental_margin")


def pricing_available() -> bool:
    """Whether the pricing engine's optimizer can be called at all."""
    return optimize_price is not None


def _incremental_margin(con: duckdb.DuckDBPyConnection, dataset: str, items: Sequence[str]) -> float | None:
    """Expected incremental margin (currency, per the optimizer's horizon) of ``items`` as a bundle
    at its optimized price, or None when it cannot be computed.

    Parameters
    ----------
    con : the studio database.
    dataset : dataset name.
    items : product ids of the bundle (2 to 4).
    """
    if optimize_price is None:
        return None
    try:
        result = optimize_price(con, dataset, list(items))  # wire here when the signature lands on main
    except StudioError as exc:  # no trained model, item outside the model's catalog, ...
        log.info("no incremental margin for %s: %s", list(items), exc)
        return None
    except TypeError as exc:  # the optimizer's signature differs from this call: wiring pending
        log.warning("engine.bundles.margin._incremental_margin needs wiring to optimize_price: %s", exc)
        return None
    for name in MARGIN_FIELDS:
        value = getattr(result, name, None)
        if value is not None:
            return float(value)
    log.warning("optimize_price returned %s without any of %s", type(result).__name__, MARGIN_FIELDS)
    return None
