"""Writers of simulated events: Parquet (one row group per batch) and ECS JSON lines (optionally gzip-compressed).

Both stream: memory is bounded by one batch whatever the number of events.
"""
from __future__ import annotations

import gzip
import json
import os
from typing import Any, Iterable, Iterator, Protocol, Union

import pyarrow as pa
import pyarrow.compute as pc

from ..events import EVENT_SCHEMA
from ._vec import US

__all__ = ["write_ecs_jsonl", "write_parquet"]


class _Batched(Protocol):
    """A source of event batches, like :class:`raresketch.simulate.Organisation`."""

    def batches(self, batch_size: int) -> Iterator[pa.Table]: ...


Source = Union[_Batched, Iterable[pa.Table], pa.Table]


def _tables(source: Source, batch_size: int) -> Iterator[pa.Table]:
    """The tables of ``source``: a table itself, an organisation's ``batches(batch_size)``, or the iterable."""
    if isinstance(source, pa.Table):
        yield source
    elif callable(getattr(source, "batches", None)):
        yield from source.batches(batch_size=batch_size)  # type: ignore[union-attr]
    else:
        yield from source  # type: ignore[union-attr]


def write_parquet(
    path: str | os.PathLike[str],
    source: Source,
    *,
    batch_size: int = 500_000,
    compression: str = "zstd",
) -> int:
    """Stream ``source`` (an :class:`Organisation` or tables in :data:`EVENT_SCHEMA`) to a Parquet file.

    Each batch becomes a row group (``batch_size`` events).  Returns the number of events written.
    """
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(os.fspath(path), EVENT_SCHEMA, compression=compression) as w:
        for t in _tables(source, batch_size):
            w.write_table(t.cast(EVENT_SCHEMA) if t.schema != EVENT_SCHEMA else t)
            n += t.num_rows
    return n


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys -> nested objects (``{"host.id": x}`` -> ``{"host": {"id": x}}``), None values dropped."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if v is None:
            continue
        parts = k.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return out


def write_ecs_jsonl(
    path: str | os.PathLike[str],
    source: Source,
    *,
    batch_size: int = 100_000,
    nested: bool = True,
) -> int:
    """Stream ``source`` to ECS JSON lines (one event per line; ``.gz`` paths are gzip-compressed).

    ``nested`` writes ECS objects (``{"host": {"id": ...}}``), otherwise dotted keys as in the schema.  Null
    fields are omitted; ``@timestamp`` is RFC 3339 UTC with microseconds; each event also carries
    ``event.kind: "event"``, ``event.category: ["network"]`` and ``event.type: ["connection", "start"]``.
    Returns the number of events written.
    """
    try:
        import orjson

        def dumps(o: Any) -> bytes:
            return orjson.dumps(o)
    except ImportError:  # pragma: no cover - orjson is optional
        def dumps(o: Any) -> bytes:
            return json.dumps(o, separators=(",", ":")).encode()

    p = os.fspath(path)
    opener = gzip.open if p.endswith(".gz") else open
    n = 0
    event_fields = {"event.kind": "event", "event.category": ["network"], "event.type": ["connection", "start"]}
    with opener(p, "wb") as fh:
        for t in _tables(source, batch_size):
            # whole seconds first: Arrow's %S carries the sub-second digits of a finer unit
            secs = pc.cast(t.column("@timestamp"), pa.timestamp("s", tz="UTC"), safe=False)
            ts = pc.strftime(secs, format="%Y-%m-%dT%H:%M:%S").to_pylist()
            us = (t.column("@timestamp").cast(pa.int64()).to_numpy() % US).tolist()
            names = [c for c in t.column_names if c != "@timestamp"]
            cols = [t.column(c).to_pylist() for c in names]
            lines = []
            for i in range(t.num_rows):
                flat = {"@timestamp": f"{ts[i]}.{us[i]:06d}Z"}
                flat.update(event_fields)
                for name, col in zip(names, cols):
                    v = col[i]
                    if v is not None:
                        flat[name] = v
                lines.append(dumps(_nest(flat) if nested else flat))
            fh.write(b"\n".join(lines) + b"\n")
            n += t.num_rows
    return n
