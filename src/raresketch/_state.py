"""Saving state to disk: atomic (write to a temporary file, fsync, rename, fsync the folder) and bounded reads."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: State files larger than this are refused before reading (a corrupt length field cannot exhaust memory).
MAX_STATE_BYTES = 8 << 30


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash at any point leaves either the old file or the new one."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def read_state_bytes(path: str | os.PathLike) -> bytes:
    """Read a state file; raises ``ValueError`` for one too large to be a state, ``OSError`` if unreadable."""
    size = os.path.getsize(path)
    if size > MAX_STATE_BYTES:
        raise ValueError(f"{path}: {size} bytes is larger than any raresketch state ({MAX_STATE_BYTES})")
    with open(path, "rb") as f:
        return f.read()
