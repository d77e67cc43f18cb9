"""Deterministic, network-free workloads for the benchmarks (cached per process)."""
from __future__ import annotations

import functools
import os

import numpy as np
import pyarrow as pa

#: Events per workload; RARESKETCH_BENCH_N overrides (CI's quick mode runs each benchmark once).
N = int(os.environ.get("RARESKETCH_BENCH_N", 2_000_000))


@functools.cache
def zipf_keys(n: int = N, a: float = 1.2, seed: int = 0) -> np.ndarray:
    """uint64 keys with Zipf(a) frequencies (about 10 % distinct at 10M, a = 1.2)."""
    rng = np.random.default_rng(seed)
    return (rng.zipf(a, n).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


@functools.cache
def hostnames(n: int = N, seed: int = 0) -> pa.Array:
    """An Arrow string array of n realistic hostnames (20-40 bytes), Zipf-repeated."""
    rng = np.random.default_rng(seed)
    ids = rng.zipf(1.2, n) % 200_000
    names = np.array([f"res-{i:06d}.s3.us-east-{i % 3}.amazonaws.com" for i in range(200_000)], dtype=object)
    return pa.array(names[ids], type=pa.string())


@functools.cache
def agent_dest_events(n: int = N, agents: int = 10_000, seed: int = 0):
    """(destination keys, agent keys, days): a month of Zipf destinations over `agents` agents."""
    rng = np.random.default_rng(seed)
    dest = (rng.zipf(1.3, n) % 1_000_000).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    agent = rng.integers(0, agents, n).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    days = (20_000 + np.arange(n) * 30 // n).astype(np.uint16)
    return dest, agent, days
