"""Values derived from a stored document, kept per process while the document is unchanged (issue 14).

A heavy read (an Open Finance transaction page renders every transaction of a 12-month ledger) decodes and
renders the same stored document on every request. ``Derived`` keeps what was built from a document's stored
JSON text and hands it out again while the text read from the store is the same, compared in full: whichever
worker or instance wrote the document, a changed document is always rebuilt, so there is nothing to invalidate.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable


class Derived:
    """A small LRU of ``build(text)`` results keyed by ``key`` and valid for exactly ``text``.

    What it returns is shared by later requests of this process: callers must treat it as read-only."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[Hashable, tuple[str, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, text: str, build: Callable[[str], object]):
        """``build(text)``, or the value built before for ``key`` from the very same ``text``."""
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] == text:
                self._items.move_to_end(key)
                self.hits += 1
                return found[1]
        value = build(text)
        with self._lock:
            self.misses += 1
            self._items[key] = (text, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
