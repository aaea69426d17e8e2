"""JSON output never holds NaN or Infinity (RFC 8259): they become null, at any depth."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from engine import strict_json


def strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth():
    value = {
        "a": float("nan"),
        "b": [1.5, float("inf"), {"c": -float("inf")}],
        "d": (np.float32("nan"), np.float64(2.5)),
        "e": np.nan,
        "f": 3,
        "g": True,
        "h": None,
        "i": "NaN",
    }
    out = strict_loads(strict_json.dumps(value))
    assert out == {
        "a": None,
        "b": [1.5, None, {"c": None}],
        "d": [None, 2.5],
        "e": None,
        "f": 3,
        "g": True,
        "h": None,
        "i": "NaN",
    }


def test_what_default_returns_is_made_finite_too():
    class Reading:
        def __init__(self, value):
            self.value = value

    text = strict_json.dumps(
        {"r": Reading(float("nan")), "day": date(2024, 1, 2)},
        default=lambda o: o.isoformat() if isinstance(o, date) else {"value": o.value},
    )
    assert strict_loads(text) == {"r": {"value": None}, "day": "2024-01-02"}


def test_the_plain_library_would_have_written_invalid_json():
    with pytest.raises(ValueError, match="NaN"):
        strict_loads(json.dumps({"a": float("nan")}))
