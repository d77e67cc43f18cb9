"""Reader throughput, events/s on one core (pytest-benchmark): ECS JSON lines and Parquet, end to end
through ``raresketch.read_events`` (parse, flatten, conform, sort).

Run::

    PYTHONPATH=src python -m pytest benches/bench_readers.py --benchmark-enable \
        --benchmark-columns=min,median,rounds -s

Each benchmark records ``events`` and ``events_per_s`` (best round) in ``extra_info`` and prints them. The
process is pinned to one CPU and Arrow's thread pool to one thread while a benchmark runs, so the figures
are single-core figures. Workloads are deterministic and cached per process; their size is
RARESKETCH_BENCH_N events (default 200,000 here: the files are written to a temporary directory).

Workloads:

- ``ecs_lines``: Elastic-Endpoint-like nested network events (about 800 bytes a line: agent, host with os,
  process with code signature and hash, parent, user, source, destination, network, event, message), plus 2 % Winlogbeat-style lines with dotted keys (``"process.name": ...``).
- ``ecs_endpoint``: the same events as Elastic Endpoint (90 %) and Winlogbeat-Sysmon (10 %) write them, about
  2 KB a line (agent, data_stream, ecs, event, host.os, process.Ext, winlog.event_data, ...: what a real
  document carries and the reader skips; generator in benches/reports/compare_json.py).
- ``ecs_dirty``: the same with 0.5 % bad lines (malformed JSON, invalid UTF-8, missing timestamp, arrays).
- ``parquet``: the events of ``ecs_lines`` already read, written to Parquet (zstd, 64k-row groups).

``test_ecs_json_projector`` times the compiled JSON projector alone (``raresketch._json``, the fast path's
parse + column building; with the on-demand scan and yyjson-only) on ``ecs_endpoint``, in lines/s.
"""
from __future__ import annotations

import functools
import gzip
import json
import os
import random
import tempfile
import time

import pyarrow as pa
import pytest

import raresketch as rs
from raresketch._readers import ReadStats, read_events

N = int(os.environ.get("RARESKETCH_BENCH_N", 200_000))
_TMP = tempfile.mkdtemp(prefix="raresketch-bench-readers-")

_PROCS = [
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "Google LLC", True),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "Microsoft Corporation", True),
    ("C:\\Windows\\System32\\svchost.exe", "Microsoft Windows Publisher", True),
    ("C:\\Users\\{user}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe", "Microsoft Corporation", True),
    ("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "Microsoft Windows", True),
    ("C:\\Users\\{user}\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe", "Telegram FZ-LLC", True),
    ("C:\\Users\\{user}\\AppData\\Local\\Temp\\upd4t3.exe", None, False),
    ("C:\\Program Files\\Mozilla Firefox\\firefox.exe", "Mozilla Corporation", True),
]
_DOMAINS = ["www.google.com", "outlook.office365.com", "teams.microsoft.com", "api.telegram.org",
            "settings-win.data.microsoft.com", "github.com", "objects.githubusercontent.com",
            "login.microsoftonline.com", "d1.awsstatic.com", "slack.com", "discord.com", "cdn.discordapp.com"]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _event(rng: random.Random, i: int, hosts: list, t0: float) -> dict:
    host_id, hostname, user, agent_id = hosts[min(int(rng.paretovariate(1.0)) - 1, len(hosts) - 1)]
    exe, signer, trusted = rng.choice(_PROCS)
    exe = exe.format(user=user)
    name = exe.rsplit("\\", 1)[1]
    r = rng.random()
    if r < 0.15:
        dom = f"res-{int(rng.paretovariate(0.5)) % 50_000}.s3.us-west-2.amazonaws.com"
    elif r < 0.8:
        dom = _DOMAINS[int(rng.paretovariate(0.7)) % len(_DOMAINS)]
    else:
        dom = None
    ip = f"{rng.randint(1, 222)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randint(1, 254)}"
    ts = t0 + i * 0.01 + rng.random() * 2.0  # slightly out of order
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
    dest = {"address": ip, "ip": ip, "port": rng.choice((443, 443, 443, 80, 8443, 53))}
    if dom:
        dest["domain"] = dom
    proc = {"entity_id": _uuid(rng), "executable": exe, "name": name, "pid": rng.randrange(4, 40000),
            "parent": {"executable": "C:\\Windows\\explorer.exe", "name": "explorer.exe"}}
    if signer:
        proc["code_signature"] = {"exists": True, "subject_name": signer, "trusted": trusted}
    if i % 8 == 0:
        proc["hash"] = {"sha256": f"{rng.getrandbits(256):064x}"}
    return {
        "@timestamp": stamp,
        "agent": {"id": agent_id},
        "destination": dest,
        "event": {"action": "connection_attempted", "category": ["network"], "type": ["start"]},
        "host": {"hostname": hostname, "id": host_id, "name": hostname,
                 "os": {"family": "windows", "type": "windows"}},
        "message": "Endpoint network event",
        "network": {"direction": "egress", "transport": "tcp"},
        "process": proc,
        "source": {"ip": "10.1.2.3", "port": rng.randrange(49152, 65535)},
        "user": {"name": user},
    }


def _dotted(d: dict) -> dict:
    """Winlogbeat-style: the same event with dotted keys (flattened one level below the top)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k in ("process", "destination", "host"):
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


@functools.cache
def ecs_lines(n: int = N, dotted: float = 0.02, bad: float = 0.0, seed: int = 0) -> bytes:
    """n JSON lines, deterministic (seeded); ``dotted`` and ``bad`` are fractions of lines."""
    rng = random.Random(seed)
    hosts = [(_uuid(rng), f"ws-{h:04d}", f"user{h:04d}", _uuid(rng)) for h in range(2000)]
    t0 = 1714557600.0
    out = []
    for i in range(n):
        d = _event(rng, i, hosts, t0)
        k = rng.random()
        if k < dotted:
            d = _dotted(d)
        line = json.dumps(d, separators=(",", ":")).encode()
        if dotted <= k < dotted + bad:
            j = int(k * 1e6) % 4
            line = (line[:-7] if j == 0 else
                    line.replace(b"Endpoint network", b"Endpoint n\xe9twork") if j == 1 else
                    line.replace(b'"@timestamp"', b'"@timestamp_"') if j == 2 else b"[1,2,3]")
        out.append(line)
    return b"\n".join(out) + b"\n"


@functools.cache
def ecs_path(kind: str) -> str:
    data = ecs_lines() if kind == "ecs_lines" else ecs_lines(bad=0.005)
    p = os.path.join(_TMP, f"{kind}.json")
    with open(p, "wb") as f:
        f.write(data)
    return p


@functools.cache
def ecs_gz_path() -> str:
    p = os.path.join(_TMP, "ecs_lines.json.gz")
    with open(p, "wb") as f:
        f.write(gzip.compress(ecs_lines(), compresslevel=1))
    return p


@functools.cache
def ecs_endpoint_path() -> str:
    """The events of ``ecs_lines`` as Elastic Endpoint (90 %) and Winlogbeat-Sysmon (10 %) write them: about 2 KB
    a line with the fields a real document carries and the reader skips (benches/reports/compare_json.py)."""
    from compare_json import lines_of

    t = pa.concat_tables(read_events(ecs_path("ecs_lines"), format="ecs"))
    p = os.path.join(_TMP, "ecs_endpoint.json")
    with open(p, "wb") as f:
        for b in t.to_batches(50_000):
            f.write(b"\n".join(lines_of(pa.Table.from_batches([b]))) + b"\n")
    return p


@functools.cache
def parquet_path() -> str:
    import pyarrow.parquet as pq

    t = pa.concat_tables(read_events(ecs_path("ecs_lines"), format="ecs"))
    p = os.path.join(_TMP, "events.parquet")
    pq.write_table(t, p, compression="zstd", row_group_size=65536)
    return p


@pytest.fixture
def one_core():
    """Pin the process to one CPU and Arrow to one thread for the duration of a benchmark."""
    old_aff = os.sched_getaffinity(0)
    old_cpu = pa.cpu_count()
    os.sched_setaffinity(0, {min(old_aff)})
    pa.set_cpu_count(1)
    try:
        yield
    finally:
        pa.set_cpu_count(old_cpu)
        os.sched_setaffinity(0, old_aff)


def _run(benchmark, path: str, fmt: str, label: str) -> ReadStats:
    best = {"s": float("inf")}
    last = {}

    def run() -> int:
        st = ReadStats()
        t = time.perf_counter()
        n = sum(b.num_rows for b in read_events(path, format=fmt, batch_size=65536, stats=st))
        best["s"] = min(best["s"], time.perf_counter() - t)
        last["st"] = st
        return n

    n = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    st = last["st"]
    benchmark.extra_info["events"] = n
    benchmark.extra_info["events_per_s"] = n / best["s"]
    benchmark.extra_info["stats"] = st.as_dict()
    print(f"\n{label}: {n:,} events in {best['s']:.3f} s = {n / best['s'] / 1e3:,.0f} k events/s ({st})")
    return st


def test_ecs_json_lines(benchmark, one_core):
    st = _run(benchmark, ecs_path("ecs_lines"), "ecs", "ECS JSON lines")
    assert st.emitted == st.read == N and st.n_skipped == 0


def test_ecs_json_lines_endpoint(benchmark, one_core):
    st = _run(benchmark, ecs_endpoint_path(), "ecs", "ECS JSON lines, Elastic Endpoint/Winlogbeat (2 KB)")
    assert st.emitted == st.read == N and st.n_skipped == 0


@pytest.mark.parametrize("on_demand", [True, False], ids=["on_demand", "yyjson"])
def test_ecs_json_projector(benchmark, one_core, on_demand):
    """The compiled projector alone (``raresketch._json``: the on-demand scan of each line, or with
    ``on_demand=False`` a yyjson parse of each line, + one Arrow array per wanted ECS path, no flattening) on
    the 2 KB lines, per 4 MiB block read from memory: lines/s."""
    from raresketch._json import Projector
    from raresketch._readers import _ecs
    from raresketch._readers._source import Source

    proj = Projector(_ecs._FAST_PATHS, on_demand=on_demand)
    with open(ecs_endpoint_path(), "rb") as f:
        blocks = [bytes(b) for b in Source(f.read()).blocks(_ecs.BLOCK_BYTES)]
    best = {"s": float("inf")}

    def run() -> int:
        t = time.perf_counter()
        n = 0
        for b in blocks:
            status = proj.project(b)[0]
            n += int((status == 0).sum())
        best["s"] = min(best["s"], time.perf_counter() - t)
        return n

    n = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["lines"] = n
    benchmark.extra_info["lines_per_s"] = n / best["s"]
    print(f"\nJSON projector ({'on-demand' if on_demand else 'yyjson'}), 2 KB lines: {n:,} lines in {best['s']:.3f} s = {n / best['s'] / 1e3:,.0f} k lines/s")
    assert n == N


def test_ecs_json_lines_gzip(benchmark, one_core):
    st = _run(benchmark, ecs_gz_path(), "ecs", "ECS JSON lines .gz")
    assert st.emitted == N


def test_ecs_json_lines_dirty(benchmark, one_core):
    st = _run(benchmark, ecs_path("ecs_dirty"), "ecs", "ECS JSON lines, 0.5 % bad")
    assert st.read == N and st.n_skipped > 0 and st.emitted + st.n_skipped == N


def test_parquet(benchmark, one_core):
    st = _run(benchmark, parquet_path(), "parquet", "Parquet")
    assert st.emitted == N


def test_arrow_table(benchmark, one_core):
    t = pa.concat_tables(read_events(parquet_path(), format="parquet"))
    best = {"s": float("inf")}

    def run() -> int:
        s = time.perf_counter()
        n = sum(b.num_rows for b in read_events(t, batch_size=65536))
        best["s"] = min(best["s"], time.perf_counter() - s)
        return n

    n = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["events"] = n
    benchmark.extra_info["events_per_s"] = n / best["s"]
    print(f"\nArrow table: {n:,} events in {best['s']:.3f} s = {n / best['s'] / 1e3:,.0f} k events/s")
    assert n == N and rs.EVENT_SCHEMA == t.schema
