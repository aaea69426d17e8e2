"""What the Model page shows besides the metrics: elasticities by segment, learned pairs, truth.

All computed from a trained network and the prepared arrays, in the training process, and
stored with the run (``metrics.json``), so the page only reads them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from engine.model import metrics
from engine.model.baselines import trip_lines
from engine.model.batches import TripTensors
from engine.model.config import ModelConfig
from engine.model.network import ChoiceNetwork
from engine.model.prepared import SPLIT_HOLDOUT, PreparedData

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PAIR_POOL = 300  # learned pairs are listed among the most popular items (rare ones are noise)
TOP_PAIRS = 15


@torch.no_grad()
def regular_utilities(
    network: ChoiceNetwork,
    data: PreparedData,
    config: ModelConfig,
    customers: np.ndarray,
    tensors: TripTensors | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """u(h,i) and b(h,i), both (B, I), at the regular price, average season and promotion,
    habits at the end of the data and no basket context (the exported utility, less the items'
    recent level of ``engine.model.projection``)."""
    tensors = tensors or TripTensors(data, config.habit_decay)
    B = len(customers)
    customer = torch.from_numpy(customers)
    habit = tensors.catalog_habits(customer, torch.from_numpy(data.end_habit_number()[customers]))  # (B, I)
    utility = network.catalog_utility(
        customer,
        torch.from_numpy(data.season.mean(axis=0)).expand(B, -1),
        habit,
        torch.from_numpy(data.regular_price).expand(B, -1),
        torch.from_numpy(data.promo.mean(axis=0)).expand(B, -1, -1),
    )
    _, beta_customer = network.customer_parameters(customer)
    b = torch.nn.functional.softplus(beta_customer[:, None] + network.beta_item[None, :])  # (B, I)
    return utility.numpy(), b.numpy()


def elasticities_by_segment(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> list[dict]:
    """Own-price elasticity -b * price * (1 - P) of every customer x item, weighted by P
    (the elasticity of the demand there is), summarized by segment as box-plot quantiles."""
    segments = data.customers["segment"].to_numpy()
    tensors = TripTensors(data, config.habit_decay)
    values, weights, labels = [], [], []
    for start in range(0, data.n_customers, 256):
        chunk = np.arange(start, min(start + 256, data.n_customers))
        utility, b = regular_utilities(network.eval().cpu(), data, config, chunk, tensors)
        p = 1.0 / (1.0 + np.exp(-utility))  # (B, I)
        values.append((-b * data.regular_price[None, :] * (1.0 - p)).ravel())
        weights.append(p.ravel())
        labels.append(np.repeat(segments[chunk], data.n_items))
    frame = pd.DataFrame({"e": np.concatenate(values), "w": np.concatenate(weights), "s": np.concatenate(labels)})
    table = []
    for segment, group in sorted(frame.groupby("s"), key=lambda pair: _natural_key(str(pair[0]))):
        order = np.argsort(group["e"].to_numpy())
        e, w = group["e"].to_numpy()[order], group["w"].to_numpy()[order]
        cumulative = np.cumsum(w) / w.sum()
        q = {f"p{int(100 * x)}": float(e[min(np.searchsorted(cumulative, x), len(e) - 1)]) for x in QUANTILES}
        table.append(
            {
                "segment": str(segment),
                "customers": int(len(group) // data.n_items),
                "mean": float(np.average(e, weights=w)),
                **q,
            }
        )
    return table


def _natural_key(text: str) -> list:
    """'15-24K' before '100-124K': digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@torch.no_grad()
def learned_pairs(network: ChoiceNetwork, data: PreparedData) -> dict[str, list[dict]]:
    """Strongest learned complements (c > 0) and substitutes (c < 0) among popular items,
    with the co-purchase lift P(i and j) / (P(i) P(j)) on the training trips beside them."""
    pool = np.arange(min(PAIR_POOL, data.n_items))  # items are in popularity order
    index = torch.from_numpy(pool)
    coupling = network.coupling_rows(index)[:, index].numpy()  # (M, M)
    upper = np.triu_indices(len(pool), k=1)
    values = coupling[upper]
    order = np.argsort(values)
    train_trips = np.flatnonzero(data.trip_split != SPLIT_HOLDOUT)
    line_trip, line_item = trip_lines(data, train_trips)
    in_pool = line_item < len(pool)
    X = sp.csr_matrix(
        (np.ones(in_pool.sum()), (np.searchsorted(train_trips, line_trip[in_pool]), line_item[in_pool])),
        shape=(len(train_trips), len(pool)),
    )
    together = (X.T @ X).toarray() / len(train_trips)  # (M, M) P(i and j), diagonal P(i)
    share = np.diag(together)

    def describe(k: int) -> dict:
        i, j = upper[0][k], upper[1][k]
        lift = together[i, j] / max(share[i] * share[j], 1e-12)
        return {
            "item_a": str(data.items["name"].iloc[i]),
            "item_b": str(data.items["name"].iloc[j]),
            "item_a_id": str(data.items["item_id"].iloc[i]),
            "item_b_id": str(data.items["item_id"].iloc[j]),
            "coupling": float(values[k]),
            "co_purchase_lift": float(lift),
        }

    return {
        "complements": [describe(k) for k in order[::-1][:TOP_PAIRS] if values[k] > 0],
        "substitutes": [describe(k) for k in order[:TOP_PAIRS] if values[k] < 0],
    }


@torch.no_grad()
def truth_recovery(
    network: ChoiceNetwork, data: PreparedData, truth: dict[str, pd.DataFrame]
) -> dict[str, float | list[dict[str, object]]]:
    """How well the learned parameters recover a synthetic market's true ones.

    Ranks: ``price_sensitivity_spearman``, rank correlation of learned and true b(h,i) over
    customer x item pairs; ``complement_auc`` / ``substitute_auc``, AUC of the learned coupling
    c_ij (resp. -c_ij) separating the true complement (substitute) pairs from all other pairs.
    Magnitudes (a model that shrinks everything by half keeps its ranks but fails these):
    ``price_sensitivity_ratio``, median of learned / true b(h,i) over the same customer x item
    pairs; ``complement_strength_ratio``, median of learned / true c_ij over the true complement
    pairs. The decision figures need the pricing engine and are added by
    ``engine.pricing.truth_check`` once the run is registered.
    """
    item_pos = pd.Index(data.items["item_id"])
    true_items = truth["items"][truth["items"]["item_id"].isin(item_pos)]
    true_customers = truth["customers"][truth["customers"]["customer_id"].isin(data.customers["customer_id"])]
    items = item_pos.get_indexer(true_items["item_id"])  # learned positions of the true items
    customers = pd.Index(data.customers["customer_id"]).get_indexer(true_customers["customer_id"])
    _, beta_customer = network.customer_parameters(torch.from_numpy(customers))
    learned_b = torch.nn.functional.softplus(
        beta_customer[:, None] + network.beta_item[torch.from_numpy(items)][None, :]
    )
    true_beta = true_customers["beta_customer"].to_numpy()[:, None] + true_items["beta_item"].to_numpy()[None, :]
    true_b = np.logaddexp(0.0, true_beta)  # softplus
    rng = np.random.default_rng(0)
    pick = rng.choice(true_b.size, size=min(true_b.size, 200_000), replace=False)
    result: dict[str, float | list[dict[str, object]]] = {
        "price_sensitivity_spearman": metrics.spearman(learned_b.numpy().ravel()[pick], true_b.ravel()[pick]),
        "price_sensitivity_spearman_customers": metrics.spearman(
            beta_customer.numpy(), true_customers["beta_customer"].to_numpy()
        ),
        "price_sensitivity_ratio": float(np.median(learned_b.numpy().ravel()[pick] / true_b.ravel()[pick])),
    }
    learned_c = network.coupling_rows(torch.from_numpy(items))[:, torch.from_numpy(items)].numpy()  # (M, M)
    position = {item_id: k for k, item_id in enumerate(true_items["item_id"])}
    true_c = np.zeros_like(learned_c)
    for a, b, c in truth["pairs"][["item_a", "item_b", "coupling"]].itertuples(index=False):
        if a in position and b in position:
            true_c[position[a], position[b]] = true_c[position[b], position[a]] = c
    upper = np.triu_indices(len(items), k=1)
    result["complement_auc"] = metrics.auc(learned_c[upper], true_c[upper] > 0)
    result["substitute_auc"] = metrics.auc(-learned_c[upper], true_c[upper] < 0)
    complements = true_c[upper] > 0
    if complements.any():
        result["complement_strength_ratio"] = float(
            np.median(learned_c[upper][complements] / true_c[upper][complements])
        )
    ids = true_items["item_id"].to_numpy()
    result["complements"] = [  # the Model page's learned-vs-true chart
        {"item_a": str(ids[a]), "item_b": str(ids[b]), "true": float(true_c[a, b]), "learned": float(learned_c[a, b])}
        for a, b in zip(*upper, strict=True)
        if true_c[a, b] > 0
    ]
    return result
