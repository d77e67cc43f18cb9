"""What a reader saw: :class:`ReadStats` and the stable skip reasons it counts."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: Reasons a record can be skipped, as written to :attr:`ReadStats.skipped` (stable strings).
SKIP_REASONS = {
    "malformed_json": "the line is not valid JSON",
    "not_an_object": "the JSON value is not an object",
    "missing_timestamp": "no timestamp field",
    "bad_timestamp": "a timestamp that does not parse",
    "missing_host": "no host identifier (host.id / computer name / originator address)",
    "no_destination": "neither destination.ip nor destination.domain",
    "ambiguous_address": "the only destination is a dotted quad with a leading-zero octet (octal or decimal?)",
    "unparsed_address": "the only destination is an address in a form that does not parse",
    "malformed_xml": "an <Event> element that is not well-formed XML",
    "not_network_event": "a record of another kind (Sysmon EID 1/5/7/22, Zeek dns/ssl/..., ECS non-network)",
    "wrong_ocsf_class": "an OCSF record whose class_uid is not 4001 (Network Activity)",
    "evtx_unreadable": "a record or chunk the evtx parser reports as unreadable",
    "bad_record": "a record whose fields have impossible types or values",
    "unsupported_line": "a line in a Zeek TSV log that does not match its #fields header",
    "truncated_input": "a compressed input that ends early or is corrupt after some records (those are kept)",
    "unreadable_file": "a file in a folder that could not be read or decompressed at all (the folder goes on)",
    "unknown_extension": "a file in a folder whose extension is not a readable format's (.json, .jsonl, .ndjson, "
                         ".log, .evtx, .csv, .parquet, .arrow, .xml, each optionally .gz)",
    "line_too_long": "a line longer than max_line_bytes (default 64 MiB), skipped without being held whole",
    "decompression_limit": "a gzip input stopped by the decompression guard (ratio or size); what came before is kept",
}


@dataclass
class ReadStats:
    """What a reader saw. Pass one to ``read_events(..., stats=...)``; it is updated as batches are yielded.

    Attributes
    ----------
    read : int
        Records (JSON lines, evtx records, log lines, table rows) read, including skipped ones.
    emitted : int
        Network events yielded in batches.
    skipped : collections.Counter
        Records not emitted, by reason (keys from ``SKIP_REASONS``). Context records used for enrichment
        (Sysmon EID 1/7/22, Zeek dns/ssl/http) are counted under ``not_network_event``.
    repaired : collections.Counter
        Records emitted after a repair, by kind: ``undecodable_bytes`` (invalid UTF-8 replaced by U+FFFD; the
        record is kept so one bad byte cannot hide a connection).
    enriched : collections.Counter
        Emitted events that got a field from another record: ``domain_dns``, ``domain_command_line``,
        ``process_create`` (EID 1 joined), ``signature`` (EID 7 joined), ``zeek_ssl``, ``zeek_http``.
    files : int
        Files opened.
    warnings : list of str
        One line per input that was cut short by a guard (decompression), naming the file and what to do.
    bytes_read : int
        Input bytes consumed so far, as stored on disk (the compressed side of a gzip file), for progress
        against the inputs' total size. Within a text file it is the read position (ahead of the events
        yielded by at most one read block); within Parquet it is the file's size times the share of its rows
        read; ``.evtx`` and Arrow files count whole when they end; stdin and in-memory tables count 0.
    """

    read: int = 0
    emitted: int = 0
    skipped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    enriched: Counter = field(default_factory=Counter)
    files: int = 0
    warnings: list = field(default_factory=list)
    bytes_read: int = 0

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict:
        return {"read": self.read, "emitted": self.emitted, "skipped": dict(self.skipped),
                "repaired": dict(self.repaired), "enriched": dict(self.enriched), "files": self.files}

    def __str__(self) -> str:
        sk = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        return f"read {self.read}, emitted {self.emitted}, skipped {self.n_skipped} ({sk})"
