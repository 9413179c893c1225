"""Per-session tuned generators: the copies of G that pivotal tuning fits to a user's garment.

A projection with stage "tune" makes a copy of G whose last block is its own (gan.latent.inversion); the
Generate tab renders that user's garment with it while the sliders move z. The copies live here, not in
the page: a bounded LRU keyed by a random id, which only the session's own gr.State holds (gr.State stays
on the server), and which records the session that made it, so that closing the page drops its copies.

    key = TUNED.put(session_hash, generator)      # in the Project handler
    G = TUNED.get(key)                            # in the Generate handlers; None once evicted or dropped
    TUNED.memo(key, "name", compute)              # compute(G) once, kept with the copy (its fitted sliders)
    TUNED.drop_session(session_hash)              # demo.unload

Each copy shares every frozen weight with the shipped G and owns only its tuned block (about 130 KB for the
shipped model), so the default bound of 256 copies holds about 35 MB.  Shipped weights are never written.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn

DEFAULT_CAPACITY = int(os.environ.get("GAN_APP_TUNED_CAPACITY", "256"))
PER_SESSION = 4  # a session keeps its latest few projections (say endpoints A and B and the one being edited)
TTL_S = float(os.environ.get("GAN_APP_TUNED_TTL_S", "3600"))
SHARED = ""  # the session of entries every page may read (the tab's start-up example)


@dataclass
class _Entry:
    session: str
    generator: nn.Module
    created: float
    memo: dict[str, Any] = field(default_factory=dict)  # what was computed from this copy (TunedStore.memo)


class TunedStore:
    """A thread-safe, bounded LRU of tuned generators keyed by random ids, each tied to a session."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, per_session: int = PER_SESSION,
                 ttl_s: float = TTL_S) -> None:
        if capacity < 1 or per_session < 1:
            raise ValueError(f"capacity={capacity} and per_session={per_session} must be >= 1")
        self.capacity, self.per_session, self.ttl_s = capacity, per_session, ttl_s
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, session: str | None, generator: nn.Module) -> str:
        """Keep generator for session (None: the shared one, never evicted); return its new random key."""
        key = secrets.token_hex(16)
        owner = SHARED if session is None else str(session)
        with self._lock:
            mine = [k for k, e in self._items.items() if e.session == owner and owner != SHARED]
            for k in mine[:max(0, len(mine) - self.per_session + 1)]:  # the session's oldest go first
                del self._items[k]
            self._items[key] = _Entry(owner, generator, time.monotonic())
            self._evict()
        return key

    def get(self, key: str | None) -> nn.Module | None:
        """The generator under key, or None (no key, evicted, expired or dropped with its session)."""
        if not key:
            return None
        with self._lock:
            e = self._items.get(str(key))
            if e is None:
                return None
            if e.session != SHARED and time.monotonic() - e.created > self.ttl_s:
                del self._items[str(key)]
                return None
            self._items.move_to_end(str(key))
            return e.generator

    def memo(self, key: str | None, name: str, compute: Callable[[nn.Module], Any]) -> Any:
        """compute(generator under key), computed once and kept with the entry under name (it goes when the
        entry goes); None when there is no such entry."""
        G = self.get(key)
        if G is None:
            return None
        with self._lock:
            e = self._items.get(str(key))
            if e is not None and name in e.memo:
                return e.memo[name]
        value = compute(G)  # outside the lock: other sessions' renders go on meanwhile
        with self._lock:
            if e is not None:
                e.memo.setdefault(name, value)
        return value

    def drop_session(self, session: str | None) -> int:
        """Forget every generator of a session (its page closed); return how many."""
        if not session:
            return 0
        with self._lock:
            keys = [k for k, e in self._items.items() if e.session == str(session)]
            for k in keys:
                del self._items[k]
        return len(keys)

    def _evict(self) -> None:
        """Drop the least recently used per-session entries beyond the capacity (shared ones stay)."""
        over = len(self._items) - self.capacity
        for k in [k for k, e in self._items.items() if e.session != SHARED][:max(0, over)]:
            del self._items[k]


TUNED = TunedStore()  # the app's one store
