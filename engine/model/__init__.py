"""The choice model: a SHOPPER-family basket model trained with PyTorch Lightning.

Modules, in the order data flows through them:

- ``config``: ``ModelConfig``, every setting of a run;
- ``features``: the feature SQL (catalog, weekly prices, promotions, trips, demographics) and
  ``build_features`` -> ``prepared.PreparedData`` (numpy arrays); ``habits``: the loyalty feature;
- ``batches``: tensors built once and ``ChoiceBatch``es sliced from them (negatives sampled);
- ``network``: the pure ``nn.Module`` with the utility equation;
- ``lightning``: ``ChoiceModule`` (LightningModule) and ``TripDataModule``;
- ``train``: ``fit_run`` (train, evaluate, export one prepared run folder; no database);
- ``evaluate``, ``baselines``, ``metrics``, ``insights``: held-out evaluation, elasticities,
  learned pairs and truth recovery; ``report``: the same as frames for the Model page;
- ``export``: learned parameters in the ``engine.schema.MODEL_DDL`` contract;
- ``runs``: run folders, ``prepare_run``, ``register_run``, latest run; ``jobs``: background
  training for the app; ``progress``: the JSON-lines progress protocol; ``speed``: the bench.
"""
