"""From conformed events to the 64-bit keys and flags the baseline and detectors consume (private).

:class:`KeyResolver` is the one path from an :data:`~raresketch.EVENT_SCHEMA` batch to
:class:`~raresketch.detect.EventKeys` (the Engine's and Spark's). The catalogue's part — per-stream caches of its
answers by distinct value, ids, keys, flags, texts and which source won — is
:class:`~raresketch.catalog._resolver.CatalogResolver` (the catalogue runs only for values never seen before in
the stream); this module adds what the baseline needs on top: the agent and binary keys, and the scripting-engine
parent and command-line keys. Results are identical to resolving each row with :meth:`Catalog.resolve_batch` and
hashing its strings (tests/catalog/test_keys.py checks that).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._core import fast_keys, hash64, hash_pair
from ..catalog import CatalogResolver, Flags
from ..catalog._resolver import _Attrs
from ..events import as_string_array
from ._baseline import EventKeys, normalize_command_line

__all__ = ["KeyResolver", "Flags"]


def _one_chunk(col: pa.ChunkedArray) -> pa.Array:
    """The column as one array (no copy when it already is one chunk)."""
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def address_identity(events: pa.Table) -> pa.Table:
    """``events`` with the reverse-lookup names (``raresketch.domain_source == "ptr"``) taken out of
    ``destination.domain``: a PTR name is the address's identity, not a name the process asked for (DESIGN,
    destination classes), so such an event is keyed by its address, exactly like the same connection seen
    without the name. O(n) Arrow; the table itself when no row has a PTR name."""
    src = events.column("raresketch.domain_source")
    ptr = pc.fill_null(pc.equal(src, "ptr"), False)
    if not pc.any(ptr).as_py():
        return events
    i = events.schema.get_field_index("destination.domain")
    dom = pc.if_else(ptr, pa.scalar(None, pa.string()), events.column(i))
    return events.set_column(i, events.schema.field(i).with_type(dom.type), dom)


class KeyResolver(CatalogResolver):
    """Keys and flags of conformed event batches through per-stream caches of the catalogue's answers (see
    :class:`~raresketch.catalog._resolver.CatalogResolver` for the parameters, ``names`` and the caches).

    Cost per batch: O(rows) compiled/numpy work plus O(new distinct values) catalogue calls, plus one Python call
    per command line of a scripting engine never seen before in the stream (their normalised keys are
    remembered like the catalogue's answers, bounded by ``limit``).
    """

    def __init__(self, catalog, limit: int = 1 << 18):
        super().__init__(catalog, limit)
        self._cmd = _Attrs({"k": np.uint64}, limit)     # raw command line -> key of its normalised form

    @property
    def nbytes(self) -> int:
        return super().nbytes + self._cmd.nbytes

    def _command_keys(self, cmd: pa.Array) -> np.ndarray:
        """Key (uint64) of :func:`normalize_command_line` of each value of a string array without nulls; each
        distinct line normalised once for the life of the stream (while it stays in the bounded cache)."""
        ids = self._cmd.ids(fast_keys(cmd), lambda new: {"k": hash64(pa.array(
            [normalize_command_line(s) for s in cmd.take(pa.array(new)).to_pylist()], pa.string()))})
        return self._cmd.cols["k"][ids]

    # ---- per batch ------------------------------------------------------------------------------------
    def resolve(self, events: pa.Table, days: np.ndarray,
                rows: np.ndarray | None = None) -> tuple[EventKeys, Flags]:
        """Keys and flags of rows ``rows`` of a conformed batch (int64 indices, any order; None: every row, in
        order), as arrays aligned with ``rows`` (``days``: days since 1970-01-01 of each of them). The flags'
        :meth:`~raresketch.catalog._resolver.Flags.texts` gives the catalogue's texts of any of those rows, by
        position in ``rows``."""
        n = events.num_rows if rows is None else len(rows)
        at = (lambda a: a) if rows is None else (lambda a: a[rows])
        found = self.lookup(address_identity(events), rows)
        process, resource, im = found.process, found.resource, found.im
        sha = _one_chunk(events.column("process.hash.sha256"))
        if sha.null_count == len(sha):
            binary = process
        else:
            binary = at(hash64(sha))
            if sha.null_count:
                np.copyto(binary, process, where=~at(sha.is_valid().to_numpy(zero_copy_only=False)))

        # scripting engines: parent and command line, on their rows only
        is_script, has_cmd = np.zeros(n, bool), np.zeros(n, bool)
        parent_engine, cmd_keys = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
        si = np.flatnonzero(found.script)
        if si.size:
            sidx = pa.array(si if rows is None else rows[si])
            parent = as_string_array(_one_chunk(events.column("process.parent.name")).take(sidx))
            has_parent = parent.is_valid().to_numpy(zero_copy_only=False)
            is_script[si] = has_parent
            engine = found.engine_keys(si)
            parent_engine[si] = np.where(has_parent, hash_pair(hash64(pc.utf8_lower(parent)), engine), 0)
            cmd = as_string_array(_one_chunk(events.column("process.command_line")).take(sidx))
            ci = si[cmd.is_valid().to_numpy(zero_copy_only=False)]
            if ci.size:
                has_cmd[ci] = True
                cmd_keys[ci] = self._command_keys(cmd.drop_null())
        ev = EventKeys(
            days=days.astype(np.int64, copy=False), agent=at(hash64(events.column("host.id"))), process=process, location=found.location, first_party=np.where(resource == 0, found.first_party, np.uint64(0)),
            resource=resource, kind=found.kind, im=im, binary=binary, parent_engine=parent_engine, cmdline=cmd_keys,
            has_process=process != 0, is_cloud=resource != 0, is_im=im != 0, is_script=is_script,
            has_cmdline=has_cmd)
        return ev, found.flags
