"""Which events are outbound contacts. An inbound connection (``network.direction`` ``ingress``: Sysmon
``Initiated=false``, ECS ``inbound``/``ingress``) is a remote host reaching this one: the remote side is not a
destination the process chose, so it must neither teach the baseline (a scanner would make the listening
process a habitual explorer) nor raise an alert. A connection to a loopback, private, link-local, multicast or
unspecified address with no name (or only its reverse-lookup name) is an internal hop, not a contact with an outside resource (a name is kept:
a cloud name resolved to a private endpoint is still that resource)."""
from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..events._normalise import internal_ip_mask

__all__ = ["contact_rows", "drop_non_contacts"]


def contact_rows(events: pa.Table, stats: Counter,
                 internal: Callable[[pa.ChunkedArray], np.ndarray] = internal_ip_mask) -> np.ndarray | None:
    """Row indices (int64, ascending) of the contacts of ``events`` (conformed), or None when every row is one;
    inbound connections are counted as ``skipped_inbound`` and nameless internal destinations as
    ``skipped_internal_destination``. Nothing is copied. ``internal``: the address test per row of the
    ``destination.ip`` column (:func:`internal_ip_mask`, or a stream's remembered answers:
    :meth:`~raresketch.catalog.CatalogResolver.internal_addresses`). O(n) Arrow plus numpy range checks per
    distinct address (one Python call per distinct address that is not a canonical IPv4)."""
    inbound = pc.fill_null(pc.equal(events.column("network.direction"), "ingress"), False)
    nameless = pc.or_(pc.is_null(events.column("destination.domain")),   # a PTR name is no name
                      pc.fill_null(pc.equal(events.column("raresketch.domain_source"), "ptr"), False))
    drop = np.asarray(pc.fill_null(inbound, False).to_numpy(zero_copy_only=False), bool) if events.num_rows else \
        np.zeros(0, bool)
    n_in = int(drop.sum())
    nl = nameless.to_numpy(zero_copy_only=False) if events.num_rows else np.zeros(0, bool)
    if nl.any():
        drop = drop | (nl & internal(events.column("destination.ip")))
    n_all = int(drop.sum())
    if not n_all:
        return None
    if n_in:
        stats["skipped_inbound"] += n_in
    if n_all - n_in:
        stats["skipped_internal_destination"] += n_all - n_in
    return np.flatnonzero(~drop)


def drop_non_contacts(events: pa.Table, stats: Counter) -> pa.Table:
    """``events`` (conformed) without the rows :func:`contact_rows` drops (and counts). O(n) plus one copy of
    the table when a row is dropped."""
    rows = contact_rows(events, stats)
    return events if rows is None else events.take(pa.array(rows))
