"""The Engine: score-then-learn over batches of endpoint network events (docs/DETECTORS.md). One code path
serves a batch of a million events and a single event:

    prepare (conform, order, drop and count, resolve to keys)  ->  Baseline.observe (prior answers, then learn)
    ->  rules (match every variation, vector gates)  ->  Guard (dedup, volume)  ->  Alert (evidence, texts)
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa

from .. import _format
from ._keys import KeyResolver
from .._state import atomic_write_bytes, read_state_bytes, read_state_bytes_limited
from ..alerts import EVENT_FIELDS, Alert, HealthEvent
from ..catalog import Catalog, default_catalog
from ..config import Config
from ..share import GlobalPrevalence
from ._baseline import Baseline
from ._evidence import Context, evidence, identification, snapshot_date
from ._guard import Guard
from ._health import ClockMonitor
from ._prepare import Prepared, prepare
from ._rules import gate, match, matched
from ._stream import MAX_DELAY, MAX_EVENTS, EventPath

__all__ = ["Engine"]

log = logging.getLogger("raresketch")

_US_PER_MIN = 60_000_000
#: Catalogue additions larger than this are refused (they are a few allow-list and suffix lines).
MAX_CATALOG_BYTES = 16 << 20
#: Config fields fixed by a baseline's structures (its window and sizes): everything else may change.
FIXED_BY_BASELINE = ("training_days", "exact_limit", "capacity", "max_agents", "seed")


def _window_mismatch(config: Config, built: Config) -> str:
    """The fields of ``FIXED_BY_BASELINE`` on which ``config`` differs from the baseline's, as text ('' if none)."""
    return ", ".join(f"{k} = {getattr(built, k)!r} (not {getattr(config, k)!r})" for k in FIXED_BY_BASELINE
                     if getattr(config, k) != getattr(built, k))


def _read_catalog_file(path: str) -> bytes:
    """The bytes of a catalogue-additions file: a regular file (a FIFO or a device is refused without blocking)
    of at most ``MAX_CATALOG_BYTES``."""
    try:
        return bytes(read_state_bytes_limited(path, MAX_CATALOG_BYTES, what="a catalogue"))
    except ValueError as e:
        raise ValueError(f"catalogue additions: {e}") from None


def _catalog_from_toml(toml: bytes, name: str | None) -> Catalog:
    """A catalogue with the additions ``toml`` (the text saved in a state), built through a private temporary
    file named like the original so that ``sources()`` names it."""
    with tempfile.TemporaryDirectory(prefix="raresketch-catalog-") as d:
        p = os.path.join(d, os.path.basename(name or "catalog.toml") or "catalog.toml")
        with open(p, "wb") as f:
            f.write(toml)
        return Catalog(p)


def _false(col: pa.Array, idx: np.ndarray) -> np.ndarray:
    """True where the boolean column is false, at rows ``idx`` (sorted distinct rows; null -> False: unknown is
    never a signal)."""
    if col.null_count == len(col):
        return np.zeros(idx.size, bool)
    v = col.fill_null(True).to_numpy(zero_copy_only=False)
    return ~(v if idx.size == v.size else v[idx])       # every row kept: idx is 0..n-1


class Engine:
    """Both detectors over a windowed baseline, scoring each event before learning it.

    Parameters
    ----------
    config : Config, optional
        Thresholds and sizes (docs/DETECTORS.md); defaults otherwise.
    catalog : Catalog, optional
        Destination and process catalogue; the default one (with ``config.catalog_file`` if set).
    baseline : Baseline, optional
        A baseline to continue (its config is used when ``config`` is not given). A ``config`` may change any
        threshold, gate, guard or allow-list of it, never what its structures were built with
        (``FIXED_BY_BASELINE``: window, sizes, seed): that raises ``ValueError``.

    ``process(batch)`` takes an Arrow table (or record batch) with the ECS columns of
    :data:`raresketch.EVENT_SCHEMA` (missing optional columns are null), sorts it by ``@timestamp``, scores every
    event against the baseline as it was before that event, learns it, and returns the alerts. Thread safety:
    an Engine serialises its own calls with a lock (sharing one across threads is safe but not parallel).
    """

    def __init__(self, config: Config | None = None, catalog: Catalog | None = None,
                 baseline: Baseline | None = None):
        self.config = config or (baseline.config if baseline is not None else Config())
        if baseline is not None:
            mismatch = _window_mismatch(self.config, baseline.config)
            if mismatch:
                raise ValueError(f"the baseline was built with {mismatch}: an Engine cannot change them")
        self._catalog_toml: bytes | None = None     # the catalogue additions' text, saved with the state
        self._catalog_name: str | None = None
        if catalog is None and self.config.catalog_file:
            self._catalog_toml = _read_catalog_file(self.config.catalog_file)
            self._catalog_name = os.path.basename(self.config.catalog_file)
            catalog = _catalog_from_toml(self._catalog_toml, self._catalog_name)
        self.catalog = catalog if catalog is not None else default_catalog()
        self.baseline = baseline or Baseline(self.config)
        self.baseline.config = self.config             # thresholds the baseline applies follow the engine's
        self.stats: Counter[str] = Counter()
        self.suppressed: Counter[str] = Counter()
        self.warnings: list[str] = []
        self._warned: set[str] = set()
        self.guard = Guard(self.config, self.suppressed, self._warn)
        self._resolver = KeyResolver(self.catalog)
        self._snapshot = snapshot_date(self.catalog.sources())
        self._names = self._resolver.names               # cloud-resource and process key -> text (bounded)
        self._lock = threading.Lock()
        self._rows = 0                                  # events conformed so far (alert.row counts from here)
        self._newest_us = 0                             # newest event time processed (µs)
        self.clock = ClockMonitor()
        self._global: tuple | None = None               # (settings, GlobalPrevalence): global_prevalence()

    # ---- processing ---------------------------------------------------------------------------------
    def process(self, batch: pa.Table | pa.RecordBatch) -> list[Alert]:
        """Score-then-learn one batch of events in event-time order; return its alerts (after those of any
        events still buffered by :meth:`process_event`, which are processed first)."""
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        if not isinstance(batch, pa.Table):
            raise TypeError(f"Engine.process takes a pyarrow Table or RecordBatch, not {type(batch).__name__}")
        if self._events is not None:
            self._events.reentry()
        with self._lock:
            return self._flush_events() + self._process(batch)

    def process_all(self, batches: Iterable[pa.Table]) -> list[Alert]:
        """Process many batches in order; returns all alerts."""
        out: list[Alert] = []
        for b in batches:
            out.extend(self.process(b))
        return out

    # ---- one event at a time (detect/_stream.py) ----------------------------------------------------
    _events: EventPath | None = None

    def process_event(self, event: Mapping) -> list[Alert]:
        """Hand over one event (a collector's callback); returns the alerts of the batch it completed, if any.

        ``event`` maps :data:`raresketch.EVENT_SCHEMA` field names to values, flat (``"host.id"``), nested
        (``{"host": {"id": ...}}``) or both; values are typed as the readers type theirs (a port as text is
        parsed, an ISO string, a datetime or an epoch number by magnitude is a time) and a row that lacks a
        valid ``@timestamp`` or ``host.id`` is dropped and counted (``stats["skipped_invalid"]``), as in
        :meth:`process`. Anything but a mapping raises ``TypeError``. The event is copied (the caller may reuse
        its dict).

        Events wait in a buffer that is processed as one batch (:meth:`process`'s path, so an ordered stream
        gives the alerts and state of one batch run) when it holds ``max_events`` events or when its oldest
        event has waited ``max_delay`` seconds (:meth:`buffer_events`; defaults 1024 events, 0.25 s): checked
        at each call, and by :meth:`poll` (call it when the source is idle) or, with ``on_alerts``, by a
        timer. :meth:`flush` processes what waits now. Cost: O(keys) per call plus the batch's cost shared
        by its events (measured in README, "Collectors: one event at a time").
        """
        now = time.monotonic()
        if self._events is not None:
            self._events.reentry()
        with self._lock:
            path = self._events or self._new_events()
            path.check()
            first = not path.buffer.events
            if path.buffer.add(event, now):
                return path.flush(self._process)
        if first and path.linger is not None:
            path.linger.wake.set()
        return []

    def flush(self) -> list[Alert]:
        """Process the buffered events now (:meth:`process_event`); their alerts (``[]`` with ``on_alerts``,
        which receives them)."""
        if self._events is not None:
            self._events.reentry()
        with self._lock:
            return self._flush_events()

    def poll(self) -> list[Alert]:
        """Flush the buffered events if the oldest has waited ``max_delay`` seconds; their alerts. A collector
        without ``on_alerts`` calls it when its source is idle, so that no alert waits longer than the bound."""
        if self._events is not None:
            self._events.reentry()
        with self._lock:
            path = self._events
            if path is None or not path.buffer.due(time.monotonic()):
                return []
            path.check()
            return path.flush(self._process)

    @property
    def pending_events(self) -> int:
        """Events handed to :meth:`process_event` and not processed yet."""
        path = self._events
        return 0 if path is None else len(path.buffer.events)

    def buffer_events(self, max_events: int = MAX_EVENTS, max_delay: float | None = MAX_DELAY,
                      on_alerts: Callable[[list[Alert]], Any] | None = None) -> list[Alert]:
        """Set the bounds of :meth:`process_event`'s buffer: a batch is processed when it holds ``max_events``
        events (>= 1) or when its oldest event has waited ``max_delay`` seconds (>= 0; None: only size,
        :meth:`flush` and ``close_events``). With ``on_alerts`` every flushed batch's alerts go to it (and the
        methods return ``[]``) and a timer thread flushes on the deadline even when no event arrives; it is
        called on the flushing thread with the engine's lock held, so it must hand the alerts on (a queue, a
        writer) and not call the engine (that raises ``RuntimeError``); an exception it raises on the timer's
        thread is raised by the next call. Events already buffered are processed first under the old
        settings; their alerts are returned. Invalid bounds raise ``ValueError``."""
        path = EventPath(max_events, max_delay, on_alerts)
        alerts = self.close_events()
        with self._lock:
            self._events = path
        path.start(self._flush_due)
        return alerts

    def close_events(self) -> list[Alert]:
        """Stop the timer (if any) and process the buffered events; their alerts (or ``on_alerts``'s). The
        engine's defaults apply to the next :meth:`process_event`."""
        path = self._events
        if path is None:
            return []
        path.reentry()
        path.stop()
        with self._lock:
            try:
                path.check()
                return path.flush(self._process)
            finally:
                self._events = None

    def _new_events(self) -> EventPath:
        self._events = EventPath()
        return self._events

    def _flush_events(self) -> list[Alert]:
        path = self._events
        if path is None:
            return []
        path.check()
        return path.flush(self._process)

    def _flush_due(self) -> float | None:
        with self._lock:
            path = self._events
            return None if path is None else path.flush_due(self._process, time.monotonic())

    def _warn(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warnings.append(msg)
            log.warning(msg)

    def _process(self, batch: pa.Table) -> list[Alert]:
        self.stats["events"] += batch.num_rows
        p = prepare(batch, self.config, self._resolver, self.stats, self.suppressed, self.baseline.today,
                    self._newest_us)
        if p is None:
            return []
        row0 = self._rows
        self._rows += p.num_rows
        if p.ts.size:
            self._newest_us = max(self._newest_us, int(p.ts[-1]))
        if p.dropped:
            for h in self.clock.note(p.events, p.dropped, self._newest_us or int(p.ts.max(initial=0))):
                self._warn(f"health:{h.reason}:{h.host_id}:{h.timestamp.date()}", h.message)
        if p.late:
            self._warn(f"late:{self._newest_us // 86_400_000_000}",
                       f"{p.late} events arrived up to {p.max_late_us / 3.6e9:.1f} h after later events had been "
                       "processed: they are scored against a baseline that already holds the later ones (fewer or "
                       "other alerts). Feed events in event-time order: merge per-agent batches by time first")
        if p.kidx.size == 0:
            return []
        ev, kidx = p.ev, p.kidx
        pri = self.baseline.observe(ev)
        sign = [p.column(c) for c in ("process.code_signature.exists", "process.code_signature.trusted")]
        unsigned, untrusted = (_false(c, kidx) for c in sign)
        m = match(self.config, ev, pri, unsigned, untrusted, p.flags.user_writable_path, p.flags.renamed)
        if int(pri.threshold.max(initial=0)) >= self.config.exact_limit:
            self._warn("exact_limit", f"rare threshold {int(pri.threshold.max())} reaches exact_limit "
                                      f"{self.config.exact_limit}: prevalence near it is a sampled estimate; "
                                      "raise exact_limit")
        self.stats["habitual_explorer_first_contacts"] += int(pri.first_rare.sum())
        live = gate(self.config, ev, pri, m, p.allow, self.suppressed)
        cand = np.flatnonzero(live["rare_cloud"] | live["uncommon_im"])
        if cand.size == 0:
            return []
        return self._alerts(p, pri, m, live, cand, row0)

    def _alerts(self, p: Prepared, pri, m, live: dict[str, np.ndarray], cand: np.ndarray, row0: int) -> list[Alert]:
        """Alerts of the candidates that pass the guard. Only the candidates' rows are read as text."""
        rows = p.kidx[cand]
        sub = p.take(rows)
        cols = {c: sub.column(c).to_pylist() for c in EVENT_FIELDS}
        texts = p.flags.texts(rows)
        out: list[Alert] = []
        glob = self.global_prevalence()
        for j, i in enumerate(cand.tolist()):
            day = int(p.ev.days[i])
            t_min = int(p.ts[i] // _US_PER_MIN)
            row_texts = {k: v[j] for k, v in texts.items()}
            for det in ("rare_cloud", "uncommon_im"):
                if not live[det][i]:
                    continue
                variations = matched(m, det, i)
                if det == "rare_cloud":
                    dest = row_texts["raresketch.cloud.resource"]
                else:   # the IM destination: its name, else its address (a PTR name is the address's)
                    dest = cols["destination.domain"][j]
                    if dest is None or cols["raresketch.domain_source"][j] == "ptr":
                        dest = cols["destination.ip"][j]
                verdict = glob and glob.judge(det, row_texts["raresketch.cloud.resource"], int(pri.active_agents[i]))
                if verdict and verdict.action == "suppress":
                    self.suppressed["global_common"] += 1
                    continue
                since = self.guard.admit(f"{det}.{variations[0]}", int(p.ev.agent[i]), int(p.ev.process[i]), dest,
                                         t_min, day, cols["host.id"][j])
                if since is None:
                    continue
                ctx = Context(self.config, pri, m, i, day, int(p.ref_day[i]), row_texts, since, det,
                              self.baseline, p.ev)
                event = {c: v[j] for c, v in cols.items()}
                a = Alert(
                    detector=det, variation=variations[0],
                    timestamp=_dt.datetime.fromtimestamp(p.ts[i] / 1e6, _dt.timezone.utc),
                    process_key=row_texts["raresketch.process.key"], destination=dest,
                    event=event, variations=variations, evidence=evidence(det, ctx),
                    identified_by=identification(event, row_texts, self._snapshot),
                    cloud_resource=row_texts["raresketch.cloud.resource"],
                    im_service=row_texts["raresketch.im.service"], row=row0 + int(rows[j]))
                if verdict:
                    a.evidence["global_orgs"] = verdict.evidence
                    a.raised_to = "low" if verdict.action == "raise" else None
                self.stats[f"alerts:{a.name}"] += 1
                out.append(a)
        self.guard.prune(int(p.ts[-1] // _US_PER_MIN))
        return out

    def global_prevalence(self) -> GlobalPrevalence | None:
        """The consortium file of ``config.global_prevalence`` as loaded (None when off), read once per setting;
        ``ValueError`` naming the file that is wrong (docs/SHARING.md)."""
        c = self.config
        if not c.global_prevalence:
            return None
        want = (c.global_prevalence, c.global_key_file, c.global_own_export, c.global_min_orgs, c.global_small_fleet)
        if self._global is None or self._global[0] != want:
            self._global = (want, GlobalPrevalence.from_config(c))
        return self._global[1]

    def take_health(self) -> list[HealthEvent]:
        """Health events (hosts whose clocks put their events outside the window) noticed since the last call;
        ``raresketch run`` writes them into its output beside the alerts."""
        return self.clock.take()

    def habitual_explorers(self) -> list[tuple[str, int]]:
        """Processes that met ``habitual_explorer_n`` or more rare cloud resources first in the window, with
        that count, most first (names from the bounded name table; unknown ones as hex keys)."""
        keys, counts = self.baseline.structures["new_rare"].items()
        sel = counts >= self.config.habitual_explorer_n
        order = np.argsort(-counts[sel].astype(np.int64), kind="stable")
        return [(self._names.get(int(k), f"{int(k):016x}"), int(c)) for k, c in zip(keys[sel][order],
                                                                                       counts[sel][order])]

    # ---- configuration -----------------------------------------------------------------------------
    def reconfigure(self, config: Config) -> None:
        """Apply ``config`` to a running engine: thresholds, gates, guards, allow-lists and catalogue additions
        change from the next event on; what the baseline's structures were built with (``FIXED_BY_BASELINE``:
        window, sizes, seed) cannot, and raises ``ValueError`` naming it. A changed ``catalog_file`` is read
        (and saved with the state); resource and process names learned so far are kept."""
        mismatch = _window_mismatch(config, self.config)
        if mismatch:
            raise ValueError(f"the baseline was built with {mismatch}; these cannot change on a saved baseline "
                             "(start a new state to change them)")
        with self._lock:
            if config.catalog_file and config.catalog_file != self.config.catalog_file or (
                    config.catalog_file and _read_catalog_file(config.catalog_file) != self._catalog_toml):
                toml = _read_catalog_file(config.catalog_file)
                name = os.path.basename(config.catalog_file)
                self.catalog = _catalog_from_toml(toml, name)
                self._catalog_toml, self._catalog_name = toml, name
                names = self._names
                self._resolver = KeyResolver(self.catalog)
                self._resolver.names.update(names)
                self._names = self._resolver.names
            self.config = config
            self.baseline.config = config
            self.guard.config = config

    # ---- state --------------------------------------------------------------------------------------
    def resource_name(self, key: int) -> str | None:
        """The name of a cloud resource or process key (bounded memory; None if unknown)."""
        return self._names.get(int(key))

    def to_bytes(self) -> bytes:
        """The whole engine state (baseline, counters, guard, names, catalogue additions) as versioned,
        checksummed bytes. The JSON header holds only bounded parameters; the dedup and volume tables, the
        name table and the catalogue additions (the TOML text itself, so a moved or changed file cannot change
        or break a saved baseline) travel as arrays; the baseline travels sparse while that is smaller (see
        :meth:`_baseline_bytes`), so the size follows what it holds. Thread-safe: taken under the engine's lock."""
        with self._lock:
            return self._to_bytes()

    def _to_bytes(self) -> bytes:
        if self.pending_events and self._events.on_alerts is not None:
            self._flush_events()                     # their alerts go to the callback
        if self.pending_events:
            raise ValueError(f"{self.pending_events} events handed to process_event are not processed yet: "
                             "flush() them (and take their alerts) before saving the state")
        meta = {"config": self.config.to_dict(), "stats": dict(self.stats), "suppressed": dict(self.suppressed),
                "warnings": self.warnings[-100:], "layout": 2, "catalog_name": self._catalog_name,
                "newest_us": self._newest_us}
        names = json.dumps({str(k): v for k, v in sorted(self._names.items())}).encode()
        last = self.guard.last
        dup_keys = np.fromiter(last.keys(), dtype=np.uint64, count=len(last))
        dup_vals = np.array([v for v in last.values()], dtype=np.int64).reshape(len(last), 2)
        volume = json.dumps([[*k, c] for k, c in self.guard.volume.items()]).encode()
        u8 = lambda b: np.frombuffer(b, dtype=np.uint8)  # noqa: E731
        return _format.pack("EngineState", meta, [u8(self._baseline_bytes()), u8(names), dup_keys, dup_vals,
                                                  u8(volume), u8(self._catalog_toml or b"")])

    def _baseline_bytes(self) -> bytes:
        """The baseline as saved: its sparse form (only the occupied entries, ~20 bytes per live pair) while that
        is under 3/4 of its fixed tables, else the dense form. Both load to the same baseline, byte for byte: a
        young or small organisation's state is sized to what it holds (a 7k-event run saves ~1 MiB, not the
        default tables' 243 MiB), a full one stays at its fixed size."""
        sparse = self.baseline.to_sparse_bytes()
        return sparse if len(sparse) <= 0.75 * self.baseline.nbytes else self.baseline.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, catalog: Catalog | None = None) -> "Engine":
        """Rebuild from :meth:`to_bytes`. Also reads the earlier layouts (the dedup table in the header, the
        catalogue as a path opened on load, a dedup filter's cells between the baseline and the names)."""
        meta, arrays = _format.unpack(data, "EngineState")
        layout = meta.get("layout", 1)
        if layout == 2:
            _format.expect(len(arrays) == 6 and arrays[2].dtype == np.uint64 and arrays[3].dtype == np.int64
                           and arrays[3].shape == (arrays[2].shape[0], 2), "EngineState", "unexpected arrays")
        else:
            _format.expect(len(arrays) == 2 or (len(arrays) == 3 and arrays[1].dtype == np.uint32
                                                and arrays[1].ndim == 1), "EngineState", "unexpected arrays")
        try:
            config = Config.from_dict(dict(meta["config"]))
            blob = arrays[0].tobytes()
            baseline = (Baseline.from_sparse_bytes(blob) if _format.family_of(blob) == "BaselineSparse"
                        else Baseline.from_bytes(blob))
            toml = arrays[5].tobytes() if layout == 2 else None
            if catalog is None and toml:
                eng = cls(config, _catalog_from_toml(toml, meta.get("catalog_name")), baseline)
                eng._catalog_toml, eng._catalog_name = toml, meta.get("catalog_name")
            elif catalog is None and layout == 2:
                eng = cls(config.replace(catalog_file=None), None, baseline)
                eng.config = config
            else:
                eng = cls(config, catalog, baseline)
            eng.stats.update({str(k): int(v) for k, v in meta["stats"].items()})
            eng.suppressed.update({str(k): int(v) for k, v in meta["suppressed"].items()})
            eng.warnings = [str(w) for w in meta["warnings"]]
            if layout == 2:
                eng.guard.last = {int(k): [int(a), int(b)] for k, (a, b) in zip(arrays[2].tolist(), arrays[3].tolist())}
                eng.guard.volume = {(str(v[0]), int(v[1]), *map(str, v[2:-1])): int(v[-1])
                                    for v in json.loads(arrays[4].tobytes().decode())}
                names = arrays[1]
            else:
                eng.guard.load_state(meta)
                names = arrays[-1]
            eng._names.update({int(k): str(v) for k, v in json.loads(names.tobytes().decode()).items()})
            eng._newest_us = int(meta.get("newest_us", 0))
        except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as e:
            raise ValueError(f"corrupt raresketch EngineState: {e}") from None
        return eng

    def save(self, path) -> None:
        """Save the whole engine state atomically (write a temporary file, fsync, rename): a crash leaves the
        old file or the new one, never a broken one."""
        with self._lock:
            data = self._to_bytes()
        atomic_write_bytes(path, data)

    @classmethod
    def load(cls, path, catalog: Catalog | None = None) -> "Engine":
        """Load a saved engine; a corrupted, truncated, wrong-version or foreign file raises ``ValueError``."""
        return cls.from_bytes(read_state_bytes(path), catalog)

    def __repr__(self) -> str:
        return f"Engine({self.baseline!r}, alerts={sum(v for k, v in self.stats.items() if k.startswith('alerts:'))})"
