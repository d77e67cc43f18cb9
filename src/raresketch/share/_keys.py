"""Secrets of prevalence sharing (docs/SHARING.md): the consortium key every member holds, each organisation's
own noise key, and what is derived from them.

- A destination's position never depends on an organisation's ``Config.seed``: it is
  ``HMAC-SHA256(consortium key, kind + "|" + canonical name)`` (:func:`destination_digests`), so every member
  maps one destination to one position and nobody without the key can test a guessed name.
- ``key_id`` (an HMAC of a fixed label) tells whether two files were made with one consortium key without
  revealing it; ``org_id`` is derived from the organisation's noise key (unknown to everyone else), so nobody
  can forge another member's id without its key file.
- Key files are read as raw bytes (a hex text file is fine: its bytes are the key); shorter than
  :data:`MIN_KEY_BYTES` is refused. Keys are never written into an output.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Iterable

import numpy as np

from .._state import atomic_write_bytes, read_state_bytes_limited

__all__ = ["MIN_KEY_BYTES", "read_key", "new_key_file", "key_id", "org_id", "destination_digests", "positions"]

#: Shortest key accepted (bytes): 256 bits, HMAC-SHA256's block-size-independent security level.
MIN_KEY_BYTES = 32
#: Longest key file read (bytes).
MAX_KEY_BYTES = 1 << 16


def read_key(path: str | os.PathLike, what: str = "key file") -> bytes:
    """The bytes of a key file: a regular file of ``MIN_KEY_BYTES`` to ``MAX_KEY_BYTES`` bytes, else
    ``ValueError`` naming the problem (``OSError`` if unreadable)."""
    data = bytes(read_state_bytes_limited(path, MAX_KEY_BYTES, what=f"a {what}"))
    if len(data) < MIN_KEY_BYTES:
        raise ValueError(f"{what} {path}: {len(data)} bytes; a key needs at least {MIN_KEY_BYTES} "
                         "(make one with `raresketch share keygen`)")
    return data


def new_key_file(path: str | os.PathLike) -> None:
    """Write a new random key (32 bytes from the OS's CSPRNG, as 64 hex digits and a newline) to ``path``,
    atomically and private (0600). Refuses to replace an existing file (a key lost is a consortium lost)."""
    if os.path.lexists(path):
        raise ValueError(f"{path} exists: refusing to replace a key")
    atomic_write_bytes(path, secrets.token_hex(32).encode() + b"\n")


def _mac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A public fingerprint of the consortium key (16 hex digits): equal for equal keys, reveals nothing."""
    return _mac(key, b"raresketch-share|key-id").hex()[:16]


def org_id(key: bytes, org_key: bytes) -> str:
    """An organisation's id in this consortium (32 hex digits): ``HMAC(consortium key, HMAC(org key, label))``.
    Stable across its exports; unlinkable across consortia; unforgeable without the organisation's key."""
    return _mac(key, b"raresketch-share|org|" + _mac(org_key, b"raresketch-share|org-id")).hex()[:32]


def destination_digests(key: bytes, kind: str, names: Iterable[str]) -> np.ndarray:
    """Keyed 64-bit digests of destinations: the first 8 bytes (little-endian) of
    ``HMAC-SHA256(key, kind + "|" + name)``, one per name. About 1 µs per name (one HMAC each)."""
    base = hmac.new(key, f"{kind}|".encode(), hashlib.sha256)
    out = []
    for name in names:
        h = base.copy()
        h.update(name.encode("utf-8", "surrogatepass"))
        out.append(h.digest()[:8])
    return np.frombuffer(b"".join(out), dtype="<u8").astype(np.uint64) if out else np.zeros(0, np.uint64)


def positions(digests: np.ndarray, bits: int) -> np.ndarray:
    """Bit positions of ``digests`` in a filter of ``bits`` bits (a power of two): the low bits."""
    return (digests & np.uint64(bits - 1)).astype(np.int64)


def sampled(org_key: bytes, digests: np.ndarray, rate: float) -> np.ndarray:
    """Which digests this organisation keeps when down-sampling at ``rate``: a keyed coin per destination,
    permanent (the same destination is kept or dropped in every export of this organisation)."""
    if rate >= 1.0:
        return np.ones(digests.shape[0], bool)
    base = hmac.new(org_key, b"raresketch-share|sample|", hashlib.sha256)
    out = np.empty(digests.shape[0], np.uint64)
    for i, d in enumerate(digests.tolist()):
        h = base.copy()
        h.update(int(d).to_bytes(8, "little"))
        out[i] = int.from_bytes(h.digest()[:8], "little")
    return out < np.uint64(min(int(rate * 2.0 ** 64), 2 ** 64 - 1))


def noise(org_key: bytes, bits: int, flip: float) -> tuple[np.ndarray, np.ndarray]:
    """The permanent randomised response of an organisation's filter: ``(randomised, value)`` boolean arrays
    of ``bits`` entries. A position is randomised with probability ``flip`` (then reads ``value``, 1 or 0 with
    probability 1/2); drawn from SHAKE-256 keyed by the organisation's key and the filter's shape, so every
    export with the same parameters carries the same noise (averaging repeated exports learns nothing more).
    O(bits), about 5 bytes of XOF output per position."""
    label = f"raresketch-share|prr|{bits}|{flip!r}|".encode()
    stream = hashlib.shake_256(label + org_key).digest(4 * bits + (bits + 7) // 8)
    u = np.frombuffer(stream, dtype="<u4", count=bits)
    randomised = u < np.uint32(min(int(round(flip * 2.0 ** 32)), 2 ** 32 - 1)) if flip < 1.0 else np.ones(bits, bool)
    value = np.unpackbits(np.frombuffer(stream, dtype=np.uint8, offset=4 * bits), bitorder="little")[:bits].astype(bool)
    return randomised, value
