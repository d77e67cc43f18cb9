"""From conformed events to the 64-bit keys and flags the baseline and detectors consume (private).

:class:`KeyResolver` is the one path from an :data:`~raresketch.EVENT_SCHEMA` batch to
:class:`~raresketch.baseline.EventKeys` (the Engine's and Spark's). It keeps, for the life of a stream, one
:class:`~raresketch._core.KeyIndex` per identity — destination name, destination address, process tuple — with
the catalogue's answers for each distinct raw value as numpy columns indexed by id. A batch then costs one
hash pass per identity (XXH3, :func:`~raresketch._core.fast_keys`: these index keys are never saved), one index
look-up per identity and one compiled pass from the ids to the keys and flags
(:func:`~raresketch._core.gather_keys`); the catalogue (Python) runs only for values never seen before in the
stream. The caches are bounded (``limit``
distinct values per identity; full means emptied and refilled), so memory stays fixed under a flood of new
names. Results are identical to resolving each row with :meth:`Catalog.resolve_batch` and hashing its
strings (tests/test_keys.py checks that).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._core import KeyIndex, fast_keys, gather_keys, hash64, hash_pair
from .detect._baseline import EventKeys, normalize_command_line
from .catalog import Catalog

__all__ = ["KeyResolver", "Flags"]

_PROCESS_COLUMNS = ("process.executable", "process.name", "process.code_signature.subject_name",
                    "process.pe.original_file_name", "host.os.type")
_MAX_NAMES = 200_000


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    """The column as one array (no copy when it already is one chunk)."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


@dataclass
class Flags:
    """Per-row catalogue flags besides the keys (null counts as False)."""

    allow: np.ndarray            # allow-listed destination or process
    user_writable_path: np.ndarray
    renamed: np.ndarray

    def take(self, idx: np.ndarray) -> "Flags":
        return Flags(self.allow[idx], self.user_writable_path[idx], self.renamed[idx])


class _Attrs:
    """Attributes of the distinct values of one identity, as numpy columns indexed by :class:`KeyIndex` id."""

    def __init__(self, dtypes: dict[str, type], limit: int):
        self.limit = limit
        self.index = KeyIndex(limit)
        self.cols = {k: np.zeros(64, dt) for k, dt in dtypes.items()}

    def ids(self, keys: np.ndarray, resolve: Callable[[np.ndarray], dict[str, np.ndarray]]) -> np.ndarray:
        """Id of every key; ``resolve(positions)`` computes the attributes of the new keys (given by the
        position of their first row), in id order."""
        try:
            ids, new = self.index.ids(keys)
        except OverflowError:                       # emptied: refill from this batch
            if self.index.capacity < len(keys):       # more distinct values in one batch than the limit
                self.index = KeyIndex(len(keys))
            ids, new = self.index.ids(keys)
        if new.size:
            start, end = len(self.index) - new.size, len(self.index)
            vals = resolve(new)
            for name, col in self.cols.items():
                if col.shape[0] < end:
                    grown = np.zeros(max(end, min(2 * col.shape[0], self.index.capacity)), col.dtype)
                    grown[:col.shape[0]] = col
                    self.cols[name] = col = grown
                col[start:end] = vals[name]
        return ids

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + sum(c.nbytes for c in self.cols.values())


_DEST = {"R": np.uint64, "K": np.uint64, "S": np.uint64, "allow": bool}


class KeyResolver:
    """Keys and flags of conformed event batches through per-stream caches of the catalogue's answers.

    Parameters
    ----------
    catalog : Catalog
        The catalogue whose answers are cached (one resolver per catalogue).
    limit : int
        Distinct values kept per identity (destination names, addresses, process tuples); about 40 bytes each.

    ``names`` maps cloud-resource and process keys to their text (bounded, for inspection and evidence).
    Cost per batch: O(rows) compiled/numpy work plus O(new distinct values) catalogue calls.
    """

    def __init__(self, catalog: Catalog, limit: int = 1 << 18):
        self.catalog = catalog
        self.names: dict[int, str] = {}
        self._dom = _Attrs({"has_name": bool, "is_lit": bool, **_DEST, **{"lit_" + k: t for k, t in _DEST.items()}},
                           limit)
        self._ip = _Attrs({**_DEST, "valid": bool}, limit)
        self._proc = _Attrs({"P": np.uint64, "E": np.uint64, "script": bool, "writable": bool, "renamed": bool,
                             "allow": bool}, limit)

    @property
    def nbytes(self) -> int:
        return self._dom.nbytes + self._ip.nbytes + self._proc.nbytes

    def _remember(self, keys: np.ndarray, texts: list) -> None:
        for k, t in zip(keys.tolist(), texts):
            if t is not None and len(self.names) < _MAX_NAMES:
                self.names.setdefault(k, t)

    # ---- per distinct value ---------------------------------------------------------------------------
    def _ip_attrs(self, values: pa.Array) -> dict[str, np.ndarray]:
        """Keys of distinct addresses (strings) through the catalogue's vectorised address path."""
        if len(values) == 0:
            return {"R": np.zeros(0, np.uint64), "K": np.zeros(0, np.uint64), "S": np.zeros(0, np.uint64),
                    "allow": np.zeros(0, bool), "valid": np.zeros(0, bool)}
        iv = self.catalog._ip_values(values)
        res = iv["resource"]
        r = hash64(res)
        self._remember(r, res.to_pylist())
        return {"R": r, "K": hash64(pc.binary_join_element_wise(iv["cloud"], iv["service"], "/")),
                "S": hash64(iv["im"]), "allow": np.asarray(iv["allow"], bool),
                "valid": values.is_valid().to_numpy(zero_copy_only=False)}

    def _dom_attrs(self, values: list) -> dict[str, np.ndarray]:
        rows = self.catalog._host_rows_of(values)     # cached here, by id
        name, lit, prov, svc, res, im, allow = (list(c) for c in zip(*rows))
        r = hash64(res)
        self._remember(r, res)
        kind = [f"{p}/{s}" if p is not None and s is not None else None for p, s in zip(prov, svc)]
        if any(v is not None for v in lit):
            la = self._ip_attrs(pa.array(lit, pa.string()))
        else:                                       # no IP-literal name among them (the usual case)
            la = {"R": np.zeros(len(lit), np.uint64), "K": np.zeros(len(lit), np.uint64),
                  "S": np.zeros(len(lit), np.uint64), "allow": np.zeros(len(lit), bool),
                  "valid": np.zeros(len(lit), bool)}
        out = {"has_name": np.array([v is not None for v in name], bool), "is_lit": la.pop("valid"),
               "R": r, "K": hash64(kind), "S": hash64(im), "allow": np.array(allow, bool)}
        out.update({"lit_" + k: v for k, v in la.items()})
        return out

    def _proc_attrs(self, cols: list[pa.Array | None], rows: np.ndarray) -> dict[str, np.ndarray]:
        idx = pa.array(rows)
        vals = [c.take(idx).to_pylist() if c is not None else [None] * len(rows) for c in cols]
        infos = [self.catalog.process_info(*t) for t in zip(*vals)]
        keys = [i.key for i in infos]
        p = hash64(keys)
        self._remember(p, keys)
        return {"P": p, "E": hash64([i.script_engine for i in infos]),
                "script": np.array([bool(i.is_script_engine) for i in infos], bool),
                "writable": np.array([bool(i.user_writable_path) for i in infos], bool),
                "renamed": np.array([bool(i.renamed) for i in infos], bool),
                "allow": np.array([bool(i.allowlisted) for i in infos], bool)}

    # ---- per batch ------------------------------------------------------------------------------------
    def resolve(self, events: pa.Table, days: np.ndarray) -> tuple[EventKeys, Flags]:
        """Keys and flags of every row of a conformed batch (``days``: days since 1970-01-01 per row)."""
        n = events.num_rows

        def col(c: str) -> pa.Array | None:
            a = _one_chunk(events.column(c))
            return a if a.null_count < n else None

        # destination: ids of the name and of the address (the catalogue runs for new values only) ...
        dom, ip = col("destination.domain"), col("destination.ip")
        d = i = None
        if dom is not None:
            d = self._dom.ids(fast_keys(dom), lambda rows: self._dom_attrs(dom.take(pa.array(rows)).to_pylist()))
        if ip is not None:
            i = self._ip.ids(fast_keys(ip), lambda rows: self._ip_attrs(ip.take(pa.array(rows))))
        # ... and of the process: one combined key per (executable, name, signer, original file name, OS)
        pcols = [col(c) for c in _PROCESS_COLUMNS]
        present = [a for a in pcols if a is not None]     # an all-null column adds nothing to tell rows apart
        pkey = fast_keys(present) if present else np.zeros(n, np.uint64)
        p = self._proc.ids(pkey, lambda rows: self._proc_attrs(pcols, rows))
        P = self._proc.cols
        # then every row's keys and flags in one compiled pass: the name's resource when it has one, else the
        # event's address's, else the name's own IP literal's (gather_keys documents the rule)
        resource, kind, im, allow, process, script, writable, renamed = gather_keys(
            d, self._dom.cols if dom is not None else None, i, self._ip.cols if ip is not None else None, p, P)
        sha = _one_chunk(events.column("process.hash.sha256"))
        if sha.null_count == n:
            binary = process
        else:
            binary = hash64(sha)
            if sha.null_count:
                np.copyto(binary, process, where=~sha.is_valid().to_numpy(zero_copy_only=False))

        # scripting engines: parent and command line, on their rows only
        is_script, has_cmd = np.zeros(n, bool), np.zeros(n, bool)
        parent_engine, cmd_keys = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
        si = np.flatnonzero(script)
        if si.size:
            sidx = pa.array(si)
            parent = _one_chunk(events.column("process.parent.name")).take(sidx)
            has_parent = parent.is_valid().to_numpy(zero_copy_only=False)
            is_script[si] = has_parent
            parent_engine[si] = np.where(has_parent, hash_pair(hash64(pc.utf8_lower(parent)), P["E"][p[si]]), 0)
            cmd = _one_chunk(events.column("process.command_line")).take(sidx)
            ci = si[cmd.is_valid().to_numpy(zero_copy_only=False)]
            if ci.size:
                has_cmd[ci] = True
                enc = cmd.drop_null().dictionary_encode()
                norm = pa.array([normalize_command_line(s) for s in enc.dictionary.to_pylist()], pa.string())
                cmd_keys[ci] = hash64(pa.DictionaryArray.from_arrays(enc.indices, norm))
        ev = EventKeys(
            days=days.astype(np.int64, copy=False), agent=hash64(events.column("host.id")), process=process,
            resource=resource, kind=kind, im=im, binary=binary, parent_engine=parent_engine, cmdline=cmd_keys,
            has_process=process != 0, is_cloud=resource != 0, is_im=im != 0, is_script=is_script,
            has_cmdline=has_cmd)
        return ev, Flags(allow, writable, renamed)
