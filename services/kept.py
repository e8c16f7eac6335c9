"""What the busiest pages keep in each process: a value per key under the stamp it was read at.

A stamp is whatever a page reads cheaply that moves whenever the value could (a projection version, a row
count, the newest id). An entry is served only under its own stamp, lapses after `seconds` (for what the
stamp cannot see), and the least recently used go first past `size`. Shared by a process's threads: the
values kept are read, never changed. One cache per database engine (`per_engine`), so a test's fresh
database starts with an empty one.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
C = TypeVar("C")


class Kept(Generic[K, V]):
    def __init__(self, size: int, seconds: float) -> None:
        self.size, self.seconds = size, seconds
        self._entries: OrderedDict[K, tuple[Any, float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._reading: dict[K, threading.Lock] = {}

    def get(self, key: K, stamp: Any) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp or time.monotonic() - entry[1] > self.seconds:
                return None
            self._entries.move_to_end(key)
            return entry[2]

    def put(self, key: K, stamp: Any, value: V) -> None:
        with self._lock:
            self._entries[key] = (stamp, time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get_or_read(self, key: K, stamp: Any, read: Callable[[], V]) -> V:
        """The kept value, else `read()` kept. A missing value is read by one thread while the others
        asking for it wait for that read: many pages polling must not read the same value at once when it
        changes or lapses."""
        value = self.get(key, stamp)
        if value is not None:
            return value
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            value = self.get(key, stamp)  # read by the thread this one waited for
            if value is None:
                value = read()
                self.put(key, stamp, value)
        with self._lock:
            self._reading.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_PER_ENGINE_LOCK = threading.Lock()


def per_engine(caches: weakref.WeakKeyDictionary[Any, C], engine: Any, make: Callable[[], C]) -> C:
    """The cache of the database `engine` is (`db.get_bind()`), made at its first use."""
    with _PER_ENGINE_LOCK:
        found = caches.get(engine)
        if found is None:
            found = caches[engine] = make()
        return found
