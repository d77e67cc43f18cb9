"""Injected attacks (needles) and benign-but-rare injections, and the ground truth naming the alerts each should
raise.

Each scenario of the profiles (``scenarios``) is placed on an agent of its role and OS that has been observed for
longer than the activation period and whose telemetry reports the asked names (not one of the reverse-lookup agents
of :mod:`._ptr`: a scenario's expected alerts assume the agent's own history is named), on a weekday strictly after it, at a local working hour, as one burst of
connections from one process to one destination.  A scenario names its alerts by ``"<detector>.<variation>"``
ids of the rule files; the ground truth carries their names from :data:`raresketch.alerts.ALERTS`.

A scenario's destination is one of: ``fresh`` (a new tenant label under a cloud suffix), ``fresh_domain`` (a new
registrable domain under one of the listed TLDs: the attacker's own domain), ``domain`` (a fixed name, at the address
the regular traffic uses for it) or ``ip_only``; ``net`` is where its address lies. ``source`` (default ``event``)
is the ``raresketch.domain_source`` of the name: ``command_line`` for a name Sysmon's reader recovers from the URL in
the process command line (the connection itself carries only the address).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from ..alerts import ALERTS
from ._vec import DAY_US, SLICE_US, US, fmt, format_ips
from ._world import World

__all__ = ["GROUND_TRUTH_SCHEMA", "Injections", "alert_name"]

#: One row per injected connection burst.  ``alert_name`` is the scenario's headline alert; ``matched_alert_names``
#: lists every alert name (base and variations) whose conditions the injection meets, so an engine that reports
#: any of them for the burst's first event has caught it (DESIGN.md leaves the precedence between two variations
#: to the detector).  Benign injections (``malicious`` false) are legitimate but rare: they are expected to alert.
GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("end", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("day", pa.int32(), nullable=False),
        pa.field("scenario", pa.string(), nullable=False),
        pa.field("malicious", pa.bool_(), nullable=False),
        pa.field("host.id", pa.string(), nullable=False),
        pa.field("host.name", pa.string()),
        pa.field("host.os.type", pa.string()),
        pa.field("process.name", pa.string()),
        pa.field("process.executable", pa.string()),
        pa.field("process.parent.name", pa.string()),
        pa.field("process.hash.sha256", pa.string()),
        pa.field("process.code_signature.subject_name", pa.string()),
        pa.field("process.pe.original_file_name", pa.string()),
        pa.field("process.command_line", pa.string()),
        pa.field("destination.domain", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.int32()),
        pa.field("n_connections", pa.int32(), nullable=False),
        pa.field("alert_name", pa.string(), nullable=False),
        pa.field("matched_alert_names", pa.list_(pa.string()), nullable=False),
        pa.field("description", pa.string()),
    ]
)


@dataclass
class _Plan:
    scenario: dict[str, Any]
    day: int
    agent: int
    times_us: np.ndarray
    row: dict[str, Any]
    gt: dict[str, Any] = field(default_factory=dict)


def alert_name(ref: str) -> str:
    """The name of alert ``ref``, a ``"<detector>.<variation>"`` id (``"rare_cloud.atypical"``), from the rules."""
    detector, _, variation = ref.partition(".")
    try:
        return ALERTS[(detector, variation)].name
    except KeyError:
        known = sorted(f"{d}.{v}" for d, v in ALERTS)
        raise ValueError(f"unknown alert {ref!r} in a simulator scenario; known: {known}") from None


class Injections:
    """The injected bursts of an organisation: :attr:`plans` sorted by time, their event rows by (day, slice) in
    :attr:`rows_by_slice`, and :attr:`skipped_scenarios` (no eligible agent or day).

    ``attacks``: ``True`` every malicious scenario once, an int that many rounds (each on other agents when
    possible), a sequence of scenario ids only those, ``False`` / None none; ``benign`` adds the benign ones.
    Deterministic from the world's seed.  Planning costs O(rounds x scenarios x agents).
    """

    def __init__(self, world: World, attacks: bool | int | Sequence[str] | None, benign: bool) -> None:
        self.world = world
        self.plans: list[_Plan] = []
        self.rows_by_slice: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.skipped_scenarios: list[str] = []
        if attacks is not False and attacks is not None:
            self._plan(attacks, benign)

    def _plan(self, attacks: bool | int | Sequence[str], benign: bool) -> None:
        w = self.world
        P = w.profiles
        scen_all = P["scenarios"]
        if attacks is True:
            chosen, rounds = [s for s in scen_all if s["malicious"]], 1
        elif isinstance(attacks, int):
            chosen, rounds = [s for s in scen_all if s["malicious"]], int(attacks)
        else:
            ids = list(attacks)
            known = {s["id"] for s in scen_all}
            bad = [i for i in ids if i not in known]
            if bad:
                raise ValueError(f"unknown attack scenario(s) {bad}; known: {sorted(known)}")
            chosen, rounds = [s for s in scen_all if s["id"] in ids], 1
        if benign:
            chosen += [s for s in scen_all if not s["malicious"] and s not in chosen]
        first_day = w.activation_days + 1
        if w.days <= first_day:
            self.skipped_scenarios = [s["id"] for s in chosen]
            return
        rng = np.random.default_rng([w.seed, 0xA77AC, 2])
        role_name = [w.roles[r] for r in w.agent_role]
        used: set[int] = set()
        days = [d for d in range(first_day, w.days)]
        weekdays = [d for d in days if w.weekday(d) < 5] or days
        for rnd in range(rounds):
            for sc in chosen:
                want = sc["agent"]
                ref = sc["process"].get("ref")
                needs = w.pdef_by_id.get(ref) if ref and not ref.startswith("@") else None
                placed = False
                for _ in range(40):
                    day = int(rng.choice(weekdays))
                    cands = [
                        a
                        for a in range(w.n_agents)
                        if role_name[a] in want["roles"]
                        and w.agent_os[a] == want["os"]
                        and w.agent_join[a] <= day - w.activation_days - 1
                        and (needs is None or (a, needs) in w.installed)
                        and not w.ptr.agent[a]  # the ground truth is written for a sensor that reports names
                    ]
                    if not cands:
                        continue
                    fresh_c = [a for a in cands if a not in used] or cands
                    a = int(rng.choice(fresh_c))
                    used.add(a)
                    self.plans.append(self._make_plan(sc, day, a, rng))
                    placed = True
                    break
                if not placed:
                    self.skipped_scenarios.append(sc["id"])
        self.plans.sort(key=lambda p: int(p.times_us[0]))
        self._index_rows()

    def _make_plan(self, sc: dict[str, Any], day: int, a: int, rng: np.random.Generator) -> _Plan:
        """Where, when and what scenario ``sc`` injects on agent ``a`` on ``day``: its event row and ground truth."""
        w = self.world
        P = w.profiles
        u = w.agent_user[a]
        o = w.agent_os[a]
        spec = sc["process"]
        ref = spec.get("ref")
        if ref and ref.startswith("@"):
            lb = P["lolbins"][ref]
            name, path, original, signer_key, hash_mode = lb["name"], lb["path"], lb.get("original"), lb["signer"], "catalogue"
            parent_ref = spec.get("parent")
            pdef_i = None
        elif ref:
            pdef_i = w.pdef_by_id[ref]
            p = w.pdefs[pdef_i]
            name, path, signer_key, hash_mode = p["name"], p["path"], p["signer"], "catalogue"
            original = w.original[pdef_i]
            parent_ref = spec.get("parent", p.get("parent"))
        else:
            name, path, original, signer_key = spec["name"], spec["path"], spec.get("original"), spec["signer"]
            hash_mode = spec.get("hash", "unique")
            parent_ref = spec.get("parent")
            pdef_i = None
        signer = P["signers"][signer_key]
        exe = fmt(path, user=u)
        if hash_mode == "unique":
            sha = hashlib.sha256(f"raresketch-sim|{w.seed}|attack|{sc['id']}|{a}|{day}".encode()).hexdigest()
        elif pdef_i is not None:
            ud = int(w.update_days[pdef_i])
            ap_i = w.installed.get((a, pdef_i))
            off = int(w.ap_ver_off[ap_i]) if ap_i is not None else 0
            v = (day + off) // ud if ud > 0 else 0
            sha = w.hash_strings[int(w.hash_base[pdef_i]) + v]
        else:
            sha = w.hash_for(o, name, path, signer_key, 0)
        par_name, par_path = w.parent(parent_ref)
        # destination
        d = sc["destination"]
        port = int(d.get("port", 443))
        if "fresh" in d:
            label = w.labeler.labels(rng, d["style"], 1)[0].as_py()
            domain: str | None = f"{label}.{d['fresh']}"
            net = d["net"]
            base, size = w.nets[net][int(rng.integers(len(w.nets[net])))]
            ip = base + int(rng.integers(size))
        elif "fresh_domain" in d:  # the attacker's own freshly registered domain, on a rented address
            label = w.labeler.labels(rng, d["style"], 1)[0].as_py()
            tlds = d["fresh_domain"]
            domain = f"{label}.{tlds[int(rng.integers(len(tlds)))]}"
            net = d["net"]
            base, size = w.nets[net][int(rng.integers(len(w.nets[net])))]
            ip = base + int(rng.integers(size))
        elif "domain" in d:
            domain = d["domain"]
            label = domain
            ip, _ = w.ip_of(domain, d["net"])  # a named host keeps its address, as in the regular traffic
        else:
            domain = None
            label = ""
            base, size = w.nets[d["ip_only"]][int(rng.integers(len(w.nets[d["ip_only"]])))]
            ip = base + int(rng.integers(size))
        ip_s = format_ips(np.array([ip], np.uint32))[0].as_py()
        cmd = fmt(spec.get("cmd") or (w.pdefs[pdef_i]["cmd"][0] if pdef_i is not None else exe),
                   user=u, path=exe, host=domain or ip_s, label=label.split(".")[0])
        # time: a working hour, local
        local_h = float(rng.uniform(9.0, 17.0))
        t = w.start_us + day * DAY_US + int((local_h - w.agent_tz_slices[a] / 4.0) * 3600 * US)
        t = min(max(t, w.start_us + day * DAY_US), w.start_us + (day + 1) * DAY_US - 3600 * US)
        lo, hi = sc.get("burst", [3, 10])
        k = int(rng.integers(lo, hi + 1))
        ilo, ihi = sc.get("interval_s", [1, 10])
        gaps = (rng.uniform(ilo, ihi, k - 1) * US).astype(np.int64)
        times = t + np.concatenate([[0], np.cumsum(gaps)])
        times = np.minimum(times, w.start_us + (day + 1) * DAY_US - 1)
        user = w.user_for(spec.get("user", "user"), o, u)
        row = {
            "host.id": w.agent_id[a],
            "host.name": w.agent_host[a],
            "host.os.type": o,
            "process.executable": exe,
            "process.name": name,
            "process.pid": int(rng.integers(600, 65_000)) // 4 * 4,
            "process.hash.sha256": sha,
            "process.code_signature.subject_name": signer["subject"],
            "process.code_signature.trusted": signer.get("trusted"),
            "process.code_signature.exists": signer.get("exists", True if signer["subject"] else None),
            "process.pe.original_file_name": original,
            "process.command_line": cmd,
            "process.parent.executable": fmt(par_path, user=u),
            "process.parent.name": par_name,
            "user.name": user,
            "destination.ip": ip_s,
            "destination.port": port,
            "destination.domain": domain,
            "network.transport": "tcp",
            "raresketch.domain_source": (d.get("source", "event") if domain else None),
            "network.direction": "egress",
            "process.entity_id": "{" + w.agent_id[a][:13] + "-" + hashlib.sha256(f"{sc['id']}|{a}|{day}".encode()).hexdigest()[:21] + "}",
            "source.ip": w.agent_ip[a],
            "source.port": int(rng.integers(49152, 65536)),
        }
        gt = {
            "@timestamp": int(times[0]),
            "end": int(times[-1]),
            "day": day,
            "scenario": sc["id"],
            "malicious": bool(sc["malicious"]),
            "host.id": w.agent_id[a],
            "host.name": w.agent_host[a],
            "host.os.type": o,
            "process.name": name,
            "process.executable": exe,
            "process.parent.name": par_name,
            "process.hash.sha256": sha,
            "process.code_signature.subject_name": signer["subject"],
            "process.pe.original_file_name": original,
            "process.command_line": cmd,
            "destination.domain": domain,
            "destination.ip": ip_s,
            "destination.port": port,
            "n_connections": k,
            "alert_name": alert_name(sc["alert"]),
            "matched_alert_names": [alert_name(m) for m in sc["matches"]],
            "description": sc["description"],
        }
        return _Plan(sc, day, a, times, row, gt)

    def _index_rows(self) -> None:
        """Event rows of the injected bursts, keyed by the (day, slice) their timestamp falls in."""
        w = self.world
        self.rows_by_slice = {}
        for p in self.plans:
            for t in p.times_us:
                t = int(t)
                rel = t - w.start_us
                r = dict(p.row)
                r["@timestamp"] = _dt.datetime.fromtimestamp(t // US, tz=_dt.timezone.utc).replace(microsecond=t % US)
                self.rows_by_slice.setdefault((rel // DAY_US, (rel % DAY_US) // SLICE_US), []).append(r)

    def ground_truth(self) -> pa.Table:
        """Injected connection bursts, one row each, in :data:`GROUND_TRUTH_SCHEMA` (sorted by time)."""
        rows = [dict(p.gt) for p in self.plans]
        for r in rows:
            for k in ("@timestamp", "end"):
                r[k] = pa.scalar(r[k], pa.timestamp("us", tz="UTC"))
        return pa.Table.from_pylist(rows, schema=GROUND_TRUTH_SCHEMA)
