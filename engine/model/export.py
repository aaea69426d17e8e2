"""Export of the learned parameters in the contract of ``engine.schema.MODEL_DDL``.

What pricing reads (utility at the regular price, no basket context):

    u(h,i) = lambda_i + <theta_h, alpha_i> + habit(h,i) - b(h,i) * regular_price_i
    b(h,i) = softplus(beta_customer_h + beta_item_i)
    c_ij   = <rho_i, alpha_j> + <rho_j, alpha_i>

Exported ``lambda`` folds in the average season and the average promotion of the item over the
data's weeks, and the item's recent level (``engine.model.projection``); ``habit`` is gamma_i * habit feature at the end of the data (after each
customer's last trip), one row per customer-item pair with history. Parameters, never a
customers x items table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from engine.model.batches import TripTensors
from engine.model.config import ModelConfig
from engine.model.network import ChoiceNetwork
from engine.model.prepared import PreparedData
from engine.model.projection import replayed_recent_level

EXPORT_DIR = "export"
ITEMS, CUSTOMERS, HABITS = "model_items.parquet", "model_customers.parquet", "model_habits.parquet"


@torch.no_grad()
def exported_parameters(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> dict[str, pd.DataFrame]:
    """The three parameter tables (without run_id), in the column order of MODEL_DDL."""
    network = network.eval().cpu()
    season_mean = torch.from_numpy(data.season.mean(axis=0))  # (S,)
    promo_mean = torch.from_numpy(data.promo.mean(axis=0))  # (I, P)
    delta = torch.from_numpy(replayed_recent_level(network, data, config)).float()  # (I,) the items' recent level
    popularity = (
        network.popularity + network.season_item @ season_mean + promo_mean @ network.promo_effect + delta
    )  # (I,) lambda with the average season and promotion and the recent level folded in
    items = data.items
    item_table = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "name": items["name"],
            "department": items["department"],
            "category": items["category"],
            "popularity": popularity.double().numpy(),
            "alpha": list(network.alpha.numpy().astype(np.float32)),
            "rho": list(network.rho.numpy().astype(np.float32)),
            "beta_item": network.beta_item.double().numpy(),
            "regular_price": items["regular_price"].astype(np.float64),
            "unit_cost": items["unit_cost"].astype(np.float64),
        }
    )
    theta, beta_customer = network.customer_parameters(torch.arange(data.n_customers))
    customer_table = pd.DataFrame(
        {
            "customer_id": data.customers["customer_id"],
            "theta": list(theta.numpy().astype(np.float32)),
            "beta_customer": beta_customer.double().numpy(),
            "trips_per_week": data.customers["trips_per_week"].astype(np.float64),
        }
    )
    return {ITEMS: item_table, CUSTOMERS: customer_table, HABITS: end_habits(network, data, config)}


def end_habits(network: ChoiceNetwork, data: PreparedData, config: ModelConfig) -> pd.DataFrame:
    """gamma_i * habit(h,i) after each customer's last trip, for every pair with history."""
    pairs = np.unique(data.habit_code // data.habit_stride)  # (P,) customer * I + item
    customer, item = pairs // data.n_items, pairs % data.n_items
    tensors = TripTensors(data, config.habit_decay)
    end_number = torch.from_numpy(data.end_habit_number()[customer])
    feature = tensors.habit(torch.from_numpy(customer), torch.from_numpy(item), end_number)  # (P,)
    habit = network.habit_weight(torch.from_numpy(item)) * feature  # (P,)
    return pd.DataFrame(
        {
            "customer_id": data.customers["customer_id"].to_numpy()[customer],
            "item_id": data.items["item_id"].to_numpy()[item],
            "habit": habit.double().numpy(),
        }
    )


def write_export(network: ChoiceNetwork, data: PreparedData, config: ModelConfig, run_dir: Path) -> None:
    folder = run_dir / EXPORT_DIR
    folder.mkdir(exist_ok=True)
    for file, table in exported_parameters(network, data, config).items():
        table.to_parquet(folder / file, index=False)
