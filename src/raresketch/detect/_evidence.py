"""The evidence of an alert: the figures that made it fire, one function per key. Which keys an alert shows,
and in what order, is its rule file's ``evidence`` list (``data/rules``); ``Alert.explain`` words them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..alerts import RULES
from ..config import Config
from ._baseline import Priors
from ._rules import Matches

__all__ = ["Context", "evidence", "EVIDENCE"]


@dataclass
class Context:
    """What the evidence of event ``i`` is computed from."""

    config: Config
    pri: Priors
    m: Matches
    i: int
    day: int                      # the event's day (days since 1970-01-01)
    ref_day: int                  # the newest day when it was scored (> day for a late event)
    texts: dict[str, Any]         # the catalogue's names for this event (KeyResolver texts, one row)
    suppressed_since_last: int


def _agent_first(c: Context) -> int:
    return int(c.pri.run_first[c.i])


#: evidence key -> how it is computed.
EVIDENCE: dict[str, Callable[[Context], Any]] = {
    "window_days": lambda c: c.config.training_days,
    "active_agents": lambda c: int(c.pri.active_agents[c.i]),
    "rare_threshold": lambda c: int(c.pri.threshold[c.i]),
    "org_first_day": lambda c: int(c.pri.org_first_day[c.i]),
    "baseline_days": lambda c: c.day - int(c.pri.org_first_day[c.i]),
    "agent_first_day": _agent_first,
    "agent_observed_days": lambda c: c.day - _agent_first(c),
    "agent_activated": lambda c: c.day - _agent_first(c) >= c.config.activation_days,
    "late": lambda c: c.day < c.ref_day,
    "reference_day": lambda c: c.ref_day,
    "exact_limit": lambda c: c.config.exact_limit,
    # rare cloud resource
    "prevalence": lambda c: int(c.pri.prevalence[c.i]),
    "prevalence_exact": lambda c: bool(c.pri.prevalence[c.i] < c.config.exact_limit),
    "process_seen_with_resource": lambda c: False,       # a first contact, by definition of the detector
    "service_kind": lambda c: f"{c.texts['raresketch.cloud.provider']}/{c.texts['raresketch.cloud.service']}",
    "process_kind_agents": lambda c: int(c.pri.kind_agents[c.i]),
    "agent_used_kind": lambda c: bool(c.pri.agent_seen_kind[c.i]),
    "process_new_rare_resources": lambda c: int(c.pri.new_rare[c.i]),
    "process_new_rare_resources_on_agent": lambda c: int(c.pri.new_rare_agent[c.i]),
    "habitual_explorer_n": lambda c: c.config.habitual_explorer_n,
    # uncommon IM
    "im_service": lambda c: c.texts["raresketch.im.service"],
    "process_im_agents": lambda c: int(c.pri.im_agents[c.i]),
    "process_im_agent_days": lambda c: int(c.pri.im_agent_days[c.i]),
    "im_max_agents": lambda c: int(c.pri.threshold[c.i]) if c.config.im_max_agents is None
    else c.config.im_max_agents,
    "im_max_agent_days": lambda c: c.config.im_max_agent_days,
    "binary_agents": lambda c: int(c.pri.binary_agents[c.i]),
    "suspicious_signals": lambda c: [k for k, v in c.m.signals.items() if v[c.i]],
    "script_engine": lambda c: c.texts["raresketch.process.script_engine"],
    "script_engine_signals": lambda c: [k for k, v in c.m.script_signals.items() if v[c.i]],
    "parent_engine_agents": lambda c: int(c.pri.pair_agents[c.i]),
    "command_line_agents": lambda c: int(c.pri.cmdline_agents[c.i]),
    "suppressed_since_last": lambda c: c.suppressed_since_last,
}

for _rule in RULES.values():            # a rule file may only name evidence computed here
    _unknown = sorted(set(_rule.evidence) - set(EVIDENCE))
    if _unknown:
        raise ValueError(f"rule {_rule.detector}: unknown evidence keys {_unknown}")


def evidence(detector: str, ctx: Context) -> dict[str, Any]:
    """The evidence dict of one alert of ``detector``, keys in its rule file's order. O(keys)."""
    return {k: EVIDENCE[k](ctx) for k in RULES[detector].evidence}
