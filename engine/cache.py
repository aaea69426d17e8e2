"""The studio's one in-process cache mechanism: least-recently-used, optionally per connection.

- ``LruCache``: a small thread-safe LRU map (Streamlit serves every session from its own thread).
  Keys carry everything the value depends on (dataset version, model run, ...), so a stale entry
  is never found, only aged out.
- ``PerConnection``: one ``LruCache`` per DuckDB connection, held through a weak reference: the
  entries of a connection go when it does (no ``id(con)`` keys, which a new connection can reuse).
  ``on_evict`` is called with (connection, key, value) when an entry ages out, so a cached
  object that lives in the database (the pricing cache tables) can be dropped with it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import duckdb

T = TypeVar("T")


class LruCache:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int, on_evict: Callable[[Hashable, Any], None] | None = None) -> None:
        self.size = size
        self.on_evict = on_evict
        self._values: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]  # type: ignore[return-value]
        value = compute()
        self.put(key, value)
        return value

    def get(self, key: Hashable) -> object | None:
        """The cached value, or None."""
        with self._lock:
            if key not in self._values:
                return None
            self._values.move_to_end(key)
            return self._values[key]

    def put(self, key: Hashable, value: object) -> None:
        evicted = []
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                evicted.append(self._values.popitem(last=False))
        if self.on_evict is not None:
            for old_key, old_value in evicted:
                self.on_evict(old_key, old_value)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


class PerConnection:
    """An ``LruCache`` of ``size`` entries per connection, gone with the connection."""

    def __init__(
        self, size: int, on_evict: Callable[[duckdb.DuckDBPyConnection, Any, Any], None] | None = None
    ) -> None:
        self.size = size
        self.on_evict = on_evict
        self._caches: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, LruCache] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, con: duckdb.DuckDBPyConnection) -> LruCache:
        """The cache of ``con``."""
        with self._lock:
            cache = self._caches.get(con)
            if cache is None:
                evict = None
                if self.on_evict is not None:
                    ref = weakref.ref(con)

                    def evict(key: Hashable, value: Any, ref=ref) -> None:
                        alive = ref()
                        if alive is not None:
                            self.on_evict(alive, key, value)  # type: ignore[misc]

                cache = self._caches[con] = LruCache(self.size, evict)
            return cache
