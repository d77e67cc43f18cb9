"""The Engine: score-then-learn over batches of endpoint network events (docs/DETECTORS.md). One code path
serves a batch of a million events and a single event:

    prepare (conform, order, drop and count, resolve to keys)  ->  Baseline.observe (prior answers, then learn)
    ->  rules (match every variation, vector gates)  ->  Guard (dedup, volume)  ->  Alert (evidence, texts)
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
from collections import Counter
from typing import Iterable

import numpy as np
import pyarrow as pa

from .. import _format
from ._keys import KeyResolver, _one_chunk
from .._state import atomic_write_bytes, read_state_bytes
from ..alerts import EVENT_FIELDS, Alert
from ..catalog import Catalog, default_catalog
from ..config import Config
from ._baseline import Baseline
from ._evidence import Context, evidence
from ._guard import Guard
from ._prepare import Prepared, prepare
from ._rules import gate, match, matched

__all__ = ["Engine"]

log = logging.getLogger("raresketch")

_US_PER_MIN = 60_000_000


def _false(col: pa.Array, idx: np.ndarray) -> np.ndarray:
    """True where the boolean column is false, at rows ``idx`` (null -> False: unknown is never a signal)."""
    if col.null_count == len(col):
        return np.zeros(idx.size, bool)
    return ~col.fill_null(True).to_numpy(zero_copy_only=False)[idx]


class Engine:
    """Both detectors over a windowed baseline, scoring each event before learning it.

    Parameters
    ----------
    config : Config, optional
        Thresholds and sizes (docs/DETECTORS.md); defaults otherwise.
    catalog : Catalog, optional
        Destination and process catalogue; the default one (with ``config.catalog_file`` if set).
    baseline : Baseline, optional
        A baseline to continue (its config is used when ``config`` is not given).

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
        self._warned: set[str] = set()
        self.guard = Guard(self.config, self.suppressed, self._warn)
        self._resolver = KeyResolver(self.catalog)
        self._names = self._resolver.names               # cloud-resource and process key -> text (bounded)
        self._lock = threading.Lock()
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
        self.stats["events"] += batch.num_rows
        p = prepare(batch, self.config, self._resolver, self.stats, self.suppressed, self.baseline.today)
        if p is None:
            return []
        row0 = self._rows
        self._rows += p.events.num_rows
        if p.kidx.size == 0:
            return []
        ev, kidx = p.ev, p.kidx
        pri = self.baseline.observe(ev)
        sign = [_one_chunk(p.events.column(c)) for c in ("process.code_signature.exists",
                                                           "process.code_signature.trusted")]
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
        sub = p.events.take(pa.array(rows))
        cols = {c: sub.column(c).to_pylist() for c in EVENT_FIELDS}
        texts = p.flags.texts(rows)
        out: list[Alert] = []
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
                else:   # the IM destination: its name, else its address
                    dest = cols["destination.domain"][j]
                    dest = dest if dest is not None else cols["destination.ip"][j]
                since = self.guard.admit(f"{det}.{variations[0]}", int(p.ev.agent[i]), int(p.ev.process[i]), dest,
                                         t_min, day, cols["host.id"][j])
                if since is None:
                    continue
                ctx = Context(self.config, pri, m, i, day, int(p.ref_day[i]), row_texts, since)
                a = Alert(
                    detector=det, variation=variations[0],
                    timestamp=_dt.datetime.fromtimestamp(p.ts[i] / 1e6, _dt.timezone.utc),
                    process_key=row_texts["raresketch.process.key"], destination=dest,
                    event={c: v[j] for c, v in cols.items()}, variations=variations, evidence=evidence(det, ctx),
                    cloud_resource=row_texts["raresketch.cloud.resource"],
                    im_service=row_texts["raresketch.im.service"], row=row0 + int(rows[j]))
                self.stats[f"alerts:{a.name}"] += 1
                out.append(a)
        self.guard.prune(int(p.ts[-1] // _US_PER_MIN))
        return out

    def habitual_explorers(self) -> list[tuple[str, int]]:
        """Processes that met ``habitual_explorer_n`` or more rare cloud resources first in the window, with
        that count, most first (names from the bounded name table; unknown ones as hex keys)."""
        keys, counts = self.baseline.structures["new_rare"].items()
        sel = counts >= self.config.habitual_explorer_n
        order = np.argsort(-counts[sel].astype(np.int64), kind="stable")
        return [(self._names.get(int(k), f"{int(k):016x}"), int(c)) for k, c in zip(keys[sel][order],
                                                                                       counts[sel][order])]

    # ---- state --------------------------------------------------------------------------------------
    def resource_name(self, key: int) -> str | None:
        """The name of a cloud resource or process key (bounded memory; None if unknown)."""
        return self._names.get(int(key))

    def to_bytes(self) -> bytes:
        """The whole engine state (baseline, counters, guard, names) as versioned, checksummed bytes."""
        meta = {"config": self.config.to_dict(), "stats": dict(self.stats), "suppressed": dict(self.suppressed),
                "warnings": self.warnings[-100:], **self.guard.to_state()}
        names = json.dumps({str(k): v for k, v in sorted(self._names.items())}).encode()
        return _format.pack("EngineState", meta, [np.frombuffer(self.baseline.to_bytes(), dtype=np.uint8),
                                                  np.frombuffer(names, dtype=np.uint8)])

    @classmethod
    def from_bytes(cls, data: bytes, catalog: Catalog | None = None) -> "Engine":
        """Rebuild from :meth:`to_bytes` (also reads the earlier layout that carried a dedup filter's cells
        between the baseline and the names: the exact dedup keys were always saved beside it)."""
        meta, arrays = _format.unpack(data, "EngineState")
        _format.expect(len(arrays) == 2 or (len(arrays) == 3 and arrays[1].dtype == np.uint32
                                            and arrays[1].ndim == 1), "EngineState", "unexpected arrays")
        try:
            config = Config.from_dict(dict(meta["config"]))
            baseline = Baseline.from_bytes(arrays[0].tobytes())
            eng = cls(config, catalog, baseline)
            eng.stats.update({str(k): int(v) for k, v in meta["stats"].items()})
            eng.suppressed.update({str(k): int(v) for k, v in meta["suppressed"].items()})
            eng.warnings = [str(w) for w in meta["warnings"]]
            eng.guard.load_state(meta)
            eng._names.update({int(k): str(v) for k, v in json.loads(arrays[-1].tobytes().decode()).items()})
        except (KeyError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as e:
            raise ValueError(f"corrupt raresketch EngineState: {e}") from None
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
