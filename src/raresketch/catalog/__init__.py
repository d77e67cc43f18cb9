"""Destination and process catalogues: what a destination is (cloud resource, IM service, allow-listed) and what
a process is (key, scripting engine, user-writable path, renamed binary).

Layout: ``_catalog`` (the :class:`Catalog`: load order, extensions, scalar resolution), ``_data`` (the shipped
lists and their provenance, :func:`refresh`), ``_suffix`` (the suffix trie, PSL blocks), ``_process`` (process
facts), ``_ip`` (published networks), ``_resolver`` (per-distinct-value caches: ids, keys, flags, texts) and
``_batch`` (a batch's resolved columns, read from the resolver's ids and winning sources). The command line is
``raresketch catalog refresh|sources|resolve``.
"""
from ._batch import RESOLVED_SCHEMA
from ._catalog import Catalog, HostInfo, default_catalog
from ._data import refresh
from ._ip import IpOwner, IpTable, parse_cidrs, refresh_ip_ranges
from ._process import ProcessInfo, path_shape, process_key
from ._resolver import CatalogResolver, Flags
from ._suffix import SuffixTrie, psl_private_blocks

__all__ = ["Catalog", "CatalogResolver", "Flags", "HostInfo", "IpOwner", "IpTable", "ProcessInfo", "RESOLVED_SCHEMA", "SuffixTrie",
           "default_catalog", "parse_cidrs", "path_shape", "process_key", "psl_private_blocks", "refresh", "refresh_ip_ranges"]
