"""The event model: one columnar (Arrow) schema for a batch of endpoint network events.

Column names are ECS field names written flat with dots (``process.name``), so a batch converts to and from
ECS JSON without renaming. Every column but ``@timestamp`` and ``host.id`` may be null: the detectors treat a
null as *unknown*, never as a negative signal (no signer is "signature unknown", not "unsigned").
"""
from __future__ import annotations

import pyarrow as pa

__all__ = ["EVENT_SCHEMA", "REQUIRED_COLUMNS", "DOMAIN_SOURCES"]

#: Where ``destination.domain`` came from, written to ``raresketch.domain_source``:
#: ``event`` the event's own domain field; ``dns`` the same host's DNS answer for that IP shortly before;
#: ``command_line`` the one URL in the process command line (inferred); null when there is no domain.
DOMAIN_SOURCES = ("event", "dns", "command_line")

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
    ]
)

REQUIRED_COLUMNS = ("@timestamp", "host.id")
