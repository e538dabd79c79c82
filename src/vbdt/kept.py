"""Bounded caches: one decision for every value vbdt keeps from one message to the next.

A receiver keeps what it can reuse (decoded certificates, loaded keys, chain verdicts, trust
stores); a host of thousands of agencies needs thousands kept, and a hostile peer must not be able
to grow any of them without limit. :class:`Kept` is a least-recently-used map behind a lock,
bounded by its number of entries and, when given a ``size`` function, by the total size of what
it holds. :class:`KeptFor` keeps a value per *object* (a key object, a certificate object): it
holds the object with the value, so that the object's ``id`` is not reused while it is kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Kept", "KeptFor"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")


class Kept(Generic[K, V]):
    """At most ``max_entries`` values (``0``: none kept) and, with ``size``, at most ``max_bytes``
    of them in all (``size(key, value)`` each); the least recently used go first. Thread-safe."""

    def __init__(self, max_entries: int, *, max_bytes: int | None = None,
                 size: Callable[[K, V], int] | None = None) -> None:
        if (max_bytes is None) != (size is None):
            raise ValueError("max_bytes and size go together")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K, default: D | None = None) -> V | D | None:
        """The value kept for ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._values:
                return default
            self._values.move_to_end(key)
            return self._values[key]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key`` (replacing what was kept), then drop the least recently used
        while over a bound (the new value too, if it alone is over ``max_bytes``)."""
        with self._lock:
            if key in self._values:
                self._forget(key)
            self._values[key] = value
            if self._size is not None:
                self._bytes += self._size(key, value)
            while self._values and (len(self._values) > self.max_entries
                                    or (self.max_bytes is not None and self._bytes > self.max_bytes)):
                self._forget(next(iter(self._values)))

    def _forget(self, key: K) -> None:
        value = self._values.pop(key)
        if self._size is not None:
            self._bytes -= self._size(key, value)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._values.clear()
            self._bytes = 0

    @property
    def held_bytes(self) -> int:
        """The total ``size`` of what is kept (0 without a ``size``)."""
        return self._bytes

    def keys(self) -> list[K]:
        """The keys kept, least recently used first (a copy)."""
        with self._lock:
            return list(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values


class KeptFor(Generic[V]):
    """A :class:`Kept` of values per object, by identity (objects that need not be hashable or
    whose equality is costly: a private key, a certificate). At most ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        self._kept: Kept[int, tuple[object, V]] = Kept(max_entries)

    def get(self, owner: object) -> V | None:
        """The value kept for ``owner`` (this very object), or None."""
        found = self._kept.get(id(owner))
        return found[1] if found is not None and found[0] is owner else None

    def put(self, owner: object, value: V) -> None:
        """Keep ``value`` for ``owner``, holding ``owner`` so that its ``id`` is not reused meanwhile."""
        self._kept.put(id(owner), (owner, value))

    def __len__(self) -> int:
        return len(self._kept)
