"""Detection: the windowed :class:`Baseline`, the two detectors' rules and gates, the :class:`Guard` (dedup and
volume) and the :class:`Engine` that runs prepare -> keys -> observe -> rules -> guard -> alerts, a batch at a time or
one event at a time (``_stream``: a micro-batcher bounded in size and wall time)."""
from ._baseline import STRUCTURES, Baseline, EventKeys, Priors, normalize_command_line, structure_sizes
from ._engine import Engine
from ._guard import Guard, dedup_key
from ._keys import KeyResolver
from ._prepare import Prepared, prepare
from ._rules import Matches, gate, match
from ._stream import events_table

__all__ = ["Baseline", "Engine", "EventKeys", "Guard", "KeyResolver", "Matches", "Prepared", "Priors", "STRUCTURES", "dedup_key",
           "events_table", "gate", "match", "normalize_command_line", "prepare", "structure_sizes"]
