"""The readers' DNS join (Sysmon EID 22, Zeek dns.log): which answer names a connection, and bounded memory."""
from __future__ import annotations

import json
import tracemalloc

import pyarrow as pa

from raresketch._readers import ReadStats, read_events
from raresketch._readers._dns import SLACK_US, DnsJoin

S = 1_000_000


def test_latest_answer_within_the_window_and_the_slack():
    j = DnsJoin(window_s=60)
    j.add("h", "1.2.3.4", 100 * S, "old.example")
    j.add("h", "1.2.3.4", 150 * S, "new.example")
    assert j.name("h", "1.2.3.4", 160 * S) == "new.example"
    assert j.name("h", "1.2.3.4", 149 * S) == "new.example"  # stamped up to 1 s after the connection
    assert j.name("h", "1.2.3.4", 149 * S - SLACK_US - 1) == "old.example"
    assert j.name("h", "1.2.3.4", 210 * S + 1) is None  # older than the window
    assert j.name("other", "1.2.3.4", 160 * S) is None and j.name("h", "5.6.7.8", 160 * S) is None
    assert j.name("h", None, 160 * S) is None and j.name("h", "1.2.3.4", None) is None


def test_out_of_order_answers_and_ties():
    j = DnsJoin(window_s=60)
    j.add("h", "ip", 150 * S, "b.example")
    j.add("h", "ip", 100 * S, "a.example")  # arrives late, sorted in
    j.add("h", "ip", 150 * S, "a2.example")  # same time: the one added last wins
    assert j.name("h", "ip", 120 * S) == "a.example"
    assert j.name("h", "ip", 150 * S) == "a2.example"


def test_pruning_forgets_only_answers_too_old_for_the_newest_connection():
    j = DnsJoin(window_s=10, prune_at=100)
    for i in range(1000):
        j.add("h", f"10.0.{i // 256}.{i % 256}", i * S, f"n{i}.example")
        assert j.name("h", "192.0.2.1", i * S) is None  # a connection at the same time
    assert j.size <= 2 * 100 + 1 and len(j.answers) == j.size
    assert j.name("h", "10.0.3.231", 999 * S) == "n999.example"  # recent answers stay
    assert j.name("h", "10.0.3.222", 999 * S) == "n990.example"
    assert j.name("h", "10.0.0.5", 10 * S) is None  # long forgotten


def _zeek_stream(n_dns: int, conn_every: int) -> bytes:
    lines = []
    for i in range(n_dns):
        ip = f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"
        lines.append({"_path": "dns", "ts": 1_700_000_000 + i, "uid": f"D{i}", "id.orig_h": "192.168.1.5",
                      "query": f"host{i}.example.com", "answers": [ip]})
        if i % conn_every == 0:
            lines.append({"_path": "conn", "ts": 1_700_000_000 + i + 0.5, "uid": f"C{i}", "id.orig_h": "192.168.1.5",
                          "id.orig_p": 50000, "id.resp_h": ip, "id.resp_p": 443, "proto": "tcp",
                          "conn_state": "SF"})
    return "\n".join(json.dumps(d) for d in lines).encode()


def _peak_bytes(data: bytes, **opts) -> tuple[int, pa.Table]:
    tracemalloc.start()
    try:
        t = pa.concat_tables(read_events(data, format="zeek", batch_size=50, stats=ReadStats(), **opts))
        return tracemalloc.get_traced_memory()[1], t
    finally:
        tracemalloc.stop()


def test_a_long_zeek_stream_keeps_its_dns_table_bounded():
    # 10k and 40k answers, each for a new address, one connection per 20 answers: the join must hold only the
    # answers a connection can still use (window 60 s), so the peak memory does not grow with the stream.
    small, t_small = _peak_bytes(_zeek_stream(10_000, 20), dns_window_s=60)
    big, t_big = _peak_bytes(_zeek_stream(40_000, 20), dns_window_s=60)
    assert t_small.num_rows == 500 and t_big.num_rows == 2000
    assert t_big.column("raresketch.domain_source").to_pylist() == ["dns"] * 2000  # the join still works
    assert t_big.column("destination.domain")[-1].as_py() == "host39980.example.com"
    assert big < 1.5 * small + (2 << 20), (small, big)
