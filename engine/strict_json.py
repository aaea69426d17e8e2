"""JSON that every parser accepts: a NaN or an infinity is written as ``null``.

Python's ``json.dumps`` writes ``NaN`` and ``Infinity`` by default, which RFC 8259 does not allow
(JavaScript's ``JSON.parse`` and ``jq`` refuse them). The CLI's JSON output and the training
progress lines go through ``dumps``: it walks the object, turns every non-finite number into
``None``, and then serializes with ``allow_nan=False`` so a missed one fails loudly instead of
writing invalid JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth of dicts, lists, tuples) replaced by None."""
    if isinstance(value, Mapping):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    if isinstance(value, Real) and not isinstance(value, Integral):  # float, numpy floats
        number = float(value)
        return number if math.isfinite(number) else None
    return value


def dumps(value: Any, default: Callable[[Any], Any] | None = None, **kwargs: Any) -> str:
    """``json.dumps`` of ``finite(value)``; what ``default`` returns is made finite too."""
    return json.dumps(
        finite(value),
        default=None if default is None else (lambda obj: finite(default(obj))),
        allow_nan=False,
        **kwargs,
    )
