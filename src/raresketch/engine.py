"""The Engine: score-then-learn over batches of endpoint network events, with both detectors, dedup, the volume
guard and allow-lists (docs/DETECTORS.md). One code path serves a batch of a million events and a single event.
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import logging
import threading
from collections import Counter
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from . import _format
from ._core import hash64, hash_pair, mix64
from ._state import atomic_write_bytes, read_state_bytes
from .alerts import Alert
from ._keys import KeyResolver, _one_chunk
from .baseline import Baseline
from .catalog import Catalog, default_catalog
from .config import Config
from .detectors import RARE_CLOUD_ORDER, UNCOMMON_IM_ORDER, match
from .events import conform

__all__ = ["Engine"]

log = logging.getLogger("raresketch")

_US_PER_MIN = 60_000_000
_US_PER_DAY = 86_400_000_000


def _false(col: pa.Array, idx: np.ndarray) -> np.ndarray:
    """True where the boolean column is false, at rows ``idx`` (null -> False: unknown is never a signal)."""
    if col.null_count == len(col):
        return np.zeros(idx.size, bool)
    return ~col.fill_null(True).to_numpy(zero_copy_only=False)[idx]


class _DedupFilter:
    """A timing Bloom filter: each cell keeps the latest alert time (minutes) of the keys hashed to it.

    A key alerted at ``t0`` is a duplicate at ``t`` iff ``t - t0 < window``: the minimum of its ``k`` cells is at
    least ``t0``, so it is never missed (no false negatives); a key never alerted is wrongly suppressed only if all
    its cells were raised by other keys within the window (rate about ``(1 - exp(-k a / m))**k`` for ``a`` alerts
    per window, ~1e-9 at a = 5000/day). Old entries age out by themselves: nothing to rotate or delete.
    """

    K = 4

    def __init__(self, cells: int = 1 << 20, cells_array: np.ndarray | None = None):
        self.cells = np.zeros(cells, dtype=np.uint32) if cells_array is None else cells_array

    def indices(self, keys: np.ndarray) -> np.ndarray:
        m = np.uint64(self.cells.shape[0])
        return np.stack([mix64(keys, 0xD1B54A32D192ED03 + j) % m for j in range(self.K)], axis=1).astype(np.int64)

    def check_and_set(self, idx: np.ndarray, t_min: int, window_min: int) -> bool:
        """True if a duplicate (within the window); otherwise records the alert and returns False."""
        cells = self.cells[idx]
        if window_min > 0 and int(cells.min()) > t_min - window_min:
            return True
        self.cells[idx] = np.maximum(cells, t_min)
        return False


class Engine:
    """Both detectors over a windowed baseline, scoring each event before learning it.

    Parameters
    ----------
    config : Config, optional
        Thresholds and sizes (docs/DETECTORS.md); defaults otherwise.
    catalog : Catalog, optional
        Destination and process catalogue; the default one (with ``config.catalog_file`` if set).

    ``process(batch)`` takes an Arrow table (or record batch) with the ECS columns of
    :data:`raresketch.EVENT_SCHEMA` (missing optional columns are null), sorts it by ``@timestamp``, scores every
    event against the baseline as it was before that event, learns it, and returns the alerts. Thread safety:
    an Engine serialises its own calls with a lock (sharing one across threads is safe but not parallel).
    """

    def __init__(self, config: Config | None = None, catalog: Catalog | None = None,
                 baseline: Baseline | None = None):
        self.config = config or (baseline.config if baseline is not None else Config())
        if catalog is None:
            catalog = Catalog(self.config.catalog_file) if self.config.catalog_file else default_catalog()
        self.catalog = catalog
        self.baseline = baseline or Baseline(self.config)
        self.stats: Counter[str] = Counter()
        self.suppressed: Counter[str] = Counter()
        self.warnings: list[str] = []
        self._dedup = _DedupFilter()
        self._dup_counts: dict[int, list[int]] = {}     # dedup key -> [suppressed since last, last alert min]
        self._volume: dict[tuple[str, int], int] = {}
        self._resolver = KeyResolver(self.catalog)
        self._names = self._resolver.names               # cloud-resource and process key -> text (bounded)
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._rows = 0                                  # events conformed so far (alert.row counts from here)

    # ---- processing ---------------------------------------------------------------------------------
    def process(self, batch: pa.Table | pa.RecordBatch) -> list[Alert]:
        """Score-then-learn one batch of events in event-time order; return its alerts."""
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        if not isinstance(batch, pa.Table):
            raise TypeError(f"Engine.process takes a pyarrow Table or RecordBatch, not {type(batch).__name__}")
        with self._lock:
            return self._process(batch)

    def process_all(self, batches: Iterable[pa.Table]) -> list[Alert]:
        """Process many batches in order; returns all alerts."""
        out: list[Alert] = []
        for b in batches:
            out.extend(self.process(b))
        return out

    def _warn(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warnings.append(msg)
            log.warning(msg)

    def _process(self, batch: pa.Table) -> list[Alert]:
        n_in = batch.num_rows
        self.stats["events"] += n_in
        events = conform(batch)
        if events.num_rows < n_in:
            self.stats["skipped_invalid"] += n_in - events.num_rows
        if events.num_rows == 0:
            return []
        ts = _one_chunk(events.column("@timestamp")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        if ts.size > 1 and not (ts[1:] >= ts[:-1]).all():           # readers already yield sorted batches
            order = np.argsort(ts, kind="stable")
            events, ts = events.take(pa.array(order)), ts[order]
        days = ts // _US_PER_DAY
        ok = (days >= 1) & (days <= 65535)
        if not ok.all():
            self.stats["skipped_timestamp_out_of_range"] += int((~ok).sum())
        if self.config.max_future_days is not None:
            future = ok & (days > _dt.datetime.now(_dt.timezone.utc).timestamp() // 86400 + self.config.max_future_days)
            if future.any():
                self.stats["skipped_future"] += int(future.sum())
                ok &= ~future
        # Too old: W or more days before the newest day seen so far (including earlier events of this batch).
        newest = np.maximum.accumulate(np.maximum(np.where(ok, days, 0), self.baseline.today))
        newest = np.concatenate([[self.baseline.today], newest[:-1]]) if len(newest) else newest
        too_old = ok & (days <= newest - self.config.training_days)
        if too_old.any():
            self.stats["too_old"] += int(too_old.sum())
        keep = ok & ~too_old
        ref_day = np.maximum(newest, days)               # the newest day when each event is scored
        row0 = self._rows
        self._rows += events.num_rows
        ev, flags = self._resolver.resolve(events, days)
        allow = flags.allow
        if self.config.allow_agents:
            allow |= self._allowed_agents(events)
        if not self.config.allowlist_learn and allow.any():
            self.suppressed["allowlist"] += int((allow & keep).sum())
            keep &= ~allow
        kidx = np.flatnonzero(keep)                      # kept row -> row of ``events``
        if kidx.size < events.num_rows:
            ev, flags, allow, ref_day, ts = ev.take(kidx), flags.take(kidx), allow[kidx], ref_day[kidx], ts[kidx]
        if kidx.size == 0:
            return []
        pri = self.baseline.observe(ev)
        sign = [_one_chunk(events.column(c)) for c in ("process.code_signature.exists",
                                                            "process.code_signature.trusted")]
        unsigned, untrusted = (_false(c, kidx) for c in sign)
        m = match(self.config, ev, pri, unsigned, untrusted, flags.user_writable_path, flags.renamed)
        if int(pri.threshold.max(initial=0)) >= self.config.exact_limit:
            self._warn("exact_limit", f"rare threshold {int(pri.threshold.max())} reaches exact_limit "
                                      f"{self.config.exact_limit}: prevalence near it is a sampled estimate; "
                                      "raise exact_limit")
        return self._alerts(ev, pri, m, events, kidx, allow, row0 + kidx, ref_day, ts)

    def _allowed_agents(self, events: pa.Table) -> np.ndarray:
        """Events whose host.id or host.name matches an ``allow_agents`` pattern (once per distinct value)."""
        out = np.zeros(events.num_rows, dtype=bool)
        pats = [p.lower() for p in self.config.allow_agents]
        for col in ("host.id", "host.name"):
            enc = events[col].combine_chunks().dictionary_encode()
            hit = np.array([v is not None and any(fnmatch.fnmatchcase(v.lower(), p) for p in pats)
                            for v in enc.dictionary.to_pylist()] + [False], dtype=bool)
            idx = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
            out |= hit[idx]
        return out

    def habitual_explorers(self) -> list[tuple[str, int]]:
        """Processes that met ``habitual_explorer_n`` or more rare cloud resources first in the window, with
        that count, most first (names from the bounded name table; unknown ones as hex keys)."""
        keys, counts = self.baseline.structures["new_rare"].items()
        sel = counts >= self.config.habitual_explorer_n
        order = np.argsort(-counts[sel].astype(np.int64), kind="stable")
        return [(self._names.get(int(k), f"{int(k):016x}"), int(c)) for k, c in zip(keys[sel][order],
                                                                                       counts[sel][order])]

    def _alerts(self, ev, pri, m, events, kidx, allow, rows, ref_day, ts) -> list[Alert]:
        cfg = self.config
        cloud_any, im_any = m.cloud["base"], m.im["base"]
        self.stats["habitual_explorer_first_contacts"] += int(pri.first_rare.sum())
        # Vector gates first (activation, allow-list, habitual explorer): only survivors become Python objects.
        activated = (ev.days.astype(np.int64) - pri.org_first_day) >= cfg.activation_days
        habitual = cloud_any & ((pri.new_rare >= cfg.habitual_explorer_n) |
                                (pri.new_rare_agent >= cfg.habitual_explorer_n))
        for det_mask, gate in ((cloud_any, habitual), (im_any, False)):  # counted once per (event, detector)
            for name, hit in (("activation", det_mask & ~activated), ("allowlist", det_mask & activated & allow),
                              ("habitual_explorer", det_mask & activated & ~allow & gate)):
                if hit.any():
                    self.suppressed[name] += int(hit.sum())
        cloud_any = cloud_any & activated & ~allow & ~habitual
        im_any = im_any & activated & ~allow
        cand = np.flatnonzero(cloud_any | im_any)
        if cand.size == 0:
            return []
        # Only the candidates' rows are read as text (and resolved again, for the catalogue's names).
        sub = events.take(pa.array(kidx[cand]))
        resolved = self.catalog.resolve_batch(sub)
        cols = {c: sub.column(c).to_pylist() for c in (
            "host.id", "host.name", "user.name", "process.name", "process.executable", "process.pid",
            "process.hash.sha256", "process.command_line", "process.parent.name", "destination.domain",
            "destination.ip", "destination.port")}
        rcols = {c: resolved.column(c).to_pylist() for c in (
            "raresketch.process.key", "raresketch.cloud.resource", "raresketch.cloud.provider",
            "raresketch.cloud.service", "raresketch.im.service", "raresketch.process.script_engine")}
        # Destination keys for dedup: R (cloud) / domain else IP (IM).
        im_dest = [d if d is not None else ip for d, ip in zip(cols["destination.domain"], cols["destination.ip"])]
        out: list[Alert] = []
        for j, i in enumerate(cand.tolist()):
            day = int(ev.days[i])
            t_min = int(ts[i] // _US_PER_MIN)
            for det, order, masks, live in (("rare_cloud", RARE_CLOUD_ORDER, m.cloud, cloud_any),
                                            ("uncommon_im", UNCOMMON_IM_ORDER, m.im, im_any)):
                if not live[i]:
                    continue
                matched = [v for v in order if masks[v][i]]
                variation = matched[0]
                dest = rcols["raresketch.cloud.resource"][j] if det == "rare_cloud" else im_dest[j]
                name_key = f"{det}.{variation}"
                dkey = int(hash_pair(hash_pair(hash64(name_key), ev.agent[i]),
                                     hash_pair(ev.process[i], hash64(dest or "")))[0])
                didx = self._dedup.indices(np.array([dkey], dtype=np.uint64))[0]
                if self._dedup.check_and_set(didx, t_min, int(cfg.dedup_hours * 60)):
                    self.suppressed["dedup"] += 1
                    entry = self._dup_counts.setdefault(dkey, [0, t_min])
                    entry[0] += 1
                    continue
                vkey, akey = (det, day), (det, day, cols["host.id"][j])
                if self._volume.get(vkey, 0) >= cfg.max_alerts_per_day:
                    self.suppressed["volume_guard"] += 1
                    self._warn(f"volume:{det}:{day}", f"{det}: {cfg.max_alerts_per_day} alerts on day "
                                                      f"{_dt.date.fromordinal(719163 + day)}; paused until the next "
                                                      "day (raise max_alerts_per_day, or allow-list the noise)")
                    continue
                if cfg.max_alerts_per_agent_day is not None and \
                        self._volume.get(akey, 0) >= cfg.max_alerts_per_agent_day:
                    self.suppressed["volume_guard_agent"] += 1
                    self._warn(f"volume:{det}:{day}:{akey[2]}",
                               f"{det}: {cfg.max_alerts_per_agent_day} alerts from agent {akey[2]} on day "
                               f"{_dt.date.fromordinal(719163 + day)}; that agent is paused until the next day")
                    continue
                self._volume[vkey] = self._volume.get(vkey, 0) + 1
                self._volume[akey] = self._volume.get(akey, 0) + 1
                prev = self._dup_counts.pop(dkey, None)
                self._dup_counts[dkey] = [0, t_min]
                ev_dict = self._evidence(det, i, j, pri, m, rcols, matched, day, int(ref_day[i]))
                ev_dict["suppressed_since_last"] = prev[0] if prev else 0
                a = Alert(
                    detector=det, variation=variation,
                    timestamp=_dt.datetime.fromtimestamp(ts[i] / 1e6, _dt.timezone.utc),
                    host_id=cols["host.id"][j], process_key=rcols["raresketch.process.key"][j], destination=dest,
                    variations=matched, evidence=ev_dict, host_name=cols["host.name"][j],
                    user_name=cols["user.name"][j], process_name=cols["process.name"][j],
                    process_executable=cols["process.executable"][j], process_pid=cols["process.pid"][j],
                    process_hash=cols["process.hash.sha256"][j], process_command_line=cols["process.command_line"][j],
                    process_parent_name=cols["process.parent.name"][j],
                    destination_domain=cols["destination.domain"][j], destination_ip=cols["destination.ip"][j],
                    destination_port=cols["destination.port"][j],
                    cloud_resource=rcols["raresketch.cloud.resource"][j], im_service=rcols["raresketch.im.service"][j],
                    row=int(rows[i]))
                self.stats[f"alerts:{a.name}"] += 1
                out.append(a)
        self._prune(int(ts[-1] // _US_PER_MIN))
        return out

    def _evidence(self, det, i, j, pri, m, rcols, matched, day, ref_day) -> dict[str, Any]:
        cfg = self.config
        agent_first = int(pri.run_first[i])
        common = {"window_days": cfg.training_days, "active_agents": int(pri.active_agents[i]),
                  "rare_threshold": int(pri.threshold[i]), "org_first_day": int(pri.org_first_day[i]),
                  "baseline_days": day - int(pri.org_first_day[i]), "agent_first_day": agent_first,
                  "agent_observed_days": day - agent_first,
                  "agent_activated": day - agent_first >= cfg.activation_days,
                  "late": day < ref_day, "reference_day": ref_day, "exact_limit": cfg.exact_limit}
        if det == "rare_cloud":
            prov, svc = rcols["raresketch.cloud.provider"][j], rcols["raresketch.cloud.service"][j]
            common.update({
                "prevalence": int(pri.prevalence[i]),
                "prevalence_exact": bool(pri.prevalence[i] < cfg.exact_limit),
                "process_seen_with_resource": False,
                "service_kind": f"{prov}/{svc}",
                "process_kind_agents": int(pri.kind_agents[i]),
                "agent_used_kind": bool(pri.agent_seen_kind[i]),
                "process_new_rare_resources": int(pri.new_rare[i]),
                "process_new_rare_resources_on_agent": int(pri.new_rare_agent[i]),
                "habitual_explorer_n": cfg.habitual_explorer_n,
            })
        else:
            common.update({
                "im_service": rcols["raresketch.im.service"][j],
                "process_im_agents": int(pri.im_agents[i]),
                "process_im_agent_days": int(pri.im_agent_days[i]),
                "im_max_agents": int(pri.threshold[i]) if cfg.im_max_agents is None else cfg.im_max_agents,
                "im_max_agent_days": cfg.im_max_agent_days,
                "binary_agents": int(pri.binary_agents[i]),
                "suspicious_signals": [k for k, v in m.signals.items() if v[i]],
                "script_engine": rcols["raresketch.process.script_engine"][j],
                "script_engine_signals": [k for k, v in m.script_signals.items() if v[i]],
                "parent_engine_agents": int(pri.pair_agents[i]),
                "command_line_agents": int(pri.cmdline_agents[i]),
            })
        return common

    def _prune(self, now_min: int) -> None:
        window = int(self.config.dedup_hours * 60)
        if len(self._dup_counts) > 10_000:
            self._dup_counts = {k: v for k, v in self._dup_counts.items() if now_min - v[1] < window}
        today = now_min // 1440
        if len(self._volume) > 4096:
            self._volume = {k: v for k, v in self._volume.items() if k[1] >= today - 2}

    # ---- state --------------------------------------------------------------------------------------
    def resource_name(self, key: int) -> str | None:
        """The name of a cloud resource or process key (bounded memory; None if unknown)."""
        return self._names.get(int(key))

    def to_bytes(self) -> bytes:
        meta = {"config": self.config.to_dict(), "stats": dict(self.stats), "suppressed": dict(self.suppressed),
                "warnings": self.warnings[-100:],
                "volume": [[*k, c] for k, c in self._volume.items()],
                "dup_counts": [[str(k), v[0], v[1]] for k, v in self._dup_counts.items()]}
        names = json.dumps({str(k): v for k, v in self._names.items()}).encode()
        return _format.pack("EngineState", meta, [np.frombuffer(self.baseline.to_bytes(), dtype=np.uint8),
                                                  self._dedup.cells, np.frombuffer(names, dtype=np.uint8)])

    @classmethod
    def from_bytes(cls, data: bytes, catalog: Catalog | None = None) -> "Engine":
        meta, arrays = _format.unpack(data, "EngineState")
        _format.expect(len(arrays) == 3 and arrays[1].dtype == np.uint32 and arrays[1].ndim == 1, "EngineState",
                       "unexpected arrays")
        try:
            config = Config.from_dict(dict(meta["config"]))
            baseline = Baseline.from_bytes(arrays[0].tobytes())
            eng = cls(config, catalog, baseline)
            eng.stats.update({str(k): int(v) for k, v in meta["stats"].items()})
            eng.suppressed.update({str(k): int(v) for k, v in meta["suppressed"].items()})
            eng.warnings = [str(w) for w in meta["warnings"]]
            eng._volume = {(str(v[0]), int(v[1]), *map(str, v[2:-1])): int(v[-1]) for v in meta["volume"]}
            eng._dup_counts = {int(k): [int(a), int(b)] for k, a, b in meta["dup_counts"]}
            eng._names.update({int(k): str(v) for k, v in json.loads(arrays[2].tobytes().decode()).items()})
        except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as e:
            raise ValueError(f"corrupt raresketch EngineState: {e}") from None
        eng._dedup = _DedupFilter(cells_array=np.ascontiguousarray(arrays[1]))
        return eng

    def save(self, path) -> None:
        """Save the whole engine state atomically (write a temporary file, fsync, rename): a crash leaves the
        old file or the new one, never a broken one."""
        with self._lock:
            atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path, catalog: Catalog | None = None) -> "Engine":
        """Load a saved engine; a corrupted, truncated, wrong-version or foreign file raises ``ValueError``."""
        return cls.from_bytes(read_state_bytes(path), catalog)

    def __repr__(self) -> str:
        return f"Engine({self.baseline!r}, alerts={sum(v for k, v in self.stats.items() if k.startswith('alerts:'))})"
