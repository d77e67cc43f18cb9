"""The public simulator: :class:`Organisation` composes the world (:mod:`._world`), its traffic
(:mod:`._traffic`) and the injected attacks (:mod:`._attacks`), and streams their events in batches."""
from __future__ import annotations

import datetime as _dt
import os
from typing import Any, Iterator, Sequence

import pyarrow as pa

from ..events import mark_conformed
from ._attacks import Injections
from ._traffic import Traffic
from ._world import World
from ._write import write_ecs_jsonl, write_parquet

__all__ = ["Organisation"]


class Organisation:
    """A simulated organisation's endpoint network events, deterministic from ``seed``.

    Parameters
    ----------
    agents : int
        Number of agents (hosts) over the whole period, late joiners included.
    days : int
        Days of event time, starting at ``start`` 00:00 UTC.
    seed : int
        Same seed, same parameters -> identical batches and ground truth.
    start : str or datetime.date
        First day (ISO date, UTC).
    events_per_agent_day : float
        Mean network events per agent on a weekday (a busy developer makes more, a meeting-room PC fewer;
        workstations are quieter at weekends).  The default, 500, is a realistic office endpoint; lower it
        for quick tests.
    attacks : bool, int or sequence of str
        ``True``: inject every scenario of the profiles once (after the activation period); an int: that many
        rounds of every scenario (each on other agents); a sequence: only those scenario ids; ``False``: none.
    benign : bool
        Also inject the benign-but-rare scenarios (ground truth rows with ``malicious`` false).
    late_join_share : float
        Share of agents whose first event is after day 0 (their join day is uniform over the first 60 %).
    activation_days : int
        Attacks are injected strictly after this many days, on agents observed for longer than that.
    mean_burst : float
        Mean connections per session (a process opening several connections to one destination in seconds).
    profiles : dict, optional
        Profiles to use instead of the packaged ones (see :func:`load_profiles`).
    world_seed : int, optional
        Seed of a shared internet: organisations with one ``world_seed`` (and other ``seed``) draw the web's long
        tail of destinations and the services' addresses from it, the same for all; the rest (agents, installs,
        personal sites, traffic, attacks) stays theirs. Company destinations come from ``profiles`` (rename
        ``acme`` per organisation for distinct ones). None (default): everything from ``seed``, as before.
    """

    def __init__(
        self,
        agents: int = 200,
        days: int = 45,
        seed: int = 0,
        start: str | _dt.date = "2026-01-01",
        events_per_agent_day: float = 500.0,
        attacks: bool | int | Sequence[str] = True,
        *,
        benign: bool = True,
        late_join_share: float = 0.12,
        activation_days: int = 14,
        mean_burst: float = 3.0,
        profiles: dict[str, Any] | None = None,
        world_seed: int | None = None,
    ) -> None:
        self._world = w = World(
            agents, days, seed, start, events_per_agent_day, late_join_share=late_join_share,
            activation_days=activation_days, mean_burst=mean_burst, profiles=profiles, world_seed=world_seed,
        )
        self.n_agents, self.days, self.seed, self.start, self.start_us = w.n_agents, w.days, w.seed, w.start, w.start_us
        self.events_per_agent_day, self.late_join_share = w.events_per_agent_day, w.late_join_share
        self.activation_days, self.mean_burst, self.profiles = w.activation_days, w.mean_burst, w.profiles
        self._injections = Injections(w, attacks, benign)
        #: Ids of scenarios that could not be placed (no eligible agent or day, or fewer days than activation + 1).
        self.skipped_scenarios: list[str] = self._injections.skipped_scenarios
        self._traffic = Traffic(w, self._injections.rows_by_slice)

    def slices(self, start_day: int = 0, end_day: int | None = None) -> Iterator[pa.Table]:
        """Yield tables of consecutive 15-minute slices of event time (several per table when slices are
        sparse; empty ones skipped), in time order."""
        return self._traffic.slices(start_day, end_day)

    def batches(
        self, batch_size: int = 100_000, start_day: int = 0, end_day: int | None = None
    ) -> Iterator[pa.Table]:
        """Yield tables of ``batch_size`` events (the last one shorter) in :data:`EVENT_SCHEMA`, in event-time order.

        A generator: memory is bounded by a batch and a 15-minute slice whatever ``days`` and ``agents``.
        The events are the same whatever ``batch_size``; ``start_day`` / ``end_day`` (0-based, end exclusive)
        select whole days without generating the others.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        buf: list[pa.Table] = []
        n_buf = 0
        for t in self.slices(start_day, end_day):
            buf.append(t)
            n_buf += t.num_rows
            if n_buf >= batch_size:
                big = pa.concat_tables(buf)
                off = 0
                while n_buf - off >= batch_size:
                    yield mark_conformed(big.slice(off, batch_size).combine_chunks())
                    off += batch_size
                rest = big.slice(off)
                buf = [rest] if rest.num_rows else []
                n_buf -= off
        if n_buf:
            yield mark_conformed(pa.concat_tables(buf).combine_chunks())

    def __iter__(self) -> Iterator[pa.Table]:
        return self.batches()

    def expected_events(self) -> float:
        """Rough expected number of events over the whole period (for progress bars and sizing)."""
        return self._traffic.expected_events()

    @property
    def agents(self) -> pa.Table:
        """One row per agent: ``host.id``, ``host.name``, ``host.os.type``, role, team, ``user.name``,
        ``join_day`` (first day with events, 0-based) and ``utc_offset_hours``."""
        return self._world.agents

    @property
    def ground_truth(self) -> pa.Table:
        """Injected connection bursts, one row each, in :data:`GROUND_TRUTH_SCHEMA` (sorted by time)."""
        return self._injections.ground_truth()

    def __repr__(self) -> str:
        return (
            f"Organisation(agents={self.n_agents}, days={self.days}, seed={self.seed}, start={self.start.isoformat()!r}, "
            f"events_per_agent_day={self.events_per_agent_day:g}, injected={len(self._injections.plans)})"
        )

    def write_parquet(self, path: str | os.PathLike[str], **kw: Any) -> int:
        """Write every event to a Parquet file; see :func:`write_parquet`."""
        return write_parquet(path, self, **kw)

    def write_ecs_jsonl(self, path: str | os.PathLike[str], **kw: Any) -> int:
        """Write every event as ECS JSON lines; see :func:`write_ecs_jsonl`."""
        return write_ecs_jsonl(path, self, **kw)
