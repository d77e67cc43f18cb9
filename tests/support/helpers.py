"""Deterministic workloads shared by the tests."""
from __future__ import annotations

import struct

import numpy as np


def zipf_keys(n: int, a: float = 1.2, seed: int = 0) -> np.ndarray:
    """n uint64 keys whose frequencies follow Zipf(a): a deterministic skewed stream."""
    rng = np.random.default_rng(seed)
    return rng.zipf(a, n).astype(np.uint64)


def container_regions(blob: bytes) -> dict[str, int]:
    """One byte offset inside each region of a saved structure's container (raresketch._format)."""
    hlen = struct.unpack_from("<I", blob, 8)[0]
    start = 12 + hlen + (-(12 + hlen)) % 8
    return {"magic": 1, "version": 4, "family": 6, "header length": 8, "header": 12 + hlen // 2,
            "arrays": (start + len(blob) - 4) // 2, "crc": len(blob) - 2}


#: The error each region's flipped byte must give.
FLIP_MESSAGE = {"magic": "bad magic", "version": "format version 254", "family": "unknown family",
                "header length": "checksum mismatch", "header": "checksum mismatch",
                "arrays": "checksum mismatch", "crc": "checksum mismatch"}
