"""Alerts: the six definitions (``data/rules/*.toml``), the :class:`Alert` record, and its output as ECS-style
JSON (:func:`to_ecs`), OCSF Detection Finding JSON (class 2004, :func:`to_ocsf`) and Arrow tables.

This layer knows what an alert *is* and how it is written; when one fires is :mod:`raresketch.detect`'s."""
from ._alert import EVENT_FIELDS, Alert
from ._ecs import to_ecs
from ._health import HealthEvent, health_to_ecs
from ._ocsf import to_ocsf
from ._rules import ALERT_NAMES, ALERTS, ALERTS_BY_ID, PRECEDENCE, RULES, AlertDefinition, Rule
from ._table import ALERT_TABLE_SCHEMA, alerts_to_table
from ._write import write_alerts

__all__ = ["Alert", "AlertDefinition", "HealthEvent", "health_to_ecs", "Rule", "RULES", "ALERTS", "ALERTS_BY_ID", "ALERT_NAMES", "PRECEDENCE",
           "EVENT_FIELDS", "to_ecs", "to_ocsf", "write_alerts", "ALERT_TABLE_SCHEMA", "alerts_to_table"]
