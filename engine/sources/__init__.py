"""Adapters that produce the canonical tables (``engine.schema``) from a data source."""
