"""Opening an input: :class:`Source`, a byte source with a peekable head, gzip detected by magic bytes, read as
lines or as blocks of whole lines."""
from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from typing import IO, Any, Iterator


#: Default bound on one line (bytes, without its newline): a longer line is skipped, counted ``line_too_long``.
MAX_LINE_BYTES = 64 << 20
#: Decompression guard: a gzip input is stopped once it has expanded past ``GZIP_MIN_BYTES`` *and* more than
#: ``GZIP_MAX_RATIO`` times the compressed bytes read so far (JSON logs compress 5-30x; a run of one byte,
#: the shape of a decompression bomb, about 1,000x).
GZIP_MAX_RATIO = 200
GZIP_MIN_BYTES = 64 << 20


def _after_newline(chunk: bytes) -> bytes | None:
    """What follows the first newline of ``chunk``; None when it has none."""
    i = chunk.find(b"\n")
    return None if i < 0 else chunk[i + 1 :]


class Source:
    """A byte source with a peekable head: path, bytes/text file object, gzip detected by magic bytes.

    ``head`` holds the first up-to-64 KiB of the (decompressed) content; :meth:`lines` yields every line
    (bytes, without the newline) including those in ``head``.

    Guards: a line longer than ``max_line`` bytes is dropped while it is read (at most ``max_line`` + one read
    step held) and counted in :attr:`too_long`; a gzip input that expands past ``max_ratio`` times its
    compressed size (once over ``GZIP_MIN_BYTES``) or past ``max_bytes`` decompressed bytes is stopped there
    and :attr:`limited` says why (what came before is kept).
    """

    HEAD = 1 << 16

    def __init__(self, path_or_file: Any, max_line: int = MAX_LINE_BYTES, max_ratio: float | None = None,
                 max_bytes: int | None = None):
        max_ratio = GZIP_MAX_RATIO if max_ratio is None else max_ratio
        if max_line < 1:
            raise ValueError(f"max_line_bytes must be >= 1, got {max_line}")
        self.max_line, self.max_ratio, self.max_bytes = int(max_line), float(max_ratio), max_bytes
        #: Lines dropped for being longer than ``max_line`` bytes.
        self.too_long = 0
        #: Why a gzip input was stopped by the decompression guard, or None.
        self.limited: str | None = None
        self._out = 0   # decompressed bytes read
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
        self._counted = _Counting(raw) if self.gzip else None
        self.fh: IO[bytes] = gzip.GzipFile(fileobj=self._counted, mode="rb") if self.gzip else raw
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
        if self.damaged is not None or self.limited is not None:
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
            self._out += len(b)
            if self._over_limit():
                break
        return b"".join(parts)

    def _over_limit(self) -> bool:
        """Check the decompression guard after each step; set :attr:`limited` when it trips."""
        comp = max(self._counted.n, 1)
        if self.max_bytes is not None and self._out > self.max_bytes:
            self.limited = (f"decompressed past {self.max_bytes:,} bytes (max_decompressed_bytes); "
                            "the rest of it is not read")
        elif self._out > GZIP_MIN_BYTES and self._out > self.max_ratio * comp:
            self.limited = (f"expands more than {self.max_ratio:g}x ({self._out:,} bytes from {comp:,} compressed): "
                            "a decompression bomb or a damaged file; the rest of it is not read")
        return self.limited is not None

    @property
    def size(self) -> int | None:
        """The input's size in bytes as stored (compressed for gzip) when it is a regular file, else None."""
        try:
            st = os.fstat(self._raw.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    @property
    def consumed(self) -> int:
        """Bytes of the stored input read so far (the compressed side of a gzip input); 0 when unknown."""
        if self._counted is not None:
            return self._counted.n
        try:
            return int(self._raw.tell())
        except (AttributeError, OSError, ValueError):
            return 0

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
        """Every line (bytes, without its newline and a trailing ``\\r``), those in ``head`` included: the lines of
        :meth:`blocks` (1 MiB at a time), so a line longer than ``max_line`` is dropped and counted the same way."""
        for block in self.blocks(1 << 20):
            parts = bytes(block).split(b"\n")
            parts.pop()                      # every block ends with a newline
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
        limit = self.max_line
        pending: list = []  # pieces of a line that has not ended yet (longer than a block)
        npending = 0        # their bytes
        dropping = False    # inside a line already found longer than max_line: skip to its newline
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
                start = 0
                if dropping:
                    i = buf.find(b"\n", 0, got)
                    if i < 0:
                        rest = b""
                        continue
                    start, dropping = i + 1, False
                cut = buf.rfind(b"\n", start, got)   # rest is the head at first: it may hold whole lines
                if cut < 0:
                    if got - start:
                        pending.append(mv[start:got].toreadonly())
                        npending += got - start
                    rest = b""
                    if npending > limit + 1:
                        self.too_long += 1
                        pending, npending, dropping = [], 0, True
                    continue
                block = mv[start : cut + 1].toreadonly()
                rest = bytes(mv[cut + 1 : got])
            else:
                chunk = self._read(size)
                if not chunk:
                    break
                if dropping:       # still inside a line found too long
                    chunk = _after_newline(chunk)
                    if chunk is None:
                        continue
                    dropping = False
                rest = rest + chunk if rest else chunk
                if len(rest) < size:
                    continue
                cut = rest.rfind(b"\n")
                if cut < 0:
                    pending.append(rest)
                    npending += len(rest)
                    rest = b""
                    if npending > limit + 1:
                        self.too_long += 1
                        pending, npending, dropping = [], 0, True
                    continue
                block, rest = rest[: cut + 1], rest[cut + 1 :]
            if pending:
                block = b"".join([*pending, block])
                pending, npending = [], 0
            if limit < size or len(block) > limit:
                block = self._drop_long(block)
                if not block:
                    continue
            yield block
        if (pending or rest) and not dropping:
            tail = b"".join([*pending, rest]) if pending else rest
            tail = self._drop_long(tail if tail.endswith(b"\n") else tail + b"\n")
            if tail:
                yield tail

    def _drop_long(self, block: bytes | memoryview) -> bytes | memoryview:
        """``block`` (whole lines) without its lines longer than ``max_line`` bytes, each counted. One pass over
        the newlines (only when a line could be that long)."""
        limit, data = self.max_line, block if isinstance(block, bytes) else bytes(block)
        keep, start, dropped = [], 0, False
        while start < len(data):
            end = data.find(b"\n", start)
            if end < 0:   # (blocks end with a newline; a last piece without one is one line)
                end = len(data) - 1
            n = end - start - (end > start and data[end - 1] == 13)
            if n > limit:
                self.too_long += 1
                dropped = True
            else:
                keep.append((start, end + 1))
            start = end + 1
        if not dropped:
            return block
        return b"".join(data[a:b] for a, b in keep)

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


class _Counting:
    """A read-only file wrapper counting the bytes read through it (the compressed side of a gzip input)."""

    def __init__(self, raw: IO[bytes]):
        self._raw, self.n = raw, 0

    def read(self, n: int = -1) -> bytes:
        b = self._raw.read(n)
        self.n += len(b)
        return b

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)
