"""Runs the reference's scenario tests against the sketch engine: ``raresketch.Engine`` behind the
``ReferenceEngine`` interface (alert dicts with the reference's keys and evidence names)."""
from __future__ import annotations

from collections import Counter

import numpy as np

import raresketch
from raresketch.sketches import hash64, hash_pair

# reference evidence name -> engine evidence name
EVIDENCE = {
    "prevalence": "prevalence", "threshold": "rare_threshold", "active_agents": "active_agents",
    "new_rare": "process_new_rare_resources", "new_rare_agent": "process_new_rare_resources_on_agent", "kind_agents": "process_kind_agents",
    "agent_seen_kind": "agent_used_kind", "agent_first_day": "agent_first_day",
    "agent_activated": "agent_activated", "org_first_day": "org_first_day", "baseline_days": "baseline_days",
    "late": "late", "reference_day": "reference_day", "suspicious_signals": "suspicious_signals",
    "scripting_signals": "script_engine_signals", "dedup_suppressed": "suppressed_since_last",
    "im_agents": "process_im_agents", "im_agent_days": "process_im_agent_days", "binary_agents": "binary_agents",
    "pair_agents": "parent_engine_agents", "cmdline_agents": "command_line_agents", "im_service": "im_service",
    "script_engine": "script_engine",
}
SIGNALS = {"rare_parent_engine": "rare_parent_engine_pair"}


def _key(k):
    if isinstance(k, tuple):
        return hash_pair(hash64(k[0]), hash64(k[1]))
    return np.array([hash64(k)], dtype=np.uint64)


class _Counts:
    def __init__(self, kd):
        self.kd = kd

    def count(self, key) -> int:
        return int(self.kd.count(_key(key))[0])


class _Seen:
    """``d[key][member]`` -> last-seen day, like the reference's windowed dicts (single lookups only)."""

    def __init__(self, kd):
        self.kd = kd

    @property
    def d(self):
        kd = self.kd

        class _Row:
            def __init__(self, key):
                self.key = key

            def __getitem__(self, member):
                day = int(kd.last_seen(_key(self.key), _key(member))[0])
                if not day:
                    raise KeyError(member)
                return day

            def __eq__(self, other):
                return all(self[m] == d for m, d in other.items())

        class _D:
            def __getitem__(self, key):
                return _Row(key)

        return _D()


class EngineAdapter:
    def __init__(self, config=None, catalog=None):
        self.engine = raresketch.Engine(config, catalog)
        s = self.engine.baseline.structures
        self.prevalence = _Counts(s["prevalence"])
        self.new_rare = _Counts(s["new_rare"])
        self.im_agents = _Counts(s["im_agents"])
        self.process_seen = _Seen(s["process_seen"])

    @property
    def suppressed(self) -> Counter:
        c = Counter(self.engine.suppressed)
        if self.engine.stats.get("too_old"):
            c["too_old"] = self.engine.stats["too_old"]
        return c

    @property
    def warnings(self):
        return self.engine.warnings

    @property
    def first_day(self):
        return self.engine.baseline.first_day

    @property
    def rows(self):
        return self.engine._rows

    def active_agents(self, day):
        return self.engine.baseline.agents.active_agents(day)

    def process(self, batch):
        out = []
        for a in self.engine.process(batch):
            ev = {r: a.evidence[e] for r, e in EVIDENCE.items() if e in a.evidence}
            if "scripting_signals" in ev:
                ev["scripting_signals"] = [SIGNALS.get(x, x) for x in ev["scripting_signals"]]
            if "suspicious_signals" in ev:
                ev["suspicious_signals"] = list(ev["suspicious_signals"])
            defs = raresketch.alerts.ALERTS
            out.append({
                "name": a.name, "detector": a.detector, "severity": a.severity, "timestamp": a.timestamp,
                "host.id": a.host_id, "process.key": a.process_key, "destination": a.destination,
                "variations": [defs[(a.detector, v)].name for v in a.variations], "evidence": ev, "row": a.row,
            })
        return out
