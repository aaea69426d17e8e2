"""Natural order of ordinal labels: bands such as income ('Under 15K', '15-24K', ..., '250K+') and age.

A text sort puts '100-124K' before '15-24K'. ``natural_order`` sorts a label by its first number,
scaled by a K (thousand) or M (million) suffix; in a range the suffix may be written once, on the
last number ('15-24K' starts at 15 thousand). Then:

- 'Under 15K' (also 'below', 'less than', '<') comes just before anything starting at 15K;
- '250K+' (also 'over', 'above', 'more than', '>') comes just after anything starting at 250K;
- labels without a number follow the numeric ones, alphabetically (case-insensitive);
- 'Unknown' (any case) is always last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

UNKNOWN = "unknown"
SCALES = {"k": 1e3, "m": 1e6}
# A number with optional thousands separators and decimals, and a K/M suffix that is not the
# start of a word ('10 Miles' is ten, not ten million).
NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)(?:\s?([KkMm])(?![A-Za-z]))?")
BELOW = re.compile(r"^\s*(under|below|less than|<)", re.IGNORECASE)
ABOVE = re.compile(r"(\+\s*$|^\s*(over|above|more than|>))", re.IGNORECASE)


def natural_order(values: Iterable[str]) -> list[str]:
    """``values`` sorted as ordinal bands: by first number (K/M understood), then text, 'Unknown' last."""
    return sorted(values, key=_band_key)


def band_start(label: str) -> float | None:
    """The first number of ``label`` with its K/M scale ('15-24K' -> 15000.0), or None without a number."""
    numbers = NUMBER.findall(label)
    if not numbers:
        return None
    first, suffix = numbers[0]
    # '15-24K': the range's scale is written once, on a later number
    suffix = suffix or next((s for _, s in numbers[1:] if s), "")
    return float(first.replace(",", "")) * SCALES.get(suffix.lower(), 1.0)


def _band_key(label: str) -> tuple:
    text = str(label)
    if text.strip().lower() == UNKNOWN:
        return (2, 0.0, 0, "", text)
    start = band_start(text)
    if start is None:
        return (1, 0.0, 0, text.casefold(), text)
    side = -1 if BELOW.search(text) else 1 if ABOVE.search(text) else 0
    return (0, start, side, text.casefold(), text)
