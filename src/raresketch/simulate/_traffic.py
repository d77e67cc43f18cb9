"""Legitimate traffic: the sessions each agent's installed processes open, slice by slice of event time.

Per day, each agent's session rate follows its role, activity and the weekday; per 15-minute slice, the number of
sessions is Poisson with the agent's local diurnal profile (servers are flat).  A session picks a process
installed on the agent, a destination pool from the process's traffic mix, a destination (Zipf popularity,
team / agent resources, or a first-seen rare cloud host), and opens a geometric number of connections (mean
``mean_burst``) a few seconds apart.  The rows of injected attacks are merged into the slices they fall in.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..events import EVENT_SCHEMA
from ._vec import DAY_US, SLICE_US, SLICES, STR_NULL, US, S, arr, draw, format_ips, hex_strings, to_schema
from ._world import World

__all__ = ["Traffic"]


def _diurnal_profiles() -> tuple[np.ndarray, np.ndarray]:
    """Share of a day's interactive and background sessions in each local 15-minute slice (each sums to 1)."""
    h = (np.arange(SLICES) + 0.5) / 4.0  # local hour at slice centre
    office = (
        np.exp(-0.5 * ((h - 10.5) / 1.8) ** 2)
        + 0.9 * np.exp(-0.5 * ((h - 15.0) / 1.9) ** 2)
        + 0.12 * np.exp(-0.5 * ((h - 21.0) / 1.5) ** 2)
        + 0.01
    )
    office /= office.sum()
    flat = np.full(SLICES, 1.0 / SLICES)
    return office, 0.35 * flat + 0.65 * office  # laptops sleep at night


class Traffic:
    """The event stream of ``world``: its legitimate traffic with the ``injected`` rows merged in.

    ``injected`` maps (day, slice) to the event rows (ECS field -> value) of injected connections in that slice.
    Deterministic: each day and each chunk of slices has its own generator seeded from the world's seed, so a
    day's events do not depend on which other days are generated.
    """

    def __init__(self, world: World, injected: Mapping[tuple[int, int], list[dict[str, Any]]]) -> None:
        self.world = world
        self.injected = injected
        self.prof_interactive, self.prof_background = _diurnal_profiles()

    def day_state(self, day: int) -> dict[str, np.ndarray]:
        """Per-day draws: session rates per agent (``lam_i`` interactive, ``lam_b`` background, sessions/day), and
        per agent-process row the process entity id, pid and hash index of the day.  O(agents + installs)."""
        w = self.world
        rng = np.random.default_rng([w.seed, 0xDA7, day])
        n = w.n_agents
        server = np.array([w.roles[r].startswith("server") for r in w.agent_role])
        weekend = w.weekday(day) >= 5
        absent = (rng.random(n) < 0.03) & ~server
        active = (w.agent_join <= day) & ~absent
        sessions = w.events_per_agent_day * w.agent_activity / w.mean_burst * active
        f_int = np.where(server, 1.0, 0.1 if weekend else 1.0)
        f_bg = np.where(server, 1.0, 0.45 if weekend else 1.0)
        lam_i = sessions * (1 - w.agent_bg_share) * f_int * w.agent_has["i"]
        lam_b = sessions * w.agent_bg_share * f_bg * w.agent_has["b"]
        # a slice index per agent into its local diurnal profile, server profiles are flat
        ud = w.update_days[w.ap_pdef]
        version = np.where(ud > 0, (day + w.ap_ver_off) // np.maximum(ud, 1), 0)
        ent_prefix = w.agent_guid_prefix.take(arr(w.ap_agent))
        day_part = pa.repeat(pa.scalar(f"{(day * 2654435761) & 0xFFFF:04x}"), w.n_ap)
        entity = pc.binary_join_element_wise(
            ent_prefix, day_part, hex_strings(rng, w.n_ap, 4), hex_strings(rng, w.n_ap, 12), "-"
        )
        entity = pc.binary_join_element_wise(pa.repeat(S["{"], w.n_ap), entity, pa.repeat(S["}"], w.n_ap), "")
        return {
            "entity": entity,
            "lam_i": lam_i,
            "lam_b": lam_b,
            "server": server,
            "pid": rng.integers(600, 65_000, w.n_ap).astype(np.int64) // 4 * 4,
            "hash_idx": w.hash_base[w.ap_pdef] + version,
        }

    def chunk_slices(self) -> int:
        """Slices generated together: enough that a chunk holds ~50k events (fixed per organisation)."""
        w = self.world
        per_slice = w.events_per_agent_day * w.n_agents / SLICES
        want = max(1, int(50_000 / max(per_slice, 1.0)))
        return max(k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96) if k <= want)

    def slice(self, day: int, s: int, st: dict[str, np.ndarray], k: int = 1) -> pa.Table | None:
        """Events of slices ``s .. s + k - 1`` of ``day`` (``st`` from :meth:`day_state`), the injected rows of
        those slices included, sorted by time; None when there are none.  Vectorised: O(events) numpy / Arrow."""
        w = self.world
        rng = np.random.default_rng([w.seed, day, s, k, 0x511CE])
        local = (s + np.arange(k)[None, :] + w.agent_tz_slices[:, None]) % SLICES
        server = st["server"][:, None]
        pi = np.where(server, 1.0 / SLICES, self.prof_interactive[local])
        pb = np.where(server, 1.0 / SLICES, self.prof_background[local])
        n_i = rng.poisson(st["lam_i"][:, None] * pi).ravel()
        n_b = rng.poisson(st["lam_b"][:, None] * pb).ravel()
        cell_agent = np.repeat(np.arange(w.n_agents), k)
        cell_slice = np.tile(np.arange(k), w.n_agents)
        ag_i = np.repeat(cell_agent, n_i)
        ag_b = np.repeat(cell_agent, n_b)
        sl = np.concatenate([np.repeat(cell_slice, n_i), np.repeat(cell_slice, n_b)])
        ap = np.concatenate(
            [
                draw(w.ap_cum["i"], ag_i, rng.random(len(ag_i))),
                draw(w.ap_cum["b"], ag_b, rng.random(len(ag_b))),
            ]
        )
        ag = np.concatenate([ag_i, ag_b])
        n_sess = len(ag)
        attack_rows = [r for j in range(k) for r in self.injected.get((day, s + j), [])]
        if n_sess == 0 and not attack_rows:
            return None
        pdef = w.ap_pdef[ap]
        pool = w.mix_pool[draw(w.mix_cum, pdef, rng.random(n_sess))]
        kind = w.pool_kind_arr[pool]
        key = np.where(kind == 1, w.agent_team[ag], np.where(kind == 2, ag, 0))
        seg = w.pool_seg_base_arr[pool] + key
        dest = w.seg_idx[draw(w.seg_cum, seg, rng.random(n_sess))]
        fresh = kind == 3

        # bursts: sessions -> connections
        p_geo = 1.0 / w.mean_burst
        L = rng.geometric(p_geo, n_sess)
        rows = np.repeat(np.arange(n_sess), L)
        n = len(rows)
        t0 = w.start_us + day * DAY_US + s * SLICE_US
        start = sl * SLICE_US + rng.integers(0, SLICE_US, n_sess)
        gaps = rng.exponential(1.5 * US, n).astype(np.int64)
        first = np.concatenate([[0], np.cumsum(L)[:-1]])
        gaps[first] = 0  # a session's first connection is at its start
        csum = np.cumsum(gaps)
        offs = csum - np.repeat(csum[first], L)
        ts = t0 + np.minimum(start[rows] + offs, (sl[rows] + 1) * SLICE_US - 1)
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        rows = rows[order]

        ag_r = ag[rows]
        ap_r = ap[rows]
        pdef_r = pdef[rows]
        dest_r = dest[rows]
        fresh_r = fresh[rows]

        # fresh rare cloud hosts: one new host per session, all of the session's connections go to it
        f_sess = np.flatnonzero(fresh)
        fresh_dom = None
        fresh_ip = None
        if len(f_sess):
            f_ip = np.zeros(len(f_sess), np.uint32)
            f_pool = pool[f_sess]
            doms: list[pa.Array] = []
            pos_all: list[np.ndarray] = []
            for pid_ in np.unique(f_pool):
                fr = w.fresh[int(pid_)]
                pos = np.flatnonzero(f_pool == pid_)
                which = draw(fr.cum, np.zeros(len(pos), np.int64), rng.random(len(pos)))
                for k in np.unique(which):
                    sub = pos[which == k]
                    labels = w.labeler.labels(rng, fr.styles[k], len(sub))
                    doms.append(pc.binary_join_element_wise(labels, pa.repeat(pa.scalar(fr.suffixes[k], pa.string()), len(sub)), "."))
                    pos_all.append(sub)
                    ranges = fr.nets[k]
                    r_pick = rng.integers(0, len(ranges), len(sub))
                    bases = np.array([b for b, _ in ranges], np.int64)[r_pick]
                    sizes = np.array([z for _, z in ranges], np.int64)[r_pick]
                    f_ip[sub] = (bases + (rng.random(len(sub)) * sizes).astype(np.int64)).astype(np.uint32)
            order_f = np.argsort(np.concatenate(pos_all), kind="stable")
            fresh_dom = pa.concat_arrays(doms).take(arr(order_f))
            # map each fresh row to its session's rank among fresh sessions
            rank = np.full(n_sess, -1, np.int64)
            rank[f_sess] = np.arange(len(f_sess))
            fresh_rank_r = rank[rows]
            fresh_ip = f_ip

        # destination strings
        domain = w.dest_domain.take(arr(dest_r))
        if fresh_dom is not None:
            mask = arr(fresh_r)
            fr_rows = fresh_rank_r[fresh_r]
            domain = pc.replace_with_mask(domain, mask, fresh_dom.take(arr(fr_rows)))
            ip_col = pc.replace_with_mask(
                w.dest_ip_str.take(arr(dest_r)), mask, format_ips(fresh_ip).take(arr(fr_rows))
            )
        else:
            ip_col = w.dest_ip_str.take(arr(dest_r))
        gap_rate = w.domain_gap[ag_r]
        gap = rng.random(n) < gap_rate
        if gap.any():
            domain = pc.if_else(arr(gap), STR_NULL, domain)
        # agents that report reverse-lookup names (Sysmon's DestinationHostname): no draw, the other columns stay
        ip_u32 = w.dest_ip[dest_r]
        if fresh_dom is not None:
            ip_u32 = np.where(fresh_r, fresh_ip[np.maximum(fresh_rank_r, 0)], ip_u32)
        domain = w.ptr.apply(domain, ip_u32.astype(np.uint32), ag_r)
        port = np.where(fresh_r, 443, w.dest_port[dest_r]).astype(np.int32)
        udp = np.where(fresh_r, False, w.dest_udp[dest_r])
        cmd = w.ap_cmd_start[ap_r] + (rng.random(n) * w.ap_cmd_n[ap_r]).astype(np.int64)

        ap_pa = arr(ap_r)
        ag_pa = arr(ag_r)
        pdef_pa = arr(pdef_r)
        cols = {
            "@timestamp": arr(ts.astype(np.int64), pa.timestamp("us", tz="UTC")),
            "host.id": w.agent_arr["host.id"].take(ag_pa),
            "host.name": w.agent_arr["host.name"].take(ag_pa),
            "host.os.type": w.agent_arr["host.os.type"].take(ag_pa),
            "process.executable": w.ap_exe.take(ap_pa),
            "process.name": w.pdef_arr["process.name"].take(pdef_pa),
            "process.pid": arr(st["pid"][ap_r]),
            "process.hash.sha256": w.hash_arr.take(arr(st["hash_idx"][ap_r])),
            "process.code_signature.subject_name": w.pdef_arr["process.code_signature.subject_name"].take(pdef_pa),
            "process.code_signature.trusted": w.pdef_arr["process.code_signature.trusted"].take(pdef_pa),
            "process.code_signature.exists": w.pdef_arr["process.code_signature.exists"].take(pdef_pa),
            "process.pe.original_file_name": w.pdef_arr["process.pe.original_file_name"].take(pdef_pa),
            "process.command_line": w.cmds.take(arr(cmd)),
            "process.parent.executable": w.ap_parent_exe.take(ap_pa),
            "process.parent.name": w.ap_parent_name.take(ap_pa),
            "user.name": w.ap_user.take(ap_pa),
            "destination.ip": ip_col,
            "destination.port": arr(port.astype(np.int32)),
            "destination.domain": domain,
            "network.transport": pc.if_else(arr(udp), S["udp"], S["tcp"]),
            "raresketch.domain_source": pc.if_else(pc.is_valid(domain), S["event"], STR_NULL),
        }
        cols["network.direction"] = pa.repeat(S["egress"], n)
        cols["process.entity_id"] = st["entity"].take(ap_pa)
        cols["source.ip"] = w.agent_arr["source.ip"].take(ag_pa)
        cols["source.port"] = arr(rng.integers(49152, 65536, n).astype(np.int32))
        table = to_schema(cols, n)
        if attack_rows:
            names = [f.name for f in EVENT_SCHEMA]
            extra = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in attack_rows], schema=EVENT_SCHEMA)
            table = pa.concat_tables([table, extra])
            order = np.argsort(table.column("@timestamp").to_numpy().astype(np.int64), kind="stable")
            table = table.take(arr(order.astype(np.int64))).combine_chunks()
        return table

    def slices(self, start_day: int = 0, end_day: int | None = None) -> Iterator[pa.Table]:
        """Yield tables of consecutive 15-minute slices of event time (several per table when slices are
        sparse, see :meth:`chunk_slices`; empty ones skipped), in time order."""
        w = self.world
        end_day = w.days if end_day is None else min(end_day, w.days)
        for day in range(max(0, start_day), end_day):
            st = self.day_state(day)
            k = self.chunk_slices()
            for s in range(0, SLICES, k):
                t = self.slice(day, s, st, k)
                if t is not None and t.num_rows:
                    yield t

    def expected_events(self) -> float:
        """Rough expected number of events over the whole period (for progress bars and sizing)."""
        w = self.world
        total = 0.0
        for day in range(w.days):
            st = self.day_state(day)
            total += float((st["lam_i"] + st["lam_b"]).sum()) * w.mean_burst
        return total
