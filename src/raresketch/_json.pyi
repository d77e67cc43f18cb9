"""Type stubs of the compiled ECS JSON-lines projector ``raresketch._json`` (source: ext/_json.pyx)."""
from typing import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa

#: Line status code -> name (0 "ok": projected; the others leave the line to the per-line reader).
STATUS: dict[int, str]

class Projector:
    paths: tuple[str, ...]
    kinds: tuple[str, ...]
    on_demand: bool
    def __init__(self, paths: Mapping[str, str], on_demand: bool = True) -> None: ...
    def project(self, block: bytes | bytearray | memoryview) -> tuple[
        npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, pa.Array]]: ...
