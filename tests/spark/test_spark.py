"""raresketch.spark: the distributed baseline equals the local one, partials merge associatively, bytes survive
the JVM, scoring agrees with the local engine, and the streaming example runs (Spark local[2]).

The Spark-free tests (the algorithm of raresketch.spark._core in one process) always run; the Spark ones are
skipped when PySpark, pandas or Java is missing.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import raresketch as rs
from raresketch.spark import _core as sc
from raresketch.simulate import Organisation

CFG = rs.Config(capacity=1 << 16, max_agents=1 << 12)
_US_PER_DAY = 86_400_000_000
TRAIN_DAYS = 17


def _detie(tab: pa.Table) -> pa.Table:
    """Make timestamps strictly increasing (shift ties by microseconds): then event order is defined by time
    alone, the same for the local engine (arrival order on ties) and Spark (key order on ties)."""
    ts = tab["@timestamp"].cast(pa.int64()).to_numpy().copy()
    for i in range(1, len(ts)):
        if ts[i] <= ts[i - 1]:
            ts[i] = ts[i - 1] + 1
    return tab.set_column(0, "@timestamp", pa.array(ts).cast(pa.timestamp("us", tz="UTC")))


@pytest.fixture(scope="module")
def events() -> pa.Table:
    org = Organisation(agents=40, days=24, seed=3, events_per_agent_day=60)
    return _detie(pa.concat_tables(list(org.batches())).combine_chunks())


@pytest.fixture(scope="module")
def split(events):
    days = events["@timestamp"].cast(pa.int64()).to_numpy() // _US_PER_DAY
    m = days < days.min() + TRAIN_DAYS
    return events.filter(pa.array(m)), events.filter(pa.array(~m))


@pytest.fixture(scope="module")
def local(events):
    e = rs.Engine(CFG)
    e.process(events)
    return e.baseline


def structure_items(bl: rs.Baseline) -> dict[str, dict]:
    """Every structure's (key -> count) and the AgentTable's (agent -> (run first, last)): a comparison of
    two baselines' contents independent of slot layout."""
    out: dict[str, dict] = {}
    for name, kd in bl.structures.items():
        k, c = kd.items()
        out[name] = dict(zip(k.tolist(), c.tolist()))
    k, f, last = bl.agents.items()
    out["agents"] = dict(zip(k.tolist(), zip(f.tolist(), last.tolist())))
    out["days"] = {0: (bl.first_day, bl.today)}
    return out


def assert_same_baseline(a: rs.Baseline, b: rs.Baseline) -> None:
    """Equal AgentTable, window, and equal count for every key below exact_limit (beyond it both are sampled
    estimates: a merged sample differs from a sequential one within the documented error)."""
    A, B = structure_items(a), structure_items(b)
    assert A["agents"] == B["agents"] and A["days"] == B["days"]
    lim = a.config.exact_limit
    for name in a.structures:
        keys = set(A[name]) | set(B[name])
        small = {k for k in keys if max(A[name].get(k, 0), B[name].get(k, 0)) < lim}
        assert {k: A[name].get(k) for k in small} == {k: B[name].get(k) for k in small}, name
        for k in keys - small:   # sampled: same order of magnitude
            assert abs(A[name][k] - B[name][k]) <= 0.5 * A[name][k], name


def alert_keys(alerts) -> list[tuple]:
    t = alerts if isinstance(alerts, pa.Table) else rs.alerts_to_table(alerts)
    return sorted((r["@timestamp"], r["rule.name"], r["host.id"], r["raresketch.destination"],
                   r["raresketch.evidence"]) for r in t.to_pylist())


# ---- without Spark -------------------------------------------------------------------------------------
@pytest.mark.parametrize("parts", [1, 3, 7])
def test_distributed_algorithm_equals_engine(events, local, parts):
    assert_same_baseline(sc.build_baseline_local([events], CFG, parts=parts), local)


def test_incremental_build_equals_full(split, local):
    b1 = sc.build_baseline_local([split[0]], CFG, parts=3)
    assert_same_baseline(sc.build_baseline_local([split[1]], CFG, parts=5, base=b1), local)


def test_distributed_algorithm_honours_allow_agents_and_future_guard(events):
    """The distributed build drops exactly what Engine.process drops before learning: allow-listed agents when
    ``allowlist_learn`` is false (matched on host.id or host.name) and events dated past ``max_future_days``."""
    cfg = CFG.replace(allowlist_learn=False, allow_agents=("name:acme-lt-00[0-4]*",), max_future_days=1)
    future = events.slice(0, 50).set_column(
        0, "@timestamp", pa.array(np.full(50, 4_000_000_000_000_000, np.int64)).cast(pa.timestamp("us", tz="UTC")))
    both = pa.concat_tables([events, future])
    e = rs.Engine(cfg)
    e.process(both)
    assert e.suppressed["allowlist"] > 0 and e.stats["skipped_future"] == 50
    assert_same_baseline(sc.build_baseline_local([both], cfg, parts=3), e.baseline)


def test_naive_partials_get_new_rare_wrong(events, local):
    """Why new_rare has its own pass: partials built by whole Engines over agent partitions see partial
    prevalence and thresholds, so their first-rare-contacts (habitual explorers) differ."""
    hosts = np.array(events["host.id"].to_pylist())
    groups = np.array([int(h[-2:], 36) % 4 if h[-2:].isalnum() else 0 for h in hosts])
    merged = None
    for g in range(4):
        e = rs.Engine(CFG)
        e.process(events.filter(pa.array(groups == g)))
        merged = e.baseline if merged is None else merged.merge(e.baseline)
    A, N = structure_items(local), structure_items(merged)
    assert A["prevalence"] == N["prevalence"] and A["agents"] == N["agents"]
    assert A["new_rare"] != N["new_rare"]


def test_merge_is_associative_and_commutative(events):
    keys = sc.events_to_keys(events, CFG)
    thirds = np.array_split(np.arange(keys.num_rows), 3)
    blobs = [sc.build_partial([sc._sorted(keys.take(pa.array(ix)))], CFG) for ix in thirds]
    ab_c = sc.merge_baseline_blobs([sc.merge_baseline_blobs(blobs[:2]), blobs[2]])
    a_bc = sc.merge_baseline_blobs([blobs[0], sc.merge_baseline_blobs(blobs[1:])])
    cba = sc.merge_baseline_blobs(blobs[::-1])
    items = [structure_items(rs.Baseline.from_sparse_bytes(b)) for b in (ab_c, a_bc, cba)]
    assert items[0] == items[1] == items[2]
    whole = structure_items(rs.Baseline.from_sparse_bytes(sc.build_partial([sc._sorted(keys)], CFG)))
    for name in ("prevalence", "kind_agents", "binary_agents", "im_agents"):
        assert items[0][name] == whole[name]


def test_learn_columns_are_all_the_keys_read(events):
    """The build ships only LEARN_COLUMNS to the workers: the keys of the projected events are those of the
    whole events (a column the keys read, left out, would change them)."""
    cols = sc.learn_columns(CFG, events.column_names)
    assert len(cols) < len(events.column_names)
    assert sc.events_to_keys(events.select(cols), CFG).equals(sc.events_to_keys(events, CFG))
    named = CFG.replace(allow_agents=("name:acme-*",))
    assert "host.name" in sc.learn_columns(named) and "host.name" not in sc.learn_columns(CFG)
    for col in set(events.column_names) - set(cols):        # each one left out changes nothing
        assert sc.events_to_keys(events.drop_columns([col]).slice(0, 4000), CFG).equals(
            sc.events_to_keys(events.slice(0, 4000), CFG)), col


def test_partition_work_is_the_three_steps(events):
    """One pass per input partition gives the partial of steps 1 + 3, the distinct (agent, day) pairs and the
    cloud events, whatever the input batches."""
    batches = events.to_batches(max_chunksize=7000)
    out = pa.Table.from_batches(list(sc.partition_work(batches, CFG, chunk_rows=20_000)), schema=sc.PARTITION_SCHEMA)
    keys = sc._sorted(sc.events_to_keys(events, CFG))
    part = out["part"].to_numpy()
    assert (part == 0).sum() == 1
    whole = structure_items(rs.Baseline.from_sparse_bytes(sc.build_partial([keys], CFG)))
    assert structure_items(rs.Baseline.from_sparse_bytes(out["blob"][0].as_py())) == whole
    pairs = out.filter(pa.array(part == 1))
    assert sorted(zip(pairs["agent"].to_pylist(), pairs["days"].to_pylist())) == sorted(
        set(zip(keys["agent"].to_pylist(), keys["days"].to_pylist())))
    assert (part == 2).sum() == int(keys["is_cloud"].to_numpy().sum()) > 0


def test_keys_roundtrip_and_packing(events):
    keys = sc.events_to_keys(events.slice(0, 5000), CFG)
    ev = sc.keys_to_event_keys(keys)
    assert ev.agent.dtype == np.uint64 and len(ev) == keys.num_rows
    blob = sc.pack(b"x" * 1000)
    assert sc.unpack(blob) == b"x" * 1000 and len(blob) < 100
    with pytest.raises(ValueError):
        sc.unpack(b"nope" + blob[4:])
    with pytest.raises(ValueError):
        sc.unpack(blob[:-5])


# ---- with Spark ----------------------------------------------------------------------------------------
def _spark_available() -> str | None:
    for mod in ("pyspark", "pandas"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        return "Java is not installed"
    return None


spark_only = pytest.mark.skipif(_spark_available() is not None, reason=f"Spark: {_spark_available()}")


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    src = str(Path(rs.__file__).resolve().parent.parent)       # workers import the same raresketch
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    from raresketch.spark import local_session
    s = local_session(2, "raresketch-tests")
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def lake(tmp_path_factory, split, events):
    d = tmp_path_factory.mktemp("lake")
    pq.write_table(split[0], d / "train.parquet", row_group_size=8000)
    pq.write_table(split[1], d / "test.parquet", row_group_size=8000)
    pq.write_table(events, d / "all.parquet", row_group_size=8000)
    return d


@spark_only
def test_spark_build_baseline_equals_local(spark, lake, local, split):
    from raresketch.spark import build_baseline

    df = spark.read.parquet(str(lake / "all.parquet")).repartition(3)     # arbitrary partitions
    stats: dict = {}
    bl = build_baseline(df, CFG, partitions=3, fanin=2, stats=stats)
    assert stats["partials_tree_levels"] >= 1
    assert_same_baseline(bl, local)
    # Alert for alert: both baselines score the same later events identically.
    train = build_baseline(spark.read.parquet(str(lake / "train.parquet")), CFG)
    e = rs.Engine(CFG)
    e.process(split[0])
    assert_same_baseline(train, e.baseline)
    a = rs.Engine(CFG, baseline=train).process(split[1])
    b = rs.Engine(CFG, baseline=rs.Baseline.from_bytes(e.baseline.to_bytes())).process(split[1])
    assert len(a) > 20 and alert_keys(a) == alert_keys(b)


@spark_only
def test_spark_blobs_cross_the_jvm(spark, local):
    from raresketch.spark import baseline_from_blob, baseline_to_blob

    blob = baseline_to_blob(local)
    rows = spark.createDataFrame([(blob,), (blob[:-10],)], "blob binary").collect()
    back = baseline_from_blob(bytes(rows[0]["blob"]))
    assert back.to_bytes() == local.to_bytes()
    with pytest.raises(ValueError):
        baseline_from_blob(bytes(rows[1]["blob"]))
    bad = bytearray(sc.unpack(blob))
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(ValueError):
        rs.Baseline.from_bytes(bytes(bad))


@spark_only
def test_spark_score_matches_local_engine(spark, lake, split, local):
    from raresketch.spark import score

    e = rs.Engine(CFG)
    e.process(split[0])
    base = e.baseline
    expected = alert_keys(rs.Engine(CFG, baseline=rs.Baseline.from_bytes(base.to_bytes())).process(split[1]))
    df = spark.read.parquet(str(lake / "test.parquet"))
    # One partition: the same sequence as the local engine, alert for alert (evidence included).
    assert alert_keys(score(df, base, partitions=1).toArrow()) == expected
    # By agent over 4 partitions: every local alert is there; extra ones come from org-level counts that
    # other partitions' same-window events would have raised (see docs/SPARK.md).
    got = {k[:4] for k in alert_keys(score(df, base, partitions=4).toArrow())}
    exp = {k[:4] for k in expected}
    assert exp <= got
    assert len(got - exp) <= 0.25 * len(exp)


@spark_only
def test_spark_volume_guard_is_global(spark, lake, split):
    from raresketch.spark import score

    e = rs.Engine(CFG)
    e.process(split[0])
    df = spark.read.parquet(str(lake / "test.parquet"))
    got = score(df, e.baseline, CFG.replace(max_alerts_per_day=2), partitions=4).toArrow()
    days = got["@timestamp"].cast(pa.int64()).to_numpy() // _US_PER_DAY
    per = {}
    for d, det in zip(days.tolist(), got["raresketch.detector"].to_pylist()):
        per[(d, det)] = per.get((d, det), 0) + 1
    assert per and max(per.values()) <= 2


@spark_only
def test_streaming_example(spark, tmp_path, events, local):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    try:
        import spark_streaming as ex
    finally:
        sys.path.pop(0)
    from raresketch.spark import build_baseline

    days = events["@timestamp"].cast(pa.int64()).to_numpy() // _US_PER_DAY
    d0 = days.min()
    train = events.filter(pa.array(days < d0 + 20))
    pq.write_table(train, tmp_path / "train.parquet")
    src = tmp_path / "incoming"
    src.mkdir()
    for i, d in enumerate(range(d0 + 20, days.max() + 1)):           # one file per day: 4 micro-batches
        pq.write_table(events.filter(pa.array(days == d)), src / f"day-{i}.parquet")
    base = build_baseline(spark.read.parquet(str(tmp_path / "train.parquet")), CFG)
    scorer = ex.StreamScorer(spark, base, tmp_path / "work", baseline_path=str(tmp_path / "org.baseline"))
    ex.run_stream(spark, str(src), scorer, str(tmp_path / "ckpt")).awaitTermination()
    scorer.refresh()
    assert scorer.refreshes >= 3
    assert_same_baseline(scorer.baseline, local)             # refreshed baseline = one engine over everything
    assert_same_baseline(rs.Baseline.load(tmp_path / "org.baseline"), local)
    e = rs.Engine(CFG, baseline=rs.Baseline.from_bytes(base.to_bytes()))
    exp = {k[:4] for k in alert_keys(e.process(events.filter(pa.array(days >= d0 + 20))))}
    got = {k[:4] for k in alert_keys(scorer.read_alerts())}
    assert exp and len(exp & got) >= 0.9 * len(exp)
