"""Saving state to disk: atomic (write to a temporary file, fsync, rename, fsync the folder) and bounded reads.

A process killed while saving leaves the old file or the new one, never a broken one, plus at most its own
temporary file ``.<name>.<pid>.<random>.tmp`` next to the target. The next save to the same target removes
such leftovers once their writer is gone (its pid no longer exists and nobody holds the file's lock), so they
cannot pile up over repeated crashes. Temporary files of live writers are never touched.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

try:  # POSIX advisory locks: a live writer holds one on its temporary file.
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None

#: State files larger than this are refused before reading (a corrupt length field cannot exhaust memory).
MAX_STATE_BYTES = 8 << 30

_TMP_TAIL = re.compile(r"^(\d+)\.[A-Za-z0-9_]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists (another user's process)
        return True
    return True


def _unlocked(path: str) -> bool:
    """True if nobody holds the writer's lock on ``path`` (the process that created it is gone)."""
    if _fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        return True
    finally:
        os.close(fd)  # closing releases the lock we may have taken


def remove_stale_temps(path: str | os.PathLike) -> list[str]:
    """Delete temporary files left next to ``path`` by writers that died mid-save; return their names.

    A leftover is ``.<name>.<pid>.<random>.tmp`` whose pid is not a live process and whose lock is free. Only
    on POSIX (on Windows nothing is removed). Cost: one directory scan.
    """
    if os.name != "posix" or _fcntl is None:
        return []
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    me = os.getpid()
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix):
            continue
        m = _TMP_TAIL.match(name[len(prefix):])
        if not m:
            continue
        pid = int(m.group(1))
        if pid == me or _pid_alive(pid) or not _unlocked(entry.path):
            continue
        try:
            os.unlink(entry.path)
            removed.append(name)
        except OSError:
            pass
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash at any point leaves either the old file or the new one.

    The bytes go to a temporary file in the same folder (locked while written), which is fsynced and renamed
    over ``path``; then the folder is fsynced. A symbolic link at ``path`` is followed (its target is
    replaced, the link kept). An existing file keeps its permission bits; a new one is private (0600).
    Leftovers of writers killed mid-save are removed first (:func:`remove_stale_temps`).
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    folder = path.parent if str(path.parent) else Path(".")
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    try:
        if _fcntl is not None:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            except OSError:
                pass
        try:
            os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        except (OSError, AttributeError):
            pass
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
    """Read a state file; raises ``ValueError`` for one too large to be a state or not a regular file (a FIFO
    or a device such as ``/dev/zero`` would otherwise be read without end), ``OSError`` if unreadable."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file")
    if st.st_size > MAX_STATE_BYTES:
        raise ValueError(f"{path}: {st.st_size} bytes is larger than any raresketch state ({MAX_STATE_BYTES})")
    with open(path, "rb") as f:
        data = f.read(MAX_STATE_BYTES + 1)
    if len(data) > MAX_STATE_BYTES:
        raise ValueError(f"{path}: larger than any raresketch state ({MAX_STATE_BYTES})")
    return data
