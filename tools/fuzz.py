"""Coverage-guided fuzzing (atheris / libFuzzer) of the readers and the state loader. Not run in CI.

    pip install atheris
    python tools/fuzz.py ecs     -runs=200000          # ECS JSON-lines reader
    python tools/fuzz.py sysmon  -max_total_time=120   # Sysmon JSON-lines reader
    python tools/fuzz.py auto    -runs=100000          # format detection + whichever reader it picks
    python tools/fuzz.py state   -runs=100000          # every from_bytes on raw bytes (CRC checked first)
    python tools/fuzz.py resealed -runs=100000         # every from_bytes after fixing the CRC (structure checks)

Any other libFuzzer flag works (``-help=1``). A seed corpus of valid inputs is written to a temporary folder
unless corpus folders are given. Readers must never raise once they have read a record (refusing a whole input
before that with ValueError/OSError is allowed: "not a gzip file"); loaders may only raise ValueError. A crash stops the
run and leaves ``crash-<sha1>`` with the input: turn it into a regression test (tests/reliability/test_*.py).
Every 20,000 executions it prints its counters (runs, refused, accepted); libFuzzer prints its own stats.
"""
from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
import zlib

import atheris

with atheris.instrument_imports(include=["raresketch"]):
    import numpy as np

    import raresketch as rs
    from raresketch import _format

TARGETS = ("ecs", "sysmon", "auto", "state", "resealed")
COUNTS = {"runs": 0, "refused": 0, "accepted": 0}


def _seed_lines(target: str) -> list[bytes]:
    from raresketch.simulate import Organisation

    if target == "sysmon":
        recs = [
            {"EventID": 1, "UtcTime": "2026-01-05 10:00:00.000", "Computer": "pc1", "ProcessGuid": "{1}",
             "Image": "C:\\Users\\bob\\AppData\\x.exe", "CommandLine": "x.exe https://a.example/p",
             "ParentImage": "C:\\Windows\\explorer.exe", "Hashes": "SHA256=" + "AB" * 32, "OriginalFileName": "y.exe"},
            {"EventID": 7, "UtcTime": "2026-01-05 10:00:00.100", "Computer": "pc1", "ProcessGuid": "{1}",
             "Image": "C:\\Users\\bob\\AppData\\x.exe", "ImageLoaded": "C:\\Users\\bob\\AppData\\x.exe",
             "Signed": "true", "Signature": "Evil", "SignatureStatus": "Expired"},
            {"EventID": 22, "UtcTime": "2026-01-05 10:00:01.000", "Computer": "pc1", "ProcessGuid": "{1}",
             "QueryName": "b.s3.amazonaws.com", "QueryResults": "type:  5 s3.amazonaws.com;::ffff:52.216.1.1;"},
            {"EventID": 3, "UtcTime": "2026-01-05 10:00:02.000", "Computer": "pc1", "ProcessGuid": "{1}",
             "Image": "C:\\Users\\bob\\AppData\\x.exe", "DestinationIp": "52.216.1.1", "DestinationPort": "443",
             "Protocol": "tcp", "Initiated": "true", "DestinationHostname": "-"},
            {"winlog": {"provider_name": "Microsoft-Windows-Sysmon", "event_id": 3, "computer_name": "pc2",
                        "event_data": {"UtcTime": "2026-01-05 10:00:03.000", "Image": "C:\\a.exe",
                                       "DestinationIp": "149.154.167.220", "DestinationPort": 443}},
             "@timestamp": "2026-01-05T10:00:03Z"},
        ]
        return [json.dumps(r).encode() for r in recs]
    org = Organisation(agents=3, days=1, seed=1, events_per_agent_day=8, attacks=False)
    path = os.path.join(tempfile.mkdtemp(), "seed.jsonl")
    org.write_ecs_jsonl(path)
    lines = open(path, "rb").read().splitlines()
    flat = Organisation(agents=2, days=1, seed=2, events_per_agent_day=4, attacks=False)
    flat.write_ecs_jsonl(path, nested=False)
    return lines + open(path, "rb").read().splitlines()


def _seed_blobs() -> list[bytes]:
    rng = np.random.default_rng(1)
    k = rng.integers(1, 1000, 300).astype(np.uint64)
    cms = rs.sketches.CountMinSketch(32, 2)
    cms.update(k)
    hll = rs.sketches.HyperLogLog(4)
    hll.update(k)
    bf = rs.sketches.BloomFilter(50, 0.05)
    bf.add(k)
    kd = rs.sketches.KeyedDistinct(64, 64, 30, 4, 0)
    kd.observe(k % 30 + 1, k % 7 + 1, 1000 + (k % 35).astype(np.int64))
    at = rs.sketches.AgentTable(8, 30, 0)
    at.observe(k % 5 + 1, np.full(len(k), 1000))
    base = rs.Baseline(rs.Config(capacity=64, max_agents=8))
    return [x.to_bytes() for x in (cms, hll, bf, kd, at, base)]


_CLASSES = {"CountMinSketch": rs.sketches.CountMinSketch, "HyperLogLog": rs.sketches.HyperLogLog, "BloomFilter": rs.sketches.BloomFilter,
            "KeyedDistinct": rs.sketches.KeyedDistinct, "AgentTable": rs.sketches.AgentTable, "Baseline": rs.Baseline,
            "EngineState": rs.Engine}


def _tick() -> None:
    COUNTS["runs"] += 1
    if COUNTS["runs"] % 20000 == 0:
        print(f"raresketch fuzz: {COUNTS}", file=sys.stderr, flush=True)


def _load(data: bytes, classes) -> None:
    for cls in classes:
        try:
            obj = cls.from_bytes(data)
        except ValueError:
            COUNTS["refused"] += 1
            continue
        COUNTS["accepted"] += 1
        type(obj).from_bytes(obj.to_bytes())      # what was accepted must round-trip


def make_target(target: str):
    if target in ("ecs", "sysmon", "auto"):
        def one(data: bytes) -> None:
            _tick()
            stats = rs.ReadStats()
            n = 0
            try:
                for t in rs.read_events(data, format=target, batch_size=16, stats=stats):
                    assert t.schema == rs.EVENT_SCHEMA and t.num_rows > 0
                    n += t.num_rows
            except (ValueError, OSError):
                # refusing an input as a whole (one-line error: not gzip after the gzip magic, say) is allowed
                # only before any record was read; failing in the middle of a stream is a crash
                if stats.read or n:
                    raise
                COUNTS["refused"] += 1
                return
            COUNTS["accepted"] += 1
            assert n == stats.emitted
            if target == "ecs":
                assert stats.read == stats.emitted + stats.n_skipped, stats
        return one
    if target == "state":
        def one(data: bytes) -> None:
            _tick()
            _load(data, _CLASSES.values())
        return one

    def resealed(data: bytes) -> None:
        _tick()
        if len(data) < 12:
            return
        fam = _format.FAMILIES.get(struct.unpack_from("<H", data, 6)[0])
        body = data + struct.pack("<I", zlib.crc32(data))
        _load(body, [_CLASSES[fam]] if fam in _CLASSES else _CLASSES.values())
    return resealed


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] not in TARGETS:
        sys.exit(f"usage: python tools/fuzz.py {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target, rest = args[0], args[1:]
    if not any(not a.startswith("-") for a in rest):
        corpus = tempfile.mkdtemp(prefix=f"rs-fuzz-{target}-")
        if target in ("state", "resealed"):
            seeds = [b[:-4] if target == "resealed" else b for b in _seed_blobs()]
        else:
            lines = _seed_lines(target)
            seeds = [b"\n".join(lines[i:i + 4]) + b"\n" for i in range(0, len(lines), 4)]
        for i, s in enumerate(seeds):
            with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
                f.write(s)
        rest.append(corpus)
    atheris.Setup([sys.argv[0], *rest], make_target(target))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
