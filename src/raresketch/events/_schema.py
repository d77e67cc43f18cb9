"""The event schema: one columnar (Arrow) layout for a batch of endpoint network events, and the mark that
says a table already has it."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

#: Where ``destination.domain`` came from, written to ``raresketch.domain_source``:
#: ``event`` the event's own domain field (SNI, URL, proxy log, an endpoint agent's own name);
#: ``dns`` the same host's DNS answer for that IP shortly before (its time in ``raresketch.dns_answer_time``);
#: ``ptr`` a reverse lookup of the address (Sysmon ``DestinationHostname``, Winlogbeat's ``destination.domain``
#: on ``event.code: "3"``): it names the address's owner, not what the process asked for;
#: ``command_line`` the one URL in the process command line (inferred); null when there is no domain.
#: Precedence in the readers: a DNS answer beats a PTR name; a command-line URL only when nothing else names it.
DOMAIN_SOURCES = ("event", "dns", "ptr", "command_line")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("host.id", pa.string(), nullable=False),
        pa.field("host.name", pa.string()),
        pa.field("host.os.type", pa.string()),  # windows | linux | macos
        pa.field("process.executable", pa.string()),
        pa.field("process.name", pa.string()),
        pa.field("process.pid", pa.int64()),
        pa.field("process.hash.sha256", pa.string()),
        pa.field("process.code_signature.subject_name", pa.string()),
        pa.field("process.code_signature.trusted", pa.bool_()),
        pa.field("process.code_signature.exists", pa.bool_()),
        pa.field("process.pe.original_file_name", pa.string()),
        pa.field("process.command_line", pa.string()),
        pa.field("process.parent.executable", pa.string()),
        pa.field("process.parent.name", pa.string()),
        pa.field("user.name", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.int32()),
        pa.field("destination.domain", pa.string()),
        pa.field("network.transport", pa.string()),
        pa.field("raresketch.domain_source", pa.string()),
        # Added by the readers (issue 3); nullable, after the original columns.
        pa.field("network.direction", pa.string()),  # ECS host view: egress | ingress; null = unknown
        pa.field("process.entity_id", pa.string()),  # Sysmon ProcessGuid, unique per process start
        pa.field("source.ip", pa.string()),
        pa.field("source.port", pa.int32()),
        # Added for issue 16: when the DNS answer that named the destination was logged (domain_source "dns").
        pa.field("raresketch.dns_answer_time", pa.timestamp("us", tz="UTC")),
    ]
)

REQUIRED_COLUMNS = ("@timestamp", "host.id")

#: The schema with every field nullable: the shape of a batch while it is built (rows lacking a required
#: value are dropped before the final cast to :data:`EVENT_SCHEMA`).
BUILD_SCHEMA = pa.schema([f.with_nullable(True) for f in EVENT_SCHEMA])


def empty_batch() -> pa.Table:
    """A table with zero rows and exactly :data:`EVENT_SCHEMA`."""
    return EVENT_SCHEMA.empty_table()


#: The type of a text column kept dictionary-encoded by ``conform(table, dictionary=True)``: each distinct value
#: stored once; every index that is not null points at a non-null value.
DICT_TEXT = pa.dictionary(pa.int32(), pa.string())

_CONFORMED_MARK = {b"raresketch.conformed": b"1"}


def mark_conformed(table: pa.Table) -> pa.Table:
    """``table`` with schema metadata saying that it is :func:`raresketch.events.conform`'s output, so that
    ``conform`` (and the Engine) pass it through in O(1). For producers whose tables are conformed by
    construction (readers, the simulator); a table marked by mistake is not re-normalised."""
    return table.replace_schema_metadata(_CONFORMED_MARK)


def is_conformed(table: pa.Table, dictionary: bool = False) -> bool:
    """True when ``table`` carries the conformed mark and has exactly :data:`EVENT_SCHEMA` (with ``dictionary``:
    or that schema with some text columns of type :data:`DICT_TEXT`). O(columns)."""
    md = table.schema.metadata
    if not (md and md.get(b"raresketch.conformed") == b"1"):
        return False
    schema = table.schema
    if schema.equals(EVENT_SCHEMA):
        return True
    return dictionary and schema.names == EVENT_SCHEMA.names and all(
        f.nullable == e.nullable and (f.type == e.type or (f.type == DICT_TEXT and e.type == pa.string()))
        for f, e in zip(schema, EVENT_SCHEMA))


def sort_by_time(t: pa.Table) -> pa.Table:
    """Stable sort by ``@timestamp`` (O(n log n)); a no-op when already sorted (O(n) check)."""
    if t.num_rows < 2:
        return t
    ts = t.column("@timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    if np.all(ts[1:] >= ts[:-1]):
        return t
    return t.take(pa.array(np.argsort(ts, kind="stable")))
