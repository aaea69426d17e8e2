"""Evaluation on the held-out weeks: the model against the two baselines, computed the same way.

- ``nll``: mean binary NLL of the held-out purchases and of ``eval_negatives`` sampled
  non-purchases per trip (same draws for every scorer; a draw that hits the basket is dropped);
- ``auc``: on the same rows;
- ``loo_nll``: for each held-out basket item, -log softmax of its utility over the catalog
  given the rest of the basket, the other basket items blocked (choice-learn's basket-model
  protocol, so figures compare with theirs);
- ``recall_at_10``: share of each basket's items among the customer's top 10 items that week
  (scored before the basket is known), averaged over baskets;
- slices: customers with few training trips; items whose price moved in the held-out weeks;
- calibration by discount depth: importance-weighted predicted vs observed purchase rate.

Held-out trips see only training-window history (their habit clock stops at the end of it).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from engine.model import metrics
from engine.model.baselines import PersonalFrequencyBaseline, PopularityBaseline
from engine.model.batches import TripTensors
from engine.model.config import ModelConfig
from engine.model.network import ChoiceNetwork
from engine.model.prepared import SPLIT_HOLDOUT, PreparedData

log = logging.getLogger(__name__)

CHUNK_TRIPS = 512
DEPTH_BINS = (-np.inf, 0.005, 0.1, 0.2, 0.3, 0.5, np.inf)
DEPTH_LABELS = ("none", "0.5-10%", "10-20%", "20-30%", "30-50%", "50%+")
PRICE_MOVE = 0.05  # "price changed": a held-out week's price more than 5% off the regular price
SCORERS = ("model", "global_popularity", "personal_frequency")


@torch.no_grad()
def evaluate(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> dict:
    """Every held-out metric of ``network`` and the baselines, as a JSON-ready dict."""
    network = network.eval().cpu()
    tensors = TripTensors(data, config.habit_decay)
    popularity = PopularityBaseline(data)
    personal = PersonalFrequencyBaseline(data, popularity)
    holdout = data.trips_in(SPLIT_HOLDOUT)
    if len(holdout) == 0:
        return {"model": {}, "baselines": {}, "slices": {}, "holdout": {"trips": 0}}
    rows = _scored_rows(network, tensors, holdout, config, popularity, personal)
    catalog = _catalog_scores(network, tensors, data, holdout, popularity, personal)
    summary = {
        name: {
            "nll": metrics.binary_nll(rows[name], rows["label"]),
            "loo_nll": float(np.mean(catalog[name]["loo"])),
            "auc": metrics.auc(rows[name], rows["label"]),
            "recall_at_10": float(np.mean(catalog[name]["recall"])),
        }
        for name in SCORERS
    }
    few = data.customers["train_trips"].to_numpy() <= config.few_baskets  # (H,)
    moved = _items_with_price_moves(data)  # (I,)
    slices = {
        f"customers_with_at_most_{config.few_baskets}_training_trips": _slice(rows, few[rows["customer"]]),
        "items_with_price_changes_in_holdout": _slice(rows, moved[rows["item"]]),
    }
    return {
        "model": summary["model"],
        "baselines": {name: summary[name] for name in SCORERS[1:]},
        "slices": slices,
        "calibration_by_discount": _calibration(rows, data),
        "holdout": {
            "trips": int(len(holdout)),
            "rows": int(len(rows["label"])),
            "purchases": int(rows["label"].sum()),
            "basket_items": int(len(catalog["model"]["loo"])),
            "personal_frequency_strength": personal.strength_,
        },
    }


def _scored_rows(network, tensors, holdout, config, popularity, personal) -> dict[str, np.ndarray]:
    """Held-out purchases and sampled non-purchases with every scorer's logit."""
    generator = torch.Generator().manual_seed(config.eval_seed)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "item", "label", "weight", "price", "model")}
    for start in range(0, len(holdout), CHUNK_TRIPS):
        batch = tensors.batch(torch.from_numpy(holdout[start : start + CHUNK_TRIPS]), config.eval_negatives, generator)
        keep = batch.weight > 0  # drop sampled items that are in the basket
        parts["customer"].append(batch.customer[batch.row][keep].numpy())
        parts["item"].append(batch.item[keep].numpy())
        parts["label"].append(batch.label[keep].numpy())
        parts["weight"].append(batch.weight[keep].numpy())
        parts["price"].append(batch.price[keep].numpy())
        parts["model"].append(network(batch)[keep].numpy())
    rows = {k: np.concatenate(v) for k, v in parts.items()}
    rows["global_popularity"] = popularity.row_logits(rows["customer"], rows["item"])
    rows["personal_frequency"] = personal.row_logits(rows["customer"], rows["item"])
    return rows


def _catalog_scores(network, tensors, data, holdout, popularity, personal) -> dict[str, dict[str, np.ndarray]]:
    """Leave-one-out NLL per basket item and recall@10 per basket, for every scorer."""
    I = data.n_items
    out: dict[str, dict[str, list[np.ndarray]]] = {name: {"loo": [], "recall": []} for name in SCORERS}
    for start in range(0, len(holdout), CHUNK_TRIPS):
        trips = torch.from_numpy(holdout[start : start + CHUNK_TRIPS])  # (B,)
        basket_item, basket_row, basket_offsets = tensors.baskets(trips)  # (L,), (L,), (B,)
        if len(basket_item) == 0:
            continue
        bought = torch.zeros(len(trips), I, dtype=torch.bool)
        bought[basket_row, basket_item] = True
        week = tensors.trip_week[trips]  # (B,)
        customer = tensors.trip_customer[trips]  # (B,)
        habit = tensors.catalog_habits(customer, tensors.trip_habit_number[trips])  # (B, I) frozen per customer
        unique, inverse = torch.unique(customer, return_inverse=True)  # (U,), (B,) for the per-customer baselines
        inputs = (customer, tensors.season[week], habit, tensors.price[week], tensors.promo[week])
        with_basket = network.catalog_utility(*inputs, network.basket_sums(basket_item, basket_offsets))  # (B, I)
        no_basket = network.catalog_utility(*inputs)  # (B, I)
        # utility of each item given the rest of its basket: drop its own couplings
        loo_utilities = with_basket[basket_row] - network.coupling_rows(basket_item)  # (L, I)
        blocked = bought[basket_row]  # (L, I) the other basket items cannot be chosen again
        blocked[torch.arange(len(basket_item)), basket_item] = False
        nonempty = bought.any(dim=1)
        personal_catalog = torch.from_numpy(personal.catalog_logits(unique.numpy()))[inverse]  # (B, I)
        popularity_catalog = torch.from_numpy(popularity.catalog_logits(unique.numpy()[:1]).copy()).expand(
            len(trips), -1
        )
        for name, loo_scores, rank_scores in (
            ("model", loo_utilities, no_basket),
            ("global_popularity", popularity_catalog[basket_row], popularity_catalog),
            ("personal_frequency", personal_catalog[basket_row], personal_catalog),
        ):
            out[name]["loo"].append(metrics.leave_one_out_nll(loo_scores, basket_item, blocked))
            out[name]["recall"].append(metrics.recall_at_k(rank_scores[nonempty], bought[nonempty], 10))
    return {name: {k: np.concatenate(v) for k, v in parts.items()} for name, parts in out.items()}


def _items_with_price_moves(data: PreparedData) -> np.ndarray:
    """(I,) True for items whose price in some held-out week is more than 5% off regular."""
    holdout_weeks = data.weeks > data.last_train_week
    relative = np.abs(data.price[holdout_weeks] / data.regular_price[None, :] - 1.0)  # (W_h, I)
    return (relative > PRICE_MOVE).any(axis=0)


def _slice(rows: dict[str, np.ndarray], mask: np.ndarray) -> dict:
    result: dict = {"rows": int(mask.sum()), "purchases": int(rows["label"][mask].sum())}
    for name in SCORERS:
        if mask.any():
            result[name] = {
                "nll": metrics.binary_nll(rows[name][mask], rows["label"][mask]),
                "auc": metrics.auc(rows[name][mask], rows["label"][mask]),
            }
    return result


def _calibration(rows: dict[str, np.ndarray], data: PreparedData) -> list[dict]:
    """Importance-weighted predicted vs observed purchase rate per discount-depth bin."""
    depth = 1.0 - rows["price"] / data.regular_price[rows["item"]]
    bins = np.digitize(depth, DEPTH_BINS[1:-1])
    table = []
    for b, label in enumerate(DEPTH_LABELS):
        mask = bins == b
        if not mask.any():
            continue
        weight = rows["weight"][mask]
        entry = {
            "discount": label,
            "rows": int(mask.sum()),
            "observed": float(np.average(rows["label"][mask], weights=weight)),
        }
        for name in SCORERS:
            entry[name] = float(np.average(1.0 / (1.0 + np.exp(-rows[name][mask])), weights=weight))
        table.append(entry)
    return table
