"""Which events are outbound contacts. An inbound connection (``network.direction`` ``ingress``: Sysmon
``Initiated=false``, ECS ``inbound``/``ingress``) is a remote host reaching this one: the remote side is not a
destination the process chose, so it must neither teach the baseline (a scanner would make the listening
process a habitual explorer) nor raise an alert. A connection to a loopback, private, link-local, multicast or
unspecified address with no name (or only its reverse-lookup name) is an internal hop, not a contact with an outside resource (a name is kept:
a cloud name resolved to a private endpoint is still that resource)."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from ..events._normalise import internal_ip_mask

__all__ = ["drop_non_contacts"]


def drop_non_contacts(events: pa.Table, stats: Counter) -> pa.Table:
    """``events`` (conformed) without inbound connections (counted as ``skipped_inbound``) and nameless
    internal destinations (``skipped_internal_destination``). O(n) Arrow plus numpy range checks per distinct
    address (one Python call per distinct address that is not a canonical IPv4)."""
    inbound = pc.fill_null(pc.equal(events.column("network.direction"), "ingress"), False)
    nameless = pc.or_(pc.is_null(events.column("destination.domain")),   # a PTR name is no name
                      pc.fill_null(pc.equal(events.column("raresketch.domain_source"), "ptr"), False))
    ips = events.column("destination.ip")
    if pc.any(nameless).as_py():
        internal = pc.and_(nameless, pa.array(internal_ip_mask(ips)))
        drop = pc.or_(inbound, internal)
    else:
        drop = inbound
    if not pc.any(drop).as_py():
        return events
    n_in = pc.sum(pc.cast(inbound, pa.int64())).as_py() or 0
    n_all = pc.sum(pc.cast(drop, pa.int64())).as_py() or 0
    if n_in:
        stats["skipped_inbound"] += n_in
    if n_all - n_in:
        stats["skipped_internal_destination"] += n_all - n_in
    return events.filter(pc.invert(drop))
