"""Saving state to disk: atomic (write to a temporary file, fsync, rename, fsync the folder) and bounded reads.

A process killed while saving leaves the old file or the new one, never a broken one, plus at most its own
temporary file ``.<name>.<pid>.<random>.tmp`` next to the target. The next save to the same target removes
such leftovers once their writer is gone (its pid no longer exists and nobody holds the file's lock), so they
cannot pile up over repeated crashes. Temporary files of live writers are never touched.

Symbolic links: :func:`atomic_write_bytes` replaces the target of a link that points at an existing file (the
link is kept) and refuses a dangling link (it would create a file wherever the link points: in a shared folder,
a file chosen by whoever made the link). ``raresketch run --state`` refuses any link (:func:`check_state_path`).
:class:`StateLock` is the advisory lock that keeps two runs from sharing one state file.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
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
        if not path.exists():
            raise OSError(errno.ELOOP, "refusing to write through a dangling symbolic link", str(path))
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


def read_state_bytes(path: str | os.PathLike, follow_symlinks: bool = True) -> bytearray:
    """:func:`read_state_bytes_limited` with ``MAX_STATE_BYTES``."""
    return read_state_bytes_limited(path, MAX_STATE_BYTES, follow_symlinks)


def read_state_bytes_limited(path: str | os.PathLike, limit: int, follow_symlinks: bool = True,
                             what: str = "any raresketch state") -> bytearray:
    """Read a state file; raises ``ValueError`` for one too large to be a state or not a regular file (a FIFO
    or a device such as ``/dev/zero`` would otherwise be read without end), ``OSError`` if unreadable (or a
    symbolic link when ``follow_symlinks`` is false).

    The file is opened without blocking (a FIFO cannot hang the open) and checked with ``fstat`` on the opened
    descriptor, then read into one buffer of its size: memory is the file's size, never ``MAX_STATE_BYTES``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path}: not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{path}: {st.st_size} bytes is larger than {what} ({limit})")
        buf = bytearray(st.st_size)
        view, got = memoryview(buf), 0
        while got < st.st_size:
            n = os.readv(fd, [view[got:]])
            if n == 0:
                raise ValueError(f"{path}: the file shrank while it was read (another writer?)")
            got += n
        if os.read(fd, 1):
            raise ValueError(f"{path}: the file grew while it was read (another writer?)")
    finally:
        os.close(fd)
    return buf


class StateLock:
    """An advisory lock (``flock``) on ``.<name>.lock`` next to a state file, held for a whole run so that two
    runs never use one state (the second would overwrite the first's events). ``wait`` blocks until the
    holder ends (None = forever, else seconds); otherwise a held lock raises :class:`StateLocked` naming the
    holder's pid. The lock file is left in place (removing it would race with a waiter); the lock dies with its
    process. No-op where ``fcntl`` is missing (Windows).
    """

    def __init__(self, state: str | os.PathLike, wait: float | None = 0.0):
        self.path = Path(state)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> "StateLock":
        if _fcntl is None:  # pragma: no cover
            return self
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC, 0o600)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    try:
                        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                    except OSError:
                        holder = "?"
                    os.close(fd)
                    raise StateLocked(f"{self.path} is in use by another raresketch run (pid {holder}); wait for "
                                      "it, or give --wait to wait") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing releases the lock
            self._fd = None

    def __enter__(self) -> "StateLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class StateLocked(OSError):
    """The state file is locked by another run."""
