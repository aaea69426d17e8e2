"""Bundle discovery: candidates from co-purchase statistics and the model's complementarity.

- ``copurchase``: basket counts of items, pairs and triples in DuckDB SQL (support,
  confidence, lift follow from them), cached per dataset version;
- ``itemsets``: counts for chosen item sets (any subset, customers behind a candidate);
- ``evidence``: ``BundleCandidate``, the "why" of a candidate, and its definitions;
- ``complementarity``: the learned coupling c_ij from the exported model parameters;
- ``margin``: the expected incremental margin from the pricing optimizer (the one link to
  ``engine.pricing``);
- ``candidates``: ``find_bundles`` (ranked 2- and 3-item candidates) and ``describe_bundle``
  (any 2 to 4 items), results as frozen dataclasses;
- ``views``: what the Bundles page draws (candidates table, pair heatmap, filter choices).
"""

from engine.bundles.candidates import (
    RANKINGS,
    BundleCandidate,
    BundleQuery,
    BundleResult,
    clear_caches,
    dataset_token,
    describe_bundle,
    find_bundles,
)
from engine.bundles.copurchase import LEVELS, Segment
from engine.bundles.views import (
    FilterOptions,
    PairMatrix,
    builder_items,
    candidate_labels,
    candidates_frame,
    filter_options,
    pair_matrix,
)

__all__ = [
    "LEVELS",
    "RANKINGS",
    "BundleCandidate",
    "BundleQuery",
    "BundleResult",
    "FilterOptions",
    "PairMatrix",
    "Segment",
    "builder_items",
    "candidate_labels",
    "candidates_frame",
    "clear_caches",
    "dataset_token",
    "describe_bundle",
    "filter_options",
    "find_bundles",
    "pair_matrix",
]
