"""Catalogue throughput: distinct hostnames resolved per second, and events per second for a batch with
realistic repetition (Zipf-distributed destinations and processes, as in endpoint telemetry).

Run: PYTHONPATH=src python -m pytest benches/bench_catalog.py --benchmark-only -q
Each test prints its rate; pytest-benchmark's table gives the time per call.
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest

from raresketch.catalog import Catalog

N_EVENTS = 200_000
N_HOSTS = 20_000
N_IPS = 5_000
N_PROCS = 300


@functools.cache
def hostnames(n: int = N_HOSTS) -> list[str]:
    """Deterministic mix: 40% cloud-resource names (regional S3, blob, workers, ...), 5% IM, the rest plain."""
    rng = np.random.default_rng(1)
    forms = ["{}.s3.us-west-2.amazonaws.com", "{}.s3-website.eu-central-1.amazonaws.com", "{}.blob.core.windows.net",
             "{}.workers.dev", "{}.cloudfront.net", "{}.azurewebsites.net", "{}.appspot.com", "{}.herokuapp.com"]
    im = ["api.telegram.org", "cdn.discordapp.com", "hooks.slack.com", "web.whatsapp.com", "teams.microsoft.com"]
    out = []
    for i in range(n):
        r = rng.random()
        if r < 0.40:
            out.append(forms[i % len(forms)].format(f"tenant{i}"))
        elif r < 0.45:
            out.append(f"x{i}." + im[i % len(im)])
        else:
            out.append(f"host{i}.example{i % 97}.com")
    return out


@functools.cache
def event_batch(n: int = N_EVENTS) -> pa.Table:
    """n events; destinations and processes drawn Zipf(1.2) from the pools above; 30% IP-only."""
    rng = np.random.default_rng(2)
    hosts = np.array(hostnames(), dtype=object)
    h_idx = np.minimum(rng.zipf(1.2, n) - 1, len(hosts) - 1)
    ips = np.array([f"52.{216 + i % 4}.{(i // 256) % 256}.{i % 256}" for i in range(N_IPS // 2)]
                   + [f"91.108.{4 + i % 4}.{i % 256}" for i in range(N_IPS // 10)]
                   + [f"198.18.{(i // 256) % 256}.{i % 256}" for i in range(N_IPS - N_IPS // 2 - N_IPS // 10)], dtype=object)
    i_idx = np.minimum(rng.zipf(1.2, n) - 1, len(ips) - 1)
    procs = np.array([f"C:\\Program Files\\App{i}\\app{i}.exe" for i in range(N_PROCS - 3)]
                     + ["C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                        "C:\\Users\\bob\\AppData\\Local\\Temp\\x.exe", "/usr/bin/python3"], dtype=object)
    p_idx = np.minimum(rng.zipf(1.3, n) - 1, len(procs) - 1)
    dom = hosts[h_idx]
    ip_only = rng.random(n) < 0.3
    dom[ip_only] = None
    return pa.table({
        "destination.domain": pa.array(dom.tolist(), pa.string()),
        "destination.ip": pa.array(ips[i_idx].tolist(), pa.string()),
        "process.executable": pa.array(procs[p_idx].tolist(), pa.string()),
        "process.code_signature.subject_name": pa.array(["Vendor"] * n, pa.string()),
    })


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog()


def test_resolve_distinct_hostnames(benchmark, catalog):
    names = hostnames()

    def run():
        catalog.resolve_host.cache_clear()
        for h in names:
            catalog.resolve_host(h)

    benchmark.pedantic(run, rounds=5, iterations=1)
    if benchmark.stats:  # None in quick mode (--benchmark-disable)
        print(f"\nresolve_host, distinct names: {len(names) / benchmark.stats.stats.min:,.0f} hostnames/s")


def test_resolve_batch_cold(benchmark, catalog):
    t = event_batch()

    def run():
        catalog.resolve_host.cache_clear()
        catalog._process.cache_clear()
        catalog._batch_resolver = None              # resolve_batch's per-distinct-value caches
        return catalog.resolve_batch(t)

    out = benchmark.pedantic(run, rounds=5, iterations=1)
    assert out.num_rows == t.num_rows
    distinct = len(set(t.column("destination.domain").drop_null().to_pylist()))
    if benchmark.stats:
        print(f"\nresolve_batch cold caches: {t.num_rows / benchmark.stats.stats.min:,.0f} events/s "
              f"({distinct} distinct hostnames in {t.num_rows} events)")


def test_resolve_batch_warm(benchmark, catalog):
    t = event_batch()
    catalog.resolve_batch(t)
    out = benchmark.pedantic(lambda: catalog.resolve_batch(t), rounds=5, iterations=1)
    assert out.num_rows == t.num_rows
    if benchmark.stats:
        print(f"\nresolve_batch warm caches: {t.num_rows / benchmark.stats.stats.min:,.0f} events/s")
