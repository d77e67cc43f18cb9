"""The two detectors' rules and gates (docs/DETECTORS.md), applied to the baseline's prior answers for a batch.

Pure functions over aligned numpy arrays: which variations match each event (:func:`match`), and which
candidates the vector gates let through (:func:`gate`: activation, allow-list, habitual explorer). The names,
texts and precedence of the variations are data (``data/rules``, :data:`raresketch.alerts.PRECEDENCE`); the
per-alert gates (dedup, volume) are :class:`raresketch.detect.Guard`'s.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..alerts import PRECEDENCE
from ..config import Config
from ._baseline import EventKeys, Priors

__all__ = ["Matches", "match", "gate", "matched"]


@dataclass
class Matches:
    """Boolean masks over the batch: ``variations[detector][variation]``, and the suspicious-process signals."""

    variations: dict[str, dict[str, np.ndarray]]
    signals: dict[str, np.ndarray]          # unsigned, untrusted, user_writable_path, rare_binary, renamed
    script_signals: dict[str, np.ndarray]   # rare_parent_engine, rare_command_line


def match(config: Config, ev: EventKeys, pri: Priors, unsigned: np.ndarray, untrusted: np.ndarray,
          user_writable_path: np.ndarray, renamed: np.ndarray) -> Matches:
    """Evaluate every variation of both detectors for every event of the batch. The four process facts are
    boolean arrays aligned with ``ev`` (an unknown fact is False: unknown is never a signal). O(n) numpy."""
    thr = pri.threshold
    activated_agent = (ev.days.astype(np.int64) - pri.run_first) >= config.activation_days
    base = ev.is_cloud & pri.first_rare
    cloud = {
        "base": base,
        "atypical": base & (pri.kind_agents <= thr),
        "atypical_to_agent": base & (pri.agent_seen_kind == 0) & activated_agent,
    }
    im_max_agents = thr if config.im_max_agents is None else config.im_max_agents
    im_base = (ev.is_im & ev.has_process & (pri.im_agents <= im_max_agents)
               & (pri.im_agent_days <= config.im_max_agent_days))
    signals = {
        "unsigned": unsigned,
        "untrusted": untrusted,
        "user_writable_path": user_writable_path,
        "rare_binary": pri.binary_agents <= thr,
        "renamed": renamed,
    }
    script_signals = {
        "rare_parent_engine": ev.is_script & (pri.pair_agents <= thr),
        "rare_command_line": ev.has_cmdline & (pri.cmdline_agents <= thr),
    }
    suspicious = np.zeros(len(ev), dtype=bool)
    for v in signals.values():
        suspicious |= v
    uncommon_script = script_signals["rare_parent_engine"] | script_signals["rare_command_line"]
    im = {
        "base": im_base,
        "suspicious_process": im_base & suspicious,
        "script_engine": im_base & uncommon_script,
    }
    out = {"rare_cloud": cloud, "uncommon_im": im}
    for det, masks in out.items():      # the rule files and this function name the same variations
        assert set(masks) == set(PRECEDENCE[det]), (det, sorted(masks))
    return Matches(out, signals, script_signals)


def gate(config: Config, ev: EventKeys, pri: Priors, m: Matches, allow: np.ndarray,
         suppressed: Counter) -> dict[str, np.ndarray]:
    """The vector gates, in order: activation (no alert before the baseline spans ``activation_days``),
    allow-list, habitual explorer (rare-cloud only; never for a copy where the process rarely runs, nor for an
    uncommon scripting-engine execution or a rare unsigned binary on a host where it does not explore). Returns, per detector, the events
    that stay candidates; each suppression is counted once per (event, detector) in ``suppressed``. O(n) numpy to
    find the events some detector's base variation matched, then O(matches): every gate applies to those only."""
    bases = {det: masks["base"] for det, masks in m.variations.items()}
    h = np.flatnonzero(np.logical_or.reduce(list(bases.values())))
    activated = (ev.days[h].astype(np.int64) - pri.org_first_day[h]) >= config.activation_days
    thr, new_rare_agent = pri.threshold[h], pri.new_rare_agent[h]
    habitual = (pri.new_rare[h] >= config.habitual_explorer_n) | (new_rare_agent >= config.habitual_explorer_n)
    # What a habitual explorer's status never covers (docs/DETECTORS.md, "Habitual explorers"):
    # - a copy somewhere the process rarely runs: that location on at most `threshold` agents while the process
    #   runs on more than `threshold` others (-1: locations not tracked yet, after loading an older state);
    # - an unusual process on a host where it does not explore (fewer than N/4 first rare contacts there): an
    #   uncommon scripting-engine execution (rare parent or command line), or a rare binary not validly signed.
    location, process = pri.location_agents[h], pri.process_agents[h]
    elsewhere = (location >= 0) & (location <= thr) & (process - location > thr)
    sig, script = m.signals, m.script_signals
    unusual = (script["rare_parent_engine"][h] | script["rare_command_line"][h]
               | (sig["rare_binary"][h] & (sig["unsigned"][h] | sig["untrusted"][h])))
    not_exploring_here = new_rare_agent < max(1, config.habitual_explorer_n // 4)
    habitual &= ~(elsewhere | (unusual & not_exploring_here))
    allowed = allow[h]
    live = {}
    for det, base in bases.items():
        hit = base[h]
        explorer = habitual if det == "rare_cloud" else np.zeros_like(hit)
        for name, sup in (("activation", hit & ~activated), ("allowlist", hit & activated & allowed),
                          ("habitual_explorer", hit & activated & ~allowed & explorer)):
            if sup.any():
                suppressed[name] += int(sup.sum())
        live[det] = np.zeros(base.size, dtype=bool)
        live[det][h] = hit & activated & ~allowed & ~explorer
    return live


def matched(m: Matches, detector: str, i: int) -> list[str]:
    """The variations of ``detector`` that event ``i`` matched, most specific first (the alert is named after
    the first)."""
    masks = m.variations[detector]
    return [v for v in PRECEDENCE[detector] if masks[v][i]]
