"""What ``raresketch run`` checks and holds so that nothing an operator does loses data (docs/RELIABILITY.md,
"Operating it"): every input, the output and the state path are checked before anything is read; the state is
locked for the whole run; alerts are flushed after every batch, and the state is saved only when every alert of
the events it holds was written."""
from __future__ import annotations

import os
import stat
from typing import IO

__all__ = ["RunError", "preflight", "open_sink", "input_bytes", "by_first_timestamp", "regular_stdin"]


class RunError(ValueError):
    """A problem found before (or instead of) processing: one line for the operator."""


def _why(e: OSError) -> str:
    return e.strerror or str(e)


def _stat_or_none(stat_fn, path: str, what: str) -> os.stat_result | None:
    """``stat_fn(path)`` (``os.stat`` or ``os.lstat``), None when it does not exist; any other failure is a
    :class:`RunError` naming the option."""
    try:
        return stat_fn(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunError(f"{what} {path}: {_why(e)}") from None


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _writable_folder(path: str, what: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise RunError(f"{what} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunError(f"{what} {path}: folder {folder} is not writable")


def preflight(inputs: tuple[str, ...], out: str, state: str | None, append: bool = False,
              force: bool = False) -> None:
    """Check, before anything is read: every input exists and is readable (stdin ``-`` at most once); ``out``
    is not an input, nor inside an input folder, and an existing regular ``out`` is replaced only with
    ``force`` or extended only with ``append``; ``state`` is not a symbolic link (it is written by renaming a
    new file over it, and a link would let whoever made it choose which file a privileged run creates), is a
    regular readable and writable file if it exists, lies in a writable folder, and is neither an input nor
    ``out``. Raises :class:`RunError` naming the first problem. Cost: one ``stat`` per path."""
    if append and force:
        raise RunError("--append and --force exclude each other")
    if inputs.count("-") > 1:
        raise RunError("stdin (-) given more than once")
    files, folders = [], []
    for p in inputs:
        if p == "-":
            continue
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise RunError(f"{p}: no such file or directory") from None
        except OSError as e:
            raise RunError(f"{p}: {_why(e)}") from None
        if stat.S_ISDIR(st.st_mode):
            if not os.access(p, os.R_OK | os.X_OK):
                raise RunError(f"{p}: folder not readable")
            folders.append(p)
        else:
            if not os.access(p, os.R_OK):
                raise RunError(f"{p}: not readable")
            files.append((p, st))
    if out != "-":
        ost = _stat_or_none(os.stat, out, "--out")
        for p, st in files:
            if ost is not None and (st.st_dev, st.st_ino) == (ost.st_dev, ost.st_ino):
                raise RunError(f"--out {out} is the input {p}: refusing to write alerts over it")
        for d in folders:
            if _inside(out, d):
                raise RunError(f"--out {out} is inside the input folder {d} (it would be read as input)")
        if ost is None:
            _writable_folder(out, "--out")
        elif stat.S_ISDIR(ost.st_mode):
            raise RunError(f"--out {out} is a folder")
        elif stat.S_ISREG(ost.st_mode) and not (append or force):
            raise RunError(f"--out {out} exists: give --append to add to it or --force to replace it")
        elif not os.access(out, os.W_OK):
            raise RunError(f"--out {out}: not writable")
    if state:
        sst = _stat_or_none(os.lstat, state, "--state")
        if sst is not None and stat.S_ISLNK(sst.st_mode):
            raise RunError(f"--state {state} is a symbolic link: give the real path "
                           f"({os.path.realpath(state)})")
        if sst is not None and not stat.S_ISREG(sst.st_mode):
            raise RunError(f"--state {state} is not a regular file")
        if sst is not None and not os.access(state, os.R_OK | os.W_OK):
            raise RunError(f"--state {state}: not readable and writable")
        _writable_folder(state, "--state")
        for p, st in files:
            if sst is not None and (st.st_dev, st.st_ino) == (sst.st_dev, sst.st_ino):
                raise RunError(f"--state {state} is the input {p}")
        if out != "-" and os.path.abspath(out) == os.path.abspath(state):
            raise RunError("--state and --out are the same file")
        for d in folders:
            if _inside(state, d):
                raise RunError(f"--state {state} is inside the input folder {d} (it would be read as input)")


def open_sink(out: str, append: bool) -> IO[str]:
    """The alerts' destination: stdout for ``-``, else ``out`` opened for appending or (checked by
    :func:`preflight`) replacing."""
    import sys

    if out == "-":
        return sys.stdout
    try:
        return open(out, "a" if append else "w", encoding="utf-8")
    except OSError as e:
        raise RunError(f"cannot write alerts to {out}: {_why(e)}") from None


# ---- live streams -----------------------------------------------------------------------------------------
class LiveLines:
    """Complete lines from live sources as they arrive: stdin (a pipe) and followed files (``tail -F``: each
    file is read from its start, then followed; a file replaced (rotation: a new inode at the path) or truncated
    is reopened from its start, after the old one's remaining lines were read). ``chunks(stop, tick)`` yields
    ``bytes`` holding whole lines at least every ``tick`` seconds when lines arrived (at most ``max_bytes`` per
    chunk); ``stop()`` is polled between waits. A line longer than ``max_line`` bytes is dropped and counted in
    ``too_long``. Memory: ``max_bytes`` plus one partial line per source."""

    def __init__(self, stdin: bool, follow: tuple[str, ...], max_bytes: int = 8 << 20, max_line: int = 64 << 20):
        self.stdin_fd = 0 if stdin else None
        if stdin:
            os.set_blocking(0, False)                   # read what has arrived, never wait for a full block
        self.follow = list(follow)
        self.files: dict[str, tuple[int, int]] = {}    # path -> (fd, inode)
        self.partial: dict[object, bytes] = {}
        self.max_bytes, self.max_line = max_bytes, max_line
        self.too_long = 0
        self.stdin_open = stdin
        for p in follow:
            self._open(p)

    def _open(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
        except OSError:
            return                                     # not there yet (rotation in progress): retried later
        self.files[path] = (fd, os.fstat(fd).st_ino)

    def _check_rotation(self, path: str) -> bool:
        """Reopen ``path`` if it was replaced or truncated; True if the old descriptor is exhausted and gone."""
        cur = self.files.get(path)
        try:
            st = os.stat(path)
        except OSError:
            return False
        if cur is None:
            self._open(path)
            return True
        fd, ino = cur
        if st.st_ino != ino or os.lseek(fd, 0, os.SEEK_CUR) > st.st_size:
            os.close(fd)
            self.partial.pop(path, None)
            self._open(path)
            return True
        return False

    def _take(self, key: object, data: bytes, out: list[bytes]) -> None:
        data = self.partial.pop(key, b"") + data
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
        else:
            out.append(data[: cut + 1])
            rest = data[cut + 1:]
        if len(rest) > self.max_line:
            self.too_long += 1
            rest = b""
            self.partial[key] = b"\0skip"               # drop the rest of this line when it ends
            return
        if rest:
            self.partial[key] = rest

    def _read_fd(self, key: object, fd: int, out: list[bytes], budget: int) -> int:
        got = 0
        while got < budget:
            try:
                data = os.read(fd, min(1 << 20, budget - got))
            except BlockingIOError:
                break
            if not data:
                if key == "-":
                    if self.partial.get("-"):
                        out.append(self.partial.pop("-") + b"\n")
                    self.stdin_open = False
                break
            if self.partial.get(key) == b"\0skip":     # inside an over-long line: skip to its end
                nl = data.find(b"\n")
                if nl < 0:
                    got += len(data)
                    continue
                self.partial.pop(key)
                data = data[nl + 1:]
            self._take(key, data, out)
            got += len(data)
        return got

    @property
    def open(self) -> bool:
        return self.stdin_open or bool(self.follow)

    def chunks(self, stop, tick: float = 0.2):
        import select
        import time

        out: list[bytes] = []
        size = 0
        last = time.monotonic()
        while self.open and not stop():
            if self.stdin_fd is not None and self.stdin_open:
                try:
                    ready, _, _ = select.select([self.stdin_fd], [], [], tick if not out else min(tick, 0.05))
                except InterruptedError:
                    ready = []
                if ready:
                    size += self._read_fd("-", self.stdin_fd, out, self.max_bytes - size)
            else:
                time.sleep(tick if not out else 0.02)
            for p in self.follow:
                if p in self.files:
                    size += self._read_fd(p, self.files[p][0], out, self.max_bytes - size)
                self._check_rotation(p)
            now = time.monotonic()
            if out and (size >= self.max_bytes or now - last >= tick or not self.open):
                yield b"".join(out)
                out, size, last = [], 0, now
            elif not out:
                last = now
        if out:
            yield b"".join(out)

    def close(self) -> None:
        if self.stdin_fd is not None:
            try:
                os.set_blocking(self.stdin_fd, True)
            except OSError:
                pass
        for fd, _ in self.files.values():
            os.close(fd)
        self.files.clear()


class Reorder:
    """Event-time reordering bounded by time (a watermark, as in Flink and Spark): events are held until an
    event ``lateness_us`` newer has arrived, or for at most ``lateness_s`` seconds of wall time (so an idle
    stream still releases them); released events come out in time order. An event arriving after newer ones
    were released is passed on at once and scored as a late event. ``lateness_us = 0`` holds nothing.
    Memory: the events of one lateness interval."""

    def __init__(self, lateness_s: float):
        import collections

        self.lateness_us = int(lateness_s * 1e6)
        self.lateness_s = lateness_s
        self.held = collections.deque()               # (arrival monotonic time, table sorted by time)
        self.newest: int | None = None

    def push(self, t, now: float):
        import pyarrow as pa

        if t.num_rows == 0:
            return []
        if self.lateness_us <= 0:
            return [t]
        ts = t.column("@timestamp")
        last = ts[-1].value
        self.newest = last if self.newest is None else max(self.newest, last)
        self.held.append((now, t))
        return self._release(now, pa)

    def _release(self, now: float, pa):
        if not self.held:
            return []
        cut = self.newest - self.lateness_us
        tables = [t for _, t in self.held]
        all_ = pa.concat_tables(tables, promote_options="default").sort_by([("@timestamp", "ascending")])
        oldest_arrival = self.held[0][0]
        if now - oldest_arrival >= self.lateness_s:
            self.held.clear()
            return [all_]
        ts = all_.column("@timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
        import numpy as np

        k = int(np.searchsorted(ts, cut, side="right"))
        self.held.clear()
        if k < all_.num_rows:
            self.held.append((oldest_arrival, all_.slice(k)))
        return [all_.slice(0, k)] if k else []

    def tick(self, now: float):
        import pyarrow as pa

        return self._release(now, pa) if self.held else []

    def flush(self):
        import pyarrow as pa

        if not self.held:
            return []
        t = pa.concat_tables([t for _, t in self.held], promote_options="default").sort_by(
            [("@timestamp", "ascending")])
        self.held.clear()
        return [t]


def input_bytes(paths: tuple[str, ...]) -> int | None:
    """The stored size of every input (folders walked), for a progress bar in bytes; None when one is stdin
    or not a regular file (its size is not known before it ends)."""
    total = 0
    for p in paths:
        if os.path.isfile(p):
            total += os.path.getsize(p)
        elif os.path.isdir(p):
            total += sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs
                         if os.path.isfile(os.path.join(d, f)))
        else:
            return None
    return total


def by_first_timestamp(inputs: tuple[str, ...], fmt: str) -> tuple[str, ...]:
    """Several files given (say ``day2.jsonl day1.jsonl`` or a shell glob of rotated logs, newest first) are read
    in the order of their earliest event in their first batch, so that an older file is not scored after a newer
    one (its events would be late, or ``too_old``). Folders, stdin and unreadable files keep their place after
    the ordered files. Cost: one batch read per file."""
    from ._readers import ReadStats, read_events

    if len(inputs) < 2 or any(p == "-" or not os.path.isfile(p) for p in inputs):
        return inputs
    first: dict[str, int] = {}
    for p in inputs:
        try:
            for t in read_events(p, format=fmt, stats=ReadStats()):
                first[p] = int(t.column("@timestamp")[0].value)
                break
        except (OSError, ValueError):
            pass
    ordered = sorted((p for p in inputs if p in first), key=lambda p: first[p])
    return tuple(ordered + [p for p in inputs if p not in first])


def regular_stdin() -> bool:
    """Whether standard input is a regular file (``run - < file``: read whole, not as a live stream)."""
    try:
        return stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:
        return False
