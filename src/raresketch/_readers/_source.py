"""Opening an input: :class:`Source`, a byte source with a peekable head, gzip detected by magic bytes, read as
lines or as blocks of whole lines."""
from __future__ import annotations

import gzip
import io
import os
import zlib
from typing import IO, Any, Iterator


class Source:
    """A byte source with a peekable head: path, bytes/text file object, gzip detected by magic bytes.

    ``head`` holds the first up-to-64 KiB of the (decompressed) content; :meth:`lines` yields every line
    (bytes, without the newline) including those in ``head``.
    """

    HEAD = 1 << 16

    def __init__(self, path_or_file: Any):
        self.name: str = ""
        self._close = False
        if isinstance(path_or_file, (str, os.PathLike)):
            self.name = os.fspath(path_or_file)
            raw: IO[bytes] = open(self.name, "rb")
            self._close = True
        elif isinstance(path_or_file, io.TextIOBase):
            raw = io.BytesIO(path_or_file.read().encode("utf-8", "surrogateescape"))
        elif isinstance(path_or_file, (bytes, bytearray, memoryview)):
            raw = io.BytesIO(bytes(path_or_file))
        else:
            raw = path_or_file
            self.name = str(getattr(path_or_file, "name", "") or "")
        self._raw = raw
        magic = _peek(raw, 2)
        self.gzip = magic == b"\x1f\x8b"
        self.fh: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if self.gzip else raw
        #: Why a compressed input stopped early (truncated, corrupt), or None; what came before is kept.
        self.damaged: str | None = None
        self.head = self._read(self.HEAD)
        if self.damaged is not None and not self.head:
            self.close()
            raise ValueError(f"cannot decompress {self.name or 'input'}: {self.damaged}")
        self._consumed = False

    def _read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all when negative). A gzip stream that is cut short or corrupt returns what was
        decompressed before the damage (read in 64 KiB steps, so little is lost) and sets :attr:`damaged`."""
        if self.damaged is not None:
            return b""
        if not self.gzip:
            return self.fh.read(n)
        parts, got = [], 0
        while n < 0 or got < n:
            try:
                b = self.fh.read(1 << 16 if n < 0 else min(n - got, 1 << 16))
            except (EOFError, OSError, zlib.error) as e:
                self.damaged = f"{type(e).__name__}: {e}"
                break
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    @property
    def ext(self) -> str:
        n = self.name.lower()
        if n.endswith(".gz"):
            n = n[:-3]
        return os.path.splitext(n)[1]

    def read_all(self) -> bytes:
        if self._consumed:
            raise RuntimeError("source already consumed")
        self._consumed = True
        return self.head + self._read()

    def lines(self) -> Iterator[bytes]:
        if self._consumed:
            raise RuntimeError("source already consumed")
        self._consumed = True
        rest = self.head
        while True:
            chunk = self._read(1 << 20)
            if not chunk:
                break
            rest += chunk
            parts = rest.split(b"\n")
            rest = parts.pop()
            for p in parts:
                yield p[:-1] if p.endswith(b"\r") else p
        if rest:
            parts = rest.split(b"\n")
            for p in parts:
                yield p[:-1] if p.endswith(b"\r") else p

    def blocks(self, size: int = 1 << 22) -> Iterator[bytes | memoryview]:
        """Yield the content in blocks of whole lines (about ``size`` bytes each, more when one line is
        longer); every block ends with ``\\n`` (one is added to a last line without it). Together the blocks
        hold exactly the lines of :meth:`lines` (with their ``\\r``), so a reader may mix both views.

        A block is bytes or a read-only memoryview (slice it and pass the slice to ``bytes()`` for a
        ``str``/``bytes`` API). An uncompressed file object with ``readinto`` is read straight into each
        block's buffer (no copy of the block in Python; the partial line at its end is copied to the next
        one); other sources are read by :meth:`_read` and joined. A line longer than ``size`` is gathered
        as a list of pieces and joined once its newline arrives. O(size) per block, O(length) per line."""
        if self._consumed:
            raise RuntimeError("source already consumed")
        self._consumed = True
        readinto = None if self.gzip else getattr(self.fh, "readinto", None)
        pending: list = []  # pieces of a line that has not ended yet (longer than a block)
        rest: bytes = self.head  # the partial line after the last newline (no newline in it)
        while True:
            if readinto is not None:
                buf = bytearray(len(rest) + size)
                buf[: len(rest)] = rest
                mv = memoryview(buf)
                got = len(rest)
                while got < len(buf):
                    k = readinto(mv[got:])
                    if not k:
                        break
                    got += k
                if got == len(rest):  # end of input
                    break
                cut = buf.rfind(b"\n", len(rest), got)
                if cut < 0:
                    pending.append(mv[:got].toreadonly())
                    rest = b""
                    continue
                block = mv[: cut + 1].toreadonly()
                rest = bytes(mv[cut + 1 : got])
            else:
                chunk = self._read(size)
                if not chunk:
                    break
                rest = rest + chunk if rest else chunk
                if len(rest) < size:
                    continue
                cut = rest.rfind(b"\n")
                if cut < 0:
                    pending.append(rest)
                    rest = b""
                    continue
                block, rest = rest[: cut + 1], rest[cut + 1 :]
            if pending:
                block = b"".join([*pending, block])
                pending = []
            yield block
        if pending or rest:
            tail = b"".join([*pending, rest]) if pending else rest
            yield tail if tail.endswith(b"\n") else tail + b"\n"

    def close(self) -> None:
        if self._close:
            self._raw.close()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _peek(fh: IO[bytes], n: int) -> bytes:
    if hasattr(fh, "peek"):
        try:
            return fh.peek(n)[:n]
        except (OSError, ValueError):
            pass
    if fh.seekable():
        pos = fh.tell()
        b = fh.read(n)
        fh.seek(pos)
        return b
    raise TypeError("the file object must be seekable or support peek(); wrap it in io.BufferedReader")
