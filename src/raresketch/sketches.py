"""The compiled primitives, for use on their own: seeded 64-bit hashing and mergeable sketches with documented
error bounds. Each has ``to_bytes()``/``from_bytes()`` (magic, format version, parameters, CRC-32; corrupted,
truncated or inconsistent bytes raise ``ValueError``; never pickle) and ``merge()``.

- :func:`hash64` — MurmurHash3 x64-128, first 64 bits (equal to ``mmh3.hash64(x, seed)[0]``), zero-copy over Arrow
  strings; :func:`hash_pair` and :func:`mix64` combine keys.
- :class:`CountMinSketch` — frequencies, conservative update: never under-estimates, over by at most
  ``e/width * N`` with probability ``1 - exp(-depth)``.
- :class:`HyperLogLog` — distinct counts, HLL++ estimator, relative standard error ``1.04/sqrt(2**p)``.
- :class:`BloomFilter` — membership, blocked: no false negatives, false-positive rate from its sizing.
- :class:`KeyedDistinct` — per-key distinct counts and pair membership over a sliding window of days (what the
  Baseline is made of): exact up to ``exact_limit`` members per key, sampled beyond.
- :class:`AgentTable` — exact presence runs and active-agent counts per day.
"""
from ._core import NULL_KEY, AgentTable, BloomFilter, CountMinSketch, HyperLogLog, KeyedDistinct, hash64, hash_pair, mix64

__all__ = ["AgentTable", "BloomFilter", "CountMinSketch", "HyperLogLog", "KeyedDistinct", "NULL_KEY", "hash64",
           "hash_pair", "mix64"]
