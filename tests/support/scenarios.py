"""Hand-written events for scenario tests: process profiles, one event row, an EVENT_SCHEMA table, background
traffic that keeps agents active (detect/test_reference.py, test_engine.py, test_guard.py, ...), and hand-built
EventKeys for the baseline and the rules (detect/test_baseline.py, test_rules.py)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

import raresketch
from raresketch.detect import EventKeys

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # day 0 of every scenario
D0 = (T0 - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).days  # its day number (days since 1970-01-01)
MS = "Microsoft Corporation"

# process profiles: executable, signer, hash, trusted/exists, original file name, parent, command line
PROCS = {
    "chrome": dict(exe=r"C:\Program Files\Google\Chrome\Application\chrome.exe", signer="Google LLC",
                   sha="c" * 64, orig="chrome.exe", parent="explorer.exe", cmd="chrome.exe"),
    "evil": dict(exe=r"C:\Windows\evil.exe", signer="Evil Ltd", sha="e" * 64, orig="evil.exe",
                 parent="explorer.exe", cmd="evil.exe"),
    "explorer": dict(exe=r"C:\Windows\explorer.exe", signer=MS, sha="1" * 64, orig="explorer.exe",
                     parent="userinit.exe", cmd="explorer.exe"),
    "telegram": dict(exe=r"C:\Program Files\Telegram Desktop\Telegram.exe", signer="Telegram FZ-LLC",
                     sha="7" * 64, orig="Telegram.exe", parent="explorer.exe", cmd="telegram.exe"),
    "powershell": dict(exe=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe", signer=MS,
                       sha="5" * 64, orig="PowerShell.EXE", parent="explorer.exe",
                       cmd="powershell.exe -NoProfile -File C:\\it\\inventory.ps1"),
    "dropper": dict(exe=r"C:\Users\bob\AppData\Local\Temp\upd.exe", signer=None, exists=False, trusted=None,
                    sha="d" * 64, orig="upd.exe", parent="outlook.exe", cmd="upd.exe"),
    "pythonw_tmp": dict(exe=r"C:\Users\bob\AppData\Local\Temp\py\pythonw.exe", signer=None, exists=False,
                        trusted=None, sha="f" * 64, orig="pythonw.exe", parent="cmd.exe",
                        cmd="pythonw.exe stealer.pyw"),
}


def row(day: float, host: str = "h1", proc: str = "chrome", domain: str | None = None, ip: str | None = None,
        seconds: float = 43200, **over) -> dict:
    """One event on ``day`` (float days allowed) at ``seconds`` after midnight, by ``proc`` on ``host``."""
    p = dict(PROCS[proc])
    p.update(over)
    r = {
        "@timestamp": T0 + dt.timedelta(days=day, seconds=seconds),
        "host.id": host,
        "host.os.type": "windows",
        "process.executable": p["exe"],
        "process.hash.sha256": p.get("sha"),
        "process.code_signature.subject_name": p.get("signer"),
        "process.code_signature.exists": p.get("exists", p.get("signer") is not None),
        "process.code_signature.trusted": p.get("trusted", True if p.get("signer") else None),
        "process.pe.original_file_name": p.get("orig"),
        "process.parent.name": p.get("parent"),
        "process.command_line": p.get("cmd"),
        "destination.domain": domain,
        "destination.ip": ip,
        "destination.port": 443,
    }
    return r


def table(rows: list[dict]) -> pa.Table:
    """Build an EVENT_SCHEMA table from event dicts (missing columns null)."""
    names = [f.name for f in raresketch.EVENT_SCHEMA]
    data = {n: [r.get(n) for r in rows] for n in names}
    return pa.Table.from_pydict(data, schema=raresketch.EVENT_SCHEMA)


def background(hosts, days, proc="chrome", domain="company.s3.amazonaws.com", start=0) -> list[dict]:
    """Every host contacts ``domain`` with ``proc`` once a day (keeps agents active, org activated)."""
    return [row(d, h, proc, domain, seconds=3600) for d in range(start, days) for h in hosts]

#: five hosts for org-wide scenarios
HOSTS = [f"h{i}" for i in range(1, 6)]


def event_keys(n: int = 1, day: int = 20_100, **over) -> EventKeys:
    """``n`` events of one known process on ``day`` (days since 1970-01-01), neither cloud nor IM unless ``over``
    says so; ``over`` gives any field (scalars broadcast)."""
    z = np.zeros(n, np.uint64)
    f = np.zeros(n, bool)
    base = dict(days=np.full(n, day, np.uint16), agent=z + 1, process=z + 2, location=z + 4, first_party=z, resource=z, kind=z, im=z, binary=z + 3,
                parent_engine=z, cmdline=z, has_process=~f, is_cloud=f, is_im=f, is_script=f, has_cmdline=f)
    base.update({k: np.broadcast_to(np.asarray(v), n).copy() for k, v in over.items()})
    return EventKeys(**base)
