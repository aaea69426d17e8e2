"""Co-purchase statistics of bundle candidates equal an independent recomputation in pandas."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import store
from engine.bundles import BundleQuery, Segment, describe_bundle, find_bundles
from engine.cleaning import finish_dataset
from engine.errors import DataError
from engine.sources import synthetic

EVERYTHING = {"top": 10**6, "seed_pairs": 10**6, "rank_by": "support", "margin_pool": 0}
LINES_BY_LEVEL = """
SELECT l.basket_id, b.customer_id, l.product_id, p.category
FROM lines l JOIN baskets b USING (basket_id) JOIN products p USING (product_id)
"""


@pytest.fixture(scope="module")
def sample_con(tmp_path_factory):
    connection = store.connect(tmp_path_factory.mktemp("bundles") / "studio.duckdb")
    synthetic.ingest_sample(connection, "sample")
    store.set_setting(connection, "min_group_size", 1)  # every candidate: the statistics are under test here
    yield connection
    connection.close()


def customer_baskets(con, dataset: str, level: str, segment: Segment | None = None) -> list[tuple[str, frozenset]]:
    """Each basket of the universe as (customer, set of its items), computed with pandas only."""
    with store.dataset_cursor(con, dataset) as cur:
        lines = cur.execute(LINES_BY_LEVEL).df()
        attributes = cur.execute("SELECT customer_id, attribute, value FROM customer_attributes").df()
    if segment is not None:
        members = attributes[(attributes.attribute == segment.attribute) & (attributes.value == segment.value)]
        lines = lines[lines.customer_id.isin(members.customer_id)]
    column = "product_id" if level == "product" else "category"
    grouped = lines.groupby("basket_id").agg(customer=("customer_id", "first"), items=(column, set))
    return [(customer, frozenset(items)) for customer, items in zip(grouped.customer, grouped["items"], strict=True)]


def pandas_baskets(con, dataset: str, level: str, segment: Segment | None = None) -> list[frozenset[str]]:
    """Each basket of the universe as the set of its items."""
    return [items for _, items in customer_baskets(con, dataset, level, segment)]


def expected_itemsets(baskets: list[frozenset[str]], size: int, min_support: float, min_baskets: int) -> dict:
    counts = Counter(frozenset(c) for basket in baskets for c in itertools.combinations(sorted(basket), size))
    n = len(baskets)
    return {s: c for s, c in counts.items() if c >= min_baskets and c / n >= min_support - 1e-12}


def assert_matches_pandas(result, baskets: list[frozenset[str]], size: int, min_support: float, min_baskets: int):
    n = len(baskets)
    single = Counter(item for basket in baskets for item in basket)
    pairs = Counter(frozenset(c) for basket in baskets for c in itertools.combinations(sorted(basket), 2))
    expected = expected_itemsets(baskets, size, min_support, min_baskets)
    found = {frozenset(c.items): c for c in result.candidates}
    assert len(found) == len(result.candidates), "an item set appears twice (symmetric duplicates)"
    assert set(found) == set(expected)
    assert result.baskets == n
    for items, candidate in found.items():
        together = expected[items]
        assert candidate.together_baskets == together
        assert candidate.support == pytest.approx(together / n)
        assert candidate.confidences == pytest.approx([together / single[i] for i in candidate.items])
        assert (candidate.confidence_ab, candidate.confidence_ba) == pytest.approx(candidate.confidences[:2])
        rest = [pairs[items - {i}] if size == 3 else single[next(iter(items - {i}))] for i in candidate.items]
        assert candidate.completion_confidences == pytest.approx([together / r for r in rest])
        assert candidate.lift == pytest.approx(together / n / math.prod(single[i] / n for i in items))
        assert list(candidate.item_support) == pytest.approx([single[i] / n for i in candidate.items])


@pytest.mark.parametrize("level", ["product", "category"])
@pytest.mark.parametrize("size", [2, 3])
def test_sample_statistics_equal_pandas(sample_con, level, size):
    min_support = 0.002 if size == 2 else 0.005  # a few thousand triples are plenty
    query = BundleQuery(level=level, size=size, min_support=min_support, min_baskets=5, **EVERYTHING)
    result = find_bundles(sample_con, "sample", query)
    assert len(result.candidates) > 10
    assert_matches_pandas(result, pandas_baskets(sample_con, "sample", level), size, min_support, 5)


def test_segment_restricts_the_baskets(sample_con):
    segment = Segment("income_band", "100K+")
    result = find_bundles(sample_con, "sample", BundleQuery(segment=segment, min_support=0.005, **EVERYTHING))
    baskets = pandas_baskets(sample_con, "sample", "product", segment)
    assert 0 < len(baskets) < store.get_dataset(sample_con, "sample").baskets
    assert_matches_pandas(result, baskets, 2, 0.005, 10)


def test_minimum_support_and_minimum_baskets_both_filter(sample_con):
    n = store.get_dataset(sample_con, "sample").baskets
    by_support = find_bundles(sample_con, "sample", BundleQuery(min_support=0.05, min_baskets=1, **EVERYTHING))
    by_baskets = find_bundles(sample_con, "sample", BundleQuery(min_support=0.0, min_baskets=400, **EVERYTHING))
    assert by_support.candidates and all(c.support >= 0.05 for c in by_support.candidates)
    assert by_support.min_count == math.ceil(0.05 * n)
    assert by_baskets.candidates and all(c.together_baskets >= 400 for c in by_baskets.candidates)
    assert min(c.together_baskets for c in by_baskets.candidates) < 0.05 * n  # baskets filter alone is looser
    loose = find_bundles(sample_con, "sample", BundleQuery(min_support=0.0, min_baskets=1, **EVERYTHING))
    assert len(loose.candidates) > len(by_baskets.candidates) > 0


def test_pairs_are_unordered_and_sorted(sample_con):
    result = find_bundles(sample_con, "sample", BundleQuery(**EVERYTHING))
    keys = [frozenset(c.items) for c in result.candidates]
    assert len(set(keys)) == len(keys)
    assert all(c.items[0] != c.items[1] for c in result.candidates)


def test_describe_bundle_of_four_equals_pandas(sample_con):
    top = find_bundles(sample_con, "sample", BundleQuery(size=3, top=1)).candidates[0]
    baskets = pandas_baskets(sample_con, "sample", "product")
    partner = Counter(i for b in baskets if set(top.items) <= b for i in b - set(top.items)).most_common(1)[0][0]
    items = [*top.items, partner]
    bundle = describe_bundle(sample_con, "sample", items)
    n = len(baskets)
    together = sum(set(items) <= b for b in baskets)
    single = Counter(i for b in baskets for i in b)
    assert bundle.items == tuple(items) and bundle.together_baskets == together > 0
    assert bundle.lift == pytest.approx(together / n / math.prod(single[i] / n for i in items))
    assert bundle.completion_confidences == pytest.approx(
        [together / sum(set(items) - {i} <= b for b in baskets) for i in items]
    )
    assert 0 < bundle.shared_customers <= together


@pytest.mark.parametrize("items", [["P0001"], ["P0001", "P0002", "P0003", "P0004", "P0005"], ["P0001", "nope"]])
def test_describe_bundle_refuses_bad_bundles_in_one_line(sample_con, items):
    with pytest.raises(DataError) as info:
        describe_bundle(sample_con, "sample", items)
    assert "\n" not in str(info.value)


def test_bad_queries_are_refused_in_one_line():
    for bad in ({"size": 4}, {"level": "brand"}, {"min_support": 1.5}, {"min_baskets": 0}, {"rank_by": "x"}):
        with pytest.raises(DataError) as info:
            BundleQuery(**bad)
        assert "\n" not in str(info.value)


def test_candidates_bought_together_by_too_few_customers_are_suppressed(sample_con):
    owners = customer_baskets(sample_con, "sample", "product")
    query = BundleQuery(min_support=0.0, min_baskets=2, rank_by="lift", top=10**6, margin_pool=0)
    everything = find_bundles(sample_con, "sample", query)
    store.set_setting(sample_con, "min_group_size", 25)
    try:
        shown = find_bundles(sample_con, "sample", query)
        rare = next(c for c in everything.candidates if c.together_customers < 25)
        with pytest.raises(DataError, match="minimum group size of 25"):
            describe_bundle(sample_con, "sample", list(rare.items))
        store.set_setting(sample_con, "min_group_size", 200)
        with pytest.raises(DataError, match=r"segment income_band = 100K\+ has \d+ customers.*minimum group size"):
            find_bundles(sample_con, "sample", BundleQuery(segment=Segment("income_band", "100K+")))
    finally:
        store.set_setting(sample_con, "min_group_size", 1)
    for candidate in everything.candidates[:200]:
        buyers = {h for h, items in owners if set(candidate.items) <= items}
        assert candidate.together_customers == len(buyers)
    expected = [c.items for c in everything.candidates if c.together_customers >= 25]
    assert 0 < len(expected) < len(everything.candidates)
    assert [c.items for c in shown.candidates] == expected
    assert shown.suppressed == len(everything.candidates) - len(expected)


# --- tiny hand-made datasets, baskets drawn by hypothesis -------------------------------------

PRODUCTS = pd.DataFrame(
    {
        "product_id": [f"P{i}" for i in range(7)],
        "name": [f"Product {i}" for i in range(7)],
        "department": [f"D{i % 2}" for i in range(7)],
        "category": [f"C{i % 3}" for i in range(7)],
    }
)


def build_tiny(con, baskets: list[tuple[int, frozenset[int]]], segment_of: dict[int, str]) -> None:
    """Ingest ``baskets`` (customer, product indices) through the real cleaning path."""
    lines = pd.DataFrame(
        [
            {"basket_id": f"B{b}", "customer_id": f"H{h}", "product_id": f"P{p}"}
            for b, (h, products) in enumerate(baskets)
            for p in sorted(products)
        ]
    )
    attributes = pd.DataFrame(
        [{"customer_id": f"H{h}", "attribute": "tier", "value": value} for h, value in segment_of.items()]
    )

    def build(cur):
        cur.register("tiny_products", PRODUCTS)
        cur.register("tiny_lines", lines)
        cur.register("tiny_attributes", attributes)
        cur.execute(
            "CREATE TEMP TABLE stage_products AS SELECT *, NULL::VARCHAR AS brand, NULL::DOUBLE AS unit_cost"
            " FROM tiny_products"
        )
        cur.execute(
            "CREATE TEMP TABLE stage_lines AS SELECT basket_id, customer_id,"
            " TIMESTAMP '2024-01-07 10:00' AS ts, 1 AS week, 'S1' AS store_id, product_id,"
            " 1.0 AS quantity, 2.0 AS paid, 2.0 AS list_amount,"
            " 0.0 AS retail_discount, 0.0 AS coupon_discount FROM tiny_lines"
        )
        cur.execute("CREATE TEMP TABLE stage_customer_attributes AS SELECT * FROM tiny_attributes")
        cur.execute(
            "CREATE TEMP TABLE stage_promotions (product_id VARCHAR, week INTEGER, display BOOLEAN, mailer BOOLEAN)"
        )
        report = finish_dataset(cur)
        for table in ("stage_products", "stage_lines", "stage_customer_attributes", "stage_promotions"):
            cur.execute("DROP TABLE " + table)
        for view in ("tiny_products", "tiny_lines", "tiny_attributes"):
            cur.unregister(view)
        return report, {}

    store.replace_dataset(con, "tiny", "files", build)


@pytest.fixture(scope="module")
def tiny_con(tmp_path_factory):
    connection = store.connect(tmp_path_factory.mktemp("tiny") / "studio.duckdb")
    store.set_setting(connection, "min_group_size", 1)
    yield connection
    connection.close()


basket_strategy = st.tuples(st.integers(0, 3), st.frozensets(st.integers(0, 6), min_size=1, max_size=5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    baskets=st.lists(basket_strategy, min_size=1, max_size=30),
    tiers=st.lists(st.sampled_from(["gold", "silver"]), min_size=4, max_size=4),
    level=st.sampled_from(["product", "category"]),
    size=st.sampled_from([2, 3]),
    min_support=st.floats(0.0, 0.5),
    min_baskets=st.integers(1, 4),
    use_segment=st.booleans(),
)
@pytest.mark.slow
def test_tiny_datasets_equal_pandas(tiny_con, baskets, tiers, level, size, min_support, min_baskets, use_segment):
    build_tiny(tiny_con, baskets, dict(enumerate(tiers)))
    segment = Segment("tier", tiers[baskets[0][0]]) if use_segment else None
    query = BundleQuery(
        level=level, size=size, min_support=min_support, min_baskets=min_baskets, segment=segment, **EVERYTHING
    )
    result = find_bundles(tiny_con, "tiny", query)
    expected_baskets = pandas_baskets(tiny_con, "tiny", level, segment)
    assert_matches_pandas(result, expected_baskets, size, min_support, min_baskets)
    customers = {}
    for h, products in baskets:
        if segment is None or tiers[h] == segment.value:
            key = "product_id" if level == "product" else "category"
            items = set(PRODUCTS.iloc[sorted(products)][key])
            customers.setdefault(h, set()).update(items)
    owners = customer_baskets(tiny_con, "tiny", level, segment)
    for candidate in result.candidates:
        assert candidate.shared_customers == sum(set(candidate.items) <= held for held in customers.values())
        assert candidate.together_customers == len({h for h, items in owners if set(candidate.items) <= items})


@pytest.mark.slow
def test_complete_journey_top_candidates_equal_pandas(cj_con):
    result = find_bundles(cj_con, "completejourney", BundleQuery(rank_by="score", top=10))
    lines = pandas_baskets(cj_con, "completejourney", "product")
    n = len(lines)
    single = Counter(i for b in lines for i in b)
    assert result.baskets == n and len(result.candidates) == 10
    for c in result.candidates:
        a, b = c.items
        together = sum(1 for basket in lines if a in basket and b in basket)
        assert c.together_baskets == together and together >= 0.001 * n
        assert c.lift == pytest.approx(together * n / (single[a] * single[b]))
    scores = [c.score for c in result.candidates]
    assert scores == sorted(scores, reverse=True)
