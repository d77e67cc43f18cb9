"""The simulated organisation's fixed world: agents, installed processes and destinations, built once from the
profiles and a seed.  Traffic (:mod:`._traffic`) and injected attacks (:mod:`._attacks`) draw from it.

Building costs O(agents x process definitions + destinations) time and memory; nothing here depends on the day.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from ._ptr import PtrNames
from ._vec import US, Labeler, cidr, fmt, format_ips, segment_cum, stable_hash

__all__ = ["Fresh", "World", "load_profiles"]


@lru_cache(maxsize=4)
def _load_profiles_cached(path: str | None) -> str:
    if path is None:
        return resources.files("raresketch").joinpath("data/simulate/profiles.json").read_text(encoding="utf-8")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def load_profiles(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Return the simulator's profiles (a fresh copy): the packaged synthetic ones, or those at ``path``."""
    return json.loads(_load_profiles_cached(None if path is None else os.fspath(path)))


@dataclass
class Fresh:
    """A pool of first-seen cloud hosts: suffixes with their label styles, networks and cumulative weights."""

    suffixes: list[str]
    styles: list[str]
    nets: list[list[tuple[int, int]]]
    cum: np.ndarray


class World:
    """Agents, the processes installed on each (the agent-process table) and the destinations they talk to.

    Parameters are those of :class:`raresketch.simulate.Organisation` (validated here); the attributes are the
    package's internal interface to the traffic and attack generators: ``agent_*`` (one entry per agent),
    ``pdefs`` (process definitions), ``ap_*`` (one entry per installed process, the agent-process table),
    ``dest_*`` (one entry per named or IP-only destination), ``mix_*`` / ``seg_*`` / ``pool_*`` (cumulative
    weights for the draws of :func:`._vec.draw`), ``hash_*`` (SHA-256 strings per process version).
    Deterministic from ``seed``: the random draws happen in a fixed order (agents, processes, destinations,
    installs) from one generator.
    """

    def __init__(
        self,
        agents: int,
        days: int,
        seed: int,
        start: str | _dt.date,
        events_per_agent_day: float,
        *,
        late_join_share: float,
        activation_days: int,
        mean_burst: float,
        profiles: dict[str, Any] | None,
        world_seed: int | None = None,
    ) -> None:
        if int(agents) < 1:
            raise ValueError(f"agents must be >= 1, got {agents}")
        if int(days) < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        if not events_per_agent_day > 0:
            raise ValueError(f"events_per_agent_day must be > 0, got {events_per_agent_day}")
        if not 0 <= late_join_share <= 1:
            raise ValueError(f"late_join_share must be in [0, 1], got {late_join_share}")
        if not mean_burst >= 1:
            raise ValueError(f"mean_burst must be >= 1, got {mean_burst}")
        self.n_agents = int(agents)
        self.days = int(days)
        self.seed = int(seed)
        #: Seed of the shared internet (the web's long tail and the services' addresses; None: from ``seed``).
        self.world_seed = None if world_seed is None else int(world_seed)
        if isinstance(start, str):
            start = _dt.date.fromisoformat(start)
        self.start = start
        self.start_us = int(
            _dt.datetime(start.year, start.month, start.day, tzinfo=_dt.timezone.utc).timestamp()
        ) * US
        self.events_per_agent_day = float(events_per_agent_day)
        self.late_join_share = float(late_join_share)
        self.activation_days = int(activation_days)
        self.mean_burst = float(mean_burst)
        self.profiles = load_profiles() if profiles is None else profiles

        rng = np.random.default_rng([self.seed, 0x5EED, 1])
        self.labeler = Labeler(self.profiles["words"])
        self.nets = {k: [cidr(c) for c in v] for k, v in self.profiles["nets"].items()}
        self._build_agents(rng)
        self._build_processes(rng)
        self._build_destinations(rng)
        self._build_installs(rng)

    # ---------------------------------------------------------------------------------------------- agents
    def _build_agents(self, rng: np.random.Generator) -> None:
        P = self.profiles
        roles = list(P["roles"])
        shares = np.array([P["roles"][r]["share"] for r in roles])
        n = self.n_agents
        counts = np.floor(shares / shares.sum() * n).astype(int)
        if n >= 10:
            counts = np.maximum(counts, 1)
        while counts.sum() < n:
            counts[int(np.argmax(shares / shares.sum() * n - counts))] += 1
        while counts.sum() > n:
            counts[int(np.argmax(counts))] -= 1
        role = np.repeat(np.arange(len(roles)), counts)
        rng.shuffle(role)
        self.roles = roles
        self.agent_role = role
        role_name = [roles[r] for r in role]

        os_ = []
        for r in role_name:
            mix = P["roles"][r]["os"]
            keys = list(mix)
            os_.append(keys[int(rng.choice(len(keys), p=np.array(list(mix.values())) / sum(mix.values())))])
        # every scenario needs a host of its kind: make sure the small populations exist when the org is not tiny
        if n >= 20:
            def ensure(role_names: tuple[str, ...], os_name: str) -> None:
                idx = [i for i, r in enumerate(role_name) if r in role_names]
                if idx and not any(os_[i] == os_name for i in idx):
                    os_[idx[0]] = os_name
            ensure(("office", "developer"), "macos")
            ensure(("server_aws",), "linux")
            ensure(("server_azure",), "windows")
        self.agent_os = np.array(os_, dtype=object)

        # join day: most on day 0, a share later (uniform over the first 60 % of the period)
        late = rng.random(n) < self.late_join_share
        last = max(1, int(self.days * 0.6))
        join = np.where(late, rng.integers(1, last + 1, n), 0) if self.days > 1 else np.zeros(n, int)
        self.agent_join = join.astype(np.int64)

        tz_opts = P["timezones_hours"]
        tz = np.array([t for t, _ in tz_opts])[
            rng.choice(len(tz_opts), size=n, p=np.array([w for _, w in tz_opts]) / sum(w for _, w in tz_opts))
        ]
        is_server = np.array([r.startswith("server") for r in role_name])
        tz = np.where(is_server, 0.0, tz)
        self.agent_tz_slices = np.rint(tz * 4).astype(np.int64)

        act = np.exp(rng.normal(-0.125, 0.5, n))  # lognormal, mean ~1
        self.agent_activity = act * np.array([P["roles"][r]["activity"] for r in role_name])
        self.agent_bg_share = np.array([P["roles"][r]["background_share"] for r in role_name])

        teams: list[str] = []
        team_names: list[str] = []
        for r in role_name:
            opts = P["teams"][r]
            w = 1.0 / np.arange(1, len(opts) + 1) ** 0.6
            teams.append(opts[int(rng.choice(len(opts), p=w / w.sum()))])
        team_names = sorted(set(teams))
        self.team_names = team_names
        self.agent_team = np.array([team_names.index(t) for t in teams], dtype=np.int64)

        first, last_ = P["names"]["first"], P["names"]["last"]
        users, hosts, ids = [], [], []
        seen: set[str] = set()
        n_ws = 0
        for i, r in enumerate(role_name):
            hid = hashlib.blake2b(f"{self.seed}|agent|{i}".encode(), digest_size=16).hexdigest()
            ids.append(f"{hid[:8]}-{hid[8:12]}-4{hid[13:16]}-a{hid[17:20]}-{hid[20:32]}")
            o = os_[i]
            if r.startswith("server"):
                users.append({"linux": "ec2-user" if r == "server_aws" else "azureuser"}.get(o, "Administrator"))
                if o == "linux":
                    hosts.append(
                        f"ip-10-{rng.integers(0, 40)}-{rng.integers(0, 255)}-{rng.integers(1, 255)}"
                        if r == "server_aws" else f"acme-az-app-{i:03d}"
                    )
                else:
                    hosts.append(f"ACME-{'AWS' if r == 'server_aws' else 'AZ'}-WEB{i:03d}")
                continue
            if r == "kiosk":
                users.append("SYSTEM")
                hosts.append(f"ACME-MR-{i:04d}")
                continue
            u = f"{first[int(rng.integers(len(first)))][0]}{last_[int(rng.integers(len(last_)))]}"
            k = 2
            base = u
            while u in seen:
                u = f"{base}{k}"
                k += 1
            seen.add(u)
            users.append(u)
            n_ws += 1
            if o == "macos":
                hosts.append(f"{u}-mbp")
            elif o == "linux":
                hosts.append(f"{u}-dev")
            else:
                hosts.append(f"ACME-{'DEV' if r == 'developer' else 'LT'}-{i:04d}")
        subnet = {"office": 20, "developer": 30, "kiosk": 40, "server_aws": 0, "server_azure": 1}
        self.agent_ip = [
            f"10.{subnet.get(r, 50)}.{(i >> 8) & 0xFF}.{(i & 0xFF) or 254}" for i, r in enumerate(role_name)
        ]
        self.agent_user = users
        self.agent_host = hosts
        self.agent_id = ids

    # ------------------------------------------------------------------------------------------- processes
    def _build_processes(self, rng: np.random.Generator) -> None:
        P = self.profiles
        self.pdefs: list[dict[str, Any]] = list(P["processes"])
        self.pdef_by_id = {p["id"]: i for i, p in enumerate(self.pdefs)}
        signers = P["signers"]
        self.signer_names = [signers[p["signer"]]["subject"] for p in self.pdefs]
        self.signer_trusted = [signers[p["signer"]].get("trusted") for p in self.pdefs]
        self.signer_exists = [
            signers[p["signer"]].get("exists", True if signers[p["signer"]]["subject"] else None) for p in self.pdefs
        ]
        self.original = [
            p.get("original", p["name"] if p["os"] == "windows" else None) for p in self.pdefs
        ]
        # hash table: one string per (hash key, version); the key ignores the per-user part of the path
        self.hash_strings: list[str] = []
        self.hash_base = np.zeros(len(self.pdefs), np.int64)
        self.update_days = np.array([int(p.get("update_days", 0)) for p in self.pdefs], np.int64)
        for i, p in enumerate(self.pdefs):
            ud = self.update_days[i]
            nver = 1 if ud <= 0 else self.days // ud + 3
            self.hash_base[i] = len(self.hash_strings)
            for v in range(nver):
                self.hash_strings.append(self.hash_for(p["os"], p["name"], p["path"], p["signer"], v))
        # traffic mixtures: segment per process def
        self.pool_names: list[str] = list(P["pools"])
        pool_ix = {k: i for i, k in enumerate(self.pool_names)}
        mix_w, mix_pool = [], []
        for p in self.pdefs:
            keys = list(p["traffic"])
            for k in keys:
                if k not in pool_ix:
                    raise ValueError(f"process {p['id']!r} refers to unknown pool {k!r}")
            mix_pool.extend(pool_ix[k] for k in keys)
            mix_w.append(np.array([p["traffic"][k] for k in keys], float))
        self.mix_cum = segment_cum(mix_w)
        self.mix_pool = np.array(mix_pool, np.int64)

    def hash_for(self, os_: str, name: str, path: str, signer: str | None, version: int) -> str:
        path = path.replace("{user}", "*")
        return hashlib.sha256(f"raresketch-sim|{self.seed}|{os_}|{name.lower()}|{path}|{signer}|{version}".encode()).hexdigest()

    # ------------------------------------------------------------------------------------------ destinations
    def ip_of(self, name: str, net: str) -> tuple[int, int]:
        """A fixed IP inside ``net`` for a named destination (base, size 1)."""
        ranges = self.nets[net]
        h = stable_hash(self.seed if self.world_seed is None else self.world_seed, name)
        base, size = ranges[h % len(ranges)]
        return base + (h >> 16) % size, 1

    def _build_destinations(self, rng: np.random.Generator) -> None:
        P = self.profiles
        company = P["company"]
        dom: list[str | None] = []
        ip_base: list[int] = []
        port: list[int] = []
        n_added: dict[int, int] = {}
        udp: list[bool] = []
        index: dict[tuple[Any, ...], int] = {}

        def add(domain: str | None, net: str, p: int = 443, proto: str = "tcp", k: int = 1) -> int:
            """Index of a destination; an IP-only entry becomes ``k`` fixed addresses drawn inside ``net``, or, for
            ``net`` written ``=name``, every address of net ``name`` (its ranges are single addresses such as
            ``8.8.8.8/32``; no random draw)."""
            key = (domain, net if domain is None else None, p, proto)
            if key in index:
                return index[key]
            first = len(dom)
            if domain is None and net.startswith("="):
                for b, z in self.nets[net[1:]]:
                    for ip in range(b, b + z):
                        dom.append(None); ip_base.append(ip); port.append(p); udp.append(proto == "udp")
                n_added[first] = len(dom) - first
            elif domain is None:
                ranges = self.nets[net]
                sizes = np.array([z for _, z in ranges], float)
                seen_ips: set[int] = set()
                r = rng if self.world_seed is None else np.random.default_rng(   # one service, one address set
                    [self.world_seed, 0x5EED, 3, stable_hash(0, f"{net}|{p}|{proto}") & 0xFFFFFFFF])
                for j in range(k):
                    b, z = ranges[int(r.choice(len(ranges), p=sizes / sizes.sum()))]
                    ip = b + int(r.integers(z))
                    if ip in seen_ips:
                        continue
                    seen_ips.add(ip)
                    dom.append(None); ip_base.append(ip); port.append(p); udp.append(proto == "udp")
                n_added[first] = len(dom) - first
            else:
                ip, _ = self.ip_of(domain, net)
                dom.append(domain); ip_base.append(ip); port.append(p); udp.append(proto == "udp")
                n_added[first] = 1
            index[key] = first
            return first

        def entry_ids(e: Sequence[Any], default_net: str, weight_override: float | None = None) -> list[tuple[int, float]]:
            d = fmt(e[0], org=company) if e[0] is not None else None
            w = float(e[1]) if weight_override is None else weight_override
            net = e[2] if len(e) > 2 and e[2] else default_net
            p = int(e[3]) if len(e) > 3 else 443
            proto = e[4] if len(e) > 4 else "tcp"
            first = add(d, net, p, proto, k=8)
            m = n_added[first]
            if m > 1:  # IP-only: a few addresses, Zipf-weighted (a client prefers its nearest data centre)
                z = np.arange(1, m + 1, dtype=float) ** -1.0
                return [(first + j, w * z[j] / z.sum()) for j in range(m)]
            return [(first, w)]

        seg_w: list[np.ndarray] = []
        seg_idx: list[np.ndarray] = []
        self.pool_kind: list[str] = []
        self.pool_seg_base: list[int] = []
        self.fresh: dict[int, Fresh] = {}
        web_ids: np.ndarray | None = None
        web_tail_start = 0
        n_agents = self.n_agents
        role_name = [self.roles[r] for r in self.agent_role]

        def push(pairs: list[tuple[int, float]]) -> None:
            seg_idx.append(np.array([i for i, _ in pairs], np.int64))
            seg_w.append(np.array([w for _, w in pairs], float))

        for pi, name in enumerate(self.pool_names):
            spec = P["pools"][name]
            kind = spec["kind"]
            self.pool_seg_base.append(len(seg_w))
            net = spec.get("net", "hosting")
            if kind == "list":
                pairs = [pe for e in spec["entries"] for pe in entry_ids(e, net)]
                push(pairs)
                self.pool_kind.append("static")
            elif kind == "zipf_list":
                ranks = np.arange(1, len(spec["entries"]) + 1, dtype=float) ** -float(spec["exponent"])
                pairs = [pe for e, w in zip(spec["entries"], ranks) for pe in entry_ids(e, net, float(w))]
                push(pairs)
                self.pool_kind.append("static")
            elif kind == "zipf":
                head = [pe for e in spec["head"] for pe in entry_ids(e, net)]
                head_w = np.array([w for _, w in head])
                tail_names, tail_nets = self._web_tail(
                    rng if self.world_seed is None else np.random.default_rng([self.world_seed, 0x5EED, 2]), spec)
                tail_ids = np.array([add(d, nt) for d, nt in zip(tail_names, tail_nets)], np.int64)
                s = float(spec["exponent"])
                ranks = np.arange(len(head) + 1, len(head) + 1 + len(tail_ids), dtype=float)
                tail_w = ranks ** -s
                # scale so the tail continues the head's Zipf curve at its first rank
                tail_w *= head_w.min() / tail_w[0] * 0.9
                ids = np.concatenate([np.array([i for i, _ in head], np.int64), tail_ids])
                ws = np.concatenate([head_w, tail_w])
                seg_idx.append(ids)
                seg_w.append(ws)
                web_ids, web_tail_start = ids, len(head)
                self.pool_kind.append("static")
            elif kind == "personal":
                if web_ids is None:
                    raise ValueError("the 'personal' pool must come after its 'zipf' pool")
                k = int(spec["per_agent"])
                tail = web_ids[web_tail_start:]
                w = np.arange(1, len(tail) + 1, dtype=float) ** -float(spec["exponent"])
                picks = rng.choice(len(tail), size=(n_agents, k), p=w / w.sum())
                for a in range(n_agents):
                    seg_idx.append(tail[picks[a]])
                    seg_w.append(np.ones(k))
                self.pool_kind.append("agent")
            elif kind == "team":
                for t in self.team_names:
                    pairs = [
                        pe
                        for e in spec["templates"]
                        for pe in entry_ids([fmt(e[0], team=t, teamalnum=t.replace("-", "")), e[1], e[2]], net)
                    ]
                    push(pairs)
                self.pool_kind.append("team")
            elif kind == "agent":
                fb = spec.get("fallback", "company")
                fb_spec = P["pools"][fb]
                fb_pairs = [pe for e in fb_spec["entries"] for pe in entry_ids(e, fb_spec.get("net", "hosting"))]
                for a in range(n_agents):
                    if role_name[a] in spec["roles"]:
                        kw = dict(
                            user=self.agent_user[a].lower(),
                            host=self.agent_host[a].lower(),
                            hostalnum="".join(ch for ch in self.agent_host[a].lower() if ch.isalnum())[:14],
                        )
                        pairs = [pe for e in spec["templates"] for pe in entry_ids([fmt(e[0], **kw), e[1], e[2]], net)]
                    else:
                        pairs = fb_pairs
                    push(pairs)
                self.pool_kind.append("agent")
            elif kind == "fresh":
                sfx = spec["suffixes"]
                self.fresh[pi] = Fresh(
                    suffixes=[s[0] for s in sfx],
                    styles=[s[3] for s in sfx],
                    nets=[self.nets[s[2]] for s in sfx],
                    cum=segment_cum([np.array([s[1] for s in sfx], float)]),
                )
                seg_idx.append(np.zeros(1, np.int64))  # placeholder segment, never used for a draw
                seg_w.append(np.ones(1))
                self.pool_kind.append("fresh")
            else:
                raise ValueError(f"pool {name!r}: unknown kind {kind!r}")

        self.seg_cum = segment_cum(seg_w)
        self.seg_idx = np.concatenate(seg_idx)
        self.pool_seg_base_arr = np.array(self.pool_seg_base, np.int64)
        kinds = {"static": 0, "team": 1, "agent": 2, "fresh": 3}
        self.pool_kind_arr = np.array([kinds[k] for k in self.pool_kind], np.int64)
        self.ptr = PtrNames(self.profiles.get("ptr") or {}, self.nets, self.seed, self.n_agents)
        self.dest_domain = pa.array(dom, pa.string())
        self.dest_ip = np.array(ip_base, np.uint32)
        self.dest_ip_str = format_ips(self.dest_ip)
        self.dest_port = np.array(port, np.int32)
        self.dest_udp = np.array(udp, bool)

    def _web_tail(self, rng: np.random.Generator, spec: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Synthetic long tail of web destinations: ordinary sites and cloud-hosted ones."""
        n = int(spec["tail"])
        words = self.profiles["words"]
        tlds = self.profiles["tlds"]
        tld_w = np.array([w for _, w in tlds], float)
        cloud = spec["cloud_tail"]
        cloud_w = np.array([c[1] for c in cloud], float)
        is_cloud = rng.random(n) < float(spec["cloud_share"])
        n_cloud = int(is_cloud.sum())
        which = rng.choice(len(cloud), size=n_cloud, p=cloud_w / cloud_w.sum())
        cloud_names: list[str] = [""] * n_cloud
        for k in range(len(cloud)):
            pos = np.flatnonzero(which == k)
            labels = self.labeler.labels(rng, cloud[k][3], len(pos)).to_pylist()
            for p_, lab in zip(pos, labels):
                cloud_names[p_] = f"{lab}.{cloud[k][0]}"
        tld_pick = rng.choice(len(tlds), size=n, p=tld_w / tld_w.sum())
        w1 = rng.integers(0, len(words), n)
        w2 = rng.integers(0, len(words), n)
        names: list[str] = []
        nets: list[str] = []
        seen: set[str] = set()
        ci = 0
        for i in range(n):
            if is_cloud[i]:
                d = cloud_names[ci]
                nt = cloud[int(which[ci])][2]
                ci += 1
            else:
                d = f"{words[w1[i]]}{words[w2[i]]}.{tlds[tld_pick[i]][0]}"
                nt = "hosting"
            if d in seen:
                d = f"{d.split('.', 1)[0]}{i}.{d.split('.', 1)[1]}"
            seen.add(d)
            names.append(d)
            nets.append(nt)
        return names, nets

    # ---------------------------------------------------------------------------------------------- installs
    def _build_installs(self, rng: np.random.Generator) -> None:
        """One row per (agent, installed process): the 'agent-process' table."""
        role_name = [self.roles[r] for r in self.agent_role]
        rows_agent, rows_pdef = [], []
        w_int, w_bg = [], []
        exe, pname, pexe, user, cmd_start, cmd_n = [], [], [], [], [], []
        cmds: list[str] = []
        ver_off = []
        self.installed: dict[tuple[int, int], int] = {}
        for a in range(self.n_agents):
            r, o, u = role_name[a], self.agent_os[a], self.agent_user[a]
            team = self.team_names[self.agent_team[a]]
            for i, p in enumerate(self.pdefs):
                if p["os"] != o:
                    continue
                prob = p["roles"].get(r, 0.0)
                if prob <= 0 or rng.random() >= prob:
                    continue
                self.installed[(a, i)] = len(rows_agent)
                rows_agent.append(a)
                rows_pdef.append(i)
                bg = p["kind"] == "background"
                w_int.append(0.0 if bg else float(p["weight"]))
                w_bg.append(float(p["weight"]) if bg else 0.0)
                path = fmt(p["path"], user=u)
                exe.append(path)
                par = self.parent(p.get("parent"))
                pname.append(par[0])
                pexe.append(fmt(par[1], user=u))
                user.append(self.user_for(p.get("user", "user"), o, u))
                cmd_start.append(len(cmds))
                variants = [fmt(c, path=path, user=u, team=team) for c in p["cmd"]]
                cmds.extend(variants)
                cmd_n.append(len(variants))
                ud = int(p.get("update_days", 0))
                ver_off.append(int(rng.integers(0, min(ud, 5))) if ud > 0 else 0)
        self.ap_agent = np.array(rows_agent, np.int64)
        self.ap_pdef = np.array(rows_pdef, np.int64)
        self.n_ap = len(rows_agent)
        # per-agent cumulative weights for interactive and background traffic (segment per agent)
        self.ap_cum = {}
        self.agent_has = {}
        for name, w in (("i", np.array(w_int)), ("b", np.array(w_bg))):
            totals = np.bincount(self.ap_agent, weights=w, minlength=self.n_agents)
            has = totals > 0
            # agents without such traffic get their whole segment weight spread evenly (never drawn: rate 0)
            w = w + np.where(has[self.ap_agent], 0.0, 1.0)
            segs = np.split(w, np.cumsum(np.bincount(self.ap_agent, minlength=self.n_agents))[:-1])
            self.ap_cum[name] = segment_cum(segs)
            self.agent_has[name] = has
        self.ap_exe = pa.array(exe, pa.string())
        self.ap_parent_name = pa.array(pname, pa.string())
        self.ap_parent_exe = pa.array(pexe, pa.string())
        self.ap_user = pa.array(user, pa.string())
        self.ap_cmd_start = np.array(cmd_start, np.int64)
        self.ap_cmd_n = np.array(cmd_n, np.int64)
        self.cmds = pa.array(cmds, pa.string())
        self.ap_ver_off = np.array(ver_off, np.int64)
        self.agent_guid_prefix = pa.array([f"{h[:8]}-{h[9:13]}" for h in self.agent_id], pa.string())
        self.agent_arr = {
            "source.ip": pa.array(self.agent_ip, pa.string()),
            "host.id": pa.array(self.agent_id, pa.string()),
            "host.name": pa.array(self.agent_host, pa.string()),
            "host.os.type": pa.array(list(self.agent_os), pa.string()),
        }
        self.pdef_arr = {
            "process.name": pa.array([p["name"] for p in self.pdefs], pa.string()),
            "process.code_signature.subject_name": pa.array(self.signer_names, pa.string()),
            "process.code_signature.trusted": pa.array(self.signer_trusted, pa.bool_()),
            "process.code_signature.exists": pa.array(self.signer_exists, pa.bool_()),
            "process.pe.original_file_name": pa.array(self.original, pa.string()),
        }
        self.hash_arr = pa.array(self.hash_strings, pa.string())
        self.domain_gap = np.array(
            [float(self.profiles["roles"][r].get("domain_gap", 0.0)) for r in self.roles]
        )[self.agent_role]

    def parent(self, ref: str | None) -> tuple[str | None, str | None]:
        """(name, path template) of a parent process: a ``parents`` entry of the profiles or a process id."""
        if ref is None:
            return None, None
        parents = self.profiles["parents"]
        if ref in parents:
            return parents[ref]["name"], parents[ref]["path"]
        if ref in self.pdef_by_id:
            p = self.pdefs[self.pdef_by_id[ref]]
            return p["name"], p["path"]
        raise ValueError(f"unknown parent {ref!r}")

    @staticmethod
    def user_for(kind: str, os_: str, user: str) -> str:
        """The ``user.name`` a process of ``kind`` (user, system, network_service, or a literal) runs as."""
        if kind == "user":
            return user
        if kind == "system":
            return "SYSTEM" if os_ == "windows" else "root"
        if kind == "network_service":
            return "NETWORK SERVICE"
        return kind

    def weekday(self, day: int) -> int:
        """Day of the week of ``day`` (0-based from ``start``), Monday = 0."""
        return (self.start + _dt.timedelta(days=day)).weekday()

    # ------------------------------------------------------------------------------------------------- agents
    @property
    def agents(self) -> pa.Table:
        """One row per agent: ``host.id``, ``host.name``, ``host.os.type``, role, team, ``user.name``,
        ``join_day`` (first day with events, 0-based) and ``utc_offset_hours``."""
        return pa.table(
            {
                "host.id": self.agent_id,
                "host.name": self.agent_host,
                "host.os.type": list(self.agent_os),
                "role": [self.roles[r] for r in self.agent_role],
                "team": [self.team_names[t] for t in self.agent_team],
                "user.name": self.agent_user,
                "join_day": pa.array(self.agent_join, pa.int32()),
                "utc_offset_hours": pa.array(self.agent_tz_slices / 4.0, pa.float64()),
            }
        )
