"""The alert definitions, read from ``data/rules/<detector>.toml`` (one file per detector, like Elastic's and
Sigma's rule files): names, stable ids, severities, ATT&CK mapping, precedence of the variations, analyst texts,
the evidence each alert shows and the sentence that explains it. Nothing else in the package restates them."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources

__all__ = ["AlertDefinition", "Rule", "RULES", "ALERTS", "ALERTS_BY_ID", "ALERT_NAMES", "PRECEDENCE"]


@dataclass(frozen=True)
class AlertDefinition:
    """One alert (a detector's variation): name, severity, ATT&CK mapping and analyst texts."""

    detector: str
    variation: str
    #: Stable id, ``<detector>.<variation>``; written as ``rule.id`` ``raresketch.<id>``.
    id: str
    name: str
    severity: str
    description: str
    tactic_id: str
    tactic_name: str
    technique_id: str
    technique_name: str
    attacker_goals: str
    investigative_actions: tuple[str, ...]
    #: The clause this variation adds to the explanation (empty for the base alert).
    why: str


@dataclass(frozen=True)
class Rule:
    """One detector's rule file: its variations in precedence order (most specific first), the evidence keys
    its alerts show (in order) and the sentence that starts every explanation."""

    detector: str
    variations: tuple[AlertDefinition, ...]
    evidence: tuple[str, ...]
    why: str
    #: The sentence that says what happened (``Alert.message``); formatted like ``why``.
    message: str = ""

    @property
    def precedence(self) -> tuple[str, ...]:
        return tuple(v.variation for v in self.variations)


def _load_rule(name: str, text: str) -> Rule:
    raw = tomllib.loads(text)
    det = raw["detector"]
    if f"{det}.toml" != name:
        raise ValueError(f"rule file {name} defines detector {det!r}")
    defs = []
    for v in raw["variations"]:
        if v["id"] != f"{det}.{v['variation']}":
            raise ValueError(f"rule file {name}: id {v['id']!r} is not {det}.{v['variation']}")
        defs.append(AlertDefinition(
            det, v["variation"], v["id"], v["name"], v["severity"], v["description"], raw["tactic"]["id"],
            raw["tactic"]["name"], raw["technique"]["id"], raw["technique"]["name"], raw["attacker_goals"],
            tuple(raw["investigative_actions"]), v.get("why", "")))
    if defs[-1].variation != "base":
        raise ValueError(f"rule file {name}: the least specific variation (last) must be 'base'")
    return Rule(det, tuple(defs), tuple(raw["evidence"]), raw["why"], raw.get("message", ""))


def _load_rules() -> dict[str, Rule]:
    folder = resources.files("raresketch").joinpath("data/rules")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    return {r.detector: r for r in (_load_rule(f.name, f.read_text("utf-8")) for f in files)}


#: detector id -> Rule (``rare_cloud``, ``uncommon_im``).
RULES: dict[str, Rule] = _load_rules()
#: (detector, variation) -> AlertDefinition, least specific first within each detector.
ALERTS: dict[tuple[str, str], AlertDefinition] = {
    (d.detector, d.variation): d for r in RULES.values() for d in reversed(r.variations)}
#: ``<detector>.<variation>`` -> AlertDefinition.
ALERTS_BY_ID: dict[str, AlertDefinition] = {d.id: d for d in ALERTS.values()}
#: The alert names, least specific first within each detector.
ALERT_NAMES: tuple[str, ...] = tuple(a.name for a in ALERTS.values())
#: detector -> its variations from the most to the least specific (an alert is named after the first match).
PRECEDENCE: dict[str, tuple[str, ...]] = {d: r.precedence for d, r in RULES.items()}
