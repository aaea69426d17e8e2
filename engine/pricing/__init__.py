"""Bundle pricing: per-customer bundle demand, what-if projections, the optimizer, bands.

Modules, in the order data flows through them:

- ``params``: the exported model parameters of a run; the one place the utility equation is
  evaluated (SQL), run choice, item and segment resolution.
- ``demand``: the exact 2^|S| subset model per customer, vectorized (numpy).
- ``query``: the what-if projection as DuckDB queries (cached per-customer sums, re-aggregated
  per price).
- ``vectorized``: the same demand as arrays, for price grids (optimizer, curves).
- ``figures``: analyst figures from raw sums; ``uncertainty``: their bands.
- ``whatif``: ``project_bundle`` -> ``BundleProjection``.
- ``optimize``: ``optimize_price`` -> ``PriceDecision`` with guardrails and strategies.
"""
