"""A batch's resolved columns, read from the key resolver's per-distinct-value answers.

:class:`BatchIds` holds what :class:`~raresketch.catalog._resolver.CatalogResolver` found for every row of one
batch: the ids of its destination name, address and process tuple, and which source won (the compiled
``gather_keys`` decides it, the one place where the precedence "the event's name, else the event's address, else
the name's own IP literal" is written). Here the texts are only *picked* by those codes, never re-decided:

====  ===================================  =======================
code  source                               per-id columns read
====  ===================================  =======================
0     none (null)                          --
1     the event's ``destination.domain``   name's (``dom[c]``)
2     the event's ``destination.ip``       address's (``ip[c]``)
3     the name's own IP literal            name's ``lit_`` columns
4     the name, hosted at the event's      the (name, provider) pair's
      tenant-rentable address              (``hosted[c]``)
====  ===================================  =======================

``raresketch.destination.ptr`` is the name's own reverse-lookup text whatever the source (evidence), and
``raresketch.destination.ip_class`` the class of the address the row used (cloud, platform, edge, im).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

__all__ = ["RESOLVED_SCHEMA", "TEXT_COLUMNS", "BatchIds"]

RESOLVED_SCHEMA = pa.schema([
    pa.field("raresketch.destination.key", pa.string()),
    pa.field("raresketch.cloud.provider", pa.string()),
    pa.field("raresketch.cloud.service", pa.string()),
    pa.field("raresketch.cloud.resource", pa.string()),
    pa.field("raresketch.destination.ip_provider", pa.string()),
    pa.field("raresketch.destination.ip_class", pa.string()),
    pa.field("raresketch.destination.ptr", pa.string()),
    pa.field("raresketch.im.service", pa.string()),
    pa.field("raresketch.process.key", pa.string()),
    pa.field("raresketch.process.is_script_engine", pa.bool_()),
    pa.field("raresketch.process.script_engine", pa.string()),
    pa.field("raresketch.process.user_writable_path", pa.bool_()),
    pa.field("raresketch.process.renamed", pa.bool_()),
    pa.field("raresketch.allowlisted", pa.bool_()),
])
"""Columns returned by :meth:`Catalog.resolve_batch` (all nullable; null = unknown)."""

#: The columns :meth:`BatchIds.texts` gives (the Engine's alert texts).
TEXT_COLUMNS = ("raresketch.process.key", "raresketch.cloud.resource", "raresketch.cloud.provider",
                "raresketch.cloud.service", "raresketch.im.service", "raresketch.process.script_engine")

# destination columns: (output column, per-id text column, which code picks the source)
_DEST_TEXTS = {
    "raresketch.destination.key": ("t_key", "source"),
    "raresketch.cloud.provider": ("t_prov", "source"),
    "raresketch.cloud.service": ("t_svc", "source"),
    "raresketch.cloud.resource": ("t_res", "source"),
    "raresketch.destination.ip_provider": ("t_ipprov", "address"),
    "raresketch.destination.ip_class": ("t_class", "address"),
    "raresketch.destination.ptr": ("t_ptr", "name"),
    "raresketch.im.service": ("t_im", "im_source"),
}
# code 4 reads these from the (name, provider) pair, the others (destination key, IM service) from the name
_HOSTED_TEXTS = ("t_prov", "t_svc", "t_res")
_PROC_TEXTS = {"raresketch.process.key": "t_key", "raresketch.process.script_engine": "t_engine"}
_PROC_FLAGS = {"raresketch.process.is_script_engine": "script3", "raresketch.process.user_writable_path": "writable3",
               "raresketch.process.renamed": "renamed3"}


@dataclass(frozen=True)
class BatchIds:
    """Per row of one resolved batch: ids (int32, into the per-id columns; ``d``/``i`` None when the batch had no
    such column), the winning source codes (uint8, see the module table) and the allow-list flag; plus the
    resolver's per-id columns as they were for this batch (``dom``, ``ip``, ``proc``: dicts of numpy arrays
    indexed by id; the resolver never rewrites an id's entry while a ``BatchIds`` can read it, so these stay
    valid after later batches)."""

    d: np.ndarray | None
    i: np.ndarray | None
    p: np.ndarray
    source: np.ndarray
    im_source: np.ndarray
    address: np.ndarray
    allow: np.ndarray
    dom: dict | None
    ip: dict | None
    proc: dict
    h: np.ndarray | None = None
    hosted: dict | None = None

    def _pick(self, codes: np.ndarray, col: str, rows: np.ndarray) -> np.ndarray:
        """Object array: per row, the text ``col`` of the source its code names (None for code 0)."""
        out = np.full(len(rows), None, object)
        hosted = (4, self.h, self.hosted, col) if col in _HOSTED_TEXTS else (4, self.d, self.dom, col)
        for code, ids, cols, name in ((1, self.d, self.dom, col), (2, self.i, self.ip, col),
                                      (3, self.d, self.dom, "lit_" + col), hosted):
            m = codes == code
            if m.any():
                out[m] = cols[name][ids[rows[m]]]
        return out

    def _text(self, name: str, rows: np.ndarray) -> np.ndarray:
        if name in _PROC_TEXTS:
            return self.proc[_PROC_TEXTS[name]][self.p[rows]]
        col, code = _DEST_TEXTS[name]
        if code == "name":
            if self.d is None:
                return np.full(len(rows), None, object)
            return self.dom[col][self.d[rows]]
        return self._pick(getattr(self, code)[rows], col, rows)

    def texts(self, rows: np.ndarray) -> dict[str, list]:
        """For row indices of the batch: the :data:`TEXT_COLUMNS` as lists of str/None, equal to those columns
        of :meth:`columns` on these rows. O(len(rows)) numpy gathers."""
        rows = np.asarray(rows, np.int64)
        return {name: self._text(name, rows).tolist() for name in TEXT_COLUMNS}

    def columns(self) -> dict[str, pa.Array]:
        """Every :data:`RESOLVED_SCHEMA` column of the batch as an Arrow array. O(rows) numpy gathers and one
        Arrow conversion of an object array per text column."""
        rows = np.arange(len(self.p), dtype=np.int64)
        out: dict[str, pa.Array] = {name: pa.array(self._text(name, rows), pa.string())
                                    for name in (*_DEST_TEXTS, *_PROC_TEXTS)}
        for name, col in _PROC_FLAGS.items():
            v = self.proc[col][self.p]
            known = v >= 0
            out[name] = pa.array(v == 1, pa.bool_(), mask=None if known.all() else ~known)
        out["raresketch.allowlisted"] = pa.array(self.allow, pa.bool_())
        return out

    def table(self) -> pa.Table:
        """:meth:`columns` as a table of :data:`RESOLVED_SCHEMA`."""
        cols = self.columns()
        return pa.Table.from_arrays([cols[f.name] for f in RESOLVED_SCHEMA], schema=RESOLVED_SCHEMA)
