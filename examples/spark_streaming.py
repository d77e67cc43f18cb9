"""Structured Streaming with raresketch: score micro-batches of events against a baseline, refresh the baseline.

    PYSPARK_PYTHON=$(which python) python examples/spark_streaming.py --demo /tmp/rs-stream

A file source (a folder where a collector drops Parquet files of ECS events) is read as a stream; each micro-batch
(``foreachBatch``) is

1. scored with :func:`raresketch.spark.score` against the current baseline (broadcast), its alerts deduplicated
   across micro-batches (:class:`raresketch.spark.AlertDeduper`) and appended to the alerts folder;
2. staged (appended to a staging folder) to be learned;
3. learned at the next refresh: when a micro-batch starts a new day of event time (``daily``) or every
   ``refresh_batches`` micro-batches, ``build_baseline(staged events, base=current)`` continues the baseline with
   the staged events (exact: the same baseline as one Engine over all events) and the staging folder is cleared.

Between refreshes the org-level counts are those of the baseline (the last refresh) plus each partition's own
events of the micro-batch: see docs/SPARK.md. The baseline is saved after each refresh (``baseline_path``), so
a restarted stream resumes from it; the dedup state is in memory (a restart may repeat alerts of the last 24 h).
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from raresketch import Baseline, Config, EVENT_SCHEMA
from raresketch import spark as rs_spark

_US_PER_DAY = 86_400_000_000


def event_spark_schema():
    """The stream's schema (a file source needs one): EVENT_SCHEMA in Spark types."""
    return rs_spark._spark_schema(EVENT_SCHEMA)


class StreamScorer:
    """The ``foreachBatch`` callback and its state (baseline, staging, dedup)."""

    def __init__(self, spark, baseline: Baseline, work_dir: str | os.PathLike, *, daily: bool = True,
                 refresh_batches: int | None = None, partitions: int | None = None,
                 baseline_path: str | None = None):
        self.spark = spark
        self.baseline = baseline
        self.config = baseline.config
        self.work = Path(work_dir)
        self.alerts_dir = self.work / "alerts"
        self.staging = self.work / "staging"
        self.daily = daily
        self.refresh_batches = refresh_batches
        self.partitions = partitions
        self.baseline_path = baseline_path
        self.dedup = rs_spark.AlertDeduper(self.config.dedup_hours)
        self.staged_batches = 0
        self.staged_day: int | None = None
        self.refreshes = 0
        self.alerts = 0
        self.alerts_dir.mkdir(parents=True, exist_ok=True)

    def refresh(self) -> None:
        """Learn the staged events into the baseline (exact continuation) and clear the staging folder."""
        if not self.staged_batches:
            return
        staged = self.spark.read.parquet(str(self.staging))
        self.baseline = rs_spark.build_baseline(staged, self.config, base=self.baseline,
                                                partitions=self.partitions)
        if self.baseline_path:
            self.baseline.save(self.baseline_path)
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staged_batches, self.staged_day = 0, None
        self.refreshes += 1

    def __call__(self, batch_df, batch_id: int) -> None:
        batch_df = batch_df.persist()
        try:
            row = batch_df.agg(rs_spark.F.min(rs_spark._c("@timestamp")).alias("t")).first()
            if row is None or row["t"] is None:
                return
            first_day = int(row["t"].timestamp() * 1e6) // _US_PER_DAY
            if self.staged_batches and ((self.daily and self.staged_day is not None and first_day > self.staged_day)
                                        or (self.refresh_batches and self.staged_batches >= self.refresh_batches)):
                self.refresh()
            alerts = rs_spark.score(batch_df, self.baseline, partitions=self.partitions).toArrow()
            alerts = self.dedup.filter(alerts.cast(rs_spark.ALERT_TABLE_SCHEMA))
            if alerts.num_rows:
                pq.write_table(alerts, self.alerts_dir / f"batch-{batch_id:08d}.parquet")
                self.alerts += alerts.num_rows
            batch_df.write.mode("append").parquet(str(self.staging))
            last = batch_df.agg(rs_spark.F.max(rs_spark._c("@timestamp")).alias("t")).first()["t"]
            self.staged_day = int(last.timestamp() * 1e6) // _US_PER_DAY
            self.staged_batches += 1
        finally:
            batch_df.unpersist()

    def read_alerts(self) -> pa.Table:
        files = sorted(self.alerts_dir.glob("*.parquet"))
        if not files:
            return rs_spark.ALERT_TABLE_SCHEMA.empty_table()
        return pa.concat_tables([pq.read_table(f) for f in files])


def run_stream(spark, source_dir: str, scorer: StreamScorer, checkpoint_dir: str, *, files_per_batch: int = 1,
               available_now: bool = True):
    """Start the stream over ``source_dir`` (Parquet files of events); with ``available_now`` process what is
    there and stop (tests, scheduled jobs), else run until stopped. Returns the StreamingQuery."""
    stream = (spark.readStream.schema(event_spark_schema()).option("maxFilesPerTrigger", files_per_batch)
              .parquet(source_dir))
    writer = stream.writeStream.foreachBatch(scorer).option("checkpointLocation", checkpoint_dir)
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime="1 minute")
    return writer.start()


def _demo(root: str) -> None:
    from raresketch.simulate import Organisation

    root_p = Path(root)
    shutil.rmtree(root_p, ignore_errors=True)
    src = root_p / "incoming"
    src.mkdir(parents=True)
    cfg = Config(capacity=1 << 16, max_agents=1 << 12)
    org = Organisation(agents=40, days=24, seed=3, events_per_agent_day=60)
    train_days = 18
    spark = rs_spark.local_session()
    # Train on the first 18 days from the lake (here: one Parquet file), then stream the rest, one file per day.
    history = pa.concat_tables(list(org.batches(start_day=0, end_day=train_days)))
    pq.write_table(history, root_p / "history.parquet")
    baseline = rs_spark.build_baseline(spark.read.parquet(str(root_p / "history.parquet")), cfg)
    for day in range(train_days, org.days):
        pq.write_table(pa.concat_tables(list(org.batches(start_day=day, end_day=day + 1))),
                       src / f"day-{day:03d}.parquet")
    scorer = StreamScorer(spark, baseline, root_p / "work", baseline_path=str(root_p / "org.baseline"))
    run_stream(spark, str(src), scorer, str(root_p / "checkpoint")).awaitTermination()
    scorer.refresh()
    alerts = scorer.read_alerts()
    print(f"{alerts.num_rows} alerts, {scorer.refreshes} refreshes, {scorer.dedup.suppressed} cross-batch "
          f"duplicates dropped; baseline {scorer.baseline!r}")
    for r in alerts.select(["@timestamp", "rule.name", "host.name", "raresketch.destination"]).to_pylist()[:10]:
        print(" ", r["@timestamp"], r["rule.name"], r["host.name"], r["raresketch.destination"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo", metavar="DIR", required=True, help="simulate an organisation and stream it from DIR")
    _demo(ap.parse_args().demo)
