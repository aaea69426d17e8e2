"""The prepared arrays of one run: what ``prepare`` writes and training reads (no database).

Files in the run folder: ``arrays.npz`` (every numpy field), ``items.parquet`` (catalog, in
item-index order) and ``customers.parquet`` (in customer-index order).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import ModelError

SPLIT_TRAIN, SPLIT_VAL, SPLIT_HOLDOUT = 0, 1, 2

ARRAYS_FILE = "arrays.npz"
ITEMS_FILE = "items.parquet"
CUSTOMERS_FILE = "customers.parquet"
META_FILE = "prepared.json"


@dataclass
class PreparedData:
    """Everything the network, the trainer and the evaluation need, as arrays.

    Shapes: I items, H customers, D demographic columns, W weeks, S season features,
    T trips, L basket lines (trip x item), E habit events.
    """

    items: pd.DataFrame  # (I rows) item_id, name, department, category, baskets, regular_price, unit_cost, base_rate
    customers: pd.DataFrame  # (H rows) customer_id, has_demographics, trips, train_trips, trips_per_week, segment
    demographics: np.ndarray  # (H, D) float32 one-hot
    demographic_names: list[str]  # (D,)
    weeks: np.ndarray  # (W,) dataset week numbers; week index = position here
    last_train_week: int  # weeks after this one are held out
    season: np.ndarray  # (W, S) float32 Fourier features
    price: np.ndarray  # (W, I) float32 unit price that week
    promo: np.ndarray  # (W, I, 2) float32 display, mailer flags
    trip_customer: np.ndarray  # (T,) int64 customer index
    trip_week: np.ndarray  # (T,) int64 week index
    trip_split: np.ndarray  # (T,) int8 SPLIT_TRAIN | SPLIT_VAL | SPLIT_HOLDOUT
    trip_number: np.ndarray  # (T,) int64 the customer's trip count, from 1
    trip_habit_number: np.ndarray  # (T,) int64 trip number used for habits (frozen in the holdout)
    basket_offsets: np.ndarray  # (T+1,) int64 trip t's items are basket_items[offsets[t]:offsets[t+1]]
    basket_items: np.ndarray  # (L,) int64 item index
    habit_code: np.ndarray  # (E,) int64 sorted event codes (see engine.model.habits)
    habit_trip: np.ndarray  # (E,) int64 trip number of each event
    habit_value: np.ndarray  # (E,) float32 loyalty / (1 - decay) right after the event
    habit_stride: int  # code = (customer * I + item) * stride + trip_number

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def regular_price(self) -> np.ndarray:
        """(I,) float32 modal shelf unit price."""
        return self.items["regular_price"].to_numpy(np.float32)

    def trips_in(self, split: int) -> np.ndarray:
        """(n,) indices of the trips in ``split``."""
        return np.flatnonzero(self.trip_split == split)

    def end_habit_number(self) -> np.ndarray:
        """(H,) trip number just after each customer's last trip (habits at the end of the data)."""
        last = np.zeros(self.n_customers, np.int64)
        np.maximum.at(last, self.trip_customer, self.trip_number)
        return last + 1

    def save(self, folder: Path) -> None:
        arrays = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        np.savez(folder / ARRAYS_FILE, **arrays)
        self.items.to_parquet(folder / ITEMS_FILE, index=False)
        self.customers.to_parquet(folder / CUSTOMERS_FILE, index=False)
        meta = {
            "demographic_names": self.demographic_names,
            "last_train_week": self.last_train_week,
            "habit_stride": self.habit_stride,
        }
        (folder / META_FILE).write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> PreparedData:
        try:
            meta = json.loads((folder / META_FILE).read_text())
            with np.load(folder / ARRAYS_FILE) as arrays:
                values = {name: arrays[name] for name in arrays.files}
            items = pd.read_parquet(folder / ITEMS_FILE)
            customers = pd.read_parquet(folder / CUSTOMERS_FILE)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"expected a prepared run folder at {folder}, found: {exc}") from exc
        return cls(items=items, customers=customers, **meta, **values)
