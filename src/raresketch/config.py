"""Engine configuration: every threshold of docs/DETECTORS.md, with its default, in one table.

Load with :meth:`Config.from_toml` (a ``[raresketch]`` table, or top-level keys) or build directly;
unknown keys and out-of-range values raise ``ValueError`` naming the key.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Config"]

#: Largest ``capacity`` accepted: 2**28 units, about 27 GiB of baseline (``capacity`` x ~108 bytes).
MAX_CAPACITY = 1 << 28


@dataclass(frozen=True)
class Config:
    """Thresholds and sizes of the engine (see docs/DETECTORS.md for the exact semantics)."""

    #: Training window: the last N days of event time the baseline remembers.
    training_days: int = 30
    #: No alert until the baseline spans this many days (org-wide), nor the agent-level variation until the
    #: agent itself has been observed this long.
    activation_days: int = 14
    #: The same (alert name, agent, process, destination) fires at most once per this many hours of event time.
    dedup_hours: float = 24.0
    #: A destination is rare when seen by at most max(rare_min_agents, floor(rare_fraction * active agents)).
    rare_min_agents: int = 2
    rare_fraction: float = 0.01
    #: A process that met this many rare cloud resources for the first time in the window is a habitual
    #: explorer: its rare-cloud alerts are suppressed and counted.
    habitual_explorer_n: int = 20
    #: At most this many of a process's first rare contacts count per agent towards the organisation's count
    #: (None = three quarters of habitual_explorer_n, 15), so one host alone cannot make a process a habitual
    #: explorer for the whole organisation.
    habitual_explorer_per_agent: int | None = None
    #: Uncommon IM: at most this many agents saw the process talk to the service (None = the rare threshold) ...
    im_max_agents: int | None = None
    #: ... and at most this many agent-days of such traffic in the window.
    im_max_agent_days: int = 10
    #: Volume guard: alerts per detector per day of event time before the detector pauses for that day.
    max_alerts_per_day: int = 5000
    #: Volume guard per agent: one agent's alerts per detector per day before that agent pauses for the day, so
    #: one flooding host cannot spend the organisation's budget (None disables).
    max_alerts_per_agent_day: int | None = 100
    #: Allow-listed events are still learned (True) or skipped entirely (False).
    allowlist_learn: bool = True
    #: Agent groups whose events never alert: glob patterns on ``host.id`` (case-insensitive), e.g.
    #: ``["build-*", "ci-runner-*"]``; ``name:<glob>`` matches ``host.name`` instead (a local administrator can
    #: rename a host: an explicit choice). Destination and process allow-lists live in the catalogue TOML.
    allow_agents: tuple[str, ...] = ()
    #: Members per key counted exactly by the windowed structures (beyond: sampled estimate, see KeyedDistinct).
    exact_limit: int = 256
    #: Memory unit of the baseline: each structure's pair and key slots are shares of it (baseline.STRUCTURES,
    #: ``structure_sizes``); about 122 bytes per unit in all. The default (2**21, 243 MiB) holds 10k agents and
    #: 1M distinct cloud resources a window. Memory is fixed by it.
    capacity: int = 1 << 21
    #: Agents tracked exactly (presence runs, active-agent counts).
    max_agents: int = 1 << 18
    #: Events dated more than this many days after the wall clock's today are skipped and counted
    #: (``skipped_future``): one event from a skewed clock would otherwise move the window forward and make every
    #: real event "too old". None disables the guard (replaying synthetic data dated in the future).
    max_future_days: int | None = 1
    #: Seed of every structure's hashing; baselines merge only with equal seeds.
    seed: int = 0
    #: Path of a catalogue extension / allow-list TOML file (see raresketch.catalog.Catalog).
    catalog_file: str | None = None
    #: Global prevalence (docs/SHARING.md): a consortium file (``raresketch share merge``); None = off.
    global_prevalence: str | None = None
    #: ... the consortium key file it was made with, and this organisation's own export (its vote is then
    #: taken out: an organisation never counts for itself).
    global_key_file: str | None = None
    global_own_export: str | None = None
    #: A rare-cloud alert is suppressed (``suppressed["global_common"]``) when the 95 % lower bound of the
    #: other organisations holding its resource as common, and their raw votes, reach this many ...
    global_min_orgs: int = 3
    #: ... and the fleet has fewer active agents than this (its own statistics mean little: with the default
    #: thresholds "rare" is a fixed 2 agents below rare_min_agents / rare_fraction = 200).
    global_small_fleet: int = 200

    def __post_init__(self) -> None:
        if isinstance(self.allow_agents, (list, str)):
            object.__setattr__(self, "allow_agents",
                               (self.allow_agents,) if isinstance(self.allow_agents, str) else tuple(self.allow_agents))
        checks = {
            "allow_agents": all(isinstance(p, str) and p for p in self.allow_agents),
            "training_days": 1 <= self.training_days <= 3650,
            "activation_days": 0 <= self.activation_days <= 3650,
            "dedup_hours": 0 <= self.dedup_hours <= 24 * 365,
            "rare_min_agents": self.rare_min_agents >= 0,
            "rare_fraction": 0 <= self.rare_fraction <= 1,
            "habitual_explorer_n": self.habitual_explorer_n >= 1,
            "im_max_agents": self.im_max_agents is None or self.im_max_agents >= 0,
            "im_max_agent_days": self.im_max_agent_days >= 0,
            "max_alerts_per_day": self.max_alerts_per_day >= 0,
            "max_alerts_per_agent_day": self.max_alerts_per_agent_day is None or self.max_alerts_per_agent_day >= 0,
            "habitual_explorer_per_agent": self.habitual_explorer_per_agent is None
            or self.habitual_explorer_per_agent >= 1,
            "max_future_days": self.max_future_days is None or self.max_future_days >= 0,
            "exact_limit": 1 <= self.exact_limit <= 1 << 24,
            "capacity": 64 <= self.capacity <= MAX_CAPACITY,
            "max_agents": 8 <= self.max_agents <= 1 << 28,
            "seed": 0 <= self.seed < 1 << 64,
            "global_min_orgs": self.global_min_orgs >= 1,
            "global_small_fleet": self.global_small_fleet >= 0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"config: {key} = {getattr(self, key)!r} is out of range")

    def rare_threshold(self, active_agents):
        """``max(rare_min_agents, floor(rare_fraction * active_agents))`` (works on numpy arrays)."""
        import numpy as np

        return np.maximum(self.rare_min_agents, np.floor(self.rare_fraction * np.asarray(active_agents))).astype(
            np.int64)

    @property
    def explorer_cap_per_agent(self) -> int:
        """First rare contacts of a process counted per agent (``habitual_explorer_per_agent``, else 3N/4)."""
        if self.habitual_explorer_per_agent is not None:
            return self.habitual_explorer_per_agent
        return max(1, 3 * self.habitual_explorer_n // 4)

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["allow_agents"] = list(self.allow_agents)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        """Build from a mapping of keys (TOML, a saved state); unknown keys, wrong types (a string for a number,
        a number or string for a boolean, a fraction for a count) and out-of-range values raise ``ValueError``
        naming the key."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"config: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        for k, v in data.items():
            _check_type(k, v, types[k])
        try:
            return cls(**data)
        except TypeError as e:
            raise ValueError(f"config: {e}") from None

    @staticmethod
    def read_toml(path: str | Path) -> dict[str, Any]:
        """The configuration keys of a TOML file (a ``[raresketch]`` table, or top-level keys), type-checked,
        with ``catalog_file`` set to the file itself (its catalogue tables are read by the catalogue). A table
        other than ``[raresketch]`` and the catalogue's (``TABLES``) is refused: a misspelt ``[alow]`` would
        otherwise be ignored."""
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config: {path}: {e}") from None
        except OSError as e:
            raise ValueError(f"config: {path}: {e.strerror or e}") from None
        bad = sorted(k for k, v in data.items() if k not in TABLES and (
            isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict) for x in v))))
        if bad:
            raise ValueError(f"config: {path}: unknown table(s) {', '.join(f'[{b}]' for b in bad)}; known: "
                             f"{', '.join(f'[{t}]' for t in TABLES)}")
        if "raresketch" in data:
            table = dict(data["raresketch"])
            stray = sorted(k for k, v in data.items() if k not in TABLES and k != "source")
            if stray:
                raise ValueError(f"config: {path}: key(s) {', '.join(stray)} outside any table (put them under "
                                 "[raresketch])")
        else:
            table = {k: v for k, v in data.items() if k not in TABLES and k != "source"}
        Config.from_dict(table)
        if not table.get("catalog_file"):
            table["catalog_file"] = str(path)
        return table

    @classmethod
    def from_toml(cls, path: str | Path) -> "Config":
        """Read ``[raresketch]`` (or top-level) keys from a TOML file (:meth:`read_toml`)."""
        return cls.from_dict(cls.read_toml(path))


#: The tables a configuration file may hold: ``[raresketch]`` and the catalogue's (raresketch.catalog.Catalog).
TABLES = ("raresketch", "allow", "cloud", "im", "ip_ranges", "process")


def _check_type(key: str, v: Any, typ: str) -> None:
    ok: bool
    if typ == "bool":
        ok = isinstance(v, bool)
        want = "true or false"
    elif typ.startswith("int"):
        ok = (isinstance(v, int) and not isinstance(v, bool)) or (v is None and "None" in typ)
        want = "a whole number" + (" (or absent)" if "None" in typ else "")
    elif typ.startswith("float"):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        want = "a number"
    elif typ.startswith("str"):
        ok = isinstance(v, str) or (v is None and "None" in typ)
        want = "a string"
    else:   # tuple[str, ...]
        ok = isinstance(v, (list, tuple, str)) and all(isinstance(x, str) for x in ([v] if isinstance(v, str) else v))
        want = "a list of strings"
    if not ok:
        raise ValueError(f"config: {key} must be {want}, got {v!r}")
