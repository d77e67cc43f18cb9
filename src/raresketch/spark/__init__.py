"""Train and score on Apache Spark (PySpark 4.x, public APIs only): ``pip install 'raresketch[spark]'``.

- :func:`build_baseline` (DataFrame of events -> :class:`~raresketch.Baseline`): exact, equal to the baseline a
  local Engine builds from the same events in event-time order (counts below ``exact_limit``); see
  :mod:`raresketch.spark._core` for why each part is exact and docs/SPARK.md for the figures.
- :func:`score` (DataFrame of events, Baseline -> DataFrame of alerts with ECS columns): the baseline is
  broadcast; events are repartitioned by ``host.id`` and sorted by event time inside each partition, where an
  Engine scores then learns them. Per-agent state and dedup are exact; org-level counts see the broadcast
  baseline plus the partition's own events only (docs/SPARK.md, "What differs from the local engine").

Workers must import raresketch: install it on every node, or set ``PYSPARK_PYTHON`` to an interpreter that has
it (and ``PYTHONPATH`` for a source checkout) before the SparkSession starts.
"""
from __future__ import annotations

import math
import time
from typing import Any, Iterator

import pyarrow as pa

from . import _core as core
from ..alerts import ALERT_TABLE_SCHEMA, alerts_to_table  # noqa: F401 (ALERT_TABLE_SCHEMA re-exported)
from ..config import Config
from ..detect import Baseline, Engine, Guard
from ..events import EVENT_SCHEMA

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("raresketch.spark needs PySpark: pip install 'raresketch[spark]'") from e

__all__ = ["build_baseline", "score", "ALERT_SPARK_SCHEMA", "KEYS_SPARK_SCHEMA", "event_keys_df",
           "baseline_to_blob", "baseline_from_blob", "AlertDeduper"]

_BLOB = T.StructType([T.StructField("blob", T.BinaryType(), False)])


def _spark_type(t: pa.DataType) -> T.DataType:
    if pa.types.is_binary(t):
        return T.BinaryType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    if pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_int32(t):
        return T.IntegerType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_string(t):
        return T.StringType()
    raise TypeError(f"no Spark type for {t}")


def _spark_schema(schema: pa.Schema) -> T.StructType:
    return T.StructType([T.StructField(f.name, _spark_type(f.type), True) for f in schema])


#: The alerts DataFrame's schema: :data:`raresketch.alerts.ALERT_TABLE_SCHEMA` (ECS names; evidence as JSON).
ALERT_SPARK_SCHEMA = _spark_schema(ALERT_TABLE_SCHEMA)
#: One row of 64-bit keys per event (step 1 of build_baseline).
KEYS_SPARK_SCHEMA = _spark_schema(core.KEYS_SCHEMA)
#: One row per first-rare contact (step 4 of build_baseline).
CONTACTS_SPARK_SCHEMA = _spark_schema(core.CONTACT_SCHEMA)
#: The rows out of the fused per-partition job (partial, agent-day pairs, cloud events).
PARTITION_SPARK_SCHEMA = _spark_schema(core.PARTITION_SCHEMA)


def _c(name: str):
    """A column by its ECS name (dots need backticks in Spark)."""
    return F.col(f"`{name}`")


def _plain_names(df: DataFrame) -> tuple[DataFrame, list[str]]:
    """PySpark's ``mapInArrow`` resolves input columns by name and trips over dotted ECS names: rename them
    positionally (``_c0``, ``_c1``, ...) and give the worker the real names back."""
    names = list(df.columns)
    return df.toDF(*[f"_c{i}" for i in range(len(names))]), names


def _renamed(batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(batch.columns, names=names)


def baseline_to_blob(baseline: Baseline) -> bytes:
    """Versioned, checksummed baseline bytes, zstd-compressed for broadcast or a BinaryType column."""
    return core.pack(baseline.to_bytes())


def baseline_from_blob(blob: bytes) -> Baseline:
    return Baseline.from_bytes(core.unpack(blob))


# ---- build_baseline ----------------------------------------------------------------------------------
def event_keys_df(df: DataFrame, config: Config) -> DataFrame:
    """Step 1: conform, resolve (catalogue) and hash every event, in the input's own partitions (no shuffle)."""
    cfg = config.to_dict()
    df, names = _plain_names(df)

    def keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        c = Config.from_dict(cfg)
        cat = core.catalog_for(c)
        for b in batches:
            out = core.events_to_keys(_renamed(b, names), c, cat)
            if out.num_rows:
                yield from out.to_batches()

    return df.mapInArrow(keys, KEYS_SPARK_SCHEMA)


def _tree_merge(parts: DataFrame, fanin: int, stats: dict[str, Any] | None, label: str) -> list[bytes]:
    """Merge the sparse baseline blobs of ``parts`` in a tree of ``fanin``-way merges: each level is a
    round-robin repartition into ceil(n / fanin) tasks, each merging its blobs; the last <= fanin blobs are
    returned (the driver merges them into the result)."""
    def merge_part(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        out = core.merge_baseline_blobs(v for b in batches for v in b.column(0).to_pylist())
        if out is not None:
            yield pa.RecordBatch.from_arrays([pa.array([out], pa.binary())], names=["blob"])

    n = parts.rdd.getNumPartitions()
    levels = 0
    while n > fanin:
        n = math.ceil(n / fanin)
        parts = parts.repartition(n).mapInArrow(merge_part, _BLOB)
        levels += 1
    t0 = time.perf_counter()
    blobs = parts.toArrow().column("blob").to_pylist()
    if stats is not None:
        stats[f"{label}_driver_blobs"] = len(blobs)
        stats[f"{label}_driver_blob_bytes"] = sum(len(b) for b in blobs)
        stats[f"{label}_tree_levels"] = levels
        stats[f"{label}_job_s"] = time.perf_counter() - t0
    return blobs


def build_baseline(df: DataFrame, config: Config | None = None, *, base: Baseline | None = None,
                   partitions: int | None = None, fanin: int = 16,
                   stats: dict[str, Any] | None = None) -> Baseline:
    """Build the baseline of the events in ``df`` (ECS columns of :data:`raresketch.EVENT_SCHEMA`).

    Equal to ``Engine(config).process(all events sorted by @timestamp).baseline`` for every count below
    ``exact_limit`` (beyond it both are estimates within the documented error) and for the AgentTable. With
    ``base``, continues that baseline (the events should be newer than ``base.today``: a daily update costs
    one day of events, not thirty).

    Jobs: (1+3) one pass per input partition over the columns the baseline reads: keys, sorted in event
    order, learned into a sparse partial baseline; out come the partial, the distinct (agent, day) pairs and
    the cloud events (persisted); (2) distinct (agent, day) pairs -> driver AgentTable and daily thresholds;
    partials tree-merged sparsely; (4) first-rare contacts per partition of cloud resources; (5) ``new_rare``
    and ``new_rare_agent`` per partition of (process, agent), tree-merged. ``partitions`` sets the shuffle
    partitions of (4) and (5) (default: Spark's ``spark.sql.shuffle.partitions``). ``stats``, if given,
    receives sizes and timings.
    """
    config = config or (base.config if base is not None else Config())
    spark = df.sparkSession
    cfg = config.to_dict()
    t0 = time.perf_counter()
    cols, names = _plain_names(df.select(*[_c(c) for c in core.learn_columns(config, df.columns)]))

    def work(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from core.partition_work((_renamed(b, names) for b in batches), Config.from_dict(cfg))

    fused = cols.mapInArrow(work, PARTITION_SPARK_SCHEMA).persist()
    try:
        # (2) AgentTable and the rare threshold of each day, on the driver from distinct (agent, day) pairs.
        pairs = fused.where(F.col("part") == 1).select("agent", "days").distinct().toArrow()
        t_pairs = time.perf_counter()
        agents, thresholds = core.agent_table(pairs["agent"].to_numpy(), pairs["days"].to_numpy(), config, base)
        # (3) the partials (one per input partition), merged sparsely.
        partials = _tree_merge(fused.where(F.col("part") == 0).select("blob"), fanin, stats, "partials")

        # (4) first-rare contacts: cloud events partitioned by resource, thresholds and base structures broadcast.
        base_s = (core.structure_blobs(base, ("prevalence", "process_seen", *core.NEW_RARE_STRUCTURES))
                  if base is not None else None)
        bc = spark.sparkContext.broadcast((thresholds, base_s))

        def contacts_of(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            thr, bs = bc.value
            yield from core.first_rare_contacts(batches, Config.from_dict(cfg), thr, bs).to_batches()

        cloud = fused.where(F.col("part") == 2).select(*core.CLOUD_COLUMNS)
        cloud = cloud.repartition(partitions, "resource") if partitions else cloud.repartition("resource")
        contacts = (cloud.sortWithinPartitions("_ts", "agent", "process", "resource")
                    .mapInArrow(contacts_of, CONTACTS_SPARK_SCHEMA))

        # (5) new_rare and new_rare_agent: first-rare contacts partitioned by (process, agent), in event order.
        def new_rare(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            _, bs = bc.value
            blob = core.build_new_rare_partial(batches, Config.from_dict(cfg), bs)
            if blob is not None:
                yield pa.RecordBatch.from_arrays([pa.array([blob], pa.binary())], names=["blob"])

        contacts = (contacts.repartition(partitions, "process", "agent") if partitions
                    else contacts.repartition("process", "agent"))
        nr_parts = contacts.sortWithinPartitions("_ts", "resource").mapInArrow(new_rare, _BLOB)
        nr = _tree_merge(nr_parts, fanin, stats, "new_rare")
        bc.unpersist()
    finally:
        fused.unpersist()
    t_merge = time.perf_counter()
    out = core.assemble(config, agents, partials, nr, base)
    if stats is not None:
        stats.update({"agent_day_pairs": pairs.num_rows, "pairs_s": t_pairs - t0,
                      "driver_merge_s": time.perf_counter() - t_merge, "total_s": time.perf_counter() - t0,
                      "baseline_bytes": len(out.to_bytes()), "baseline_sparse_bytes": len(out.to_sparse_bytes())})
    return out


# ---- score -------------------------------------------------------------------------------------------
#: Rows handed to one ``Engine.process`` call in ``score`` (Arrow batches from the JVM are 10k rows; the
#: Engine's fixed cost per call is paid once per chunk).
_SCORE_CHUNK = 100_000


def _chunks(batches: Iterator[pa.RecordBatch], names: list[str], rows: int) -> Iterator[pa.Table]:
    buf, n = [], 0
    for b in batches:
        if b.num_rows:
            buf.append(_renamed(b, names))
            n += b.num_rows
        if n >= rows:
            yield pa.Table.from_batches(buf)
            buf, n = [], 0
    if buf:
        yield pa.Table.from_batches(buf)


#: Tie-breakers after @timestamp inside a partition (events of one agent at the same microsecond).
SCORE_ORDER = ["@timestamp", "host.id", "process.pid", "process.name", "destination.domain", "destination.ip",
               "destination.port"]


def score(df: DataFrame, baseline: Baseline, config: Config | None = None, *, partitions: int | None = None
          ) -> DataFrame:
    """Alerts (ECS columns, :data:`ALERT_SPARK_SCHEMA`) for the events of ``df``, scored against ``baseline``.

    The baseline is broadcast in its sparse form; events are repartitioned by ``host.id`` (``partitions``, default
    ``spark.sql.shuffle.partitions``) and sorted by (@timestamp, host.id, pid, ...) within each partition,
    where one Engine scores then learns them in order: per-agent facts (agent runs and activation, "this agent
    used that service kind") and dedup per (alert name, agent, process, destination) are exact; org-level
    counts see the baseline plus this partition's events, not the other partitions' (score one day against
    the baseline of the days before it: then the active-agent count and threshold are exact too). The
    volume guard (``max_alerts_per_day`` per detector and day) is applied globally afterwards, first alerts
    in event time kept. The input is not cached: the result is lazy like any DataFrame.
    """
    config = config or baseline.config
    spark = df.sparkSession
    bc = spark.sparkContext.broadcast(baseline.to_sparse_bytes())
    cfg = config.replace(max_alerts_per_day=1 << 62).to_dict()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        c = Config.from_dict(cfg)
        eng = None
        for t in _chunks(batches, names, _SCORE_CHUNK):
            if eng is None:   # deserialise only in partitions with events
                eng = Engine(c, catalog=core.catalog_for(c), baseline=Baseline.from_sparse_bytes(bc.value))
            alerts = eng.process(t)
            if alerts:
                yield from alerts_to_table(alerts).to_batches()

    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    cols = [c for c in SCORE_ORDER if c in df.columns]
    keep = [_c(c) for c in df.columns if c in EVENT_SCHEMA.names]      # conform drops the others anyway
    parts, names = _plain_names(df.select(*keep).repartition(n, _c("host.id"))
                                .sortWithinPartitions(*[_c(c) for c in cols]))
    alerts = parts.mapInArrow(run, ALERT_SPARK_SCHEMA)
    # The global volume guard (per detector and day), by the same Guard as the local engine, over all alerts in
    # event order: alerts are few, so one partition holds them.
    gcfg = config.replace(dedup_hours=0, max_alerts_per_agent_day=None).to_dict()

    def volume(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        guard = Guard(Config.from_dict(gcfg))
        for b in batches:
            kept = guard.filter_table(pa.Table.from_batches([_renamed(b, anames)]))
            if kept.num_rows:
                yield from kept.to_batches()

    order = ["@timestamp", "host.id", "rule.name", "raresketch.destination"]
    ordered, anames = _plain_names(alerts.repartition(1).sortWithinPartitions(*[_c(c) for c in order]))
    return ordered.mapInArrow(volume, ALERT_SPARK_SCHEMA)


class AlertDeduper:
    """Dedup across calls of :func:`score` (micro-batches, daily jobs), by the local engine's :class:`Guard`:
    keeps the last emitted time of each (alert, agent, process, destination) and drops an alert less than
    ``dedup_hours`` after it. Alerts are few (thousands a day), so this runs on the driver over the collected
    alerts table."""

    def __init__(self, dedup_hours: float = 24.0):
        self.guard = Guard(Config(dedup_hours=dedup_hours, max_alerts_per_day=1 << 62, max_alerts_per_agent_day=None))

    @property
    def suppressed(self) -> int:
        return self.guard.suppressed["dedup"]

    def filter(self, alerts: pa.Table) -> pa.Table:
        return self.guard.filter_table(alerts.sort_by([("@timestamp", "ascending")]))


def local_session(cores: int = 2, app: str = "raresketch") -> SparkSession:
    """A local-mode SparkSession for tests, examples and benches: UTC session time zone, small shuffles,
    no UI, Arrow batches of 10k rows."""
    return (SparkSession.builder.master(f"local[{cores}]").appName(app)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", str(2 * cores))
            .config("spark.default.parallelism", str(2 * cores))
            .config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "10000")
            .getOrCreate())
