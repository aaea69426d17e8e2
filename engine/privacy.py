"""Privacy policy: which customer attributes are sensitive, who may price on them, how small a group may be.

One place for the rules every layer applies (studio settings in ``main.settings``):

- ``sensitive_attributes``: attributes treated as sensitive personal data (by default age and
  income bands);
- ``check_pricing_segment``: a sensitive attribute is refused as a pricing segment unless the
  analyst enabled ``allow_sensitive_segments``; a scenario priced on one carries a disclosure
  notice (``engine.exports``);
- ``min_group_size``: figures over fewer customers are suppressed in the UI and in exports.

The fairness view over these attributes is ``engine.fairness``.
"""

from __future__ import annotations

import duckdb

from engine import store
from engine.errors import DataError


def sensitive_attributes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Attributes the analyst treats as sensitive personal data."""
    return list(store.get_setting(con, "sensitive_attributes"))


def min_group_size(con: duckdb.DuckDBPyConnection) -> int:
    """The smallest group of customers a figure may describe (smaller groups are suppressed)."""
    return int(store.get_setting(con, "min_group_size"))


def check_pricing_segment(con: duckdb.DuckDBPyConnection, attribute: str | None) -> bool:
    """Refuse a sensitive attribute as a pricing segment unless enabled in settings.

    Returns True when prices will depend on personal data (the scenario must carry the notice).
    """
    if attribute is None or attribute not in sensitive_attributes(con):
        return False
    if not store.get_setting(con, "allow_sensitive_segments"):
        raise DataError(
            f"{attribute!r} is a sensitive attribute and cannot be a pricing segment; "
            "enable 'allow sensitive segments' in settings to use it (prices will carry a personal-data notice)"
        )
    return True
