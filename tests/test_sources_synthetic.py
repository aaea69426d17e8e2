"""The synthetic market: determinism, the committed sample, truth stored as a model run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine import store
from engine.sources import synthetic


def test_committed_sample_is_what_the_generator_makes():
    committed = synthetic.read()
    fresh = synthetic.generate(synthetic.SAMPLE_CONFIG)
    assert committed.config == synthetic.SAMPLE_CONFIG
    pd.testing.assert_frame_equal(committed.lines, fresh.lines, check_dtype=False)
    pd.testing.assert_frame_equal(committed.truth_pairs, fresh.truth_pairs)


def test_truth_is_stored_as_run_truth(con):
    market = synthetic.read()
    info = synthetic.ingest_sample(con, "sample")
    assert info.customers == market.lines.customer_id.nunique()
    with store.dataset_cursor(con, "sample") as cur:
        runs = cur.execute("SELECT run_id, kind FROM model_runs").fetchall()
        items = cur.execute(
            "SELECT count(*), min(len(alpha)), max(len(alpha)) FROM model_items WHERE run_id = 'truth'"
        ).fetchall()[0]
        pairs = cur.execute(
            "SELECT count(*) FILTER (coupling > 0), count(*) FILTER (coupling < 0) FROM model_pairs"
        ).fetchall()[0]
        ids = {r[0] for r in cur.execute("SELECT customer_id FROM customers").fetchall()}
        truth_ids = {r[0] for r in cur.execute("SELECT customer_id FROM model_customers").fetchall()}
    assert runs == [("truth", "truth")]
    assert items == (market.config.products, market.config.dim, market.config.dim)
    assert pairs == (market.config.complement_pairs, market.config.substitute_pairs)
    # Identifiers are pseudonymized at ingest with this database's key, truth included; the raw
    # ids (text with leading zeros) map to them exactly.
    assert ids == truth_ids == set(store.pseudonymize(con, list(market.customers.customer_id)))
    assert "000001" not in ids


def test_complements_are_bought_together_more_than_substitutes():
    """The generator's pairs show in the data: complements have lift > 1, substitutes < 1."""
    market = synthetic.read()
    baskets = market.lines.groupby("basket_id").product_id.apply(frozenset)
    n = len(baskets)

    def lift(a, b):
        has_a = baskets.apply(lambda s: a in s)
        has_b = baskets.apply(lambda s: b in s)
        return (has_a & has_b).sum() * n / (has_a.sum() * has_b.sum())

    lifts = np.array([lift(r.item_a, r.item_b) for r in market.truth_pairs.itertuples()])
    signs = np.sign(market.truth_pairs.coupling.to_numpy())
    assert np.median(lifts[signs > 0]) > 1.5
    assert np.median(lifts[signs < 0]) < 0.8


def test_price_varies_weekly_and_discounts_are_real():
    lines = synthetic.read().lines
    unit = lines.paid / lines.quantity
    regular = lines.list_amount / lines.quantity
    assert (unit <= regular + 1e-9).all()
    share_discounted = (unit < regular - 1e-9).mean()
    assert 0.1 < share_discounted < 0.5
