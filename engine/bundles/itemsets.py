"""Counts for given item sets over the encoded baskets: subsets, customers, pairs among a few items.

Where ``copurchase`` finds the frequent pairs and triples, these queries describe chosen sets:
the builder's bundle (any subset's basket count), the customers behind a candidate (who bought
it in one basket, who bought each of its items at all), and the heatmap's pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from engine.bundles.copurchase import BasketItems
from engine.cache import LruCache

# Baskets by which of the wanted items they hold (bit p set: holds keys[p]); any subset's count
# is the sum over the masks that contain it.
ITEMSET_MASKS = """
WITH wanted AS (SELECT unnest($keys::INTEGER[]) AS k, unnest(range(len($keys::INTEGER[]))) AS bit),
per_basket AS (SELECT b, bit_or(1::BIGINT << bit) AS mask FROM basket_items JOIN wanted USING (k) GROUP BY b)
SELECT mask, count(*) AS baskets FROM per_basket GROUP BY mask
"""

# Customers who bought every item of a set (not necessarily in one basket), per set s.
SHARED_CUSTOMERS = """
WITH wanted AS (SELECT unnest($set_ids::INTEGER[]) AS s, unnest($set_keys::INTEGER[]) AS k),
sizes AS (SELECT s, count(*) AS n FROM wanted GROUP BY s),
customer_items AS (SELECT DISTINCT h, k FROM basket_items SEMI JOIN wanted USING (k)),
holders AS (
    SELECT w.s, ci.h FROM wanted w JOIN customer_items ci USING (k) JOIN sizes z USING (s)
    GROUP BY w.s, ci.h HAVING count(*) = any_value(z.n)
)
SELECT s, count(*) AS customers FROM holders GROUP BY s
"""

# Customers who bought every item of a set in one basket, per set s.
TOGETHER_CUSTOMERS = """
WITH wanted AS (SELECT unnest($set_ids::INTEGER[]) AS s, unnest($set_keys::INTEGER[]) AS k),
sizes AS (SELECT s, count(*) AS n FROM wanted GROUP BY s),
holding_baskets AS (
    SELECT w.s, bi.b, any_value(bi.h) AS h
    FROM wanted w JOIN basket_items bi USING (k) JOIN sizes z USING (s)
    GROUP BY w.s, bi.b HAVING count(*) = any_value(z.n)
)
SELECT s, count(DISTINCT h) AS customers FROM holding_baskets GROUP BY s
"""

# Every pair among a few chosen items, with no minimum (for the heatmap).
PAIR_COUNTS_AMONG = """
WITH chosen AS (SELECT unnest($keys::INTEGER[]) AS k),
baskets_of_chosen AS MATERIALIZED (SELECT b, k FROM basket_items SEMI JOIN chosen USING (k))
SELECT x.k AS a, y.k AS b, count(*) AS together
FROM baskets_of_chosen x JOIN baskets_of_chosen y ON x.b = y.b AND x.k < y.k
GROUP BY ALL
"""


_TOGETHER = LruCache(20_000)  # customers who bought an item set together, per encoding and item set


def itemset_counts(
    con: duckdb.DuckDBPyConnection, encoded: BasketItems, keys: Sequence[int]
) -> dict[frozenset[int], int]:
    """n(T) for every non-empty subset T of ``keys`` (at most 4 items: 15 subsets)."""
    keys = list(dict.fromkeys(int(k) for k in keys))
    masks = encoded.query(con, ITEMSET_MASKS, {"keys": keys})
    by_mask = dict(zip(masks["mask"].astype(int).tolist(), masks["baskets"].astype(int).tolist(), strict=True))
    counts: dict[frozenset[int], int] = {}
    for subset in range(1, 1 << len(keys)):
        members = frozenset(k for p, k in enumerate(keys) if subset >> p & 1)
        counts[members] = sum(n for mask, n in by_mask.items() if mask & subset == subset)
    return counts


def shared_customers(
    con: duckdb.DuckDBPyConnection, encoded: BasketItems, itemsets: Sequence[Sequence[int]]
) -> list[int]:
    """For each item set, the number of customers who bought all of its items (in any baskets)."""
    if not itemsets:
        return []
    set_ids = [s for s, items in enumerate(itemsets) for _ in items]
    set_keys = [int(k) for items in itemsets for k in items]
    rows = encoded.query(con, SHARED_CUSTOMERS, {"set_ids": set_ids, "set_keys": set_keys})
    by_set = dict(zip(rows["s"].tolist(), rows["customers"].tolist(), strict=True))
    return [int(by_set.get(s, 0)) for s in range(len(itemsets))]


def together_customers(
    con: duckdb.DuckDBPyConnection, encoded: BasketItems, itemsets: Sequence[Sequence[int]]
) -> list[int]:
    """For each item set, the number of customers who bought all of its items in one basket
    (cached per item set: the page asks again for the same top candidates)."""
    scope = (encoded.dataset, encoded.version, encoded.level, encoded.segment)
    wanted = [tuple(sorted(int(k) for k in items)) for items in itemsets]
    cached = {items: _TOGETHER.get((*scope, items)) for items in dict.fromkeys(wanted)}
    known = {items: count for items, count in cached.items() if isinstance(count, int)}  # the ints put below
    missing = [items for items in cached if items not in known]
    if missing:
        set_ids = [s for s, items in enumerate(missing) for _ in items]
        set_keys = [k for items in missing for k in items]
        rows = encoded.query(con, TOGETHER_CUSTOMERS, {"set_ids": set_ids, "set_keys": set_keys})
        by_set = dict(zip(rows["s"].tolist(), rows["customers"].tolist(), strict=True))
        for s, items in enumerate(missing):
            known[items] = int(by_set.get(s, 0))
            _TOGETHER.put((*scope, items), known[items])
    return [known[items] for items in wanted]


def pair_counts_among(con: duckdb.DuckDBPyConnection, encoded: BasketItems, keys: Sequence[int]) -> pd.DataFrame:
    """Every pair among ``keys`` bought together at least once: columns a, b, together."""
    return encoded.query(con, PAIR_COUNTS_AMONG, {"keys": [int(k) for k in keys]})


def clear_cache() -> None:
    _TOGETHER.clear()
