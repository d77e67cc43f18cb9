"""Sysmon as Windows event XML: one ``<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>``
element per record, as Splunk's ``XmlWinEventLog``, ``wevtutil qe /f:xml``, Windows Event Forwarding and many
SIEM exports write it (one per line, or all on one line, or inside an ``<Events>`` root).

Each element is turned into the shape the ``evtx`` package gives (``Event{System{...}, EventData{...}}``) and
fed to the same :class:`~raresketch._readers._sysmon.SysmonReader` as JSON and ``.evtx`` input, so EID 1, 3, 7
and 22 get the same enrichment. Streaming: the input is scanned block by block for ``<Event ...>`` ...
``</Event>``; memory is one block plus one record. An element that is not well-formed is counted as
``malformed_xml`` and skipped; a record longer than :data:`MAX_RECORD_BYTES` is counted the same way.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Iterator

import pyarrow as pa

from ._source import Source
from ._stats import ReadStats
from ._sysmon import SysmonReader

#: A record (one ``<Event>`` element) longer than this is counted as ``malformed_xml`` and skipped (bytes).
MAX_RECORD_BYTES = 1 << 20

_START = re.compile(rb"<Event[\s>]")
_END = b"</Event>"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def event_record(elem: ET.Element) -> dict:
    """An ``<Event>`` element -> the evtx-JSON shape :func:`raresketch._readers._sysmon.normalise_record`
    reads. O(size of the element)."""
    system: dict = {}
    data: dict = {}
    for part in elem:
        name = _local(part.tag)
        if name == "System":
            for f in part:
                k = _local(f.tag)
                if f.attrib:
                    system[k] = {"#attributes": dict(f.attrib), "#text": f.text}
                else:
                    system[k] = f.text
            eid = system.get("EventID")
            if isinstance(eid, dict):
                system["EventID"] = eid.get("#text")
        elif name in ("EventData", "UserData"):
            for i, f in enumerate(part.iter()):
                if f is part:
                    continue
                key = f.attrib.get("Name") or _local(f.tag) or f"Data{i}"
                data[key] = f.text
    return {"Event": {"System": system, "EventData": data}}


def xml_records(src: Source, stats: ReadStats) -> Iterator[dict]:
    """The records of an XML source, in order; bad elements counted (``malformed_xml``) and skipped."""
    buf = b""
    for block in src.blocks():
        buf += bytes(block)
        pos = 0
        while True:
            m = _START.search(buf, pos)
            if m is None:
                buf = buf[-8:]  # a start tag may straddle the block boundary
                break
            end = buf.find(_END, m.start())
            if end < 0:
                buf = buf[m.start():]
                if len(buf) > MAX_RECORD_BYTES:
                    stats.read += 1
                    stats.skip("malformed_xml")
                    buf, pos = buf[1:], 0  # give up on this start tag; look for the next one
                    continue
                break
            chunk = buf[m.start(): end + len(_END)]
            pos = end + len(_END)
            stats.read += 1
            try:
                yield event_record(ET.fromstring(chunk))
            except ET.ParseError:
                stats.skip("malformed_xml")
    if _START.search(buf):  # a record cut off at the end of the input
        stats.read += 1
        stats.skip("malformed_xml")


def read_sysmon_xml(src: Source, batch_size: int, stats: ReadStats, **opts) -> Iterator[pa.Table]:
    """Yield conformed batches of Sysmon network events from Windows event XML (see the module doc)."""
    return SysmonReader(batch_size, stats, **opts).run(xml_records(src, stats))
