"""The detectors' rules on hand-built keys and priors (``raresketch.detect.match`` and ``gate``): each variation's
condition at its boundaries (docs/DETECTORS.md), unknown process facts never a signal, the gates and their
counts, and the precedence of the variations as the rule files give it (``raresketch.alerts.PRECEDENCE``)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from support.scenarios import HOSTS, background, event_keys, row, table

import raresketch as rs
from raresketch.alerts import PRECEDENCE, RULES
from raresketch.detect import Priors, gate, match
from raresketch.detect._rules import matched

CFG = rs.Config()            # activation_days 14, im_max_agent_days 10, habitual_explorer_n 20
DAY = 20_100                 # the day of every hand-built event (support.scenarios.event_keys)
THR = 2                      # the rare threshold of every hand-built event


def priors(n: int = 1, **over) -> Priors:
    """Priors of an org and agent activated long ago, nothing seen before, rare threshold THR."""
    i = np.zeros(n, np.int64)
    base = dict(run_first=i + DAY - 100, active_agents=i + 50, threshold=i + THR, org_first_day=i + DAY - 100,
                prevalence=i, process_seen=i, kind_agents=i + 10, agent_seen_kind=i + DAY - 1,
                first_rare=np.zeros(n, bool), new_rare=i, new_rare_agent=i, im_agents=i + 10, im_agent_days=i + 100,
                binary_agents=i + 10, pair_agents=i + 10, cmdline_agents=i + 10)
    base.update({k: np.broadcast_to(np.asarray(v), n).copy() for k, v in over.items()})
    return Priors(**base)


NO = np.zeros(1, bool)
YES = np.ones(1, bool)


def run(ev: EventKeys, pri: Priors, config: rs.Config = CFG, unsigned=NO, untrusted=NO, writable=NO, renamed=NO):
    return match(config, ev, pri, unsigned, untrusted, writable, renamed)


def hits(m, detector: str) -> dict[str, bool]:
    return {v: bool(mask[0]) for v, mask in m.variations[detector].items()}


# ------------------------------------------------------------------------------------------- rare cloud

CLOUD = dict(is_cloud=True)
FIRST_RARE = dict(first_rare=True)


def test_rare_cloud_base_needs_a_cloud_event_that_is_a_first_rare_contact():
    assert hits(run(event_keys(**CLOUD), priors(**FIRST_RARE)), "rare_cloud")["base"]
    assert not hits(run(event_keys(**CLOUD), priors()), "rare_cloud")["base"]
    assert not hits(run(event_keys(), priors(**FIRST_RARE)), "rare_cloud")["base"]


def test_rare_cloud_atypical_process_kind_agents_at_most_the_threshold():
    at = run(event_keys(**CLOUD), priors(kind_agents=THR, **FIRST_RARE))
    above = run(event_keys(**CLOUD), priors(kind_agents=THR + 1, **FIRST_RARE))
    assert hits(at, "rare_cloud")["atypical"] and not hits(above, "rare_cloud")["atypical"]
    assert not hits(run(event_keys(**CLOUD), priors(kind_agents=0)), "rare_cloud")["atypical"]  # needs base


def test_rare_cloud_atypical_to_agent_needs_an_unused_kind_and_an_activated_agent():
    fresh_kind = dict(agent_seen_kind=0, **FIRST_RARE)
    assert hits(run(event_keys(**CLOUD), priors(**fresh_kind)), "rare_cloud")["atypical_to_agent"]
    assert not hits(run(event_keys(**CLOUD), priors(agent_seen_kind=DAY - 3, **FIRST_RARE)),
                    "rare_cloud")["atypical_to_agent"]
    # The agent's run started activation_days - 1 days ago: not yet activated; activation_days ago: activated.
    young = priors(run_first=DAY - CFG.activation_days + 1, **fresh_kind)
    old = priors(run_first=DAY - CFG.activation_days, **fresh_kind)
    assert not hits(run(event_keys(**CLOUD), young), "rare_cloud")["atypical_to_agent"]
    assert hits(run(event_keys(**CLOUD), old), "rare_cloud")["atypical_to_agent"]
    assert not hits(run(event_keys(**CLOUD), priors(agent_seen_kind=0)), "rare_cloud")["atypical_to_agent"]


# ------------------------------------------------------------------------------------------- uncommon IM

IM = dict(is_im=True)
FEW = dict(im_agents=THR, im_agent_days=CFG.im_max_agent_days)


def test_im_base_bounds_agents_by_the_threshold_and_agent_days_by_the_config():
    assert hits(run(event_keys(**IM), priors(**FEW)), "uncommon_im")["base"]
    assert not hits(run(event_keys(**IM), priors(im_agents=THR + 1, im_agent_days=1)), "uncommon_im")["base"]
    assert not hits(run(event_keys(**IM), priors(im_agents=1, im_agent_days=CFG.im_max_agent_days + 1)),
                    "uncommon_im")["base"]
    assert not hits(run(event_keys(), priors(**FEW)), "uncommon_im")["base"]                 # not IM traffic
    # im_max_agents replaces the threshold when set
    five = CFG.replace(im_max_agents=5)
    assert hits(run(event_keys(**IM), priors(im_agents=5, im_agent_days=1), five), "uncommon_im")["base"]
    assert not hits(run(event_keys(**IM), priors(im_agents=6, im_agent_days=1), five), "uncommon_im")["base"]


def test_im_needs_a_known_process():
    assert not any(hits(run(event_keys(has_process=False, **IM), priors(**FEW), unsigned=YES), "uncommon_im").values())


@pytest.mark.parametrize("signal", ["unsigned", "untrusted", "user_writable_path", "renamed", "rare_binary"])
def test_each_suspicious_signal_alone_makes_the_suspicious_process_variation(signal):
    facts = {k: YES if k == signal else NO for k in ("unsigned", "untrusted", "user_writable_path", "renamed")}
    pri = priors(binary_agents=THR if signal == "rare_binary" else THR + 1, **FEW)
    m = run(event_keys(**IM), pri, unsigned=facts["unsigned"], untrusted=facts["untrusted"],
            writable=facts["user_writable_path"], renamed=facts["renamed"])
    assert hits(m, "uncommon_im") == {"base": True, "suspicious_process": True, "script_engine": False}
    assert [k for k, v in m.signals.items() if v[0]] == [signal]


def test_unknown_process_facts_are_never_a_signal():
    """The facts arrive as booleans where unknown is False; with none true and a common binary: base only."""
    m = run(event_keys(**IM), priors(binary_agents=THR + 1, **FEW))
    assert hits(m, "uncommon_im") == {"base": True, "suspicious_process": False, "script_engine": False}
    assert not any(v[0] for v in m.signals.values())


def test_unknown_code_signature_is_no_signal_end_to_end():
    """An IM contact by a process whose code signature is unknown (null) is not 'unsigned' nor 'untrusted';
    the same process recorded as unsigned is."""
    def alert_for(exists, trusted):
        eng = rs.Engine()
        rows = background(HOSTS, 20) + [row(19, "h1", "telegram", "api.telegram.org", seconds=7200, sha="9" * 64,
                                            signer=None, exists=exists, trusted=trusted)]
        (a,) = [a for a in eng.process(table(rows)) if a.detector == "uncommon_im"]
        return a.evidence
    unknown = alert_for(None, None)["suspicious_signals"]
    assert "unsigned" not in unknown and "untrusted" not in unknown
    assert "unsigned" in alert_for(False, None)["suspicious_signals"]
    assert "untrusted" in alert_for(True, False)["suspicious_signals"]


@pytest.mark.parametrize("engine_rare, cmdline_rare", [(True, False), (False, True), (True, True)])
def test_script_engine_variation_on_a_rare_parent_pair_or_a_rare_command_line(engine_rare, cmdline_rare):
    ev = event_keys(is_script=True, has_cmdline=True, **IM)
    pri = priors(pair_agents=THR if engine_rare else THR + 1, cmdline_agents=THR if cmdline_rare else THR + 1, **FEW)
    m = run(ev, pri)
    assert hits(m, "uncommon_im")["script_engine"]
    assert [k for k, v in m.script_signals.items() if v[0]] == \
        [k for k, on in (("rare_parent_engine", engine_rare), ("rare_command_line", cmdline_rare)) if on]


def test_script_signals_need_a_scripting_engine_and_a_command_line():
    pri = priors(pair_agents=0, cmdline_agents=0, **FEW)
    assert not hits(run(event_keys(**IM), pri), "uncommon_im")["script_engine"]
    assert not hits(run(event_keys(is_script=False, has_cmdline=False, **IM), pri), "uncommon_im")["script_engine"]


# ------------------------------------------------------------------------------------------- precedence


def test_precedence_is_the_rule_files_order_most_specific_first():
    assert PRECEDENCE == {"rare_cloud": ("atypical_to_agent", "atypical", "base"),
                          "uncommon_im": ("script_engine", "suspicious_process", "base")}
    assert PRECEDENCE == {d: tuple(v.variation for v in r.variations) for d, r in RULES.items()}


def test_matched_lists_the_variations_in_precedence_order():
    m = run(event_keys(**CLOUD), priors(kind_agents=0, agent_seen_kind=0, **FIRST_RARE))
    assert matched(m, "rare_cloud", 0) == ["atypical_to_agent", "atypical", "base"]
    m = run(event_keys(**CLOUD), priors(kind_agents=0, **FIRST_RARE))
    assert matched(m, "rare_cloud", 0) == ["atypical", "base"]
    ev = event_keys(is_script=True, **IM)
    m = run(ev, priors(pair_agents=0, **FEW), unsigned=YES)
    assert matched(m, "uncommon_im", 0) == ["script_engine", "suspicious_process", "base"]
    assert matched(run(ev, priors(**FEW)), "uncommon_im", 0) == ["base"]


# ------------------------------------------------------------------------------------------- gates


def _gate(ev, pri, allow=NO, config=CFG):
    suppressed: Counter = Counter()
    live = gate(config, ev, pri, run(ev, pri, config), allow, suppressed)
    return {d: bool(v[0]) for d, v in live.items()}, suppressed


BOTH = dict(is_cloud=True, is_im=True)          # one event matching both detectors' base
BOTH_PRI = dict(first_rare=True, **FEW)


def test_a_matching_event_of_an_activated_org_stays_a_candidate():
    live, suppressed = _gate(event_keys(**BOTH), priors(**BOTH_PRI))
    assert live == {"rare_cloud": True, "uncommon_im": True} and not suppressed


def test_activation_gate_counts_once_per_event_and_detector():
    pri = priors(org_first_day=DAY - CFG.activation_days + 1, **BOTH_PRI)
    live, suppressed = _gate(event_keys(**BOTH), pri)
    assert live == {"rare_cloud": False, "uncommon_im": False} and suppressed == Counter(activation=2)
    live, _ = _gate(event_keys(**BOTH), priors(org_first_day=DAY - CFG.activation_days, **BOTH_PRI))
    assert live == {"rare_cloud": True, "uncommon_im": True}


def test_allow_list_gate():
    live, suppressed = _gate(event_keys(**BOTH), priors(**BOTH_PRI), allow=YES)
    assert live == {"rare_cloud": False, "uncommon_im": False} and suppressed == Counter(allowlist=2)


@pytest.mark.parametrize("field", ["new_rare", "new_rare_agent"])
def test_habitual_explorer_gate_applies_to_rare_cloud_only(field):
    n = CFG.habitual_explorer_n
    live, suppressed = _gate(event_keys(**BOTH), priors(**{field: n}, **BOTH_PRI))
    assert live == {"rare_cloud": False, "uncommon_im": True} and suppressed == Counter(habitual_explorer=1)
    live, suppressed = _gate(event_keys(**BOTH), priors(**{field: n - 1}, **BOTH_PRI))
    assert live == {"rare_cloud": True, "uncommon_im": True} and not suppressed


def test_non_matching_events_are_not_counted_by_the_gates():
    live, suppressed = _gate(event_keys(), priors(org_first_day=DAY), allow=YES)
    assert live == {"rare_cloud": False, "uncommon_im": False} and not suppressed
