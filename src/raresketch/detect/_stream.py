"""One event at a time: a micro-batcher that turns single event dicts into the Engine's batches, bounded in
size and in wall time (as a Kafka producer's ``batch.size`` / ``linger.ms``), so that a collector's
per-event callback does not pay a batch's fixed Arrow/Python cost (~0.4 ms) per event.

An event is a mapping with :data:`raresketch.EVENT_SCHEMA`'s field names, flat with dots (``"host.id"``),
nested (``{"host": {"id": ...}}``) or both; its values are typed column by column when the batch is built, the
way the per-record readers type theirs (``_readers._rows.build_column``, ``events._values.parse_timestamps``),
and the batch then goes through ``Engine.process``'s one path (conform, drops and counters, score, learn).
Processing a time-ordered stream event by event therefore gives the alerts and the state of processing it as
one batch (docs/DETECTORS.md, *Time*: any split of an ordered stream gives the same result).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Callable

import pyarrow as pa

from .._readers._rows import build_column
from ..events import EVENT_SCHEMA
from ..events._values import parse_timestamps

__all__ = ["EventBuffer", "Linger", "events_table"]

log = logging.getLogger("raresketch")

_TS = pa.timestamp("us", tz="UTC")
_FIELDS = list(EVENT_SCHEMA)
_NAMES = [f.name for f in _FIELDS]
#: Every column but the timestamp, typed by Arrow's row converter in one call.
_REST = pa.schema(_FIELDS[1:])
#: First parts of the schema's dotted names: an event with one of them as a key may be nested.
_ROOTS = frozenset(n.split(".", 1)[0] for n in _NAMES if "." in n)

#: Defaults of the bounds: a batch of 1024 events amortises the fixed per-batch cost to well under a
#: microsecond per event; an alert waits at most a quarter of a second for its batch.
MAX_EVENTS = 1024
MAX_DELAY = 0.25


def flatten(event: Mapping, prefix: str = "", out: dict | None = None) -> dict:
    """``event`` with nested mappings flattened into dotted keys (``{"host": {"id": 1}}`` ->
    ``{"host.id": 1}``); a dotted key and a nested path naming the same field: the later one in the mapping
    wins (as the ECS reader's record visit does). O(keys at every level)."""
    out = {} if out is None else out
    for k, v in event.items():
        key = f"{prefix}{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


def _timestamps(values: list) -> pa.Array:
    """The ``@timestamp`` column: datetimes (aware, or naive read as UTC) by Arrow directly, anything else
    (ISO strings, epoch numbers by magnitude, mixed) by :func:`parse_timestamps`; unparsable -> null."""
    try:
        raw = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        raw = None
    if raw is not None and pa.types.is_timestamp(raw.type) and raw.type.unit == "us":
        return raw.cast(pa.int64()).cast(_TS)   # aware: stored as UTC already; naive: read as UTC
    return parse_timestamps(values)[0]


def events_table(events: list[dict]) -> pa.Table:
    """Flat event dicts -> a table with :data:`EVENT_SCHEMA`'s columns (not yet conformed: ``Engine.process``
    does that). Values already of a column's type are converted by Arrow's row converter in one pass; a column
    holding another type (a port as text, a flag as ``"true"``) is typed value by value the way the readers
    type theirs (strings from numbers, booleans and integers parsed; a value that does not parse is null, and
    a row left without ``@timestamp`` or ``host.id`` is dropped and counted ``skipped_invalid`` by the
    engine). O(events x columns)."""
    ts = _timestamps([e.get("@timestamp") for e in events])
    try:
        rest = pa.Table.from_pylist(events, schema=_REST)
        arrays = [ts, *rest.columns]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        arrays = [ts] + [build_column([e.get(f.name) for e in events], f.type) for f in _FIELDS[1:]]
    return pa.Table.from_arrays(arrays, names=_NAMES)


class EventBuffer:
    """Events waiting for their batch, with the bounds that release them: ``max_events`` events, or the oldest
    one having waited ``max_delay`` seconds (monotonic clock). ``add`` is O(keys of the event) (a copy, so a
    collector may reuse its dict); not thread-safe by itself (the Engine calls it under its lock)."""

    __slots__ = ("events", "first", "max_events", "max_delay")

    def __init__(self, max_events: int = MAX_EVENTS, max_delay: float | None = MAX_DELAY):
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"max_events must be an integer >= 1, not {max_events!r}")
        if max_delay is not None and (isinstance(max_delay, bool) or not isinstance(max_delay, (int, float))
                                      or not max_delay >= 0 or max_delay == float("inf")):
            raise ValueError(f"max_delay must be a finite number of seconds >= 0 or None, not {max_delay!r}")
        self.events: list[dict] = []
        self.first = 0.0                 # monotonic time the oldest waiting event arrived
        self.max_events = max_events
        self.max_delay = None if max_delay is None else float(max_delay)

    def add(self, event: Any, now: float) -> bool:
        """Buffer one event; True when the buffer is due (full, or its oldest event waited ``max_delay``).
        Raises ``TypeError`` for anything but a mapping."""
        if type(event) is not dict:
            if not isinstance(event, Mapping):
                raise TypeError(f"an event is a mapping of ECS field names to values, not {type(event).__name__}")
            event = dict(event)
        if _ROOTS.isdisjoint(event):
            event = event.copy()
        else:
            event = flatten(event)
        if not self.events:
            self.first = now
        self.events.append(event)
        return len(self.events) >= self.max_events or self.due(now)

    def due(self, now: float) -> bool:
        """True when the oldest waiting event has waited ``max_delay`` seconds or more."""
        return bool(self.events) and self.max_delay is not None and now - self.first >= self.max_delay

    def take(self) -> pa.Table | None:
        """The waiting events as one table (see :func:`events_table`), the buffer emptied; None if empty."""
        if not self.events:
            return None
        events, self.events = self.events, []
        return events_table(events)


class EventPath:
    """An Engine's event path: its buffer, where flushed alerts go (returned, or ``on_alerts``), and the timer
    that enforces ``max_delay`` when they go to a callback. Every method but :meth:`start`/:meth:`stop` runs
    under the Engine's lock."""

    def __init__(self, max_events: int = MAX_EVENTS, max_delay: float | None = MAX_DELAY,
                 on_alerts: Callable[[list], Any] | None = None):
        if on_alerts is not None and not callable(on_alerts):
            raise TypeError(f"on_alerts must be callable, not {type(on_alerts).__name__}")
        self.buffer = EventBuffer(max_events, max_delay)
        self.on_alerts = on_alerts
        self.error: BaseException | None = None       # the callback's error on the timer's thread, raised later
        self.delivering: int | None = None            # the thread inside on_alerts
        self.linger: Linger | None = None

    def reentry(self) -> None:
        """Refuse a call from inside ``on_alerts`` (it holds the Engine's lock): ``RuntimeError``. Called
        before taking the lock."""
        if self.delivering is not None and self.delivering == threading.get_ident():
            raise RuntimeError("on_alerts is called with the engine's lock held: it must not call the engine "
                               "(hand the alerts to a queue or a writer)")

    def check(self) -> None:
        """Raise the callback's error from the timer's thread, once, to the next caller."""
        if self.error is not None:
            e, self.error = self.error, None
            raise e

    def flush(self, process: Callable[[pa.Table], list]) -> list:
        """Process the waiting events as one batch; their alerts, or [] when they went to ``on_alerts``."""
        t = self.buffer.take()
        if t is None:
            return []
        alerts = process(t)
        if self.on_alerts is None:
            return alerts
        if alerts:
            self.delivering = threading.get_ident()
            try:
                self.on_alerts(alerts)
            finally:
                self.delivering = None
        return []

    def flush_due(self, process: Callable[[pa.Table], list], now: float) -> float | None:
        """The timer's step: flush if the oldest event waited ``max_delay``; seconds until the next deadline
        (None when nothing waits). A callback error is kept for the next caller (:meth:`check`)."""
        b = self.buffer
        if b.due(now):
            try:
                self.flush(process)
            except Exception as e:  # noqa: BLE001 -- kept and raised to the engine's next caller
                self.error = e
        return None if not b.events or b.max_delay is None else max(0.0, b.first + b.max_delay - now)

    def start(self, step: Callable[[], float | None]) -> None:
        """Start the timer (only when alerts go to a callback and ``max_delay`` is set)."""
        if self.on_alerts is not None and self.buffer.max_delay is not None:
            self.linger = Linger(step)
            self.linger.start()

    def stop(self) -> None:
        if self.linger is not None:
            self.linger.stop()
            self.linger = None


class Linger(threading.Thread):
    """The timer of an Engine whose alerts go to a callback: wakes when the oldest waiting event reaches
    ``max_delay`` and flushes, so an alert is never held longer than the bound while no new event arrives.
    Holds the Engine (its lock and buffer) and stops on :meth:`stop` (``Engine.close_events``)."""

    def __init__(self, flush_due: Callable[[], float | None]):
        super().__init__(name="raresketch-linger", daemon=True)
        self._flush_due = flush_due      # flushes if due; returns seconds until the next deadline, None if idle
        self.wake = threading.Event()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                wait = self._flush_due()
            except Exception:   # the callback's error is kept by the engine and raised to its caller
                log.exception("raresketch: flushing buffered events failed")
                wait = None
            if self._halt.is_set():
                return
            if wait is None:
                self.wake.wait()
                self.wake.clear()
            elif wait > 0:
                self._halt.wait(wait)

    def stop(self) -> None:
        self._halt.set()
        self.wake.set()
        if self is not threading.current_thread():
            self.join()
