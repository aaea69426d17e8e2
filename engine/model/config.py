"""Configuration of one model run: data preparation, network size, training, evaluation.

One frozen dataclass, saved as JSON in the run folder and in ``model_runs.config``; every field
is a primitive so it round-trips through JSON and Lightning checkpoints (``weights_only``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from engine.errors import ModelError
from engine.replay import DEFAULT_REPLAY_TRIPS

LEVELS = ("product", "category")


@dataclass(frozen=True)
class ModelConfig:
    # --- data -------------------------------------------------------------------------------
    level: str = "product"  # 'product': one item per product; 'category': one item per category
    catalog_size: int = 2000  # top-N items by baskets in the training window
    holdout_weeks: int = 8  # the last W weeks are held out for evaluation
    val_fraction: float = 0.05  # random share of training trips kept for early stopping
    habit_decay: float = 0.95  # per-trip decay of the Guadagni-Little loyalty (memory ~ 1/(1-a) = 20 trips)
    season_harmonics: int = 1  # annual Fourier harmonics; 1 year of data cannot pin down more
    segment_attribute: str = "income_band"  # demographic attribute used to slice elasticities
    few_baskets: int = 5  # "customers with few training baskets": at most this many trips
    # Bundle projections replay each customer's last N trips of the training window: the rest of
    # each basket is the context of the bundle's items (DESIGN.md section 4, engine.replay).
    replay_trips: int = DEFAULT_REPLAY_TRIPS
    # Prior sd of each item's recent level (engine.model.projection): how far the projection may
    # move an item from its annual-average level to what the replayed trips show.
    recent_level_prior: float = 0.5
    # --- network ----------------------------------------------------------------------------
    latent_dim: int = 24  # K: size of theta_h, alpha_i, rho_i
    demo_hidden: int = 32  # hidden units of g(demographics)
    # --- training ---------------------------------------------------------------------------
    negatives: int = 32  # sampled non-purchased catalog items per trip, importance-weighted
    batch_trips: int = 2048  # trips per batch at most (~ 2048 x (5 + 32) = 75k scored items)
    # ... and fewer on small datasets, so an epoch takes at least this many optimizer steps: the
    # learning rate decays per epoch, so with few steps the parameters cannot travel far from their
    # start (price sensitivities came out at 0.74x the truth on an 800-customer market).
    min_steps_per_epoch: int = 100
    # Adam at 0.01, x0.75 per epoch: a constant 0.01-0.02 overfits the Complete Journey within
    # 2-4 epochs; the decay reaches a lower validation loss than any constant rate tried.
    learning_rate: float = 0.01
    lr_decay: float = 0.75
    max_epochs: int = 12  # the rate is down to 4% of its start by then
    patience: int = 2  # early stopping on the validation loss
    # Gaussian-prior (L2) strengths, per training trip; larger means stronger shrinkage to 0.
    l2_customer: float = 2.0  # free parts of theta_h and beta_customer_h (cold start falls back to g)
    l2_item: float = 0.5  # alpha_i, rho_i, gamma and beta_item deviations
    l2_season: float = 0.5  # season_i: a year of data hardly separates an annual cycle from a trend
    seed: int = 0
    ensemble: str | None = None  # runs sharing this tag form an ensemble: pricing's uncertainty bands
    # --- evaluation -------------------------------------------------------------------------
    eval_negatives: int = 32  # sampled non-purchases per held-out trip for nll and auc
    eval_seed: int = 12345  # the held-out negatives are the same for the model and the baselines

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ModelError(f"level must be one of {', '.join(LEVELS)}; found {self.level!r}")
        positive = {
            "catalog_size": self.catalog_size,
            "holdout_weeks": self.holdout_weeks,
            "latent_dim": self.latent_dim,
            "negatives": self.negatives,
            "batch_trips": self.batch_trips,
            "max_epochs": self.max_epochs,
            "replay_trips": self.replay_trips,
            "min_steps_per_epoch": self.min_steps_per_epoch,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ModelError(f"{name} must be a positive whole number; found {value!r}")
        if not 0.0 < self.habit_decay < 1.0:
            raise ModelError(f"habit_decay must be between 0 and 1; found {self.habit_decay!r}")
        if not self.recent_level_prior > 0.0:
            raise ModelError(f"recent_level_prior must be positive; found {self.recent_level_prior!r}")
        if not 0.0 < self.val_fraction < 0.5:
            raise ModelError(f"val_fraction must be between 0 and 0.5; found {self.val_fraction!r}")

    def trips_per_batch(self, n_train_trips: int) -> int:
        """Trips per training batch: ``batch_trips``, or fewer so that an epoch of ``n_train_trips``
        takes at least ``min_steps_per_epoch`` steps (never under 64 trips)."""
        return max(64, min(self.batch_trips, math.ceil(n_train_trips / self.min_steps_per_epoch)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a JSON dict; unknown keys are an error (a typo would silently do nothing)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(
                f"unknown model settings {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
            )
        return cls(**values)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` (None values are ignored, so CLI defaults pass through)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
