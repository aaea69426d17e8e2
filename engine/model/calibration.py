"""Calibration of the projection on the held-out weeks: predicted vs observed purchases.

The bundle projection (``engine.pricing``) predicts a customer's purchases per trip from the
exported parameters (the average season and promotion and the item's recent level folded into
lambda, habits at the end of the training window, regular prices) with each of the customer's
replayed trips as basket context (``engine.replay``; the same utility in torch:
``engine.model.projection``). This module asks the same model the same question on the held-
out weeks, customer by customer, and compares with what the customers bought there:

    predicted purchases of item i = sum_h n_h^hold x mean_{t in R_h} P(i | h, B_t \\ i)
    predicted purchases of pair ij = sum_h n_h^hold x mean_{t in R_h} P(i and j | h, B_t \\ {i, j})

with the pair's coupling re-anchored to the replayed trips' joint purchases, as pricing does for
a trained run (``engine.model.projection.anchor_couplings``)

where R_h are the customer's replayed trips and n_h^hold its held-out trips. The pair probability
is the 2-item auto-logistic model of DESIGN.md section 4 (exactly what the projection computes
before any bundle is offered). The personal-frequency baseline answers with the customer's own
shrunk rates (its pair rate is the customer's shrunk joint frequency of the pair).

Figures (``calibration``): ``total_ratio`` (all catalog purchases), ``item_rate_ratio`` over items
with at least ``MIN_ITEM_PURCHASES`` held-out purchases, ``pair_rate_ratio`` over the
``TOP_PAIRS`` most co-purchased pairs of the training window, ``wape_item_week``; each for the
model and for the baseline, plus the rows the Model page charts.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.model.baselines import PersonalFrequencyBaseline, PopularityBaseline, trip_lines
from engine.model.config import ModelConfig
from engine.model.network import ChoiceNetwork
from engine.model.prepared import SPLIT_HOLDOUT, SPLIT_TRAIN, PreparedData
from engine.model.projection import PAIR_PRIOR, anchor_couplings, recent_level, trip_utilities
from engine.model.replay import replayed_trip_indices

MIN_ITEM_PURCHASES = 20
TOP_PAIRS = 50


def ratio_summary(predicted: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    """Median and quartiles of predicted / observed (rows with observed > 0)."""
    keep = observed > 0
    if not keep.any():
        return {"median": float("nan"), "p25": float("nan"), "p75": float("nan"), "n": 0}
    ratio = predicted[keep] / observed[keep]
    p25, median, p75 = np.percentile(ratio, [25, 50, 75])
    return {"median": float(median), "p25": float(p25), "p75": float(p75), "n": int(keep.sum())}


def wape(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |predicted - observed| / sum observed."""
    return float(np.abs(predicted - observed).sum() / max(observed.sum(), 1e-12))


def top_pairs(data: PreparedData, trips: np.ndarray, count: int) -> np.ndarray:
    """(P, 2) the ``count`` item pairs most often bought together on ``trips`` (ties: lower ids)."""
    line_trip, line_item = trip_lines(data, trips)
    order = np.lexsort((line_item, line_trip))
    line_trip, line_item = line_trip[order], line_item[order]
    starts = np.flatnonzero(np.r_[True, line_trip[1:] != line_trip[:-1]])
    ends = np.r_[starts[1:], len(line_trip)]
    codes = _pair_codes(line_item, starts, ends, data.n_items)
    unique, counts = np.unique(codes, return_counts=True)
    best = np.lexsort((unique, -counts))[:count]
    return np.stack([unique[best] // data.n_items, unique[best] % data.n_items], axis=1)


def _pair_codes(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_items: int) -> np.ndarray:
    """Codes a * I + b (a < b) of every pair of items within each basket."""
    out = []
    for size in np.unique(ends - starts):
        if size < 2:
            continue
        first = starts[(ends - starts) == size]  # (B_s,) baskets of this size
        a, b = np.triu_indices(size, 1)  # (Q,) pairs of positions
        out.append((items[first[:, None] + a] * n_items + items[first[:, None] + b]).ravel())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def pair_counts(data: PreparedData, trips: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """(P,) trips among ``trips`` whose basket holds both items of each pair."""
    bought = basket_matrix(data, trips)  # (T, I) bool
    return (bought[:, pairs[:, 0]] & bought[:, pairs[:, 1]]).sum(axis=0)


def basket_matrix(data: PreparedData, trips: np.ndarray) -> np.ndarray:
    """(T, I) bool: item i in trip t's basket."""
    line_trip, line_item = trip_lines(data, trips)
    bought = np.zeros((len(trips), data.n_items), bool)
    bought[np.searchsorted(trips, line_trip), line_item] = True
    return bought


@torch.no_grad()
def calibration(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> dict:
    """The ``calibration`` block of ``evaluate`` (see the module docstring)."""
    network = network.eval().cpu()
    holdout = data.trips_in(SPLIT_HOLDOUT)
    if len(holdout) == 0:
        return {}
    window = np.flatnonzero(data.trip_split != SPLIT_HOLDOUT)
    pairs = top_pairs(data, window, TOP_PAIRS)  # (P, 2)
    holdout_weeks = np.unique(data.trip_week[holdout])  # (W_h,)
    week_of = np.searchsorted(holdout_weeks, data.trip_week[holdout])  # (T_h,)
    trips_hw = np.zeros((data.n_customers, len(holdout_weeks)))  # (H, W_h) held-out trips
    np.add.at(trips_hw, (data.trip_customer[holdout], week_of), 1.0)

    bought = basket_matrix(data, holdout)  # (T_h, I)
    observed_item_week = np.zeros((len(holdout_weeks), data.n_items))
    np.add.at(observed_item_week, week_of, bought.astype(np.float64))
    observed_pairs = (bought[:, pairs[:, 0]] & bought[:, pairs[:, 1]]).sum(axis=0).astype(np.float64)

    model_item_week, model_pairs = _model_predictions(network, data, config, trips_hw, pairs)
    base_item_week, base_pairs = _baseline_predictions(data, trips_hw, pairs)
    observed_items = observed_item_week.sum(axis=0)  # (I,)
    frequent = observed_items >= MIN_ITEM_PURCHASES
    out: dict = {
        "holdout_trips": int(len(holdout)),
        "items_compared": int(frequent.sum()),
        "pairs_compared": int(len(pairs)),
    }
    for name, item_week, pair_rate in (
        ("model", model_item_week, model_pairs),
        ("personal_frequency", base_item_week, base_pairs),
    ):
        items = item_week.sum(axis=0)
        out[name] = {
            "total_ratio": float(items.sum() / max(observed_items.sum(), 1e-12)),
            "item_rate_ratio": ratio_summary(items[frequent], observed_items[frequent]),
            "pair_rate_ratio": ratio_summary(pair_rate, observed_pairs),
            "wape_item_week": wape(item_week, observed_item_week),
        }
    week_numbers = data.weeks[holdout_weeks]
    out["weeks"] = [
        {"week": int(w), "observed": float(o), "model": float(m), "personal_frequency": float(b)}
        for w, o, m, b in zip(
            week_numbers,
            observed_item_week.sum(axis=1),
            model_item_week.sum(axis=1),
            base_item_week.sum(axis=1),
            strict=True,
        )
    ]
    ids, names = data.items["item_id"].to_numpy(), data.items["name"].to_numpy()
    model_items = model_item_week.sum(axis=0)
    out["items"] = [
        {
            "item_id": str(ids[i]),
            "name": str(names[i]),
            "observed": float(observed_items[i]),
            "model": float(model_items[i]),
        }
        for i in np.flatnonzero(frequent)
    ]
    out["pairs"] = [
        {
            "item_a": str(ids[a]),
            "item_b": str(ids[b]),
            "name_a": str(names[a]),
            "name_b": str(names[b]),
            "observed": float(o),
            "model": float(m),
            "personal_frequency": float(f),
        }
        for (a, b), o, m, f in zip(pairs, observed_pairs, model_pairs, base_pairs, strict=True)
    ]
    return out


@torch.no_grad()
def _model_predictions(
    network: ChoiceNetwork, data: PreparedData, config: ModelConfig, trips_hw: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted item-week purchases (W_h, I) and pair purchases (P,) over the held-out weeks."""
    replayed = replayed_trip_indices(data, config.replay_trips)  # (R,)
    customer = data.trip_customer[replayed]
    n_replayed = np.bincount(customer, minlength=data.n_customers)  # (H,)
    # customers who shop in the held-out weeks with no trip to replay get one empty-basket trip
    lonely = np.flatnonzero((n_replayed == 0) & (trips_hw.sum(axis=1) > 0))
    rows_customer = np.concatenate([customer, lonely])  # (R',)
    rows_trip = np.concatenate([replayed, np.full(len(lonely), -1)])  # -1: empty basket
    weight = trips_hw[rows_customer] / np.maximum(n_replayed[rows_customer], 1)[:, None]  # (R', W_h)
    utilities, basket = trip_utilities(network, data, config, rows_customer, rows_trip)  # (R', I) twice
    utilities += torch.from_numpy(
        recent_level(utilities[: len(replayed)], basket[: len(replayed)], config.recent_level_prior)
    ).float()  # the exported lambda
    a, b = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    coupling_ab = network.coupling(a, b).detach()[None, :]  # (1, P) c_ab
    x_a = utilities[:, a] - basket[:, b].float() * coupling_ab  # (R', P) a without b in context
    x_b = utilities[:, b] - basket[:, a].float() * coupling_ab
    replayed_rows = slice(0, len(replayed))  # the coupling of each pair as pricing anchors it
    joint = (basket[replayed_rows][:, a] & basket[replayed_rows][:, b]).sum(dim=0).double().numpy()  # (P,)
    anchored = torch.tensor(
        [
            anchor_couplings(
                np.stack([x_a[replayed_rows, p].double().numpy(), x_b[replayed_rows, p].double().numpy()], axis=1),
                np.array([[0.0, float(coupling_ab[0, p])], [float(coupling_ab[0, p]), 0.0]]),
                np.array([[0.0, joint[p]], [joint[p], 0.0]]),
                PAIR_PRIOR,
            )[0, 1]
            for p in range(len(pairs))
        ]
    ).float()[None, :]  # (1, P)
    both = x_a + x_b + anchored
    log_norm = torch.logsumexp(torch.stack([torch.zeros_like(both), x_a, x_b, both]), dim=0)  # (R', P)
    w = torch.from_numpy(weight).float()  # (R', W_h)
    item_week = (w.T @ torch.sigmoid(utilities)).double().numpy()  # (W_h, I)
    pair_total = (w.sum(dim=1)[:, None] * torch.exp(both - log_norm)).sum(dim=0).double().numpy()  # (P,)
    return item_week, pair_total


def _baseline_predictions(data: PreparedData, trips_hw: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The personal-frequency baseline's item-week (W_h, I) and pair (P,) predictions."""
    popularity = PopularityBaseline(data)
    personal = PersonalFrequencyBaseline(data, popularity)
    customers = np.flatnonzero(trips_hw.sum(axis=1) > 0)
    rate = 1.0 / (1.0 + np.exp(-personal.catalog_logits(customers)))  # (H', I)
    item_week = trips_hw[customers].T @ rate  # (W_h, I)
    fit_trips = np.flatnonzero(data.trip_split == SPLIT_TRAIN)
    bought = basket_matrix(data, fit_trips)  # (T_f, I)
    joint = bought[:, pairs[:, 0]] & bought[:, pairs[:, 1]]  # (T_f, P)
    global_rate = (joint.sum(axis=0) + 0.5) / (len(fit_trips) + 1.0)  # (P,)
    per_customer = np.zeros((data.n_customers, len(pairs)))
    np.add.at(per_customer, data.trip_customer[fit_trips], joint.astype(np.float64))
    s = personal.strength_
    shrunk = (per_customer + s * global_rate) / (personal.trips_[:, None] + s)  # (H, P)
    return item_week, (trips_hw.sum(axis=1)[:, None] * shrunk).sum(axis=0)
