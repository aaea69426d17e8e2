"""Co-purchase statistics in DuckDB SQL: item, pair and triple basket counts.

Definitions (the standard association-rule ones; Agrawal, Imielinski & Swami 1993). With N the
number of baskets in the universe (all baskets, or those of one customer segment) and n(S) the
number of baskets that contain every item of S:

    support(S)          = n(S) / N
    confidence(A -> C)  = support(A and C) / support(A)
    lift(A -> C)        = confidence(A -> C) / support(C)  = support(A and C) / (support(A) support(C))

An item is a product (``level='product'``) or a category (``level='category'``, item id = the
category name; a basket contains a category when it holds any product of it).

How it stays fast on the full Complete Journey (1.44M lines, 141k baskets, 68k products):
the dataset's lines are encoded once per (dataset version, level, segment) into integer
triples (basket b, customer h, item k) held as an Arrow table in a small in-process cache;
every count below is a DuckDB query over that table registered on a fresh cursor. Pairs are
counted only among items that pass the minimum count themselves, and triples only as
extensions of the strongest pairs (apriori pruning: a triple's count never exceeds a sub-pair's,
so every triple that passes the minimum has all its sub-pairs passing too).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from engine import privacy, store
from engine.cache import LruCache
from engine.errors import DataError

log = logging.getLogger(__name__)

LEVELS = ("product", "category")

# One row per item, ordered by item id: item key k is the row number (1-based).
ITEM_META = """
SELECT item, name, department, category FROM (
    SELECT product_id AS item, name, department, category FROM products WHERE $level = 'product'
    UNION ALL
    SELECT category AS item, category AS name, mode(department) AS department, category
    FROM products WHERE $level = 'category' GROUP BY category
)
ORDER BY item
"""

# Distinct (basket, customer, item) of the universe, as integer keys. ``item_keys`` is the
# ITEM_META frame with its key column, registered on the cursor.
ENCODE_BASKET_ITEMS = """
WITH universe AS (
    SELECT basket_id, customer_id FROM baskets
    WHERE $attribute IS NULL
       OR customer_id IN (SELECT customer_id FROM customer_attributes
                          WHERE attribute = $attribute AND value = $value)
),
basket_keys AS (
    SELECT basket_id, customer_id, (row_number() OVER (ORDER BY basket_id))::INTEGER AS b FROM universe
),
customer_keys AS (
    SELECT customer_id, (row_number() OVER (ORDER BY customer_id))::INTEGER AS h
    FROM (SELECT DISTINCT customer_id FROM universe)
),
line_items AS (
    SELECT l.basket_id, CASE WHEN $level = 'product' THEN p.product_id ELSE p.category END AS item
    FROM lines l JOIN products p USING (product_id)
)
SELECT DISTINCT bk.b, ck.h, ik.k
FROM line_items li
JOIN basket_keys bk USING (basket_id)
JOIN customer_keys ck USING (customer_id)
JOIN item_keys ik USING (item)
"""

SEGMENT_OPTIONS = """
SELECT attribute, value, count(*) AS customers FROM customer_attributes GROUP BY ALL ORDER BY attribute, value
"""

# The queries below run over ``basket_items(b, h, k)`` registered on the cursor.
BASKET_COUNT = "SELECT count(DISTINCT b), count(DISTINCT h) FROM basket_items"
ITEM_COUNTS = "SELECT k, count(*) AS baskets FROM basket_items GROUP BY k"

PAIR_COUNTS = """
WITH frequent AS (SELECT k FROM basket_items GROUP BY k HAVING count(*) >= $min_count),
baskets_of_frequent AS MATERIALIZED (SELECT b, k FROM basket_items SEMI JOIN frequent USING (k))
SELECT x.k AS a, y.k AS b, count(*) AS together
FROM baskets_of_frequent x JOIN baskets_of_frequent y ON x.b = y.b AND x.k < y.k
GROUP BY ALL
HAVING count(*) >= $min_count
"""

# Triples that extend the seed pairs (a < c) by a third frequent item d, as sorted keys (i < j < l).
TRIPLE_COUNTS = """
WITH frequent AS (SELECT k FROM basket_items GROUP BY k HAVING count(*) >= $min_count),
baskets_of_frequent AS MATERIALIZED (SELECT b, k FROM basket_items SEMI JOIN frequent USING (k)),
seeds AS (SELECT unnest($seed_a::INTEGER[]) AS a, unnest($seed_c::INTEGER[]) AS c),
baskets_of_a AS MATERIALIZED (SELECT s.a, s.c, x.b FROM seeds s JOIN baskets_of_frequent x ON x.k = s.a),
seed_baskets AS MATERIALIZED (   -- materialized in this order: joining on b first would pair every basket's items
    SELECT f.a, f.c, f.b FROM baskets_of_a f SEMI JOIN baskets_of_frequent y ON y.b = f.b AND y.k = f.c
),
extended AS (   -- n(a, c, d) is the same from whichever seed pair of the triple it is reached
    SELECT sb.a, sb.c, z.k AS d, count(*) AS together
    FROM seed_baskets sb JOIN baskets_of_frequent z ON z.b = sb.b AND z.k <> sb.a AND z.k <> sb.c
    GROUP BY ALL
    HAVING count(*) >= $min_count
)
SELECT DISTINCT least(a, d) AS i, a + c + d - least(a, d) - greatest(c, d) AS j, greatest(c, d) AS l, together
FROM extended
"""


@dataclass(frozen=True)
class Segment:
    """Customers whose attribute ``attribute`` (for example ``income_band``) equals ``value``."""

    attribute: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Segment:
        """Read ``"attribute=value"`` (the CLI form)."""
        attribute, sep, value = text.partition("=")
        if not sep or not attribute.strip() or not value.strip():
            raise DataError(f"segment must look like attribute=value (e.g. income_band=50-99K); found {text!r}")
        return cls(attribute.strip(), value.strip())

    @property
    def label(self) -> str:
        return f"{self.attribute} = {self.value}"


@dataclass(frozen=True, eq=False)
class BasketItems:
    """The encoded universe of one dataset version, level and segment.

    ``items`` has one row per item with its key ``k`` (1-based), ``item``, ``name``,
    ``department``, ``category`` and ``baskets`` (n({item})); ``table`` holds the distinct
    (b, h, k) rows as int32 columns; ``baskets`` is N and ``customers`` the customers with a basket.
    """

    dataset: str
    version: str
    level: str
    segment: Segment | None
    items: pd.DataFrame
    table: pa.Table
    baskets: int
    customers: int

    def item_baskets(self) -> np.ndarray:
        """(I + 1,) n({k}) indexed by key (index 0 unused)."""
        return np.concatenate([[0], self.items["baskets"].to_numpy(dtype=np.int64)])

    def column(self, name: str) -> np.ndarray:
        """(I + 1,) one column of ``items`` indexed by key (index 0 unused)."""
        return np.concatenate([np.array([None], dtype=object), self.items[name].to_numpy(dtype=object)])

    def query(self, con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run ``sql`` over ``basket_items`` (this table, registered on a fresh cursor of ``con``)."""
        with con.cursor() as cur:
            cur.register("basket_items", self.table)
            return cur.execute(sql, params or {}).df()


_BASKET_ITEMS = LruCache(4)  # ~17 MB each on the full Complete Journey at product level
_COUNTS = LruCache(32)


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise DataError(f"level must be one of {', '.join(LEVELS)}; found {level!r}")
    return level


def basket_items(con: duckdb.DuckDBPyConnection, dataset: str, level: str, segment: Segment | None) -> BasketItems:
    """The encoded baskets of ``dataset`` at ``level`` for ``segment`` (cached per dataset version)."""
    check_level(level)
    version = store.get_dataset(con, dataset).version
    encoded = _BASKET_ITEMS.get_or_compute(
        (dataset, version, level, segment), lambda: _encode(con, dataset, version, level, segment)
    )
    smallest = min_group_size(con)
    if segment is not None and encoded.customers < smallest:
        raise DataError(
            f"segment {segment.label} has {encoded.customers} customers with baskets, fewer than the studio's "
            f"minimum group size of {smallest}: its figures are suppressed; choose a larger segment"
        )
    return encoded


def min_group_size(con: duckdb.DuckDBPyConnection) -> int:
    """The studio setting: no figure is shown that rests on fewer customers than this."""
    return privacy.min_group_size(con)


def _encode(con, dataset: str, version: str, level: str, segment: Segment | None) -> BasketItems:
    params = {
        "level": level,
        "attribute": segment.attribute if segment else None,
        "value": segment.value if segment else None,
    }
    with store.dataset_cursor(con, dataset) as cur:
        items = cur.execute(ITEM_META, {"level": level}).df()
        items.insert(0, "k", np.arange(1, len(items) + 1, dtype=np.int32))
        cur.register("item_keys", items[["item", "k"]])
        table = cur.sql(ENCODE_BASKET_ITEMS, params=params).to_arrow_table()
        cur.unregister("item_keys")
    encoded = BasketItems(dataset, version, level, segment, items, table, 0, 0)
    counts = encoded.query(con, ITEM_COUNTS)
    n_baskets, n_customers = (int(x) for x in encoded.query(con, BASKET_COUNT).iloc[0])
    if segment is not None and n_baskets == 0:
        raise DataError(f"segment {segment.label} has no baskets in dataset {dataset!r}; choose another segment")
    by_key = dict(zip(counts["k"].tolist(), counts["baskets"].tolist(), strict=True))
    items["baskets"] = [int(by_key.get(k, 0)) for k in items["k"].tolist()]
    log.info("encoded %s/%s level=%s segment=%s: %d rows", dataset, version[:8], level, segment, table.num_rows)
    return BasketItems(dataset, version, level, segment, items, table, n_baskets, n_customers)


def min_count(n_baskets: int, min_support: float, min_baskets: int) -> int:
    """The smallest basket count that passes both filters: support >= min_support and n >= min_baskets."""
    if not 0.0 <= min_support <= 1.0:
        raise DataError(f"minimum support must be a share of baskets between 0 and 1; found {min_support}")
    if min_baskets < 1:
        raise DataError(f"minimum baskets must be at least 1; found {min_baskets}")
    # The small tolerance keeps n / N >= min_support and n >= min_count equivalent despite rounding.
    return max(int(min_baskets), math.ceil(min_support * n_baskets - 1e-9))


def pair_counts(con: duckdb.DuckDBPyConnection, encoded: BasketItems, min_count: int) -> pd.DataFrame:
    """Pairs (a < b by key) bought together in at least ``min_count`` baskets: columns a, b, together."""
    key = ("pairs", encoded.dataset, encoded.version, encoded.level, encoded.segment, min_count)
    return _COUNTS.get_or_compute(key, lambda: encoded.query(con, PAIR_COUNTS, {"min_count": min_count}))


def triple_counts(
    con: duckdb.DuckDBPyConnection, encoded: BasketItems, seeds: Sequence[tuple[int, int]], min_count: int
) -> pd.DataFrame:
    """Triples (i < j < l by key) extending ``seeds`` in at least ``min_count`` baskets."""
    seeds = tuple(sorted((min(a, c), max(a, c)) for a, c in seeds))
    if not seeds:
        return pd.DataFrame({"i": [], "j": [], "l": [], "together": []}, dtype=np.int64)
    key = ("triples", encoded.dataset, encoded.version, encoded.level, encoded.segment, min_count, seeds)
    params = {"min_count": min_count, "seed_a": [a for a, _ in seeds], "seed_c": [c for _, c in seeds]}
    return _COUNTS.get_or_compute(key, lambda: encoded.query(con, TRIPLE_COUNTS, params))


def segment_options(con: duckdb.DuckDBPyConnection, dataset: str) -> list[Segment]:
    """Every (attribute, value) of the dataset's customers, for the segment filter."""
    with store.dataset_cursor(con, dataset) as cur:
        rows = cur.execute(SEGMENT_OPTIONS).fetchall()
    return [Segment(attribute, value) for attribute, value, _ in rows]


def clear_caches() -> None:
    """Forget every cached encoding and count (tests; memory)."""
    _BASKET_ITEMS.clear()
    _COUNTS.clear()
