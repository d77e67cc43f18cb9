"""The Baseline: the windowed state the detectors ask (docs/DETECTORS.md, "Org and agent state" and
"Windowed counts"), built from the compiled structures, with save / load / merge / inspect.

Every question is answered *before* the event is learned: :meth:`Baseline.observe` runs each structure's
score-then-learn kernel over the batch in event order and returns the prior answers (:class:`Priors`).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from .. import _format
from .._core import AgentTable, AgentTableSparse, KeyedDistinct, KeyedDistinctSparse, hash_pair
from .._state import atomic_write_bytes, read_state_bytes
from ..config import Config

__all__ = ["Baseline", "EventKeys", "Priors", "STRUCTURES", "normalize_command_line", "structure_sizes"]

_US_PER_DAY = 86_400_000_000

#: name -> (pair slots, key slots, what it counts); slots as shares of ``Config.capacity``. Sized for 10k agents
#: and 1M distinct cloud resources a window at the default capacity (docs/perf/memory.md): the pair tables fill to
#: ~90 % before evicting (cuckoo displacement), key tables (keys cannot move: pairs point at them) to ~50 %.
STRUCTURES: dict[str, tuple[float, float, str]] = {
    "prevalence": (1.3, 0.9, "cloud resource -> distinct agents"),
    "process_seen": (1.05, 0.9, "cloud resource -> processes that contacted it"),
    "kind_agents": (0.5, 0.125, "(process, cloud service kind) -> distinct agents"),
    "agent_seen_kind": (0.5, 0.03125, "cloud service kind -> agents that used it"),
    "new_rare": (0.25, 0.03125, "process -> rare cloud resources it met first (habitual explorers)"),
    "new_rare_agent": (1.0, 0.25, "(process, agent) -> rare cloud resources it met first there (per-agent cap)"),
    "im_agents": (0.125, 0.0625, "(process, IM service) -> distinct agents"),
    "im_agent_days": (0.125, 0.0625, "(process, IM service) -> distinct agent-days"),
    "binary_agents": (0.5, 0.125, "binary (sha256, else process key) -> distinct agents"),
    "location_agents": (0.5, 0.125, "(process, where its image lives), and process -> distinct agents"),
    "first_party_agents": (0.03125, 0.0078125, "provider first-party service (address class) -> distinct agents"),
    "pair_agents": (0.125, 0.0625, "(parent, scripting engine) -> distinct agents"),
    "cmdline_agents": (0.125, 0.0625, "normalised scripting command line -> distinct agents"),
}


#: Structures added after the first saved format, in order: a state without them loads with them empty.
_ADDED = ["location_agents", "first_party_agents"]


#: KeyedDistinct allocates its slots in buckets of this many (ext/_keyed.pxi, KD_BUCKET): sizes are rounded up.
_BUCKET = 4


def structure_sizes(capacity: int) -> dict[str, tuple[int, int]]:
    """(pair slots, key slots) of each structure at ``capacity`` (at least 64 of each)."""
    return {name: (max(64, int(capacity * p)), max(64, int(capacity * k))) for name, (p, k, _) in STRUCTURES.items()}


_TEMP_DIR = r"(?:\\temp\\|/tmp/|%temp%|\$env:temp|\\tmp\\)"
_QUOTED_TEMP = re.compile(r'"[^"]*' + _TEMP_DIR + r'[^"]*"|\'[^\']*' + _TEMP_DIR + r"[^']*'")
_GUID = re.compile(r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?")
_HEX = re.compile(r"[0-9a-f]{8,}")
_NUM = re.compile(r"[0-9]+")
_WS = re.compile(r"\s+")


def normalize_command_line(s: str | None) -> str | None:
    """Lower-case; quoted paths under a temp folder -> ``<tmp>``, GUIDs -> ``<guid>``, hex runs of 8+ digits ->
    ``<hex>``, other numbers -> ``<num>``; white space collapsed. Two runs of one script with other ids or temp
    files normalise equal. None stays None."""
    if s is None:
        return None
    s = s.lower()
    s = _QUOTED_TEMP.sub("<tmp>", s)
    s = _GUID.sub("<guid>", s)
    s = _HEX.sub("<hex>", s)
    s = _NUM.sub("<num>", s)
    return _WS.sub(" ", s).strip()


@dataclass
class EventKeys:
    """One batch as 64-bit keys and masks, in event-time order (what the baseline and detectors consume)."""

    days: np.ndarray            # uint16, days since 1970-01-01
    agent: np.ndarray           # uint64
    process: np.ndarray
    location: np.ndarray        # (process, where its image lives: catalog.path_shape)
    first_party: np.ndarray     # provider first-party service of the address (not a tenant resource; 0 = none)
    resource: np.ndarray        # cloud resource R (0 where none)
    kind: np.ndarray            # provider/service K
    im: np.ndarray              # IM service S
    binary: np.ndarray
    parent_engine: np.ndarray   # (parent name, engine)
    cmdline: np.ndarray         # normalised command line
    has_process: np.ndarray     # bool: the process is known (events without one are learned, never scored)
    is_cloud: np.ndarray        # bool
    is_im: np.ndarray
    is_script: np.ndarray       # scripting engine with a known parent
    has_cmdline: np.ndarray     # scripting engine with a known command line

    def __len__(self) -> int:
        return int(self.days.shape[0])

    def take(self, idx: np.ndarray) -> "EventKeys":
        return EventKeys(**{k: v[idx] for k, v in self.__dict__.items()})


@dataclass
class Priors:
    """The baseline's answers for each event of a batch, before the event was learned.

    Arrays are aligned with the batch; entries that do not apply (an IM count for a non-IM event) are 0.
    ``*_seen`` are last-seen days (0 = not seen in the window).
    """

    run_first: np.ndarray
    active_agents: np.ndarray
    threshold: np.ndarray
    org_first_day: np.ndarray
    prevalence: np.ndarray
    process_seen: np.ndarray
    kind_agents: np.ndarray
    agent_seen_kind: np.ndarray
    first_rare: np.ndarray
    new_rare: np.ndarray
    new_rare_agent: np.ndarray
    im_agents: np.ndarray
    im_agent_days: np.ndarray
    binary_agents: np.ndarray
    location_agents: np.ndarray   # agents that ran this process from this location (-1: not tracked yet)
    process_agents: np.ndarray    # agents that ran this process from anywhere (-1: not tracked yet)
    pair_agents: np.ndarray
    cmdline_agents: np.ndarray


class Baseline:
    """The windowed baseline: an exact :class:`AgentTable` plus one :class:`KeyedDistinct` per question.

    Memory is fixed at construction from ``config.capacity`` (see :meth:`memory`): with the defaults
    (capacity 2**21) 243 MiB, sized for 10k agents and 1M distinct cloud resources a window
    (docs/perf/memory.md). ``observe`` costs O(1)
    per event per structure that applies to it. Thread safety: ``observe``, ``merge``, ``to_bytes`` and ``save``
    take the baseline's lock, so a save while another thread observes writes a consistent snapshot (taken
    between two batches); calls are serialised, never parallel.
    """

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        c = self.config
        self._lock = threading.RLock()
        self.agents = AgentTable(c.max_agents, c.training_days, c.seed)
        self.structures: dict[str, KeyedDistinct] = {}
        for name, (pairs, keys) in structure_sizes(c.capacity).items():
            self.structures[name] = KeyedDistinct(pairs, keys, c.training_days, c.exact_limit, c.seed)
        #: Day from which ``location_agents`` counts (0: from the start). A state saved before that structure
        #: existed starts it empty on load: until it spans ``activation_days`` its answer is "unknown" (-1).
        self.location_since = 0

    # ---- the questions -------------------------------------------------------------------------------
    def observe(self, ev: EventKeys) -> Priors:
        """Score-then-learn the batch (already in event order, too-old events removed): every answer is as it
        was before its event, and every event is learned. O(n) per applicable structure."""
        with self._lock:
            return self._observe(ev)

    def _observe(self, ev: EventKeys) -> Priors:
        """One compiled pass per structure over the batch's columns (``KeyedDistinct.observe_into``: the rows a
        question applies to are selected by mask, pair keys hashed in the pass, answers written in place)."""
        c = self.config
        n = len(ev)
        s = self.structures
        org_first = np.empty(n, dtype=np.int64)      # the org's run of presence at each event (AgentTable's rule)
        run_first, active = self.agents.observe(ev.agent, ev.days, org_first)
        thr = c.rare_threshold(active)
        (prevalence, process_seen, kind_agents, agent_seen_kind, new_rare, new_rare_agent, im_agents, im_agent_days,
         binary_agents, location_agents, process_agents, pair_agents,
         cmdline_agents) = np.empty((13, n), dtype=np.int64)   # each row is written whole by its pass
        d, a, p, r = ev.days.astype(np.uint16), ev.agent, ev.process, ev.resource   # days: checked by agents
        cloud = ev.is_cloud
        s["prevalence"].observe_into(r, a, d, cloud, counts=prevalence)
        s["process_seen"].observe_into(r, p, d, cloud, last=process_seen)
        s["kind_agents"].observe_into(p, a, d, cloud, key_with=ev.kind, counts=kind_agents)
        s["agent_seen_kind"].observe_into(ev.kind, a, d, cloud, last=agent_seen_kind)
        first_rare = cloud & (prevalence <= thr) & (process_seen == 0) & ev.has_process
        s["new_rare_agent"].observe_into(p, r, d, first_rare, key_with=a, counts=new_rare_agent)
        s["new_rare"].observe_into(p, r, d, first_rare, learn=new_rare_agent < c.explorer_cap_per_agent,
                                   counts=new_rare)
        s["im_agents"].observe_into(p, a, d, ev.is_im, key_with=ev.im, counts=im_agents)
        s["im_agent_days"].observe_into(p, a, d, ev.is_im, key_with=ev.im, member_with=ev.days.astype(np.uint64),
                                        counts=im_agent_days)
        s["binary_agents"].observe_into(ev.binary, a, d, counts=binary_agents)
        # two key spaces in one table, interleaved per event (so any batching fills it alike)
        s["location_agents"].observe_into(ev.location, a, d, ev.has_process, keys2=p, counts=location_agents,
                                          counts2=process_agents)
        # learned for inspection only: first-party services are never resources
        s["first_party_agents"].observe_into(ev.first_party, a, d, ev.first_party != 0)
        if self.location_since:       # a state saved before locations were counted: unknown until it spans A days
            young = ev.days.astype(np.int64) - self.location_since < c.activation_days
            location_agents[young] = process_agents[young] = -1
        s["pair_agents"].observe_into(ev.parent_engine, a, d, ev.is_script, counts=pair_agents)
        s["cmdline_agents"].observe_into(ev.cmdline, a, d, ev.has_cmdline, counts=cmdline_agents)
        return Priors(run_first.astype(np.int64), active, thr, org_first, prevalence, process_seen, kind_agents,
                      agent_seen_kind, first_rare, new_rare, new_rare_agent, im_agents, im_agent_days, binary_agents,
                      location_agents, process_agents, pair_agents, cmdline_agents)

    @property
    def today(self) -> int:
        """Newest day learned (days since 1970-01-01; 0 = nothing yet)."""
        return int(self.agents.today)

    @property
    def first_day(self) -> int:
        return int(self.agents.first_day)

    # ---- memory / inspection -------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        return self.agents.nbytes + sum(s.nbytes for s in self.structures.values())

    def memory(self) -> dict[str, int]:
        """Bytes by structure (fixed at construction)."""
        out = {"agents": self.agents.nbytes}
        out.update({k: v.nbytes for k, v in self.structures.items()})
        return out

    def health(self) -> dict[str, dict[str, int]]:
        """Per structure: keys, pairs, capacity, evictions, dropped keys — signals that memory is too small."""
        out = {k: v.stats for k, v in self.structures.items()}
        out["agents"] = {"num_keys": len(self.agents), "capacity": int(self.agents.capacity),
                         "dropped_keys": int(self.agents.dropped)}
        return out

    # ---- merge / state -------------------------------------------------------------------------------
    def _check_mergeable(self, config: Config) -> None:
        mine, theirs = self.config.to_dict(), config.to_dict()
        mine.pop("catalog_file"), theirs.pop("catalog_file")
        if mine != theirs:
            diff = sorted(k for k in mine if mine[k] != theirs[k])
            raise ValueError(f"cannot merge baselines with different configs ({', '.join(diff)})")

    def merge(self, other: "Baseline") -> "Baseline":
        """Merge a baseline built over disjoint events into this one (in place). Configs must match."""
        if other is self:
            raise ValueError("cannot merge a baseline with itself")
        self._check_mergeable(other.config)
        with self._lock, other._lock:
            self.agents.merge(other.agents)
            for k, v in self.structures.items():
                v.merge(other.structures[k])
            self.location_since = max(self.location_since, other.location_since)
        return self

    def to_bytes(self) -> bytes:
        """Versioned, checksummed bytes of the whole baseline (a consistent snapshot: taken under the lock)."""
        names = ["agents", *self.structures]
        with self._lock:
            blobs = [self.agents.to_bytes(), *(s.to_bytes() for s in self.structures.values())]
        return _format.pack("Baseline", {"config": self.config.to_dict(), "structures": names,
                                         "location_since": self.location_since},
                            [np.frombuffer(b, dtype=np.uint8) for b in blobs])

    @classmethod
    def from_bytes(cls, data: bytes) -> "Baseline":
        """Rebuild from :meth:`to_bytes`; every part is validated (see each structure's ``from_bytes``)."""
        params, arrays = _format.unpack(data, "Baseline")
        try:
            config = Config.from_dict(dict(params["config"]))
            names = list(params["structures"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"corrupt raresketch Baseline: bad parameters ({e})") from None
        added = [n for n in STRUCTURES if n not in names]     # structures newer than the saved state
        _format.expect(names == ["agents", *[n for n in STRUCTURES if n not in added]] and added == _ADDED[len(_ADDED) - len(added):]
                       and len(arrays) == len(names), "Baseline", f"unexpected structures {names}")
        out = cls.__new__(cls)
        out.config = config
        out._lock = threading.RLock()
        out.agents = AgentTable.from_bytes(arrays[0].tobytes())
        out.structures = {}
        for name, arr in zip(names[1:], arrays[1:]):
            kd = KeyedDistinct.from_bytes(arr.tobytes())
            _format.expect(kd.window_days == config.training_days and kd.exact_limit == config.exact_limit,
                           "Baseline", f"structure {name} does not match the config")
            out.structures[name] = kd
        sizes = structure_sizes(config.capacity)
        for name in added:
            out.structures[name] = KeyedDistinct(*sizes[name], config.training_days, config.exact_limit, config.seed)
        out.structures = {n: out.structures[n] for n in STRUCTURES}
        since = params.get("location_since", int(out.agents.today) if "location_agents" in added else 0)
        _format.expect(isinstance(since, int) and 0 <= since <= 65535, "Baseline", "bad location_since")
        out.location_since = since
        return out

    # ---- sparse form: only the occupied entries (saved states, Spark partials and broadcasts) -------------
    def to_sparse_bytes(self) -> bytes:
        """The occupied entries of every structure with their slot positions (family ``BaselineSparse``:
        versioned, checksummed, validated on load): about 20 bytes per live pair and 24 per live key or agent,
        instead of the fixed :meth:`nbytes`. One O(capacity) scan of the tables, under the lock."""
        with self._lock:
            blobs = [AgentTableSparse.of(self.agents).to_bytes(),
                     *(KeyedDistinctSparse.of(s).to_bytes() for s in self.structures.values())]
        return _format.pack("BaselineSparse", {"config": self.config.to_dict(), "structures": ["agents", *self.structures],
                                               "location_since": self.location_since},
                            [np.frombuffer(b, dtype=np.uint8) for b in blobs])

    @staticmethod
    def _read_sparse(data: bytes) -> tuple[Config, AgentTableSparse, dict[str, KeyedDistinctSparse], int]:
        params, arrays = _format.unpack(data, "BaselineSparse")
        try:
            config = Config.from_dict(dict(params["config"]))
            names = list(params["structures"])
            since = params["location_since"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"corrupt raresketch BaselineSparse: bad parameters ({e})") from None
        _format.expect(names == ["agents", *STRUCTURES] and len(arrays) == len(names), "BaselineSparse",
                       f"unexpected structures {names}")
        _format.expect(isinstance(since, int) and 0 <= since <= 65535, "BaselineSparse", "bad location_since")
        # The sizes are not backed by bytes in a sparse form: they must be the config's before anything is built.
        sizes = structure_sizes(config.capacity)
        want = {"agents": ("AgentTableSparse", {"capacity": config.max_agents})}
        want.update({n: ("KeyedDistinctSparse", {"capacity": -(-p // _BUCKET) * _BUCKET,
                                                 "key_capacity": -(-k // _BUCKET) * _BUCKET})
                     for n, (p, k) in sizes.items()})
        for name, arr in zip(names, arrays):
            fam, expect = want[name]
            got = _format.unpack(arr, fam)[0]
            _format.expect(all(got.get(k) == v for k, v in expect.items()), "BaselineSparse",
                           f"structure {name} is not sized as its config says")
        agents = AgentTableSparse.from_bytes(arrays[0].tobytes())
        structures = {}
        for name, arr in zip(names[1:], arrays[1:]):
            sp = KeyedDistinctSparse.from_bytes(arr.tobytes())
            p = sp.params
            _format.expect(int(p["window_days"]) == config.training_days and int(p["exact_limit"]) == config.exact_limit,
                           "BaselineSparse", f"structure {name} does not match the config")
            structures[name] = sp
        return config, agents, structures, since

    @classmethod
    def from_sparse_bytes(cls, data: bytes) -> "Baseline":
        """Rebuild from :meth:`to_sparse_bytes` (every part validated): it answers exactly as the baseline that
        wrote it. O(entries) plus the lazily zeroed tables."""
        config, agents, structures, since = cls._read_sparse(data)
        out = cls.__new__(cls)
        out.config, out._lock, out.location_since = config, threading.RLock(), since
        try:
            out.agents = agents.to_dense()
            out.structures = {n: sp.to_dense() for n, sp in structures.items()}
        except MemoryError:
            raise ValueError(f"this baseline's tables (capacity {config.capacity:,}, max_agents "
                             f"{config.max_agents:,}) do not fit in the memory this process may use") from None
        return out

    def merge_sparse(self, data: bytes) -> "Baseline":
        """``self.merge(Baseline.from_sparse_bytes(data))``, byte for byte, without building the dense copy: the
        blob is validated whole first, then its entries are inserted. O(entries of the blob)."""
        config, agents, structures, since = self._read_sparse(data)
        self._check_mergeable(config)
        at = agents.to_dense()
        with self._lock:
            self.agents.merge(at)
            for name, sp in structures.items():
                sp.merge_into(self.structures[name])
            self.location_since = max(self.location_since, since)
        return self

    def __getstate__(self) -> dict[str, Any]:
        """Pickle copies the attributes (each structure through its own ``to_bytes``), not the lock."""
        with self._lock:
            state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def save(self, path) -> None:
        """Write atomically (temporary file, fsync, rename)."""
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path) -> "Baseline":
        return cls.from_bytes(read_state_bytes(path))

    def info(self, top: int = 10) -> dict[str, Any]:
        """What ``raresketch inspect`` shows: window, activation, memory, health, top cloud resources."""
        keys, counts = self.structures["prevalence"].items()
        order = np.argsort(-counts.astype(np.int64), kind="stable")[:top]
        return {
            "first_day": self.first_day, "today": self.today,
            "window_days": self.config.training_days, "activation_days": self.config.activation_days,
            "activated": bool(self.first_day and self.today - self.first_day >= self.config.activation_days),
            "agents_tracked": len(self.agents), "active_agents": self.agents.active_agents(self.today + 1)
            if self.today else 0,
            "memory_bytes": self.memory(), "total_bytes": self.nbytes, "health": self.health(),
            "exact_limit": self.config.exact_limit,
            "top_resource_keys": [(f"{int(k):016x}", int(c)) for k, c in zip(keys[order], counts[order])],
            "first_party_keys": self._top("first_party_agents", top),
        }

    def _top(self, name: str, top: int) -> list[tuple[str, int]]:
        keys, counts = self.structures[name].items()
        order = np.argsort(-counts.astype(np.int64), kind="stable")[:top]
        return [(f"{int(k):016x}", int(c)) for k, c in zip(keys[order], counts[order])]

    def __repr__(self) -> str:
        return (f"Baseline(days {self.first_day}..{self.today}, agents={len(self.agents)}, "
                f"nbytes={self.nbytes / 2**20:.1f} MiB)")

