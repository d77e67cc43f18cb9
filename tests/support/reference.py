"""Exact reference implementation of docs/DETECTORS.md: plain dicts and sets, no sketches.

This module is the oracle the sketch-based ``raresketch.Engine`` is tested against, alert for alert. It
implements the *text* of docs/DETECTORS.md; it does not import ``raresketch._core`` structures. Clarity over
speed, but it handles ~1M events in well under a few minutes (one Python loop over plain lists).

State model. Every windowed count of the contract is a ``_Windowed`` table: ``key -> {member: last_day}``.
A (key, member) pair learned on day ``x`` is live at reference day ``r`` iff ``x > r - W``. When a newer day
arrives (``r`` advances), every pair with ``last_day <= r - W`` is dropped, so the size of a member dict *is*
the windowed distinct count, and membership *is* "seen in the window". A late event learns with its own day
but never moves a pair's last-seen day backwards (``max``).

Ambiguities in docs/DETECTORS.md and the reading chosen here (most literal one; please fix the spec):

 1. Late events, reference day. "scored against the current state": every windowed count and
    ``active_agents`` of a late event (day ``d`` < newest day ``N``) is evaluated at reference day ``N``
    (the state as it is now, pairs older than ``N - W + 1`` already forgotten, pairs from days after ``d``
    included). Org activation (``d - first_day >= A``) and agent activation (``d - agent_first >= A``) use
    the event's own day ``d``, as the text writes ``d``.
 2. ``active_agents(d)`` counts days ``d-W .. d-1``, i.e. it includes day ``d-W``, which is *not* live in
    the window (``x > d - W``) the other counts use. Implemented literally (agent days are kept one day
    longer than window pairs). Worth confirming it is intended (W+1 days of presence for a W-day window).
 3. ``first_day`` = day of the *first* event ever learned (in processing order), not the minimum day: a
    late event on an earlier day does not move it back. For the very first event (nothing learned yet) the
    org's first day is that event's day ("including this event"), so with ``activation_days = 0`` the very
    first event can alert.
 4. Agent run with late events: a late event never restarts a run nor moves the run start back; if it lies
    before the current run start, ``d - agent_first`` is negative and the agent is not activated. The
    "previous event" of an agent is its newest learned event day.
 5. "newest day seen" (late / too-old) is advanced by every event that is not too old, including an
    allow-listed event that is not learned (``allowlist_learn = false``). Such an event learns nothing else
    (no presence, no ``first_day``).
 6. A "cloud event" is one with a non-null ``raresketch.cloud.resource``. A provider's own endpoint
    (e.g. ``s3.amazonaws.com``: provider/service set, resource null) is not a cloud event, so it teaches
    neither ``prevalence`` nor ``agent_seen_kind(K, a)``. ``K`` = ``cloud.provider + "/" + cloud.service``.
 7. A null ``raresketch.process.key`` (no executable nor name): the detectors need a process, so such an
    event is not scored by either detector (no alert, no suppression counted, no first-rare-contact);
    process-independent facts (``prevalence``, ``agent_seen_kind``, presence, ``binary_agents`` by hash
    when the hash is known) are still learned; process-keyed facts are not.
 8. ``binary_agents(b) <= thr`` with ``b`` unknown (no hash and no process key) is "unknown", not a signal.
    Hash strings and process keys share one key space (as the text says "binary = hash else key").
 9. ``pair_agents(parent, engine)``: parent name = ``process.parent.name`` as given by ``conform`` (not
    lower-cased: the text does not say to normalise it); engine = ``raresketch.process.script_engine``.
    Learned from every event whose ``is_script_engine`` is true (not only IM events), only when the parent
    (resp. command line) is non-null. An empty-string command line is a value, not null.
10. Dedup: "emitted less than ``dedup_hours`` before" is read as ``t - t_emitted < dedup_hours`` where
    ``t_emitted`` is the time of the last *emitted* alert for the key; a late event (``t < t_emitted``) is
    therefore also suppressed. Suppressions by the volume guard do not count as emitted. The dedup key uses
    the final alert name (after precedence), so a different variation for the same key is not a duplicate.
    The suppressed count is reported as ``evidence["dedup_suppressed"]`` on the next *emitted* alert of that
    key (0 when none).
11. Volume guard: counts emitted alerts per (detector, event day ``d``); a late event's alert counts on its
    own day. The warning is recorded once per (detector, day) in ``ReferenceEngine.warnings``.
12. ``suppressed["activation"]``, ``["allowlist"]`` ... are counted once per (event, detector) that matched
    (the base condition) and was stopped by that gate; an event matching both detectors may count twice.
13. The normalised command line: placeholders are ``<tmp>`` (a quoted string, quotes included, containing a
    temp directory: ``\\temp\\``, ``/tmp/``, ``%temp%``, ``$env:temp``, ``\\tmp\\``), ``<guid>`` (optionally
    in braces), ``<hex>`` (a run of 8+ hex digits, leftmost-longest, no word boundary required; so a run of
    8+ decimal digits is ``<hex>``), ``<num>`` (any remaining run of decimal digits, also inside words:
    ``python3`` -> ``python<num>``); applied in that order, after lower-casing; white space collapsed to one
    space and stripped. The spec names neither the placeholder strings nor what a "temp path" is.
14. Row index: rows dropped by ``conform`` (null ``@timestamp`` / ``host.id``) are not counted.
15. ``Config.catalog_file``: when no catalogue is given and the config names a file, the reference builds
    ``Catalog(config.catalog_file)``; else ``default_catalog()``.
16. The IM precedence "scripting engine > suspicious process > base" and the rare-cloud precedence
    "agent > atypical > base"; ``variations`` lists every matched name (base included), most specific first.

Consequences of the text worth a look (implemented as written, not "fixed"):

17. Rare-cloud dedup is unreachable: an alerting event is learned, so ``process_seen(R, p)`` is true for
    the rest of the window and the same (name, agent, process, R) cannot match again. Only the IM detector
    ever dedups.
18. Cold start inflates ``new_rare``: on the org's first days every cloud resource has prevalence <= 2, so
    every process's first contacts with the company's ordinary resources count as first-rare-contacts for
    30 days (simulator, 60 agents, day 0: Teams 13, Chrome 39, Edge 28). A process doing 20 ordinary things on
    day 0 is a habitual explorer until day 30.
19. ``binary = sha256``: a vendor update gives the new hash ``binary_agents`` = 0, a "suspicious" signal for
    the update's first agents (matters only for processes already uncommon for the IM service).
"""
from __future__ import annotations

import collections
import datetime as _dt
from typing import Any

import numpy as np
import pyarrow as pa

import raresketch
from raresketch.alerts import ALERTS
from raresketch.config import Config

# ------------------------------------------------------------------------------------------- alert names

# The names come from the alert rules (their one home); the precedence between them below is the reference's own.
RARE_CLOUD = ALERTS[("rare_cloud", "base")].name
RARE_CLOUD_ATYPICAL = ALERTS[("rare_cloud", "atypical")].name
RARE_CLOUD_ATYPICAL_AGENT = ALERTS[("rare_cloud", "atypical_to_agent")].name
IM = ALERTS[("uncommon_im", "base")].name
IM_SUSPICIOUS = ALERTS[("uncommon_im", "suspicious_process")].name
IM_SCRIPTING = ALERTS[("uncommon_im", "script_engine")].name

SEVERITY = {
    RARE_CLOUD: "informational",
    RARE_CLOUD_ATYPICAL: "informational",
    RARE_CLOUD_ATYPICAL_AGENT: "informational",
    IM: "informational",
    IM_SUSPICIOUS: "low",
    IM_SCRIPTING: "low",
}
TECHNIQUE = {"rare_cloud": "T1071.001", "uncommon_im": "T1102"}
TACTIC = "TA0011"

SUPPRESS_REASONS = ("activation", "allowlist", "habitual_explorer", "dedup", "volume_guard", "volume_guard_agent",
                    "too_old", "skipped_future")

_US_PER_DAY = 86_400 * 1_000_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

# ------------------------------------------------------------------------------------ command-line rule

def _wall_day() -> int:
    """Today by the wall clock, in days since 1970-01-01 (the far-future guard's reference)."""
    return int(_dt.datetime.now(_dt.timezone.utc).timestamp() // 86400)


# The command-line normalisation is an input rule (like the catalogue), shared with the engine so both
# implementations key the same strings; its own behaviour is pinned by test_normalize_command_line.
from raresketch.detect import normalize_command_line  # noqa: E402


# --------------------------------------------------------------------------------------- windowed table

class _Windowed:
    """``key -> {member: last_day}``; after :meth:`forget` every remaining pair is live."""

    def __init__(self) -> None:
        self.d: dict[Any, dict[Any, int]] = {}

    def count(self, key) -> int:
        m = self.d.get(key)
        return len(m) if m else 0

    def seen(self, key, member) -> bool:
        m = self.d.get(key)
        return m is not None and member in m

    def learn(self, key, member, day: int) -> None:
        m = self.d.get(key)
        if m is None:
            self.d[key] = {member: day}
        elif m.get(member, day) <= day:
            m[member] = day

    def forget(self, cutoff: int) -> None:
        """Drop pairs with ``last_day <= cutoff``."""
        dead = []
        for key, m in self.d.items():
            old = [x for x, day in m.items() if day <= cutoff]
            for x in old:
                del m[x]
            if not m:
                dead.append(key)
        for key in dead:
            del self.d[key]


# ------------------------------------------------------------------------------------------------ engine

_COLS = ["host.id", "destination.domain", "destination.ip", "process.hash.sha256",
         "process.code_signature.exists", "process.code_signature.trusted", "process.command_line",
         "process.parent.name"]
_RCOLS = ["raresketch.cloud.provider", "raresketch.cloud.service", "raresketch.cloud.resource",
          "raresketch.im.service", "raresketch.process.key", "raresketch.process.is_script_engine",
          "raresketch.process.script_engine", "raresketch.process.user_writable_path",
          "raresketch.process.renamed", "raresketch.allowlisted"]


class ReferenceEngine:
    """Exact, dict-and-set implementation of docs/DETECTORS.md (see the module docstring for readings)."""

    def __init__(self, config: Config | None = None, catalog: raresketch.Catalog | None = None):
        self.config = config or Config()
        if catalog is None:
            catalog = (raresketch.Catalog(self.config.catalog_file) if self.config.catalog_file
                       else raresketch.default_catalog())
        self.catalog = catalog
        self.W = self.config.training_days
        self.A = self.config.activation_days
        self.dedup_us = int(round(self.config.dedup_hours * 3600 * 1_000_000))

        self.suppressed: collections.Counter = collections.Counter()
        self.warnings: list[str] = []
        self.rows = 0  # events given to process() so far (after conform)

        self.newest: int | None = None  # newest day seen
        self.first_day: int | None = None  # day of the first event learned
        # presence
        self.agent_days: dict[str, set[int]] = {}  # days with a learned event, kept while >= newest - W
        self.agent_last: dict[str, int] = {}  # newest learned day per agent
        self.agent_run_start: dict[str, int] = {}
        self._active_cache: tuple[int, int] | None = None  # (reference day, count)
        self._thr_cache: dict[int, int] = {}
        # windowed counts of the contract
        self.prevalence = _Windowed()  # R -> agent
        self.process_seen = _Windowed()  # R -> process
        self.kind_agents = _Windowed()  # (process, K) -> agent
        self.agent_seen_kind = _Windowed()  # K -> agent
        self.new_rare = _Windowed()  # process -> R
        self.new_rare_agent = _Windowed()  # (process, agent) -> R: each agent's share, capped
        self.im_agents = _Windowed()  # (process, S) -> agent
        self.im_agent_days = _Windowed()  # (process, S) -> (agent, day)
        self.binary_agents = _Windowed()  # binary -> agent
        self.pair_agents = _Windowed()  # (parent name, engine) -> agent
        self.cmdline_agents = _Windowed()  # normalised command line -> agent
        self._tables = [self.prevalence, self.process_seen, self.kind_agents, self.agent_seen_kind,
                        self.new_rare, self.new_rare_agent, self.im_agents, self.im_agent_days, self.binary_agents,
                        self.pair_agents, self.cmdline_agents]
        # dedup and volume guard
        self.dedup_last: dict[tuple, int] = {}  # key -> event time (us) of the last emitted alert
        self.dedup_pending: collections.Counter = collections.Counter()
        self.day_alerts: collections.Counter = collections.Counter()  # (detector, day) -> emitted
        self._warned: set[tuple[str, int]] = set()

    # ------------------------------------------------------------------ time and presence
    def _advance(self, day: int) -> None:
        """A newer day arrives: forget what left the window."""
        self.newest = day
        cutoff = day - self.W  # pairs with last_day <= cutoff are not live at `day`
        for t in self._tables:
            t.forget(cutoff)
        for a, days in self.agent_days.items():  # active_agents needs days day-W .. day-1: keep >= cutoff
            old = [x for x in days if x < cutoff]
            for x in old:
                days.discard(x)
        self._active_cache = None

    def active_agents(self, ref: int) -> int:
        """Distinct agents with a learned event on days ``ref-W .. ref-1``."""
        if self._active_cache is not None and self._active_cache[0] == ref:
            return self._active_cache[1]
        lo, hi = ref - self.W, ref - 1
        n = sum(1 for days in self.agent_days.values() if any(lo <= x <= hi for x in days))
        self._active_cache = (ref, n)
        return n

    def rare_threshold(self, active: int) -> int:
        thr = self._thr_cache.get(active)
        if thr is None:
            thr = self._thr_cache[active] = int(self.config.rare_threshold(active))
        return thr

    def _agent_first(self, agent: str, day: int) -> int:
        last = self.agent_last.get(agent)
        if last is None or last <= day - self.W:
            return day  # this event starts a (new) run
        return self.agent_run_start[agent]

    def _learn_presence(self, agent: str, day: int) -> None:
        last = self.agent_last.get(agent)
        if last is None or last <= day - self.W:
            self.agent_run_start[agent] = day
        if last is None or day > last:
            self.agent_last[agent] = day
        days = self.agent_days.setdefault(agent, set())
        if day not in days:
            days.add(day)
            if self._active_cache is not None and day < self._active_cache[0]:
                self._active_cache = None  # a late event changed a past day's presence
        if self.first_day is None:
            self.first_day = day

    # ------------------------------------------------------------------ batches
    def process(self, batch: pa.Table) -> list[dict]:
        """Score-then-learn each event in time order (stable sort by @timestamp within the batch)."""
        t = raresketch.conform(batch)
        n = t.num_rows
        if n == 0:
            return []
        ts = t.column("@timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
        order = np.argsort(ts, kind="stable")
        t = t.take(pa.array(order))
        ts = ts[order]
        res = self.catalog.resolve_batch(t)
        c = {name: t.column(name).to_pylist() for name in _COLS}
        c.update({name: res.column(name).to_pylist() for name in _RCOLS})
        alerts: list[dict] = []
        base_row = self.rows
        self.rows += n
        for i in range(n):
            ev = {name: c[name][i] for name in c}
            ev["ts"] = int(ts[i])
            ev["row"] = base_row + i
            alerts.extend(self._event(ev))
        return alerts

    # ------------------------------------------------------------------ one event
    def _event(self, ev: dict) -> list[dict]:
        cfg = self.config
        day = ev["ts"] // _US_PER_DAY
        if cfg.max_future_days is not None and day > _wall_day() + cfg.max_future_days:
            self.suppressed["skipped_future"] += 1
            return []
        if self.newest is not None and self.newest - day >= self.W:
            self.suppressed["too_old"] += 1
            return []
        if self.newest is not None and self.newest <= day - self.W:
            self.first_day = day  # everything learned had left the window: the org's presence starts again
        if self.newest is None or day > self.newest:
            self._advance(day)
        ref = self.newest  # == day for in-order input; the current state's day for a late event

        agent = ev["host.id"]
        proc = ev["raresketch.process.key"]
        allowlisted = bool(ev["raresketch.allowlisted"])
        learn = not (allowlisted and not cfg.allowlist_learn)

        active = self.active_agents(ref)
        thr = self.rare_threshold(active)
        org_first = self.first_day if self.first_day is not None else day
        org_activated = day - org_first >= self.A
        agent_first = self._agent_first(agent, day)
        agent_activated = day - agent_first >= self.A
        common = {"active_agents": active, "threshold": thr, "window_days": self.W,
                  "org_first_day": org_first, "baseline_days": day - org_first, "day": day,
                  "reference_day": ref, "late": day < ref}

        # keys
        R = ev["raresketch.cloud.resource"]
        K = (f'{ev["raresketch.cloud.provider"]}/{ev["raresketch.cloud.service"]}' if R is not None else None)
        S = ev["raresketch.im.service"]
        sha = ev["process.hash.sha256"]
        binary = sha if sha is not None else proc
        is_engine = ev["raresketch.process.is_script_engine"] is True
        engine = ev["raresketch.process.script_engine"]
        parent = ev["process.parent.name"].lower() if ev["process.parent.name"] is not None else None
        cmdline = normalize_command_line(ev["process.command_line"])

        out: list[dict] = []

        # ---- rare cloud resource: score
        first_rare = False
        if R is not None and proc is not None:
            prev = self.prevalence.count(R)
            pseen = self.process_seen.seen(R, proc)
            first_rare = prev <= thr and not pseen
            if first_rare:
                kind_n = self.kind_agents.count((proc, K))
                agent_kind = self.agent_seen_kind.seen(K, agent)
                names = []
                if not agent_kind and agent_activated:
                    names.append(RARE_CLOUD_ATYPICAL_AGENT)
                if kind_n <= thr:
                    names.append(RARE_CLOUD_ATYPICAL)
                names.append(RARE_CLOUD)
                nr = self.new_rare.count(proc)
                nr_agent = self.new_rare_agent.count((proc, agent))
                evidence = dict(common, prevalence=prev, process_seen=pseen, cloud_resource=R, cloud_kind=K,
                                kind_agents=kind_n, agent_seen_kind=agent_kind, agent_activated=agent_activated,
                                agent_first_day=agent_first, new_rare=nr, new_rare_agent=nr_agent,
                                habitual_explorer_n=cfg.habitual_explorer_n)
                alert = self._gate("rare_cloud", names, ev, day, R, evidence, org_activated, allowlisted,
                                   habitual=max(nr, nr_agent) >= cfg.habitual_explorer_n)
                if alert:
                    out.append(alert)

        # ---- uncommon IM: score
        if S is not None and proc is not None:
            im_max = cfg.im_max_agents if cfg.im_max_agents is not None else thr
            n_ag = self.im_agents.count((proc, S))
            n_ad = self.im_agent_days.count((proc, S))
            if n_ag <= im_max and n_ad <= cfg.im_max_agent_days:
                signals = []
                if ev["process.code_signature.exists"] is False:
                    signals.append("unsigned")
                if ev["process.code_signature.trusted"] is False:
                    signals.append("untrusted")
                if ev["raresketch.process.user_writable_path"] is True:
                    signals.append("user_writable_path")
                b_n = self.binary_agents.count(binary) if binary is not None else None
                if b_n is not None and b_n <= thr:
                    signals.append("rare_binary")
                if ev["raresketch.process.renamed"] is True:
                    signals.append("renamed")
                pair_n = cmd_n = None
                scripting = []
                if is_engine:
                    if parent is not None:
                        pair_n = self.pair_agents.count((parent, engine))
                        if pair_n <= thr:
                            scripting.append("rare_parent_engine_pair")
                    if cmdline is not None:
                        cmd_n = self.cmdline_agents.count(cmdline)
                        if cmd_n <= thr:
                            scripting.append("rare_command_line")
                names = []
                if scripting:
                    names.append(IM_SCRIPTING)
                if signals:
                    names.append(IM_SUSPICIOUS)
                names.append(IM)
                dest = ev["destination.domain"] if ev["destination.domain"] is not None else ev["destination.ip"]
                evidence = dict(common, im_service=S, im_agents=n_ag, im_agent_days=n_ad, im_max_agents=im_max,
                                im_max_agent_days=cfg.im_max_agent_days, suspicious_signals=signals,
                                binary=binary, binary_agents=b_n, script_engine=engine if is_engine else None,
                                parent_name=parent, pair_agents=pair_n, normalized_command_line=cmdline,
                                cmdline_agents=cmd_n, scripting_signals=scripting)
                alert = self._gate("uncommon_im", names, ev, day, dest, evidence, org_activated, allowlisted,
                                   habitual=False)
                if alert:
                    out.append(alert)

        # ---- learn (after scoring)
        if learn:
            self._learn_presence(agent, day)
            if binary is not None:
                self.binary_agents.learn(binary, agent, day)
            if is_engine:
                if parent is not None:
                    self.pair_agents.learn((parent, engine), agent, day)
                if cmdline is not None:
                    self.cmdline_agents.learn(cmdline, agent, day)
            if R is not None:
                self.prevalence.learn(R, agent, day)
                self.agent_seen_kind.learn(K, agent, day)
                if proc is not None:
                    self.process_seen.learn(R, proc, day)
                    self.kind_agents.learn((proc, K), agent, day)
                    if first_rare:
                        if self.new_rare_agent.count((proc, agent)) < cfg.explorer_cap_per_agent:
                            self.new_rare.learn(proc, R, day)
                        self.new_rare_agent.learn((proc, agent), R, day)
            if S is not None and proc is not None:
                self.im_agents.learn((proc, S), agent, day)
                self.im_agent_days.learn((proc, S), (agent, day), day)
        return out

    # ------------------------------------------------------------------ gates
    def _gate(self, detector: str, names: list[str], ev: dict, day: int, dest, evidence: dict,
              org_activated: bool, allowlisted: bool, habitual: bool) -> dict | None:
        """Order: activation, allow-list, habitual explorer (cloud only), dedup, volume guard."""
        if not org_activated:
            self.suppressed["activation"] += 1
            return None
        if allowlisted:
            self.suppressed["allowlist"] += 1
            return None
        if habitual:
            self.suppressed["habitual_explorer"] += 1
            return None
        name = names[0]
        key = (name, ev["host.id"], ev["raresketch.process.key"], dest)
        last = self.dedup_last.get(key)
        if last is not None and ev["ts"] - last < self.dedup_us:
            self.suppressed["dedup"] += 1
            self.dedup_pending[key] += 1
            return None
        if self.day_alerts[(detector, day)] >= self.config.max_alerts_per_day:
            self.suppressed["volume_guard"] += 1
            if (detector, day) not in self._warned:
                self._warned.add((detector, day))
                self.warnings.append(f"{detector}: {self.config.max_alerts_per_day} alerts on day {day} "
                                     f"({(_EPOCH + _dt.timedelta(days=day)).date()}); paused for the rest of "
                                     f"that day")
            return None
        cap = self.config.max_alerts_per_agent_day
        if cap is not None and self.day_alerts[(detector, day, ev["host.id"])] >= cap:
            self.suppressed["volume_guard_agent"] += 1
            return None
        self.day_alerts[(detector, day)] += 1
        self.day_alerts[(detector, day, ev["host.id"])] += 1
        self.dedup_last[key] = ev["ts"]
        evidence["dedup_suppressed"] = self.dedup_pending.pop(key, 0)
        return {
            "name": name,
            "detector": detector,
            "severity": SEVERITY[name],
            "tactic": TACTIC,
            "technique": TECHNIQUE[detector],
            "timestamp": _EPOCH + _dt.timedelta(microseconds=ev["ts"]),
            "host.id": ev["host.id"],
            "process.key": ev["raresketch.process.key"],
            "destination": dest,
            "destination.domain": ev["destination.domain"],
            "destination.ip": ev["destination.ip"],
            "variations": list(names),
            "evidence": evidence,
            "row": ev["row"],
        }
