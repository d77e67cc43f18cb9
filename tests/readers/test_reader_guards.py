"""Reader guards: line length, decompression, folders, and table columns."""
from __future__ import annotations

import gzip
import io
import json
import os
import resource
import subprocess
import sys
import zlib

import pytest

from raresketch._readers import ReadStats, read_events
from raresketch._readers import _source


def _ecs(i: int, host: str = "h1") -> bytes:
    return json.dumps({"@timestamp": f"2024-01-01T00:00:{i % 60:02d}Z", "host": {"id": host},
                       "event": {"category": ["network"]}, "destination": {"ip": f"8.8.{i // 250}.{i % 250}",
                                                                             "port": 443}}).encode()


def _n(path, **kw) -> tuple[int, ReadStats]:
    st = ReadStats()
    n = sum(t.num_rows for t in read_events(path, stats=st, **kw))
    return n, st


# ---- 1. line length --------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("fmt", ["ecs", "sysmon", "zeek"])
def test_long_line_skipped_and_counted(tmp_path, gz, fmt):
    good = [_ecs(i) for i in range(5)]
    if fmt == "sysmon":
        good = [json.dumps({"EventID": 3, "UtcTime": f"2024-01-01 00:00:0{i}.000", "Computer": "h1",
                            "Image": "C:\\a.exe", "DestinationIp": "8.8.8.8", "DestinationPort": 443,
                            "Protocol": "tcp"}).encode() for i in range(5)]
    if fmt == "zeek":
        good = [json.dumps({"_path": "conn", "ts": 1704067200 + i, "uid": f"C{i}", "id.orig_h": "10.0.0.1",
                            "id.orig_p": 5000, "id.resp_h": "8.8.8.8", "id.resp_p": 443, "proto": "tcp"}).encode()
                for i in range(5)]
    long = b'{"x": "' + b"a" * 300_000 + b'"}'
    data = b"\n".join([good[0], long, good[1], long + b"\r", good[2], good[3], good[4], long]) + b"\n"
    p = tmp_path / ("in.jsonl.gz" if gz else "in.jsonl")
    p.write_bytes(gzip.compress(data) if gz else data)
    n, st = _n(str(p), format=fmt, max_line_bytes=100_000)
    assert st.skipped["line_too_long"] == 3
    assert n == 5
    n, st = _n(str(p), format=fmt)              # the default bound (64 MiB) keeps them (as malformed records)
    assert st.skipped["line_too_long"] == 0 and n == 5


@pytest.mark.parametrize("gz", [False, True])
def test_csv_is_streamed_with_the_line_bound(tmp_path, gz):
    """CSV is parsed block by block (not read whole), and a line over max_line_bytes is dropped and counted."""
    head = b"@timestamp,host.id,destination.ip,destination.port,process.executable\n"
    rows = [f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z,h{i % 7},52.1.{i % 250}.{i % 200},443,C:\\a.exe".encode()
            for i in range(3000)]
    long = b"2024-01-01T01:00:00Z,h1,52.1.1.1,443," + b"x" * 300_000
    data = head + b"\n".join(rows[:1500] + [long] + rows[1500:]) + b"\n"
    p = tmp_path / ("in.csv.gz" if gz else "in.csv")
    p.write_bytes(gzip.compress(data) if gz else data)
    st = ReadStats()
    sizes = [t.num_rows for t in read_events(str(p), stats=st, batch_size=500, max_line_bytes=100_000)]
    assert sum(sizes) == 3000 and st.skipped["line_too_long"] == 1 and max(sizes) <= 500
    n, st = _n(str(p))                       # the default bound keeps the long line (a valid record)
    assert n == 3001 and st.skipped["line_too_long"] == 0


@pytest.mark.parametrize("newline", [b"", b"\n"])
def test_good_lines_before_a_long_last_line_are_kept(tmp_path, newline):
    """Regression: when the first 64 KiB held whole lines and the rest of the file was one line over the bound,
    the whole-line reader dropped those good lines with the long one (counted once)."""
    good = [_ecs(i) for i in range(5)]
    long = b'{"x": "' + b"a" * 200_000 + b'"}'
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\n".join(good) + b"\n" + long + newline)
    n, st = _n(str(p), format="ecs", max_line_bytes=100_000)
    assert n == 5 and st.skipped["line_too_long"] == 1
    src = _source.Source(str(p), max_line=100_000)
    assert list(src.lines()) == good and src.too_long == 1
    src.close()


def test_lines_are_the_lines_of_the_blocks():
    """``Source.lines`` is ``Source.blocks`` split at newlines: a file that ends with a newline inside the
    first 64 KiB gives no extra empty line (which ``stats.read`` counted as a record), and ``\\r`` is dropped."""
    for data in (b"a\nb\n", b"a\r\n\nb", b"", b"\n", b"x" * 70_000 + b"\ny\n"):
        want = [p[:-1] if p.endswith(b"\r") else p for p in data.split(b"\n")]
        if data.endswith(b"\n") or not data:
            want.pop()
        assert list(_source.Source(data).lines()) == want, data[:10]


def test_line_just_at_the_bound_is_kept(tmp_path):
    line = _ecs(1)
    p = tmp_path / "a.jsonl"
    p.write_bytes(line + b"\r\n" + line + b"x\n")
    n, st = _n(str(p), format="ecs", max_line_bytes=len(line))
    assert n == 1 and st.skipped["line_too_long"] == 1


def test_bad_max_line_bytes(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(_ecs(1) + b"\n")
    with pytest.raises(ValueError, match="max_line_bytes"):
        _n(str(p), max_line_bytes=0)


_BOMB = r'''
import gzip, io, json, resource, sys, zlib
resource.setrlimit(resource.RLIMIT_AS, (1500 << 20, 1500 << 20))
from raresketch._readers import ReadStats, read_events
from raresketch._readers import _source
_source.GZIP_MIN_BYTES = 1 << 62     # the line bound alone
c = zlib.compressobj(9, zlib.DEFLATED, 31)
out = [c.compress(b'{"@timestamp":"2024-01-01T00:00:00Z","host":{"id":"h"},"destination":{"ip":"8.8.8.8"}}\n')]
z = bytes(1 << 20)
for _ in range(int(sys.argv[1])):
    out.append(c.compress(z))
out.append(c.compress(b'\n{"@timestamp":"2024-01-01T00:00:01Z","host":{"id":"h"},"destination":{"ip":"8.8.4.4"}}\n'))
out.append(c.flush())
st = ReadStats()
n = sum(t.num_rows for t in read_events(io.BytesIO(b"".join(out)), format=sys.argv[2], stats=st,
                                        max_line_bytes=16 << 20))
print(json.dumps([n, st.skipped.get("line_too_long", 0)]))
'''


@pytest.mark.parametrize("fmt", ["ecs", "sysmon"])
def test_gzip_newline_free_run_bounded_by_line_rule(fmt):
    """2 GiB of NUL with no newline inside a gzip, under a 1.5 GiB address-space limit: read, not held."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", _BOMB, "2048", fmt], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    n, long = json.loads(r.stdout)
    assert long == 1 and n == (2 if fmt == "ecs" else n)


# ---- 2. decompression guard ------------------------------------------------------------------------
def _bomb_gz(mib: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(_ecs(0) + b"\n")]
    z = b"\n" * (1 << 20)
    for _ in range(mib):
        out.append(c.compress(z))
    out.append(c.compress(_ecs(1) + b"\n"))
    return b"".join(out) + c.flush()


def test_decompression_guard_stops_the_file_and_the_folder_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(_source, "GZIP_MIN_BYTES", 8 << 20)
    (tmp_path / "a_bomb.jsonl.gz").write_bytes(_bomb_gz(64))
    (tmp_path / "b_good.jsonl").write_bytes(b"\n".join(_ecs(i, "h2") for i in range(3)) + b"\n")
    n, st = _n(str(tmp_path))
    assert st.skipped["decompression_limit"] == 1
    assert n == 1 + 3                                   # the bomb's first record, then the next file whole
    assert len(st.warnings) == 1 and "a_bomb.jsonl.gz" in st.warnings[0] and "expands more than" in st.warnings[0]


def test_decompression_size_bound(tmp_path):
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(_bomb_gz(4))
    n, st = _n(str(p), max_decompressed_bytes=1 << 20)
    assert st.skipped["decompression_limit"] == 1 and n == 1 and "max_decompressed_bytes" in st.warnings[0]
    n, st = _n(str(p))                                 # under the default bounds: read whole
    assert n == 2 and not st.warnings


def test_cli_reports_the_guard(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from raresketch.cli import main

    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(_bomb_gz(4))
    monkeypatch.setattr(_source, "GZIP_MAX_RATIO", 2.0)
    monkeypatch.setattr(_source, "GZIP_MIN_BYTES", 1 << 20)
    r = CliRunner().invoke(main, ["run", str(p), "--out", str(tmp_path / "o.jsonl")])
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert "decompression_limit 1" in err and "warning: " in err and "a.jsonl.gz" in err


# ---- 3. folders ------------------------------------------------------------------------------------
def test_folder_recursed_and_unknown_extensions_counted(tmp_path):
    (tmp_path / "2024" / "01").mkdir(parents=True)
    (tmp_path / "2024" / "01" / "a.jsonl").write_bytes(_ecs(1) + b"\n")
    (tmp_path / "2024" / "b.jsonl.gz").write_bytes(gzip.compress(_ecs(2) + b"\n"))
    (tmp_path / "c.jsonl").write_bytes(_ecs(3) + b"\n")
    (tmp_path / "notes.txt").write_bytes(_ecs(4) + b"\n")
    (tmp_path / "2024" / "01" / "d.json.bak").write_bytes(_ecs(5) + b"\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "e.jsonl").write_bytes(_ecs(6) + b"\n")
    os.symlink(tmp_path, tmp_path / "2024" / "loop")
    n, st = _n(str(tmp_path))
    assert n == 3
    assert st.skipped["unknown_extension"] == 2
    assert st.files == 3


def test_cli_summary_names_unknown_extension(tmp_path):
    from click.testing import CliRunner

    from raresketch.cli import main

    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.jsonl").write_bytes(_ecs(1) + b"\n")
    (d / "x.txt").write_bytes(b"hello\n")
    r = CliRunner().invoke(main, ["run", str(d), "--out", str(tmp_path / "o.jsonl")])
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert "unknown_extension 1" in err and "1 network events" in err, err


# ---- 4. tables -------------------------------------------------------------------------------------
def _write(t, tmp_path, kind):
    import pyarrow.csv as pcsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    p = tmp_path / f"t.{kind}"
    if kind == "csv":
        names = t.column_names
        with open(p, "w") as f:
            f.write(",".join(names) + "\n")
            for row in zip(*(t.column(i).to_pylist() for i in range(t.num_columns))):
                f.write(",".join("" if v is None else str(v) for v in row) + "\n")
    elif kind == "parquet":
        pq.write_table(t, p)
    else:
        feather.write_feather(t, p)
    return str(p)


@pytest.mark.parametrize("kind", ["csv", "parquet", "arrow", "memory"])
def test_duplicate_column_is_one_clear_error(tmp_path, kind):
    import pyarrow as pa

    t = pa.table([["2024-01-01T00:00:00Z"], ["a"], ["b"], ["8.8.8.8"]],
                 names=["@timestamp", "host.id", "host.id", "destination.ip"])
    src = t if kind == "memory" else _write(t, tmp_path, kind)
    with pytest.raises(ValueError, match="'host.id' appears 2 times"):
        _n(src)


@pytest.mark.parametrize("kind", ["csv", "parquet", "arrow"])
@pytest.mark.parametrize("scale", [1_000_000_000, 1_000_000, 1_000, 1])
def test_int64_epoch_timestamps(tmp_path, kind, scale):
    import pyarrow as pa

    base = 1704067200  # 2024-01-01T00:00:00Z
    ts = [base * scale + (123456789 * scale // 1_000_000_000), (base + 1) * scale]
    t = pa.table({"@timestamp": pa.array(ts, pa.int64()), "host.id": ["a", "b"],
                  "destination.ip": ["8.8.8.8", "1.1.1.1"]})
    st = ReadStats()
    out = list(read_events(_write(t, tmp_path, kind), stats=st))
    got = sorted(v.value for o in out for v in o.column("@timestamp"))
    want_first = base * 1_000_000 + {1_000_000_000: 123456, 1_000_000: 123456, 1_000: 123000, 1: 0}[scale]
    assert got == [want_first, (base + 1) * 1_000_000], (got, st)
    assert st.emitted == 2


def test_ns_epoch_exact_in_json_and_parse():
    from raresketch.events._values import parse_timestamp

    assert parse_timestamp(1704067200123456789) == 1704067200123456
    assert parse_timestamp("1704067200123456789") == 1704067200123456
    assert parse_timestamp(1704067200123456) == 1704067200123456       # microseconds unchanged
    assert parse_timestamp(1704067200123) == 1704067200123000


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_misspelt_columns_warned(tmp_path, kind):
    import pyarrow as pa

    t = pa.table({"@timestamp": ["2024-01-01T00:00:00Z"], "host.id": ["a"], "destinaton.ip": ["8.8.8.8"],
                  "destination.domain": ["example.com"], "process_name": ["x.exe"], "note": ["hi"]})
    st = ReadStats()
    list(read_events(_write(t, tmp_path, kind), stats=st))
    text = "\n".join(st.warnings)
    assert "'destinaton.ip'" in text and "did you mean 'destination.ip'" in text
    assert "'process_name'" in text and "'process.name'" in text
    assert "note" not in text and len(st.warnings) == 2


@pytest.mark.parametrize("nested", [False, True])
def test_misspelt_json_keys_warned(tmp_path, nested):
    """ECS JSON lines: a key close to a field the reader reads, and absent from the input, is named once."""
    from raresketch.alerts._ecs import _nest

    def doc(i):
        flat = {"@timestamp": f"2024-01-01T00:00:0{i}Z", "host.id": "a", "destinaton.ip": "8.8.8.8",
                "destination.domain": "example.com", "process_name": "x.exe", "labels.note": "hi"}
        return _nest(flat) if nested else flat
    p = tmp_path / "e.jsonl"
    p.write_text("\n".join(json.dumps(doc(i)) for i in range(5)) + "\n")
    st = ReadStats()
    assert sum(t.num_rows for t in read_events(str(p), stats=st)) == 5
    text = "\n".join(st.warnings)
    assert "'destinaton.ip'" in text and "did you mean 'destination.ip'" in text
    assert "'process_name'" in text and "'process.name'" in text
    assert "note" not in text and len(st.warnings) == 2, st.warnings


def test_deeply_nested_json_lines_are_counted_not_a_crash(tmp_path):
    """Regression: the misspelt-key check parsed the first lines with the standard library, which raised
    RecursionError on a line nested 100,000 deep; such a line is a counted malformed record like any other."""
    p = tmp_path / "deep.jsonl"
    p.write_bytes(b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"\n" + _ecs(1) + b"\n"
                  + b'{"b":' * 900 + b"1" + b"}" * 900 + b"\n")
    n, st = _n(str(p), format="ecs")
    assert n == 1 and st.read == 3


def test_host_underscore_id_named(tmp_path):
    import pyarrow as pa

    t = pa.table({"@timestamp": ["2024-01-01T00:00:00Z"], "host_id": ["a"], "destination.ip": ["8.8.8.8"]})
    st = ReadStats()
    with pytest.raises(ValueError, match="did you mean 'host.id'"):
        list(read_events(_write(t, tmp_path, "parquet"), stats=st))
    assert any("did you mean 'host.id'" in w for w in st.warnings)


def test_numbers_beyond_int64_stay_bad_timestamps():
    from raresketch.events._values import parse_timestamp

    assert parse_timestamp(2 ** 63) is None and parse_timestamp(1e300) is None
    assert parse_timestamp(2 ** 63 - 1) == (2 ** 63 - 1) // 1000
