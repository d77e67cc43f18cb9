"""The Spark-free half of :mod:`raresketch.spark`: what each Spark task runs, as plain functions over Arrow
batches, so that the distributed algorithm can be tested (and reasoned about) without a cluster.

``build_baseline`` is exact (equal to one local Baseline fed the same events in event-time order, below
``exact_limit``) because it splits the Baseline by what each part depends on:

1. ``events_to_keys``: per input partition, conform + catalogue + hashing -> one row of 64-bit keys per event.
2. ``agent_table``: the AgentTable (runs, active agents per day) is a function of the distinct (agent, day)
   pairs only; built on the driver from them, it also gives the rare threshold of every day.
3. ``build_partial``: every KeyedDistinct except ``new_rare`` is a function of its set of (key, member,
   last day) triples, so partials over *any* disjoint split of the events merge into the exact union.
4. ``first_rare_contacts``: *first-rare-contact* events are those whose condition reads ``prevalence(R)`` and
   ``process_seen(R, p)`` before the event (functions of resource R's own events) and the day's threshold
   (step 2): found exactly per partition of the *cloud resources*.
5. ``build_new_rare_partial``: ``new_rare_agent(p, a)`` learns every first-rare contact and ``new_rare(p)`` those
   made while the agent's share is below its cap, which reads ``new_rare_agent(p, a)`` before the contact: a
   function of the (process, agent) pair's own contacts, so exact per partition of (process, agent).

``partition_work`` runs steps 1 and 3 and the inputs of steps 2 and 4 in one pass over an input partition
(only the :func:`learn_columns` of the events cross from the JVM). Partials travel in the sparse form
(:meth:`raresketch.Baseline.to_sparse_bytes`: the occupied entries only) and are merged sparsely.
"""
from __future__ import annotations

import dataclasses
import weakref
from collections import Counter
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from .._core import AgentTable, KeyedDistinct, KeyedDistinctSparse, hash_pair
from ..catalog import Catalog
from ..config import Config
from ..detect import Baseline, EventKeys, KeyResolver, prepare, structure_sizes

__all__ = [
    "KEY_FIELDS", "KEYS_SCHEMA", "SORT_COLUMNS", "LEARN_COLUMNS", "learn_columns", "PARTITION_SCHEMA",
    "CLOUD_COLUMNS", "pack", "unpack", "catalog_for", "events_to_keys", "keys_to_event_keys", "partition_work",
    "build_partial", "merge_baseline_blobs", "agent_table", "first_rare_contacts", "build_new_rare_partial",
    "empty_structure", "structure_blobs", "load_structures", "assemble", "build_baseline_local",
    "CONTACT_SCHEMA", "NEW_RARE_STRUCTURES",
]

#: EventKeys fields in order: (name, kind) with kind "day" (int64 days), "key" (uint64, shipped as int64) or
#: "flag" (bool). Derived from the dataclass so that a field added to EventKeys travels too.
KEY_FIELDS: list[tuple[str, str]] = []
for _f in dataclasses.fields(EventKeys):
    _kind = "day" if _f.name == "days" else ("flag" if _f.name.startswith(("has_", "is_")) else "key")
    KEY_FIELDS.append((_f.name, _kind))

#: One row per event: ``_ts`` (microseconds since the epoch) then the EventKeys fields.
KEYS_SCHEMA = pa.schema([pa.field("_ts", pa.int64())] + [
    pa.field(n, pa.bool_() if k == "flag" else pa.int64()) for n, k in KEY_FIELDS])

#: Total order of events inside a partition: event time, then the keys (events equal in every key are
#: interchangeable for the baseline, so the order is deterministic whatever the input order).
SORT_COLUMNS = ["_ts", "agent", "process", "resource", "kind", "im", "binary", "parent_engine", "cmdline"]


#: The event columns the baseline reads (``raresketch.detect.prepare``: conform, contacts, catalogue, keys),
#: in :data:`raresketch.EVENT_SCHEMA` order; the others (ports, pids, users, source address, ...) only travel
#: to ``score``. ``host.name`` is added when an ``allow_agents`` pattern names hosts (:func:`learn_columns`).
LEARN_COLUMNS = ("@timestamp", "host.id", "host.os.type", "process.executable", "process.name",
                 "process.hash.sha256", "process.code_signature.subject_name", "process.code_signature.trusted",
                 "process.code_signature.exists", "process.pe.original_file_name", "process.command_line",
                 "process.parent.executable", "process.parent.name", "destination.ip", "destination.domain",
                 "raresketch.domain_source", "network.direction")


def learn_columns(config: Config, available: Iterable[str] | None = None) -> list[str]:
    """The columns :func:`events_to_keys` needs under ``config`` (those of ``available`` when given: a missing
    column is read as nulls, as ``conform`` does)."""
    cols = list(LEARN_COLUMNS)
    if any(p.lower().startswith("name:") for p in config.allow_agents):
        cols.insert(2, "host.name")
    if available is not None:
        have = set(available)
        cols = [c for c in cols if c in have]
    return cols


# ---- bytes on the wire ------------------------------------------------------------------------------
_PACK_MAGIC = b"RSZ1"


def pack(data: bytes) -> bytes:
    """Compress a serialised structure for shipping (zstd through pyarrow; the payload keeps its own
    version and CRC-32). Sparse partials shrink 50x or more."""
    return _PACK_MAGIC + len(data).to_bytes(8, "little") + pa.compress(data, codec="zstd", asbytes=True)


def unpack(blob: bytes) -> bytes:
    blob = bytes(blob)
    if blob[:4] != _PACK_MAGIC or len(blob) < 12:
        raise ValueError("not a packed raresketch structure (bad magic)")
    n = int.from_bytes(blob[4:12], "little")
    try:
        return pa.decompress(blob[12:], decompressed_size=n, codec="zstd", asbytes=True)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(f"corrupt packed raresketch structure: {e}") from None


# ---- step 1: events -> keys -------------------------------------------------------------------------
_CATALOGS: dict[str | None, Catalog] = {}
_RESOLVERS: "weakref.WeakKeyDictionary[Catalog, KeyResolver]" = weakref.WeakKeyDictionary()  # per-stream caches


def catalog_for(config: Config) -> Catalog:
    """One catalogue per worker process and catalogue file (loading it costs about 0.3 s)."""
    key = config.catalog_file
    if key not in _CATALOGS:
        _CATALOGS[key] = Catalog(key) if key else Catalog()
    return _CATALOGS[key]


def events_to_keys(batch: pa.Table | pa.RecordBatch, config: Config, catalog: Catalog | None = None) -> pa.Table:
    """Conform, resolve and hash a batch of events with :func:`raresketch.detect.prepare`, the Engine's own
    first step: the same rows are dropped (invalid timestamp or host, days outside [1, 65535], past
    ``max_future_days``, allow-listed agents or destinations when ``allowlist_learn`` is false), except
    "too old", which needs the stream's order (Spark's input is in event order after its sort). Rows come out
    in event-time order within the batch (sorting across batches happens in Spark)."""
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    catalog = catalog or catalog_for(config)
    resolver = _RESOLVERS.get(catalog)
    if resolver is None:
        resolver = _RESOLVERS[catalog] = KeyResolver(catalog)
    p = prepare(batch, config, resolver, Counter(), Counter(), today=None)
    if p is None or p.kidx.size == 0:
        return KEYS_SCHEMA.empty_table()
    ev, ts = p.ev, p.ts
    cols = [pa.array(ts, pa.int64())]
    for name, kind in KEY_FIELDS:
        v = getattr(ev, name)
        if kind == "flag":
            cols.append(pa.array(np.asarray(v, dtype=bool)))
        elif kind == "day":
            cols.append(pa.array(np.asarray(v, dtype=np.int64)))
        else:
            cols.append(pa.array(np.asarray(v, dtype=np.uint64).view(np.int64)))
    return pa.Table.from_arrays(cols, schema=KEYS_SCHEMA)


def keys_to_event_keys(batch: pa.Table | pa.RecordBatch) -> EventKeys:
    """Inverse of :func:`events_to_keys` (without the timestamp)."""
    out = {}
    for name, kind in KEY_FIELDS:
        col = batch.column(name)
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        a = col.to_numpy(zero_copy_only=False)
        if kind == "flag":
            out[name] = a.astype(bool)
        elif kind == "day":
            out[name] = a.astype(np.int64)
        else:
            out[name] = np.ascontiguousarray(a.astype(np.int64)).view(np.uint64)
    return EventKeys(**out)


def _column(batch: pa.Table | pa.RecordBatch, name: str) -> np.ndarray:
    col = batch.column(name)
    return (col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col).to_numpy(zero_copy_only=False)


def _sorted(batch: pa.Table) -> pa.Table:
    return batch.sort_by([(c, "ascending") for c in SORT_COLUMNS])


# ---- step 2: AgentTable and daily thresholds ----------------------------------------------------------
def agent_table(agents: np.ndarray, days: np.ndarray, config: Config, base: Baseline | None = None
                ) -> tuple[AgentTable, dict[int, int]]:
    """The AgentTable of the events whose distinct (agent, day) pairs are given (continuing ``base``'s), and
    the rare threshold of each of those days: ``active(d)`` counts the agents with an event on days d-W..d-1,
    constant through day d for in-order input, so the distinct pairs in day order reproduce it exactly."""
    c = config
    at = AgentTable.from_bytes(base.agents.to_bytes()) if base is not None else AgentTable(
        c.max_agents, c.training_days, c.seed)
    agents = np.asarray(agents).astype(np.int64).view(np.uint64)
    days = np.asarray(days, dtype=np.int64)
    if agents.size == 0:
        return at, {}
    order = np.lexsort((agents, days))
    agents, days = agents[order], days[order]
    _, active = at.observe(agents, days)
    first = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    thr = c.rare_threshold(active[first])
    return at, {int(d): int(t) for d, t in zip(days[first], thr)}


# ---- step 3: partial baselines ------------------------------------------------------------------------
def empty_structure(config: Config, name: str) -> KeyedDistinct:
    """An empty KeyedDistinct sized as ``Baseline(config).structures[name]`` (allocation is lazy zeros)."""
    c = config
    return KeyedDistinct(*structure_sizes(c.capacity)[name], c.training_days, c.exact_limit, c.seed)


def build_partial(key_batches: Iterable[pa.Table | pa.RecordBatch], config: Config) -> bytes | None:
    """A partial baseline over one partition's events (batches in event order), in the sparse form
    (:meth:`Baseline.to_sparse_bytes`). Its AgentTable and ``new_rare`` structures are emptied: they are rebuilt
    exactly by steps 2, 4 and 5. None if empty."""
    bl = Baseline(config)
    n = 0
    for b in key_batches:
        if b.num_rows:
            bl.observe(keys_to_event_keys(b))
            n += b.num_rows
    if n == 0:
        return None
    c = config
    bl.agents = AgentTable(c.max_agents, c.training_days, c.seed)
    for name in NEW_RARE_STRUCTURES:
        bl.structures[name] = empty_structure(c, name)
    return bl.to_sparse_bytes()


def merge_baseline_blobs(blobs: Iterable[bytes], into: Baseline | None = None) -> bytes | None:
    """Merge sparse baselines (a level of the tree reduction) into one sparse blob, or into ``into`` (in place;
    then returns None). O(entries) per blob plus one O(capacity) export."""
    out = into
    for blob in blobs:
        if out is None:
            out = Baseline.from_sparse_bytes(blob)
        else:
            out.merge_sparse(blob)
    return None if out is None or into is not None else out.to_sparse_bytes()


# ---- steps 1 + 3 fused, per input partition ------------------------------------------------------------
#: Rows out of :func:`partition_work`: ``part`` 0 = the partition's partial baseline (``blob``), 1 = one
#: distinct (agent, day) pair (``agent``, ``days``), 2 = one cloud event (the :data:`CLOUD_COLUMNS`).
PARTITION_SCHEMA = pa.schema([pa.field("part", pa.int32()), pa.field("_ts", pa.int64()),
                              pa.field("days", pa.int64()), pa.field("agent", pa.int64()),
                              pa.field("process", pa.int64()), pa.field("resource", pa.int64()),
                              pa.field("has_process", pa.bool_()), pa.field("blob", pa.binary())])
#: What step 4 reads of a cloud event.
CLOUD_COLUMNS = ["_ts", "days", "agent", "process", "resource", "has_process"]


def partition_work(batches: Iterable[pa.Table | pa.RecordBatch], config: Config, catalog: Catalog | None = None,
                   chunk_rows: int = 100_000) -> Iterator[pa.RecordBatch]:
    """Steps 1 and 3 of one input partition in one pass: keys of its events (in chunks of ``chunk_rows``: the
    Engine's batch size), sorted in event order, learned into one partial baseline; out come the sparse
    partial, the distinct (agent, day) pairs (step 2's input) and the cloud events' :data:`CLOUD_COLUMNS`
    (step 4's), as rows of :data:`PARTITION_SCHEMA`. Memory: the partition's keys (81 bytes per event) and one
    Baseline."""
    catalog = catalog or catalog_for(config)
    keys, buf, n = [], [], 0
    for b in batches:
        if b.num_rows:
            buf.append(b if isinstance(b, pa.Table) else pa.Table.from_batches([b]))
            n += b.num_rows
        if n >= chunk_rows:
            keys.append(events_to_keys(pa.concat_tables(buf), config, catalog))
            buf, n = [], 0
    if buf:
        keys.append(events_to_keys(pa.concat_tables(buf), config, catalog))
    keys = [k for k in keys if k.num_rows]
    if not keys:
        return
    k = _sorted(pa.concat_tables(keys).combine_chunks())
    blob = build_partial([k], config)
    yield _part_rows(0, 1, blob=pa.array([blob], pa.binary()))
    ad = k.select(["agent", "days"]).group_by(["agent", "days"]).aggregate([])
    yield _part_rows(1, ad.num_rows, agent=ad["agent"].combine_chunks(), days=ad["days"].combine_chunks())
    cloud = k.filter(k["is_cloud"])
    if cloud.num_rows:
        yield _part_rows(2, cloud.num_rows, **{c: cloud.column(c).combine_chunks() for c in CLOUD_COLUMNS})


def _part_rows(part: int, n: int, **cols: pa.Array) -> pa.RecordBatch:
    arrays = [pa.array(np.full(n, part, np.int32))]
    for f in list(PARTITION_SCHEMA)[1:]:
        arrays.append(cols[f.name] if f.name in cols else pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=PARTITION_SCHEMA)


# ---- step 4: first rare contacts, partitioned by cloud resource -----------------------------------------
#: The structures rebuilt by steps 4-5 (every other structure is a union of partials).
NEW_RARE_STRUCTURES = ("new_rare", "new_rare_agent")

#: One row per first-rare contact: what step 5 needs.
CONTACT_SCHEMA = pa.schema([pa.field("_ts", pa.int64()), pa.field("process", pa.int64()),
                            pa.field("agent", pa.int64()), pa.field("resource", pa.int64()),
                            pa.field("days", pa.int64())])


def first_rare_contacts(cloud_batches: Iterable[pa.Table | pa.RecordBatch], config: Config,
                        thresholds: dict[int, int], base_structures: dict[str, bytes] | None = None
                        ) -> pa.Table:
    """The first-rare contacts among one partition of the cloud events (:data:`CLOUD_COLUMNS` of all events
    of its resources, in event order): ``prevalence(R) <= thr(d)``, ``process_seen(R, p)`` not live and a known
    process, evaluated with per-resource state continuing the base baseline's (``base_structures``: sparse
    ``prevalence`` and ``process_seen``, :func:`structure_blobs`). Rows of :data:`CONTACT_SCHEMA`."""
    st = load_structures(config, ("prevalence", "process_seen"), base_structures)
    prev, seen = st["prevalence"], st["process_seen"]
    lo = min(thresholds) if thresholds else 0
    table = np.zeros((max(thresholds) - lo + 1) if thresholds else 1, dtype=np.int64)
    for d, t in thresholds.items():
        table[d - lo] = t
    out = []
    for b in cloud_batches:
        if not b.num_rows:
            continue
        d = _column(b, "days").astype(np.int64)
        a, p, r = (np.ascontiguousarray(_column(b, c).astype(np.int64)).view(np.uint64)
                   for c in ("agent", "process", "resource"))
        pv = prev.observe(r, a, d)[0]
        ps = seen.observe(r, p, d)[1]
        idx = d - lo
        if idx.min() < 0 or idx.max() >= table.shape[0]:
            raise ValueError("a cloud event's day has no threshold (keys and agent-days disagree)")
        fr = np.flatnonzero((pv <= table[idx]) & (ps == 0) & _column(b, "has_process").astype(bool))
        if fr.size:
            ts = _column(b, "_ts")
            out.append(pa.table([pa.array(ts[fr]), pa.array(p[fr].view(np.int64)), pa.array(a[fr].view(np.int64)),
                                 pa.array(r[fr].view(np.int64)), pa.array(d[fr])], schema=CONTACT_SCHEMA))
    return pa.concat_tables(out) if out else CONTACT_SCHEMA.empty_table()


# ---- step 5: new_rare, partitioned by (process, agent) -------------------------------------------------
def structure_blobs(baseline: Baseline, names: Iterable[str]) -> dict[str, bytes]:
    """Named structures of ``baseline`` in the sparse form (for a broadcast)."""
    return {n: KeyedDistinctSparse.of(baseline.structures[n]).to_bytes() for n in names}


def load_structures(config: Config, names: Iterable[str], blobs: dict[str, bytes] | None) -> dict[str, KeyedDistinct]:
    """The named structures from :func:`structure_blobs` (validated), or empty ones sized by ``config``."""
    if blobs:
        return {n: KeyedDistinctSparse.from_bytes(blobs[n]).to_dense() for n in names}
    return {n: empty_structure(config, n) for n in names}


def build_new_rare_partial(contacts: Iterable[pa.Table | pa.RecordBatch], config: Config,
                           base_structures: dict[str, bytes] | None = None) -> bytes | None:
    """``new_rare_agent`` and ``new_rare`` learned from one partition of the first-rare contacts (all contacts
    of its (process, agent) pairs, in event order), as Baseline.observe learns them: every contact counts for
    the pair, and for the process only while the pair's prior count is below the per-agent cap. A sparse
    Baseline holding only those two structures, None if the partition is empty."""
    bl = Baseline(config)
    st = load_structures(config, NEW_RARE_STRUCTURES, base_structures)
    bl.structures.update(st)
    n = 0
    for b in contacts:
        if not b.num_rows:
            continue
        p, a, r = (_column(b, c).view(np.uint64) for c in ("process", "agent", "resource"))
        d = _column(b, "days")
        per_agent = st["new_rare_agent"].observe(hash_pair(p, a), r, d)[0]
        st["new_rare"].observe(p, r, d, learn=per_agent < config.explorer_cap_per_agent)
        n += b.num_rows
    return bl.to_sparse_bytes() if n else None


def assemble(config: Config, agents: AgentTable, partials: Iterable[bytes], new_rare: Iterable[bytes],
             base: Baseline | None = None) -> Baseline:
    """The final baseline: ``base`` (or an empty one) merged with the sparse partials and the sparse new_rare
    partials, with the driver-built AgentTable (the partials' are empty)."""
    out = Baseline.from_bytes(base.to_bytes()) if base is not None else Baseline(config)
    merge_baseline_blobs(partials, into=out)
    merge_baseline_blobs(new_rare, into=out)
    out.agents = agents
    return out


# ---- the whole algorithm in one process (tests, and the reference for the Spark version) --------------
def _split(table: pa.Table, key: np.ndarray, parts: int) -> Iterator[pa.Table]:
    h = (key.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
    for i in range(parts):
        sel = np.flatnonzero(h % np.uint64(parts) == i)
        yield table.take(pa.array(sel))


def build_baseline_local(events: Iterable[pa.Table], config: Config | None = None, parts: int = 4,
                         base: Baseline | None = None) -> Baseline:
    """Run the distributed algorithm in one process over ``parts`` arbitrary input partitions (round robin),
    then by cloud resource for step 4 and by (process, agent) for step 5: what
    ``raresketch.spark.build_baseline`` computes, without Spark."""
    config = config or (base.config if base is not None else Config())
    cat = catalog_for(config)
    tab = pa.concat_tables(list(events)).combine_chunks()
    rows = np.arange(tab.num_rows)
    out = pa.concat_tables([pa.Table.from_batches(list(partition_work(
        [tab.take(pa.array(rows[i::parts]))], config, cat)), schema=PARTITION_SCHEMA) for i in range(parts)])
    part = _column(out, "part")
    pairs = out.filter(pa.array(part == 1))
    at, thr = agent_table(_column(pairs, "agent"), _column(pairs, "days"), config, base)
    partials = [b for b in out.filter(pa.array(part == 0))["blob"].to_pylist()]
    cloud = out.filter(pa.array(part == 2)).select(CLOUD_COLUMNS)
    base_s = structure_blobs(base, ("prevalence", "process_seen", *NEW_RARE_STRUCTURES)) if base else None
    order = [(c, "ascending") for c in ("_ts", "agent", "process", "resource")]
    contacts = pa.concat_tables([first_rare_contacts([p.sort_by(order)], config, thr, base_s)
                                 for p in _split(cloud, _column(cloud, "resource"), parts)])
    pa_key = (_column(contacts, "process") * 31 + _column(contacts, "agent")).astype(np.int64)
    nr = [build_new_rare_partial([p.sort_by([("_ts", "ascending"), ("resource", "ascending")])], config, base_s)
          for p in _split(contacts, pa_key, parts)]
    return assemble(config, at, partials, [p for p in nr if p], base)
