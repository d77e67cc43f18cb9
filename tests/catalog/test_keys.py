"""KeyResolver (the per-stream cached path from events to keys) against the row-by-row definition: resolve
every row with Catalog.resolve_batch and hash its strings."""
from __future__ import annotations

import datetime as dt
import itertools
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from raresketch import Catalog, conform, default_catalog
from raresketch.sketches import hash64, hash_pair
from raresketch.detect import KeyResolver
from raresketch.detect import normalize_command_line
from raresketch.simulate import Organisation


def expected(events: pa.Table, cat: Catalog) -> dict[str, np.ndarray]:
    """The keys of docs/DETECTORS.md, row by row from the catalogue's string columns (the definition)."""
    r = cat.resolve_batch(events)
    proc = r["raresketch.process.key"]
    script = r["raresketch.process.is_script_engine"].combine_chunks().fill_null(False).to_numpy(
        zero_copy_only=False)
    parent = pc.utf8_lower(events["process.parent.name"])
    cmd = events["process.command_line"].to_pylist()
    has_cmd = script & events["process.command_line"].combine_chunks().is_valid().to_numpy(zero_copy_only=False)
    is_script = script & parent.combine_chunks().is_valid().to_numpy(zero_copy_only=False)
    valid = lambda c: c.combine_chunks().is_valid().to_numpy(zero_copy_only=False)  # noqa: E731
    return {
        "agent": hash64(events["host.id"]),
        "process": hash64(proc),
        "resource": hash64(r["raresketch.cloud.resource"]),
        "kind": hash64(pc.binary_join_element_wise(r["raresketch.cloud.provider"], r["raresketch.cloud.service"],
                                                   "/")),
        "im": hash64(r["raresketch.im.service"]),
        "binary": hash64(pc.coalesce(events["process.hash.sha256"], proc)),
        "parent_engine": np.where(is_script, hash_pair(hash64(parent), hash64(r["raresketch.process.script_engine"])),
                                  0),
        "cmdline": np.where(has_cmd, hash64([normalize_command_line(c) for c in cmd]), 0),
        "has_process": valid(proc), "is_cloud": valid(r["raresketch.cloud.resource"]),
        "is_im": valid(r["raresketch.im.service"]), "is_script": is_script, "has_cmdline": has_cmd,
        "allow": r["raresketch.allowlisted"].combine_chunks().fill_null(False).to_numpy(zero_copy_only=False),
        "user_writable_path": r["raresketch.process.user_writable_path"].combine_chunks().fill_null(False).to_numpy(
            zero_copy_only=False),
        "renamed": r["raresketch.process.renamed"].combine_chunks().fill_null(False).to_numpy(zero_copy_only=False),
    }


def check(resolver: KeyResolver, events: pa.Table) -> None:
    days = events["@timestamp"].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False) // 86_400_000_000
    ev, flags = resolver.resolve(events, days)
    want = expected(events, resolver.catalog)
    for k, v in want.items():
        got = getattr(flags, k) if k in ("allow", "user_writable_path", "renamed") else getattr(ev, k)
        bad = np.flatnonzero(np.asarray(got) != np.asarray(v, dtype=np.asarray(got).dtype))
        assert bad.size == 0, (k, bad[:5], events.take(pa.array(bad[:3])).to_pylist())
    assert np.array_equal(ev.days, days)


def _edge_table() -> pa.Table:
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    doms = [None, "evil.s3.amazonaws.com", "54.231.0.10", "slack.com", "api.telegram.org", "", "example.com",
            "x.blob.core.windows.net", "149.154.167.220", "s3.amazonaws.com", "allowed.example.org", "10.0.0.1"]
    ips = [None, "52.216.0.1", "149.154.167.99", "10.0.0.1", "2001:db8::1"]
    exes = [None, r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", "/usr/bin/python3",
            r"C:\Users\bob\AppData\Local\Temp\updater.exe", r"C:\Program Files\Slack\slack.exe"]
    names = [None, "powershell.exe", "python3", "curl"]
    signers = [None, "", "Microsoft Windows", "Slack Technologies"]
    ofns = [None, "PowerShell.EXE", "curl.exe"]
    parents = [None, "EXPLORER.EXE", "winword.exe"]
    cmds = [None, "", 'powershell -enc AAAA "C:\\Users\\x\\AppData\\Local\\Temp\\a.ps1" 12345', "python3 -c 1"]
    shas = [None, "a" * 64, ""]
    rows = list(itertools.islice(itertools.product(doms, ips, exes, names, signers), 0, None, 7))
    n = len(rows)
    cyc = lambda vals: [vals[i % len(vals)] for i in range(n)]  # noqa: E731
    return conform(pa.table({
        "@timestamp": pa.array([t0 + dt.timedelta(seconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")),
        "host.id": cyc(["h1", "h2", "h3"]), "destination.domain": [r[0] for r in rows],
        "destination.ip": [r[1] for r in rows], "process.executable": [r[2] for r in rows],
        "process.name": [r[3] for r in rows], "process.code_signature.subject_name": [r[4] for r in rows],
        "process.pe.original_file_name": cyc(ofns), "process.parent.name": cyc(parents),
        "process.command_line": cyc(cmds), "process.hash.sha256": cyc(shas),
        "host.os.type": cyc([None, "windows", "linux"]),
    }))


@pytest.fixture(scope="module")
def allow_catalog(tmp_path_factory):
    p = tmp_path_factory.mktemp("cat") / "ext.toml"
    p.write_text('[allow]\ndestinations = [".example.org", "10.0.0.1"]\nprocesses = ["curl"]\n')
    return Catalog(str(p))


def test_edge_rows_match_the_row_by_row_definition(allow_catalog):
    t = _edge_table()
    assert t.num_rows > 300
    for cat in (default_catalog(), allow_catalog):
        r = KeyResolver(cat)
        check(r, t)
        check(r, t)                                   # second pass: everything from the caches
        check(r, t.take(pa.array(np.random.default_rng(1).permutation(t.num_rows))))


def test_simulated_stream_and_bounded_caches():
    """Across batches (values cached from earlier batches) and with caches so small that they are emptied
    and refilled inside the stream (and a batch that holds more distinct values than the limit)."""
    batches = list(itertools.islice(Organisation(agents=60, days=12, seed=3).batches(20_000), 6))
    for limit in (1 << 18, 300, 7):
        r = KeyResolver(default_catalog(), limit=limit)
        for b in batches:
            check(r, b)
        assert r._dom.index.capacity >= limit
    tiny = KeyResolver(default_catalog(), limit=7)
    check(tiny, batches[0])
    assert len(tiny._dom.index) <= max(7, batches[0].num_rows)


def test_names_are_remembered_and_bounded():
    r = KeyResolver(default_catalog())
    b = next(iter(Organisation(agents=40, days=10, seed=2).batches(20_000)))
    ev, _ = r.resolve(b, np.zeros(b.num_rows, np.int64) + 19000)
    res = default_catalog().resolve_batch(b)["raresketch.cloud.resource"].to_pylist()
    for k, name in zip(ev.resource[ev.is_cloud][:50].tolist(), [x for x in res if x is not None][:50]):
        assert r.names[k] == name


def _texts_of_resolve_batch(cat: Catalog, events: pa.Table, rows: np.ndarray) -> dict[str, list]:
    r = cat.resolve_batch(events.take(pa.array(rows, pa.int64())))
    return {c: r[c].to_pylist() for c in ("raresketch.process.key", "raresketch.cloud.resource",
                                          "raresketch.cloud.provider", "raresketch.cloud.service",
                                          "raresketch.im.service", "raresketch.process.script_engine")}


def test_flags_texts_equal_resolve_batch(allow_catalog):
    """flags.texts(rows) (the resolver's per-id texts picked by the winning source) against resolve_batch on those
    rows, on random, edge and simulated batches, with rows in any order and after Flags.take; and the source code
    says where the destination came from."""
    from test_fast_paths import random_batch

    rng = np.random.default_rng(5)
    sim = list(itertools.islice(Organisation(agents=40, days=12, seed=4).batches(20_000), 3))
    for cat in (default_catalog(), allow_catalog):
        resolver = KeyResolver(cat, limit=300)           # small: emptied and refilled inside the stream
        batches = [_edge_table(), *sim] + [conform(random_batch(random.Random(s), 2000, 0.0)) for s in range(4)]
        kept = []
        for b in batches:
            _, flags = resolver.resolve(b, np.zeros(b.num_rows, np.int64))
            rows = rng.permutation(b.num_rows)[: max(1, b.num_rows // 3)]
            assert flags.texts(rows) == _texts_of_resolve_batch(cat, b, rows)
            taken = flags.take(rows[::2])
            assert taken.texts(rows) == flags.texts(rows)      # texts read rows of the original batch
            assert np.array_equal(taken.source, flags.source[rows[::2]])
            kept.append((b, flags, rows))
            dom = b["destination.domain"].combine_chunks()
            ip = b["destination.ip"].combine_chunks()
            res = cat.resolve_batch(b)["raresketch.destination.key"].to_pylist()
            src = flags.source
            assert set(np.unique(src).tolist()) <= {0, 1, 2, 3}
            assert all(k is None for k in np.array(res, object)[src == 0])
            assert not pc.is_null(dom).to_numpy(zero_copy_only=False)[(src == 1) | (src == 3)].any()
            assert not pc.is_null(ip).to_numpy(zero_copy_only=False)[src == 2].any()
            assert pc.is_null(ip).to_numpy(zero_copy_only=False)[src == 3].all()
        for b, flags, rows in kept:                       # still right after later batches refilled the caches
            assert flags.texts(rows) == _texts_of_resolve_batch(cat, b, rows)
