"""Customer segments: RFM, learned clusters, profiles against independent recomputations."""

from __future__ import annotations

import pandas as pd
import pytest

from engine import segments, store
from engine.errors import DataError
from engine.sources import synthetic


@pytest.fixture
def sample(con):
    synthetic.ingest_sample(con, "sample")
    return con


def raw_lines_with_pseudonyms(con) -> pd.DataFrame:
    market = synthetic.read()
    lines = market.lines.copy()
    ids = sorted(lines.customer_id.unique())
    lines["customer_id"] = lines.customer_id.map(dict(zip(ids, store.pseudonymize(con, ids), strict=True)))
    return lines.merge(
        market.customers.assign(customer_id=lambda d: store.pseudonymize(con, list(d.customer_id))), on="customer_id"
    )


def test_demographic_profile_equals_pandas(sample):
    prof = segments.profile(sample, "sample", "income_band")
    lines = raw_lines_with_pseudonyms(sample)
    lines["income_band"] = lines.income_band.fillna("Unknown")
    expected = lines.groupby("income_band").agg(revenue=("paid", "sum"), baskets=("basket_id", "nunique"))
    got = prof.table.set_index("segment")
    for band, row in expected.iterrows():
        assert got.loc[band, "revenue"] == pytest.approx(round(row.revenue, 2), abs=0.005)
        assert got.loc[band, "baskets"] == row.baskets
    assert got.basket_share.sum() == pytest.approx(1.0)


def test_rfm_covers_every_customer_once(sample):
    attribute = segments.build_rfm(sample, "sample")
    segments.build_rfm(sample, "sample")  # rebuilding replaces, never duplicates
    prof = segments.profile(sample, "sample", attribute)
    assert prof.table.customers.sum() == store.get_dataset(sample, "sample").customers
    assert set(prof.table.segment) <= {"Champions", "Loyal", "New", "At risk", "Hibernating", "Others"}
    champions = prof.table.set_index("segment")
    # Champions buy more often than the hibernating, by construction of the scores.
    per_customer = champions.baskets / champions.customers
    assert per_customer["Champions"] > per_customer["Hibernating"]


def test_learned_clusters_from_truth_and_sensitivities_ordered(sample):
    attribute = segments.build_learned(sample, "sample", clusters=4)
    prof = segments.profile(sample, "sample", attribute)
    assert prof.run_id == "truth" and len(prof.table) == 4
    assert prof.table.customers.sum() == store.get_dataset(sample, "sample").customers
    q = prof.table[["sensitivity_p10", "sensitivity_p50", "sensitivity_p90"]].astype(float)
    assert (q.diff(axis=1).iloc[:, 1:] >= 0).all().all() and (q > 0).all().all()


def test_small_segments_are_suppressed(sample):
    store.set_setting(sample, "min_group_size", 100)
    prof = segments.profile(sample, "sample", "age_band")
    small = prof.table[prof.table.suppressed != ""]
    assert len(small) > 0
    assert small.drop(columns=["segment", "suppressed"]).isna().all().all()
    assert (prof.table[prof.table.suppressed == ""].customers >= 100).all()


def test_unknown_attribute_and_kind_are_one_line_errors(sample):
    with pytest.raises(DataError, match="income_band"):
        segments.profile(sample, "sample", "shoe_size")
    with pytest.raises(DataError, match="demographic, rfm, learned"):
        segments.segments_json(sample, "sample", "astrology")
