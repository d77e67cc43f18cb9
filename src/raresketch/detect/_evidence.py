"""The evidence of an alert: the figures that made it fire, one function per key. Which keys an alert shows,
and in what order, is its rule file's ``evidence`` list (``data/rules``); ``Alert.explain`` words them."""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._core import hash_pair
from ..alerts import RULES
from ..config import Config
from ._baseline import Baseline, EventKeys, Priors
from ._rules import Matches

__all__ = ["Context", "evidence", "EVIDENCE", "identification", "snapshot_date"]


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
    detector: str = ""
    baseline: Baseline | None = None   # for the error bounds of the counts (``count_intervals``)
    ev: EventKeys | None = None


def iso_day(day: int) -> str:
    """Days since 1970-01-01 -> ``YYYY-MM-DD``."""
    return (_dt.date(1970, 1, 1) + _dt.timedelta(days=int(day))).isoformat()


def _one(a) -> np.ndarray:
    return np.asarray([a], dtype=np.uint64)


#: evidence key -> (structure, the key of event i in it, the prior count shown): the counts whose error bounds
#: ``count_intervals`` gives.
_COUNTED: dict[str, tuple[str, Callable[["Context"], np.ndarray], str]] = {
    "prevalence": ("prevalence", lambda c: _one(c.ev.resource[c.i]), "prevalence"),
    "process_kind_agents": ("kind_agents", lambda c: hash_pair(_one(c.ev.process[c.i]), _one(c.ev.kind[c.i])),
                            "kind_agents"),
    "process_new_rare_resources": ("new_rare", lambda c: _one(c.ev.process[c.i]), "new_rare"),
    "process_new_rare_resources_on_agent": (
        "new_rare_agent", lambda c: hash_pair(_one(c.ev.process[c.i]), _one(c.ev.agent[c.i])), "new_rare_agent"),
    "process_im_agents": ("im_agents", lambda c: hash_pair(_one(c.ev.process[c.i]), _one(c.ev.im[c.i])),
                          "im_agents"),
    "process_im_agent_days": ("im_agent_days", lambda c: hash_pair(_one(c.ev.process[c.i]), _one(c.ev.im[c.i])),
                              "im_agent_days"),
    "binary_agents": ("binary_agents", lambda c: _one(c.ev.binary[c.i]), "binary_agents"),
    "parent_engine_agents": ("pair_agents", lambda c: _one(c.ev.parent_engine[c.i]), "pair_agents"),
    "command_line_agents": ("cmdline_agents", lambda c: _one(c.ev.cmdline[c.i]), "cmdline_agents"),
}


def count_intervals(c: Context) -> dict[str, list[float]]:
    """``{evidence key: [low, high]}`` for every count this alert shows: the count -/+ two standard errors of
    its structure (``KeyedDistinct.count_interval``; equal to the count while the structure counts the key
    exactly, i.e. below ``exact_limit``). The half-width is the structure's current one for that key (it
    includes this batch's events), applied to the count before this event. O(keys shown)."""
    if c.baseline is None or c.ev is None:
        return {}
    out = {}
    for k in RULES[c.detector].evidence if c.detector else ():
        spec = _COUNTED.get(k)
        if spec is None:
            continue
        struct, key, prior = spec
        n = float(getattr(c.pri, prior)[c.i])
        lo, hi = c.baseline.structures[struct].count_interval(key(c))
        est = float(c.baseline.structures[struct].count(key(c))[0])
        half = max(0.0, float(hi[0]) - est)
        out[k] = [round(max(0.0, n - half), 1), round(n + half, 1)]
    return out


_SNAPSHOT_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def snapshot_date(sources: dict[str, str]) -> str | None:
    """The date of the network list in use (the catalogue's ``ip_ranges`` source line), or None."""
    m = _SNAPSHOT_DATE.search(sources.get("ip_ranges", ""))
    return m.group(1) if m else None


#: ``raresketch.domain_source`` -> how the alert says the destination was identified.
_METHOD = {"event": "event", "dns": "dns_answer", "ptr": "ptr", "command_line": "command_line"}


def identification(event: dict[str, Any], texts: dict[str, Any], snapshot: str | None) -> dict[str, Any]:
    """How the destination of an alert was identified: ``method`` ``event`` (the event's own name),
    ``dns_answer`` (the host's DNS answer, with its time ``dns_answer_time``), ``command_line`` (the URL in the
    command line: ``inferred``), ``ptr`` (only the address's reverse-lookup name: keyed by the address) or
    ``address`` (no name); for ``ptr`` and ``address``, the provider network the catalogue placed the address in
    and the date of that network list (``network_snapshot``). O(1)."""
    src = event.get("raresketch.domain_source")
    method = _METHOD.get(src, "address") if event.get("destination.domain") is not None else "address"
    out: dict[str, Any] = {"method": method, "inferred": method == "command_line"}
    if method == "dns_answer" and event.get("raresketch.dns_answer_time") is not None:
        t = event["raresketch.dns_answer_time"]
        out["dns_answer_time"] = t.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds").replace(
            "+00:00", "Z") if isinstance(t, _dt.datetime) else str(t)
    if method in ("ptr", "address"):
        prov = texts.get("raresketch.cloud.provider")
        if prov:
            out["provider_network"] = f"{prov}/{texts.get('raresketch.cloud.service')}"
            out["network_snapshot"] = snapshot
        if method == "ptr":
            out["ptr_name"] = event.get("destination.domain")
    return out


def _agent_first(c: Context) -> int:
    return int(c.pri.run_first[c.i])


#: evidence key -> how it is computed.
EVIDENCE: dict[str, Callable[[Context], Any]] = {
    "window_days": lambda c: c.config.training_days,
    "active_agents": lambda c: int(c.pri.active_agents[c.i]),
    "rare_threshold": lambda c: int(c.pri.threshold[c.i]),
    "org_first_day": lambda c: iso_day(c.pri.org_first_day[c.i]),
    "baseline_days": lambda c: c.day - int(c.pri.org_first_day[c.i]),
    "agent_first_day": lambda c: iso_day(_agent_first(c)),
    "agent_observed_days": lambda c: c.day - _agent_first(c),
    "agent_activated": lambda c: c.day - _agent_first(c) >= c.config.activation_days,
    "late": lambda c: c.day < c.ref_day,
    "reference_day": lambda c: iso_day(c.ref_day),
    "count_intervals": count_intervals,
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
