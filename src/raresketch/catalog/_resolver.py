"""Per-stream caches of the catalogue's answers, by distinct value: the path from a batch of events to ids, 64-bit
keys, flags and texts.

:class:`CatalogResolver` keeps, for the life of a stream, one :class:`~raresketch._core.KeyIndex` per identity —
destination name, destination address, process tuple — with the catalogue's answers for each distinct raw value
as numpy columns indexed by id (keys and flags, and the texts: resource, provider, service, IM service, address,
process key, scripting engine). A batch then costs one hash pass per identity (XXH3,
:func:`~raresketch._core.fast_keys`: these index keys are never saved), one index look-up per identity and one
compiled pass from the ids to the keys, the flags and the winning source of every row
(:func:`~raresketch._core.gather_keys`, the one place where the precedence "the event's name, else the event's
address, else the name's own IP literal" is written); the catalogue (Python) runs only for values never seen
before in the stream. The caches are bounded (``limit`` distinct values per identity; full means emptied and
refilled), so memory stays fixed under a flood of new names. Distinct raw values are told apart by a 64-bit hash:
two that collide (probability ~2**-64 per pair) share one answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._core import KeyIndex, fast_keys, gather_keys, hash64, hash_pair
from ..events import as_string_array as _as_string_array
from ..events._conform import as_dict_text, is_text_dictionary
from ..events._normalise import internal_ip_mask
from ._batch import BatchIds

__all__ = ["CatalogResolver", "Flags", "Lookup", "PROCESS_COLUMNS"]

#: The event columns that identify a process tuple, in :meth:`Catalog.process_info`'s argument order.
PROCESS_COLUMNS = ("process.executable", "process.name", "process.code_signature.subject_name",
                   "process.pe.original_file_name", "host.os.type", "process.code_signature.exists",
                   "process.code_signature.trusted", "process.hash.sha256")
_MAX_NAMES = 200_000


def _text(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The column as one string array, or one dictionary array of strings when it is dictionary-encoded (hashed
    once per distinct value); no copy when it already is one chunk of either."""
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    if pa.types.is_string(col.type):
        return col
    return as_dict_text(col) if is_text_dictionary(col.type) else _as_string_array(col)


@dataclass
class Flags:
    """Per-row catalogue flags besides the keys (null counts as False), and which source won.

    ``source`` (uint8): what the row's destination (cloud resource, kind, destination key) was read from — 0 none,
    1 the event's name, 2 the event's address, 3 the name's own IP literal. ``ids`` holds the per-row ids of the
    whole batch passed to ``resolve()``/``lookup()``; :meth:`take` selects rows of the flag arrays and keeps
    ``ids`` as it is, so :meth:`texts` always takes row indices of that original batch."""

    allow: np.ndarray            # allow-listed destination or process
    user_writable_path: np.ndarray
    renamed: np.ndarray
    source: np.ndarray
    ids: BatchIds

    def take(self, idx: np.ndarray) -> "Flags":
        """The flags of rows ``idx`` (``ids`` un-taken: :meth:`texts` still reads original row indices)."""
        return Flags(self.allow[idx], self.user_writable_path[idx], self.renamed[idx], self.source[idx], self.ids)

    def texts(self, rows: np.ndarray) -> dict[str, list]:
        """For row indices of the batch passed to ``resolve()`` (also after :meth:`take`): lists keyed
        ``raresketch.process.key``, ``raresketch.cloud.resource``, ``raresketch.cloud.provider``,
        ``raresketch.cloud.service``, ``raresketch.im.service``, ``raresketch.process.script_engine`` — equal to
        those columns of :meth:`Catalog.resolve_batch` on these rows. O(len(rows)) numpy gathers, no catalogue
        call."""
        return self.ids.texts(rows)


@dataclass
class Lookup:
    """Per-row keys (uint64; 0 = none) of one batch: cloud ``resource``, its ``kind`` (``provider/service``),
    ``im`` service, ``process`` key, and whether the process is a scripting ``engine`` (bool), plus the flags."""

    resource: np.ndarray
    kind: np.ndarray
    im: np.ndarray
    process: np.ndarray
    script: np.ndarray
    flags: Flags
    #: Where the process's image lives: (process key, :func:`~raresketch.catalog.path_shape`) as one key; 0 = none.
    location: np.ndarray
    #: The provider first-party service of the event's address (``"google platform"``, ...) as a key; 0 = none.
    first_party: np.ndarray

    def engine_keys(self, rows: np.ndarray) -> np.ndarray:
        """Key (uint64) of the scripting engine's name of the process of each of ``rows``; 0 for none."""
        ids = self.flags.ids
        return ids.proc["E"][ids.p[rows]]


class _Attrs:
    """Attributes of the distinct values of one identity, as numpy columns indexed by :class:`KeyIndex` id."""

    def __init__(self, dtypes: dict[str, type], limit: int):
        self.limit = limit
        self.index = KeyIndex(limit)
        self.dtypes = dtypes
        self.cols = self._empty()

    def _empty(self) -> dict[str, np.ndarray]:
        return {k: np.zeros(64, dt) for k, dt in self.dtypes.items()}

    def ids(self, keys: np.ndarray, resolve: Callable[[np.ndarray], dict[str, np.ndarray]]) -> np.ndarray:
        """Id of every key; ``resolve(positions)`` computes the attributes of the new keys (given by the
        position of their first row), in id order. An id's entry is written once: when the index is emptied the
        columns are replaced by new arrays, so earlier :class:`BatchIds` keep reading theirs."""
        try:
            ids, new = self.index.ids(keys)
        except OverflowError:                       # emptied: refill from this batch
            if self.index.capacity < len(keys):       # more distinct values in one batch than the limit
                self.index = KeyIndex(len(keys))
            self.cols = self._empty()
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
        """Bytes of the index and of the columns; a text column counts its pointers (8 bytes per id), not the
        strings themselves (about 50-150 bytes per distinct name or address more)."""
        return self.index.nbytes + sum(c.nbytes for c in self.cols.values())


# per-id columns: keys and flags (read by gather_keys), texts (object) for BatchIds
_TEXTS = {"t_key": object, "t_prov": object, "t_svc": object, "t_res": object, "t_im": object, "t_ipprov": object,
          "t_ptr": object, "t_class": object}
# H: key of the hosted registrable domain (names); P: key of the tenant-rentable provider (addresses); t_host: the
# registrable domain's text
_DEST = {"R": np.uint64, "K": np.uint64, "S": np.uint64, "H": np.uint64, "P": np.uint64, "F": np.uint64, "allow": bool,
         "t_host": object, **_TEXTS}
_HOSTED = {"R": np.uint64, "K": np.uint64, "t_prov": object, "t_svc": object, "t_res": object}
_PROC = {"P": np.uint64, "L": np.uint64, "E": np.uint64, "script": bool, "writable": bool, "renamed": bool, "allow": bool,
         "t_key": object, "t_engine": object, "script3": np.int8, "writable3": np.int8, "renamed3": np.int8}


def _tri(values: list) -> np.ndarray:
    """None / False / True -> -1 / 0 / 1 (int8)."""
    return np.array([-1 if v is None else int(bool(v)) for v in values], np.int8)


def _objects(values) -> np.ndarray:
    out = np.empty(len(values), object)
    out[:] = values
    return out


#: fast_keys' key of a null value.
_FAST_NULL = int(fast_keys(pa.nulls(1, pa.string()))[0])


def _entry_ids(attrs: _Attrs, a: pa.DictionaryArray, rows: np.ndarray | None,
               resolve: Callable[[pa.Array], dict]) -> np.ndarray:
    """Ids (int32) of rows ``rows`` (None: all) of a dictionary column of text whose referenced dictionary values
    are not null: the index is asked once per dictionary entry those rows use (and once for the null rows), and
    ``resolve(values)`` gets the values of the entries that are new to it; rows gather their entry's id.
    O(rows) numpy plus O(dictionary) hashing, instead of one hash-table probe per row."""
    dic = a.dictionary
    nd = len(dic)
    idx = a.indices.fill_null(nd).to_numpy(zero_copy_only=False)     # entry nd: the null rows
    sel = idx if rows is None else idx[rows]
    used = np.zeros(nd + 1, bool)
    used[sel] = True
    u = np.flatnonzero(used)
    real = u < nd
    ukeys = np.full(u.size, _FAST_NULL, np.uint64)
    if real.any():
        ukeys[real] = fast_keys(dic.take(pa.array(u[real])))
    values = dic.take(pa.array(np.where(real, u, 0), mask=~real))
    eid = attrs.ids(ukeys, lambda new: resolve(values.take(pa.array(new))))
    entry = np.zeros(nd + 1, np.int32)
    entry[u] = eid
    return entry[sel]


class CatalogResolver:
    """Ids, keys, flags and texts of event batches through per-stream caches of the catalogue's answers.

    Parameters
    ----------
    catalog : Catalog
        The catalogue whose answers are cached (one resolver per catalogue).
    limit : int
        Distinct values kept per identity (destination names, addresses, process tuples); about 40 bytes each
        for the keys and flags, plus the texts (about 100-250 bytes per distinct name or address: pointers and
        the normalised name, address and resource strings).

    ``names`` maps cloud-resource and process keys to their text (bounded, for inspection and evidence).
    Cost per batch: O(rows) compiled/numpy work plus O(new distinct values) catalogue calls. Not thread-safe.
    """

    def __init__(self, catalog: "Catalog", limit: int = 1 << 18):
        self.catalog = catalog
        self.names: dict[int, str] = {}
        self._dom = _Attrs({"has_name": bool, "is_lit": bool, **_DEST, **{"lit_" + k: t for k, t in _DEST.items()}},
                           limit)
        self._ip = _Attrs({**_DEST, "valid": bool}, limit)
        self._proc = _Attrs(_PROC, limit)
        self._hosted = _Attrs(_HOSTED, limit)      # (name, rentable provider) pairs: hosted domains
        self._internal = _Attrs({"internal": bool}, limit)   # addresses: is_internal_ip, for contact_rows

    @property
    def nbytes(self) -> int:
        return (self._dom.nbytes + self._ip.nbytes + self._proc.nbytes + self._hosted.nbytes
                + self._internal.nbytes)

    def internal_addresses(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """:func:`~raresketch.events._normalise.internal_ip_mask` of an address column (string-like or
        dictionary of text; null -> False), remembered per distinct value for the life of the stream: each
        distinct address is tested once (while it stays in the bounded cache), a batch costs one hash pass and
        one index look-up per row (per dictionary entry used, for a dictionary column)."""
        a = _text(column)
        n = len(a)
        if n == 0 or a.null_count == n:
            return np.zeros(n, bool)
        resolve = lambda v: {"internal": internal_ip_mask(v)}      # noqa: E731
        if pa.types.is_dictionary(a.type):
            ids = _entry_ids(self._internal, a, None, resolve)
        else:
            ids = self._internal.ids(fast_keys(a), lambda new: resolve(a.take(pa.array(new))))
        return self._internal.cols["internal"][ids]

    def _remember(self, keys: np.ndarray, texts: list) -> None:
        for k, t in zip(keys.tolist(), texts):
            if t is not None and len(self.names) < _MAX_NAMES:
                self.names.setdefault(k, t)

    # ---- per distinct value ---------------------------------------------------------------------------
    def _ip_attrs(self, values: pa.Array) -> dict[str, np.ndarray]:
        """Keys and texts of distinct addresses (strings) through the catalogue's vectorised address path."""
        if len(values) == 0:
            return {k: np.zeros(0, t) for k, t in {**_DEST, "valid": bool}.items()}
        iv = self.catalog.ip_values(values)
        res = iv["resource"]
        r = hash64(res)
        self._remember(r, res.to_pylist())
        out = {"R": r, "K": hash64(pc.binary_join_element_wise(iv["cloud"], iv["service"], "/")),
               "S": hash64(iv["im"]), "H": np.zeros(len(values), np.uint64), "P": hash64(iv["cloud"]),
               "allow": np.asarray(iv["allow"], bool), "valid": values.is_valid().to_numpy(zero_copy_only=False),
               "t_ptr": np.full(len(values), None, object), "t_host": np.full(len(values), None, object)}
        # a provider's first-party service (the address class platform or edge): not a tenant resource, counted
        fp = pc.if_else(pc.is_in(iv["kind"], pa.array(["platform", "edge"])),
                        pc.binary_join_element_wise(iv["provider"], iv["kind"], " "), pa.scalar(None, pa.string()))
        out["F"] = hash64(fp)
        self._remember(out["F"], fp.to_pylist())
        for t, c in (("t_key", "norm"), ("t_prov", "cloud"), ("t_svc", "service"), ("t_res", "resource"),
                     ("t_im", "im"), ("t_ipprov", "provider"), ("t_class", "kind")):
            out[t] = iv[c].to_numpy(zero_copy_only=False)
        return out

    def _dom_attrs(self, values: list) -> dict[str, np.ndarray]:
        rows = self.catalog.host_rows(values)     # cached here, by id
        name, lit, prov, svc, res, im, allow, ptr, hosted = (list(c) for c in zip(*rows))
        r = hash64(res)
        self._remember(r, res)
        kind = [f"{p}/{s}" if p is not None and s is not None else None for p, s in zip(prov, svc)]
        if any(v is not None for v in lit):
            la = self._ip_attrs(pa.array(lit, pa.string()))
        else:                                       # no IP-literal name among them (the usual case)
            la = {k: np.zeros(len(lit), t) for k, t in {**_DEST, "valid": bool}.items()}
            for k in _TEXTS:
                la[k] = np.full(len(lit), None, object)
        la["t_ptr"] = _objects(ptr)                 # the PTR text stays with its literal's answers too
        out = {"has_name": np.array([v is not None for v in name], bool), "is_lit": la.pop("valid"),
               "R": r, "K": hash64(kind), "S": hash64(im), "H": hash64(hosted), "P": np.zeros(len(name), np.uint64),
               "F": np.zeros(len(name), np.uint64),
               "allow": np.array(allow, bool), "t_host": _objects(hosted),
               "t_key": _objects(name), "t_prov": _objects(prov), "t_svc": _objects(svc), "t_res": _objects(res),
               "t_im": _objects(im), "t_ipprov": np.full(len(name), None, object), "t_ptr": _objects(ptr),
               "t_class": np.full(len(name), None, object)}
        out.update({"lit_" + k: v for k, v in la.items()})
        return out

    def _proc_attrs(self, cols: list[pa.Array | None], rows: np.ndarray) -> dict[str, np.ndarray]:
        idx = pa.array(rows)
        vals = [c.take(idx).to_pylist() if c is not None else [None] * len(rows) for c in cols]
        infos = [self.catalog.process_info(*t) for t in zip(*vals)]
        keys = [i.key for i in infos]
        engines = [i.script_engine for i in infos]
        p = hash64(keys)
        self._remember(p, keys)
        where = [f"{k} @ {i.shape}" if k is not None else None for k, i in zip(keys, infos)]
        x = np.where(p != 0, hash_pair(p, hash64([i.shape or "" for i in infos])), np.uint64(0))
        self._remember(x, where)
        return {"P": p, "L": x, "E": hash64(engines),
                "script": np.array([bool(i.is_script_engine) for i in infos], bool),
                "writable": np.array([bool(i.user_writable_path) for i in infos], bool),
                "renamed": np.array([bool(i.renamed) for i in infos], bool),
                "allow": np.array([bool(i.allowlisted) for i in infos], bool),
                "t_key": _objects(keys), "t_engine": _objects(engines),
                "script3": _tri([i.is_script_engine for i in infos]),
                "writable3": _tri([i.user_writable_path for i in infos]),
                "renamed3": _tri([i.renamed for i in infos])}

    def _hosted_attrs(self, dcols: dict, icols: dict, dids: np.ndarray, iids: np.ndarray) -> dict[str, np.ndarray]:
        """Keys and texts of new (registrable domain, rentable provider) pairs: resource
        ``<provider>/hosted/<domain>``, kind ``<provider>/hosted`` (the destination key and IM service stay the
        name's)."""
        prov = icols["t_prov"][iids].tolist()
        dom = dcols["t_host"][dids].tolist()
        res = [f"{p}/hosted/{x}" for p, x in zip(prov, dom)]
        r = hash64(res)
        self._remember(r, res)
        return {"R": r, "K": hash64([f"{p}/hosted" for p in prov]), "t_prov": _objects(prov),
                "t_svc": np.full(len(res), "hosted", object), "t_res": _objects(res)}

    # ---- per batch ------------------------------------------------------------------------------------
    def lookup(self, events: pa.Table | pa.RecordBatch, rows: np.ndarray | None = None) -> Lookup:
        """Keys, flags and ids of rows ``rows`` (int64 indices, any order; None: every row, in order) of a batch
        with :data:`~raresketch.EVENT_SCHEMA` column names (a missing column counts as null; text columns of any
        Arrow string-like type), aligned with ``rows``. Values found only on other rows are not resolved."""
        n = events.num_rows if rows is None else len(rows)
        names = events.column_names

        def col(c: str) -> pa.Array | None:
            if c not in names:
                return None
            a = _text(events.column(c))
            if a.null_count == len(a) or (rows is not None and a.null_count and
                                          not a.is_valid().to_numpy(zero_copy_only=False)[rows].any()):
                return None
            return a

        def keys(a) -> np.ndarray:
            k = fast_keys(a)
            return k if rows is None else k[rows]

        def at(pos: np.ndarray) -> pa.Array:           # positions among ``rows`` -> rows of ``events``
            return pa.array(pos if rows is None else rows[pos])

        def ids(attrs: _Attrs, a: pa.Array, resolve: Callable[[pa.Array], dict]) -> np.ndarray:
            if pa.types.is_dictionary(a.type):           # looked up once per dictionary entry the rows use
                return _entry_ids(attrs, a, rows, resolve)
            return attrs.ids(keys(a), lambda new: resolve(a.take(at(new))))

        # destination: ids of the name and of the address (the catalogue runs for new values only) ...
        dom, ip = col("destination.domain"), col("destination.ip")
        d = i = None
        if dom is not None:
            d = ids(self._dom, dom, lambda v: self._dom_attrs(v.to_pylist()))
        if ip is not None:
            i = ids(self._ip, ip, lambda v: self._ip_attrs(_as_string_array(v)))
        # ... and of the process: one combined key per (executable, name, signer, original file name, OS)
        pcols = [col(c) for c in PROCESS_COLUMNS]
        present = [a for a in pcols if a is not None]     # an all-null column adds nothing to tell rows apart
        pkey = keys(present) if present else np.zeros(n, np.uint64)
        p = self._proc.ids(pkey, lambda new: self._proc_attrs(pcols, new if rows is None else rows[new]))
        dcols = self._dom.cols if dom is not None else None
        icols = self._ip.cols if ip is not None else None
        # then every row's keys, flags and winning source in one compiled pass (gather_keys documents the rule)
        resource, kind, im, allow, process, script, writable, renamed, source, im_source, address = gather_keys(
            d, dcols, i, icols, p, self._proc.cols)
        # hosted domains (source 4): the pair key gather_keys wrote -> the pair's resource and kind, resolved once
        # per distinct (name, rentable provider) pair
        h = hcols = None
        hr = np.flatnonzero(source == 4)
        if hr.size:
            pair = resource[hr]
            hid = self._hosted.ids(pair, lambda pos: self._hosted_attrs(dcols, icols, d[hr[pos]], i[hr[pos]]))
            hcols = dict(self._hosted.cols)
            resource[hr] = hcols["R"][hid]
            kind[hr] = hcols["K"][hid]
            h = np.zeros(n, np.int32)
            h[hr] = hid
        ids = BatchIds(d, i, p, source, im_source, address, allow, dict(dcols) if dcols is not None else None,
                       dict(icols) if icols is not None else None, dict(self._proc.cols), h, hcols)
        first_party = icols["F"][i] if icols is not None else np.zeros(n, np.uint64)
        return Lookup(resource, kind, im, process, script, Flags(allow, writable, renamed, source, ids),
                      self._proc.cols["L"][p], first_party)
