"""ECS JSON lines: JSON parsers side by side, same file, same process. Prints a markdown table of lines/s and
MB/s per contender and its ratio to the current reader.

    python benches/reports/compare_json.py --make /tmp/ecs_org.parquet /tmp/ecs_org.jsonl   # once: realistic lines
    python benches/reports/compare_json.py /tmp/ecs_org.jsonl [--lines 200000] [--rounds 3]

``--make`` writes the events of a Parquet file (``raresketch simulate --out X.parquet``) as ECS JSON lines the
way Elastic Endpoint (90 %) and Winlogbeat's Sysmon module (10 %) write them: nested objects, with the fields a
real document carries and the reader skips (``agent.*``, ``ecs.version``, ``event.*``, ``data_stream.*``,
``host.os.*``, ``host.ip``, ``process.Ext`` with a list of objects, ``process.args``, ``winlog.event_data``,
``message``, ...): about 2 KB a line.

Contenders (each reads the same first ``--lines`` lines from memory):

- ``read_events``: the ECS reader of this tree (the whole reader: projection, flatten, conform, sort,
  batches in EVENT_SCHEMA), and with ``--before REF`` the reader (``_ecs.py`` and ``_common.py``) committed at
  ``REF`` (e.g. ``main`` before the projector: Arrow's JSON reader), imported side by side.
- ``read_events ... yyjson-only``: the same reader with ``Projector(on_demand=False)`` (every line parsed by
  yyjson, as before the on-demand scan).
- ``raresketch._json projector``: ``Projector.project`` per 4 MiB block (on-demand scan, and with
  ``on_demand=False`` yyjson for every line), parse + Arrow columns of every
  wanted path, no flattening (what the reader's fast path costs before Arrow compute).
- ``arrow parse``: ``pyarrow.json.read_json`` with an explicit schema of the wanted nested fields, parse only
  (what the previous Arrow fast path cost before flattening).
- ``orjson + rows``: ``orjson.loads`` per line plus the per-line reader's row mapping and column building (the
  per-line reader, ``read_events(..., fast=False)`` equivalent).
- ``orjson parse``: ``orjson.loads`` per line only.
- ``msgspec parse``: ``msgspec.json.Decoder`` of typed ``msgspec.Struct`` schemas holding exactly the wanted
  fields (unknown fields skipped while parsing), ``decode_lines`` per 4 MiB block, parse only.
- ``msgspec + columns``: the same plus building the Arrow columns of every wanted path.
- ``simdjson parse``: ``simdjson.Parser.parse`` per line plus fetching the wanted fields (JSON pointers),
  when pysimdjson is installed.

``--e2e`` adds ``raresketch run FILE --out /dev/null`` (reader + engine, end to end, in this process; the
lines are written to a temporary file), for this tree and, with ``--before``, with the reader at ``REF``.

Arrow runs with its default thread pool unless ``--one-core`` (pins the process to one CPU, Arrow to one
thread), which is what the other contenders use anyway (they hold the GIL).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import random
import sys
import time
from operator import attrgetter

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj

# --------------------------------------------------------------------------------------------- test data

_EVENT_DATA_KEYS = ("RuleName", "UtcTime", "ProcessGuid", "ProcessId", "Image", "User", "Protocol", "Initiated",
                    "SourceIsIpv6", "SourceIp", "SourceHostname", "SourcePort", "SourcePortName",
                    "DestinationIsIpv6", "DestinationIp", "DestinationHostname", "DestinationPort")


def _hex(s: str, n: int) -> str:
    return hashlib.blake2b(s.encode(), digest_size=n // 2).hexdigest()


def _endpoint(r: dict, ts: str, i: int, rng: random.Random) -> dict:
    """An Elastic Endpoint (Elastic Defend 8.x) network event."""
    hid = r["host.id"]
    os_type = r["host.os.type"] or "windows"
    win = os_type == "windows"
    proc = {"pid": r["process.pid"], "entity_id": _hex(r["process.entity_id"] or str(i), 40),
            "executable": r["process.executable"], "name": r["process.name"]}
    if r["process.command_line"]:
        proc["command_line"] = r["process.command_line"]
        proc["args_count"] = r["process.command_line"].count(" ") + 1
    if r["process.hash.sha256"]:
        proc["hash"] = {"sha256": r["process.hash.sha256"]}
    if r["process.code_signature.exists"] is not None:
        cs = {"exists": r["process.code_signature.exists"]}
        if r["process.code_signature.subject_name"]:
            cs["subject_name"] = r["process.code_signature.subject_name"]
        if r["process.code_signature.trusted"] is not None:
            cs["trusted"] = r["process.code_signature.trusted"]
            cs["status"] = "trusted" if r["process.code_signature.trusted"] else "errorUntrustedRoot"
        proc["code_signature"] = cs
        proc["Ext"] = {"code_signature": [{"subject_name": cs.get("subject_name"), "trusted": cs.get("trusted")}]}
    if r["process.pe.original_file_name"]:
        proc["pe"] = {"original_file_name": r["process.pe.original_file_name"]}
    par = {"pid": rng.randrange(4, 40000), "entity_id": _hex(hid + "p", 40)}
    if r["process.parent.executable"]:
        par["executable"] = r["process.parent.executable"]
    if r["process.parent.name"]:
        par["name"] = r["process.parent.name"]
    proc["parent"] = par
    dest = {"port": r["destination.port"]}
    if r["destination.ip"]:
        dest["ip"] = dest["address"] = r["destination.ip"]
    if r["destination.domain"]:
        dest["domain"] = r["destination.domain"]
    src = {"ip": r["source.ip"], "address": r["source.ip"], "port": r["source.port"]}
    host = {"id": hid, "name": r["host.name"], "hostname": r["host.name"], "architecture": "x86_64",
            "ip": [r["source.ip"], "fe80::" + _hex(hid, 4)],
            "os": ({"family": "windows", "kernel": "22H2 (10.0.19045.3930)",
                    "full": "Windows 10 Enterprise 22H2 (10.0.19045.3930)", "name": "Windows",
                    "platform": "windows", "type": "windows", "version": "22H2"} if win else
                   {"family": "debian", "kernel": "5.15.0-91-generic",
                    "full": "Ubuntu 22.04.3", "name": "Linux", "platform": "ubuntu", "type": os_type,
                    "version": "22.04.3"})}
    aid = _hex(hid + "agent", 32)
    d = {"@timestamp": ts,
         "agent": {"id": aid, "type": "endpoint", "version": "8.12.0"},
         "data_stream": {"dataset": "endpoint.events.network", "namespace": "default", "type": "logs"},
         "destination": dest, "ecs": {"version": "8.10.0"}, "elastic": {"agent": {"id": aid}},
         "event": {"action": "connection_attempted", "agent_id_status": "verified", "category": ["network"],
                   "created": ts, "dataset": "endpoint.events.network", "id": _hex(str(i), 24),
                   "kind": "event", "module": "endpoint", "outcome": "unknown", "sequence": 100000 + i,
                   "type": ["start"]},
         "host": host, "message": "Endpoint network event",
         "network": {"direction": r["network.direction"] or "egress", "transport": r["network.transport"],
                     "type": "ipv6" if ":" in (r["destination.ip"] or "") else "ipv4"},
         "process": proc, "source": src}
    if r["user.name"]:
        d["user"] = {"domain": "ACME" if win else None, "id": "S-1-5-21-" + _hex(r["user.name"], 8),
                     "name": r["user.name"]}
        d["group"] = {"Ext": {"real": {"id": 0, "name": "root"}}, "id": 0, "name": "root"} if not win else None
    return d


def _winlogbeat(r: dict, ts: str, i: int, rng: random.Random) -> dict:
    """Winlogbeat 8.x with the Sysmon module: EventID 3 as nested ECS plus the raw ``winlog.event_data``."""
    host = {"name": r["host.name"], "hostname": r["host.name"], "id": r["host.id"], "architecture": "x86_64",
            "os": {"build": "19045.3930", "family": "windows", "kernel": "10.0.19041.3930 (WinBuild.160101.0800)",
                   "name": "Windows 10 Enterprise", "platform": "windows", "type": "windows", "version": "10.0"},
            "ip": [r["source.ip"]], "mac": ["00-15-5d-" + _hex(r["host.id"], 6)]}
    guid = r["process.entity_id"] or "{00000000-0000-0000-0000-000000000000}"
    ed = {"RuleName": "-", "UtcTime": ts.replace("T", " ")[:23], "ProcessGuid": guid,
          "ProcessId": str(r["process.pid"]), "Image": r["process.executable"], "User": f"ACME\\{r['user.name']}",
          "Protocol": r["network.transport"], "Initiated": "true", "SourceIsIpv6": "false",
          "SourceIp": r["source.ip"], "SourceHostname": "-", "SourcePort": str(r["source.port"]),
          "SourcePortName": "-", "DestinationIsIpv6": "false", "DestinationIp": r["destination.ip"],
          "DestinationHostname": r["destination.domain"] or "-", "DestinationPort": str(r["destination.port"])}
    d = {"@timestamp": ts,
         "agent": {"ephemeral_id": _hex(str(i // 5000), 32), "id": _hex(r["host.id"] + "wlb", 32),
                   "name": r["host.name"], "type": "winlogbeat", "version": "8.12.0"},
         "destination": {"ip": r["destination.ip"], "port": r["destination.port"],
                         **({"domain": r["destination.domain"]} if r["destination.domain"] else {})},
         "ecs": {"version": "1.12.0"},
         "event": {"action": "Network connection detected (rule: NetworkConnect)", "category": ["network"],
                   "code": "3", "created": ts, "kind": "event", "module": "sysmon", "provider":
                   "Microsoft-Windows-Sysmon", "type": ["connection", "start", "protocol"]},
         "host": host, "log": {"level": "information"},
         "message": (f"Network connection detected:\nRuleName: -\nUtcTime: {ed['UtcTime']}\nProcessGuid: {guid}\n"
                     f"ProcessId: {ed['ProcessId']}\nImage: {ed['Image']}"),
         "network": {"direction": r["network.direction"] or "egress", "transport": r["network.transport"],
                     "type": "ipv4"},
         "process": {"entity_id": guid, "executable": r["process.executable"], "name": r["process.name"],
                     "pid": r["process.pid"]},
         "related": {"ip": [r["source.ip"], r["destination.ip"]], "user": [r["user.name"]]},
         "rule": {"name": "-"}, "source": {"ip": r["source.ip"], "port": r["source.port"]},
         "user": {"domain": "ACME", "name": r["user.name"]},
         "winlog": {"api": "wineventlog", "channel": "Microsoft-Windows-Sysmon/Operational",
                    "computer_name": r["host.name"], "event_data": ed, "event_id": "3",
                    "opcode": "Info", "process": {"pid": 3212, "thread": {"id": 4712}},
                    "provider_guid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
                    "provider_name": "Microsoft-Windows-Sysmon", "record_id": 100000 + i,
                    "task": "Network connection detected (rule: NetworkConnect)", "version": 5}}
    return d


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def lines_of(t: pa.Table, first: int = 0, winlogbeat: float = 0.1, rng: random.Random | None = None) -> list:
    """Events in EVENT_SCHEMA -> realistic ECS JSON lines (bytes, without newline); ``first`` numbers them."""
    import pyarrow.compute as pc

    rng = rng or random.Random(0)
    ts = pc.strftime(t.column("@timestamp"), format="%Y-%m-%dT%H:%M:%S").to_pylist()
    us = (t.column("@timestamp").cast(pa.int64()).to_numpy() % 1_000_000).tolist()
    lines = []
    for k, r in enumerate(t.to_pylist()):
        stamp = f"{ts[k][:19]}.{us[k] // 1000:03d}Z"
        win = (r["host.os.type"] or "windows") == "windows"
        mk = _winlogbeat if win and rng.random() < winlogbeat else _endpoint
        lines.append(orjson.dumps(_drop_none(mk(r, stamp, first + k, rng))))
    return lines


def make_lines(parquet: str, out: str, winlogbeat: float = 0.1, seed: int = 0) -> int:
    """Write the Parquet events as realistic ECS JSON lines (``.gz`` when ``out`` ends so). Returns lines."""
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    pf = pq.ParquetFile(parquet)
    opener = gzip.open if out.endswith(".gz") else open
    n = 0
    with opener(out, "wb") as fh:
        for b in pf.iter_batches(100_000):
            lines = lines_of(pa.Table.from_batches([b]), n, winlogbeat, rng)
            fh.write(b"\n".join(lines) + b"\n")
            n += len(lines)
    return n


# --------------------------------------------------------------------------------------------- contenders

def _pin_one_core() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _blocks(data: bytes, size: int = 1 << 22) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        j = data.rfind(b"\n", i, i + size) + 1
        j = j if j > i else len(data)
        out.append(data[i:j])
        i = j
    return out


def _git_show(ref: str, path: str) -> bytes:
    import subprocess

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    return subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, check=True, capture_output=True).stdout


def _import_source(name: str, src: bytes):
    import importlib.util
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".py")
    with os.fdopen(fd, "wb") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def load_ecs_module(ref: str):
    """``raresketch/_readers/_ecs.py`` as committed at git ``ref`` (e.g. the commit before an optimisation),
    imported next to the installed one (with the installed events package and reader plumbing), for a
    before/after run in one process. A ref from before the reader plumbing was split out of
    ``_readers/_common.py`` cannot be loaded this way (its imports are gone): compare with a checkout of it."""
    tag = "".join(c for c in ref if c.isalnum())
    return _import_source(f"raresketch._readers._ecs_{tag}", _git_show(ref, "src/raresketch/_readers/_ecs.py"))


def _arrow_schema(paths: dict) -> pa.Schema:
    """The explicit Arrow JSON schema of the wanted paths (nested structs), from the reader's kinds."""
    typ = {"string": pa.string(), "int": pa.int64(), "int32": pa.int64(), "bool": pa.bool_()}
    tree: dict = {}
    for p, kind in paths.items():
        node = tree
        parts = p.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = typ.get(kind, pa.list_(pa.string()))

    def mk(node: dict) -> list:
        return [pa.field(k, pa.struct(mk(v)) if isinstance(v, dict) else v) for k, v in node.items()]

    return pa.schema(mk(tree))


class MsgspecEcs:
    """The ECS fast path with msgspec as the decoder: typed ``msgspec.Struct`` s holding exactly the wanted
    nested fields (unknown ones skipped while parsing; a shared empty instance as the default of an absent
    object), ``decode_lines`` per block, one Arrow array per wanted path (``attrgetter`` mapped per level),
    then the reader's own column-wise flattening, conforming and batching. Clean input only (no fallback)."""

    def __init__(self, ecs):
        import re
        from itertools import repeat
        from operator import is_not
        from typing import Annotated, Optional

        import msgspec

        self.ecs, self._repeat, self._is_not = ecs, repeat, is_not
        i64 = Annotated[int, msgspec.Meta(ge=-(1 << 63), le=(1 << 63) - 1)]
        py = {"string": str, "int": i64, "int32": i64, "bool": bool, "has:network": list[str]}

        def attr(key):
            return key if key.isidentifier() and not key.startswith("_") else "f_" + re.sub(r"\W", "_", key)

        def struct(name, node, path=""):
            fields, spec = [], []
            for key, sub in node.items():
                p = f"{path}.{key}" if path else key
                if isinstance(sub, dict):
                    typ, empty, sub_spec = struct(f"{name}_{attr(key)}", sub, p)
                    fields.append((attr(key), typ, empty))
                    spec.append((attrgetter(attr(key)), (sub_spec, empty)))
                else:
                    fields.append((attr(key), Optional[py[sub]], None))
                    spec.append((attrgetter(attr(key)), p))
            typ = msgspec.defstruct(name, fields, rename={attr(k): k for k in node}, frozen=True, gc=False)
            return typ, typ(), spec

        tree: dict = {}
        for p, typ in ecs._FAST_PATHS.items():
            node = tree
            parts = p.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = typ
        event, _, self.spec = struct("EcsEvent", tree)
        self.decode_lines = msgspec.json.Decoder(event).decode_lines

    def _columns(self, objs, spec, out):
        for get, sub in spec:
            vals = list(map(get, objs))
            if isinstance(sub, str):
                out[sub] = vals
            elif any(map(self._is_not, vals, self._repeat(sub[1]))):
                self._columns(vals, sub[0], out)

    def table(self, evs) -> dict:
        n = len(evs)
        leaves: dict = {}
        self._columns(evs, self.spec, leaves)
        cols = {}
        typ = {"string": pa.string(), "int": pa.int64(), "int32": pa.int32(), "int32_": pa.int32(),
               "bool": pa.bool_()}
        for path, kind in self.ecs._FAST_PATHS.items():
            v = leaves.get(path)
            if kind == "int32" and v is not None:  # out of int32 -> null, as the projector
                v = [x if x is not None and -(1 << 31) <= x < (1 << 31) else None for x in v]
                kind = "int32_"
            if kind.startswith("has:"):
                want = kind[4:]
                cols[path] = pa.array([0 if x is None else 1 if want in x else 2 for x in v] if v else [0] * n,
                                      pa.int8())
            else:
                cols[path] = (pa.nulls(n, typ[kind]) if v is None or v.count(None) == n
                              else pa.array(v, typ[kind]))
        return cols

    def read(self, data: bytes, stats) -> int:
        """Clean input only: every line must be an object the Structs decode (no per-line fallback)."""
        from raresketch._readers._source import Source

        ecs = self.ecs
        batcher = ecs._Batcher(65536, stats)
        n = 0
        for block in Source(data).blocks(ecs.BLOCK_BYTES):
            evs = self.decode_lines(block)
            stats.read += len(evs)
            t = ecs._flatten(self.table(evs), np.arange(len(evs)), stats)
            for b in batcher.add(t):
                n += b.num_rows
        for b in batcher.flush():
            n += b.num_rows
        return n


def e2e_runner(path: str, ecs_mod=None):
    """``raresketch run PATH --out /dev/null`` in this process (its summary on stderr silenced), with the ECS
    reader of ``ecs_mod`` (``read_ecs`` and the ``Source`` it was written for) when given. Returns the number
    of lines read."""
    import contextlib
    import io

    import raresketch._readers as readers
    from raresketch.cli import main as cli_main

    def run() -> int:
        saved = readers.read_ecs, readers.Source
        if ecs_mod is not None:
            readers.read_ecs, readers.Source = ecs_mod.read_ecs, ecs_mod.Source
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                cli_main(["run", path, "--format", "ecs", "--out", os.devnull], standalone_mode=False)
        finally:
            readers.read_ecs, readers.Source = saved
        m = [ln for ln in err.getvalue().splitlines() if "read" in ln]
        assert m, err.getvalue()[-2000:]
        return int(m[0].split("read")[1].split()[0].replace(",", ""))

    return run


def contenders(data: bytes, before: str | None, e2e_path: str | None = None) -> dict:
    """name -> (function of no argument returning the number of records, what it includes)."""
    from raresketch._json import Projector
    from raresketch._readers import ReadStats, _ecs
    from raresketch._readers._source import Source

    blocks = _blocks(data)
    old = load_ecs_module(before) if before else None
    parse = pj.ParseOptions(explicit_schema=_arrow_schema(_ecs._FAST_PATHS), unexpected_field_behavior="ignore")
    proj = Projector(_ecs._FAST_PATHS)

    def reader(mod, fast: bool = True):
        src_cls = getattr(mod, "Source", Source)

        def run() -> int:
            st = ReadStats()
            for _ in mod.read_ecs(src_cls(data), 65536, st, fast=fast):
                pass
            return st.read
        return run

    def arrow_parse() -> int:
        ro = pj.ReadOptions(use_threads=pa.cpu_count() > 1, block_size=max(1 << 20, max(map(len, blocks)) + 1))
        return sum(pj.read_json(pa.BufferReader(pa.py_buffer(b)), read_options=ro, parse_options=parse).num_rows
                   for b in blocks)

    def projector(p=proj) -> int:
        n = 0
        for b in blocks:
            status = p.project(b)[0]
            assert not status.any(), "clean lines expected"
            n += len(status)
        return n

    yyjson_only = Projector(_ecs._FAST_PATHS, on_demand=False)

    def reader_yyjson_only() -> int:  # the reader with every line parsed by yyjson (the projector before the scan)
        keep, _ecs._PROJECTOR = _ecs._PROJECTOR, yyjson_only
        try:
            return reader(_ecs)()
        finally:
            _ecs._PROJECTOR = keep

    def orjson_parse() -> int:
        loads = orjson.loads
        return sum(len([loads(x) for x in b.splitlines()]) for b in blocks)

    out = {}
    if old is not None:
        out[f"read_events ecs at {before} (before)"] = (reader(old), "whole reader")
    out["read_events ecs, on-demand projector, this tree (after)"] = (reader(_ecs), "whole reader")
    out["read_events ecs, yyjson-only projector, this tree"] = (reader_yyjson_only, "whole reader")
    if e2e_path:
        if old is not None:
            out[f"raresketch run, reader at {before} (before)"] = (e2e_runner(e2e_path, old),
                                                                    "end to end: reader + engine")
        out["raresketch run, this tree (after)"] = (e2e_runner(e2e_path), "end to end: reader + engine")
    out["raresketch._json Projector.project"] = (projector, "on-demand scan + Arrow column per wanted path")
    out["raresketch._json Projector.project, on_demand=False"] = (lambda: projector(yyjson_only),
                                                                  "yyjson parse + Arrow column per wanted path")
    try:
        ms = MsgspecEcs(_ecs)
    except ImportError:
        ms = None
    if ms is not None:
        def msgspec_reader() -> int:
            st = ReadStats()
            ms.read(data, st)
            return st.read

        def msgspec_parse() -> int:
            return sum(len(ms.decode_lines(b)) for b in blocks)

        def msgspec_columns() -> int:
            return sum(len(ms.table(ms.decode_lines(b))["@timestamp"]) for b in blocks)

        out["same reader, msgspec Structs instead of the projector"] = (msgspec_reader, "whole reader (clean lines)")
    out["per-line reader (orjson.loads + rows)"] = (reader(_ecs, fast=False), "whole reader")
    out["Arrow read_json, explicit schema"] = (arrow_parse, "parse to nested Arrow table")
    if ms is not None:
        out["msgspec Struct decode_lines"] = (msgspec_parse, "parse to structs")
        out["msgspec Struct + Arrow columns"] = (msgspec_columns, "parse + one Arrow array per path")
    out["orjson.loads per line"] = (orjson_parse, "parse to dicts")
    try:
        import simdjson
    except ImportError:
        return out
    spec = _arrow_schema(_ecs._FAST_PATHS)

    def tree_of(fields):
        return {f.name: tree_of(f.type) if pa.types.is_struct(f.type) else f.type for f in fields}

    spec = tree_of(spec)

    def fetch(obj, node, row):
        for k, sub in node.items():
            v = obj.get(k)
            if v is None:
                continue
            if isinstance(sub, dict):
                if isinstance(v, simdjson.Object):
                    fetch(v, sub, row)
            else:
                row.append(v if not isinstance(v, simdjson.Array) else v.as_list())

    def simdjson_parse() -> int:
        p = simdjson.Parser()
        n = 0
        for b in blocks:
            for x in b.splitlines():
                row: list = []
                doc = p.parse(x)
                fetch(doc, spec, row)
                del doc
                n += 1
        return n

    out["pysimdjson parse + get wanted values"] = (simdjson_parse, "parse + wanted values (Python objects)")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?")
    ap.add_argument("--make", nargs=2, metavar=("PARQUET", "OUT"), help="write realistic ECS lines and exit")
    ap.add_argument("--lines", type=int, default=200_000, help="first lines of the file to read (in memory)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (contenders interleaved; best kept)")
    ap.add_argument("--one-core", action="store_true", help="pin to one CPU and Arrow to one thread")
    ap.add_argument("--only", default="", help="comma-separated substrings of contender names")
    ap.add_argument("--before", default="", help="git ref whose _ecs.py is the 'before' reader")
    ap.add_argument("--e2e", action="store_true", help="also `raresketch run` end to end (reader + engine)")
    args = ap.parse_args(argv)
    if args.make:
        n = make_lines(*args.make)
        print(f"wrote {n:,} lines to {args.make[1]}")
        return
    if not args.path:
        ap.error("a JSON-lines file is needed (make one with --make)")
    if args.one_core:
        _pin_one_core()
    opener = gzip.open if args.path.endswith(".gz") else open
    with opener(args.path, "rb") as f:
        lines = []
        for line in f:
            lines.append(line)
            if len(lines) >= args.lines:
                break
    data = b"".join(lines)
    n_lines, mb = len(lines), len(data) / 1e6
    e2e_path = None
    if args.e2e:
        import tempfile

        fd, e2e_path = tempfile.mkstemp(suffix=".jsonl")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    todo = contenders(data, args.before or None, e2e_path)
    if args.only:
        keys = [s.strip() for s in args.only.split(",")]
        todo = {k: v for k, v in todo.items() if any(s in k for s in keys) or k.startswith("read_events")}
    try:
        _measure(todo, args, n_lines, mb, data)
    finally:
        if e2e_path:
            os.unlink(e2e_path)


def _measure(todo: dict, args, n_lines: int, mb: float, data: bytes) -> None:
    wall = {k: float("inf") for k in todo}
    cpu = {k: float("inf") for k in todo}
    for r in range(args.rounds):
        for name, (fn, _) in todo.items():
            w, c = time.perf_counter(), time.process_time()
            n = fn()
            w, c = time.perf_counter() - w, time.process_time() - c
            assert n == n_lines, (name, n, n_lines)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    base = next(iter(todo))
    print(f"\n{n_lines:,} ECS lines, {mb:,.0f} MB ({len(data) / n_lines:,.0f} B/line) from {args.path}; "
          f"best of {args.rounds} rounds; pyarrow {pa.__version__}, Arrow threads {pa.cpu_count()}, "
          f"CPUs {len(os.sched_getaffinity(0))}\n")
    print("| contender | what | k lines/s (wall) | MB/s (wall) | x before (wall) | k lines/s (CPU) | x before (CPU) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (_, what) in todo.items():
        print(f"| {name} | {what} | {n_lines / wall[name] / 1e3:,.0f} | {mb / wall[name]:,.0f} | "
              f"{wall[base] / wall[name]:.2f} | {n_lines / cpu[name] / 1e3:,.0f} | {cpu[base] / cpu[name]:.2f} |")


if __name__ == "__main__":
    main()
