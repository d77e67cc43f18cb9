"""raresketch: find command-and-control traffic hiding in ordinary endpoint network events.

The detection API, by layer (each name re-exported from the module that implements it):

- events: :data:`EVENT_SCHEMA`, :func:`conform`, :func:`empty_batch`, :func:`read_events` (with
  :data:`FORMATS`, :data:`SKIP_REASONS`, :class:`ReadStats`)
- catalogue: :class:`Catalog`, :func:`default_catalog`, :data:`RESOLVED_SCHEMA`
- detection: :class:`Config`, :class:`Baseline`, :class:`Engine` (``process`` for batches, ``process_event``
  for one event at a time), :func:`events_table` (event dicts -> a batch)
- alerts: :class:`Alert`, :data:`ALERT_NAMES`, :func:`to_ecs`, :func:`to_ocsf`, :func:`write_alerts`,
  :func:`alerts_to_table`

- sharing between organisations (docs/SHARING.md): :func:`export_prevalence`, :func:`merge_exports`,
  :class:`PrevalenceExport`, :class:`Consortium`, :class:`GlobalPrevalence` (more in :mod:`raresketch.share`)

The compiled sketches and hashing are :mod:`raresketch.sketches`; Spark is :mod:`raresketch.spark`; the
simulator is :mod:`raresketch.simulate`.
"""
from __future__ import annotations

from . import _core, _format, _hllpp

_core._configure(_format, _hllpp.tables)  # the compiled core imports no module of the package: it is handed them
from . import sketches  # noqa: E402
from ._readers import FORMATS, SKIP_REASONS, ReadStats, read_events
from ._version import __version__
from .alerts import ALERT_NAMES, Alert, alerts_to_table, to_ecs, to_ocsf, write_alerts
from .catalog import RESOLVED_SCHEMA, Catalog, default_catalog
from .config import Config
from .detect import Baseline, Engine, events_table
from .events import EVENT_SCHEMA, conform, empty_batch
from .share import Consortium, GlobalPrevalence, PrevalenceExport, export_prevalence, merge_exports

__all__ = [
    # events
    "EVENT_SCHEMA", "conform", "empty_batch", "read_events", "FORMATS", "SKIP_REASONS", "ReadStats",
    # catalogue
    "Catalog", "default_catalog", "RESOLVED_SCHEMA",
    # detection
    "Config", "Baseline", "Engine", "events_table",
    # alerts
    "Alert", "ALERT_NAMES", "to_ecs", "to_ocsf", "write_alerts", "alerts_to_table",
    # sharing between organisations
    "export_prevalence", "merge_exports", "PrevalenceExport", "Consortium", "GlobalPrevalence",
    "sketches", "__version__",
]
