"""The sketch peers of ``_peers``: the reference's per-event loop with the distinct-count tables on Apache
DataSketches or ``datasketch`` HLLs (see ``_peers``' docstring)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from support.reference import ReferenceEngine, _Windowed  # noqa: E402

#: the reference's windowed tables that are distinct counts (``.count(key)``) ...
COUNT_TABLES = ("prevalence", "kind_agents", "new_rare", "new_rare_agent", "im_agents", "im_agent_days",
                "binary_agents", "pair_agents", "cmdline_agents")
#: ... and those only asked for membership (``.seen(key, member)``)
MEMBERSHIP_TABLES = ("process_seen", "agent_seen_kind")

def _item(member) -> str:
    """A member as one string item (``im_agent_days`` members are (agent, day) tuples)."""
    if type(member) is tuple:
        return "\x1f".join(map(str, member))
    return member


# ============================================================================ per-item sketch peers

class _SketchWindowed:
    """``key -> {day: sketch}`` plus ``key -> window sketch`` (union of the key's live days).

    The window sketch is built lazily on a count and dropped when one of the key's days leaves the window
    (``forget``); while it exists, ``learn`` updates it too (an HLL update is idempotent), so the common
    count is a single estimate. Subclasses say how to make, update, union and estimate a sketch.
    """

    def __init__(self) -> None:
        self.days: dict = {}
        self.win: dict = {}

    # -- per library
    def _new(self):
        raise NotImplementedError

    def _union(self, sketches):
        raise NotImplementedError

    def _estimate(self, sketch) -> float:
        raise NotImplementedError

    # -- the reference's _Windowed interface (count / learn / forget)
    def count(self, key) -> int:
        w = self.win.get(key)
        if w is None:
            days = self.days.get(key)
            if not days:
                return 0
            w = self.win[key] = self._union(list(days.values()))
        return round(float(self._estimate(w)))

    def seen(self, key, member) -> bool:  # pragma: no cover - membership tables stay exact dicts
        raise TypeError("a distinct-count sketch cannot answer membership")

    def forget(self, cutoff: int) -> None:
        for key in list(self.days):
            days = self.days[key]
            old = [d for d in days if d <= cutoff]
            if old:
                for d in old:
                    del days[d]
                self.win.pop(key, None)
                if not days:
                    del self.days[key]

    def sketches(self):
        for days in self.days.values():
            yield from days.values()
        yield from self.win.values()


class _DataSketchesWindowed(_SketchWindowed):
    def __init__(self, lg_k: int = 12) -> None:
        super().__init__()
        import datasketches

        self._ds = datasketches
        self.lg_k = lg_k
        self.tgt = datasketches.HLL_8

    def _new(self):
        return self._ds.hll_sketch(self.lg_k, self.tgt)

    def _union(self, sketches):
        u = self._ds.hll_union(self.lg_k)
        for s in sketches:
            u.update(s)
        return u.get_result(self.tgt)

    def _estimate(self, sketch) -> float:
        return sketch.get_estimate()

    def learn(self, key, member, day: int) -> None:
        item = _item(member)
        days = self.days.get(key)
        if days is None:
            days = self.days[key] = {}
        s = days.get(day)
        if s is None:
            s = days[day] = self._ds.hll_sketch(self.lg_k, self.tgt)
        s.update(item)
        w = self.win.get(key)
        if w is not None:
            w.update(item)

    @staticmethod
    def sketch_bytes(s) -> int:
        return s.get_updatable_serialization_bytes()


class _DatasketchWindowed(_SketchWindowed):
    def __init__(self, p: int = 12) -> None:
        super().__init__()
        import datasketch

        self._cls = datasketch.HyperLogLogPlusPlus
        self.p = p

    def _new(self):
        return self._cls(p=self.p)

    def _union(self, sketches):
        w = sketches[0].copy()
        for s in sketches[1:]:
            w.merge(s)
        return w

    def _estimate(self, sketch) -> float:
        return sketch.count()

    def learn(self, key, member, day: int) -> None:
        item = _item(member).encode()
        days = self.days.get(key)
        if days is None:
            days = self.days[key] = {}
        s = days.get(day)
        if s is None:
            s = days[day] = self._cls(p=self.p)
        s.update(item)
        w = self.win.get(key)
        if w is not None:
            w.update(item)

    @staticmethod
    def sketch_bytes(s) -> int:
        return s.reg.nbytes + 100


class _SketchPeer(ReferenceEngine):
    """The reference engine with its nine distinct-count tables replaced by ``store()`` objects."""

    def store(self):
        raise NotImplementedError

    def __init__(self, config=None, catalog=None) -> None:
        super().__init__(config, catalog)
        for name in COUNT_TABLES:
            setattr(self, name, self.store())
        self._tables = [getattr(self, name) for name in COUNT_TABLES + MEMBERSHIP_TABLES]


class DataSketchesPeer(_SketchPeer):
    """Apache DataSketches (``datasketches``): hll_sketch per (key, day), hll_union over the window."""

    lg_k = 12

    def store(self):
        return _DataSketchesWindowed(self.lg_k)


class DatasketchPeer(_SketchPeer):
    """``datasketch``: HyperLogLogPlusPlus(p) per (key, day), copy + merge over the window."""

    p = 12

    def store(self):
        return _DatasketchWindowed(self.p)
