"""Bundle pricing: per-customer bundle demand, what-if projections, the optimizer, bands.

Modules, in the order data flows through them:

- ``bundle``: a bundle as a model run knows it (run choice, items, segments; one-line errors).
- ``params``: the one place the utility equation is evaluated (SQL over the exported tables).
- ``demand``: the exact 2^|S| subset model per customer, vectorized (numpy).
- ``query``: the what-if projection as DuckDB queries (per-customer cache, re-aggregated per price).
- ``vectorized``: the same demand as arrays, for grids of prices.
- ``figures``: analyst figures from raw sums; ``uncertainty``: their bands.
- ``whatif``: ``project_bundle`` -> ``BundleProjection``; ``curves``: figures over a price range.
- ``grid``, ``search``, ``solver``: objective curves, where to evaluate them, choosing prices.
- ``guardrails``, ``strategies``, ``optimize``: ``optimize_price`` -> ``PriceDecision``.
- ``charts``: plotly figures for the Pricing studio; ``population``: a large population for scale tests
  (timed by ``engine.bench.pricing``).
"""
