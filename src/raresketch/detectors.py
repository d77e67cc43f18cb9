"""The two detectors' rules (docs/DETECTORS.md), applied to the baseline's prior answers for a batch.

Pure functions over aligned numpy arrays: which variations match each event. Gates (activation, allow-list,
habitual explorers, dedup, volume) are applied by :class:`raresketch.Engine`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .baseline import EventKeys, Priors, normalize_command_line
from .config import Config

__all__ = ["Matches", "match", "normalize_command_line", "RARE_CLOUD_ORDER", "UNCOMMON_IM_ORDER"]

#: Variations from the most to the least specific: an alert is named after the first that matched.
RARE_CLOUD_ORDER = ("atypical_to_agent", "atypical", "base")
UNCOMMON_IM_ORDER = ("script_engine", "suspicious_process", "base")


@dataclass
class Matches:
    """Boolean masks over the batch, one per variation, and the suspicious-process signals."""

    cloud: dict[str, np.ndarray]
    im: dict[str, np.ndarray]
    signals: dict[str, np.ndarray]       # unsigned, untrusted, user_writable_path, rare_binary, renamed
    script_signals: dict[str, np.ndarray]  # rare_parent_engine, rare_command_line


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
    im_base = ev.is_im & ev.has_process & (pri.im_agents <= im_max_agents) & (pri.im_agent_days <= config.im_max_agent_days)
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
    return Matches(cloud, im, signals, script_signals)
