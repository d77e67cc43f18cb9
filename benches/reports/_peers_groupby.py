"""The group-by peers of ``_peers``: pandas, polars and DuckDB formulations of the detectors (see ``_peers``'
docstring)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from support import reference as _ref  # noqa: E402
from support.reference import ReferenceEngine  # noqa: E402

import raresketch  # noqa: E402
from raresketch.catalog import path_shape  # noqa: E402

_US_PER_DAY = _ref._US_PER_DAY

class _Vocab:
    """Values -> dense int64 ids, stable across batches (what a user does before joining on strings)."""

    def __init__(self) -> None:
        self.ids: dict = {}
        self.names: list = []

    def _ids(self, uniques) -> np.ndarray:
        ids, names = self.ids, self.names
        out = np.empty(len(uniques), dtype=np.int64)
        for j, u in enumerate(uniques):
            i = ids.get(u)
            if i is None:
                i = ids[u] = len(names)
                names.append(u)
            out[j] = i
        return out

    def strings(self, arr: pa.ChunkedArray | pa.Array, transform=None) -> np.ndarray:
        """Ids of an Arrow string column (null -> -1); ``transform`` maps each distinct value first."""
        enc = pc.dictionary_encode(arr)
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        uniques = enc.dictionary.to_pylist()
        if transform is not None:
            uniques = [transform(u) for u in uniques]
        m = self._ids(uniques)
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        out = np.full(len(idx), -1, dtype=np.int64)
        ok = idx >= 0
        out[ok] = m[idx[ok]]
        return out

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Ids of (a, b) id pairs (-1 where either is -1)."""
        ok = (a >= 0) & (b >= 0)
        out = np.full(len(a), -1, dtype=np.int64)
        if ok.any():
            v = (a[ok] << 32) | b[ok]
            uniq, inv = np.unique(v, return_inverse=True)
            out[ok] = self._ids(uniq.tolist())[inv]
        return out


def _bools(arr) -> tuple[np.ndarray, np.ndarray]:
    """(is True, is False) of a nullable boolean column: null is neither."""
    t = pc.fill_null(pc.equal(arr, True), False).to_numpy(zero_copy_only=False)
    f = pc.fill_null(pc.equal(arr, False), False).to_numpy(zero_copy_only=False)
    return t, f



def _step_rows(key: np.ndarray, member: np.ndarray, learn: np.ndarray):
    """What both group-by tables' ``step`` starts from: zeroed answers, the rows with a key, and their key,
    member, learn flag and pair id (``key << 32 | member``, -1 without a member)."""
    n = len(key)
    rows = np.flatnonzero(key >= 0)
    k, mem, lrn = key[rows], member[rows], learn[rows]
    pair = np.where(mem >= 0, (k << 32) | np.maximum(mem, 0), -1)
    return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool), rows, k, mem, lrn, pair


class _PandasTable:
    """A windowed table as a pandas frame of distinct (pair, key, last) rows; pair = key << 32 | member."""

    def __init__(self) -> None:
        import pandas as pd

        self.pd = pd
        self.df = pd.DataFrame({"pair": np.empty(0, np.int64), "key": np.empty(0, np.int64),
                                "last": np.empty(0, np.int64)})

    def forget(self, cutoff: int) -> None:
        if len(self.df):
            self.df = self.df[self.df["last"].to_numpy() > cutoff]

    def step(self, key: np.ndarray, member: np.ndarray, learn: np.ndarray, day: int):
        """Counts and membership before each row (rows in time order), then learn the ``learn`` rows.

        ``key``/``member``: int64 ids, -1 where the row has none; ``learn`` implies both present.
        Returns (count_before, seen_before) for every row (0 / False where ``key`` is -1).
        """
        pd = self.pd
        count, seen, rows, k, mem, lrn, pair = _step_rows(key, member, learn)
        if not len(rows):
            return count, seen
        c = pd.DataFrame({"key": k, "pair": pair, "learn": lrn.astype(np.int64)})
        state = self.df
        prior = state["key"].value_counts(sort=False)
        in_prior = c["pair"].isin(state["pair"]).to_numpy()
        learned_before = (c.groupby("pair", sort=False)["learn"].cumsum() - c["learn"]).to_numpy()
        new = lrn & ~in_prior & (learned_before == 0)
        c["new"] = new.astype(np.int64)
        new_before = (c.groupby("key", sort=False)["new"].cumsum() - c["new"]).to_numpy()
        count[rows] = prior.reindex(k, fill_value=0).to_numpy() + new_before
        seen[rows] = (in_prior | (learned_before > 0)) & (mem >= 0)
        if lrn.any():
            # learned pairs get last = day, unless already seen on a later day (a late event): keep the max
            upd = c.loc[lrn, ["pair", "key"]].drop_duplicates("pair")
            hit = state["pair"].isin(upd["pair"]).to_numpy()
            later = hit & (state["last"].to_numpy() > day)
            if later.any():
                upd = upd[~upd["pair"].isin(state["pair"][later])]
                hit &= ~later
            self.df = pd.concat([state[~hit], upd.assign(last=day)], ignore_index=True)
        return count, seen

    def nbytes(self) -> int:
        return int(self.df.memory_usage(index=True, deep=True).sum())


class _PolarsTable:
    """The same windowed table as a polars frame."""

    def __init__(self) -> None:
        os.environ.setdefault("POLARS_MAX_THREADS", "1")
        import polars as pl

        self.pl = pl
        self.df = pl.DataFrame({"pair": [], "key": [], "last": []},
                               schema={"pair": pl.Int64, "key": pl.Int64, "last": pl.Int64})

    def forget(self, cutoff: int) -> None:
        if self.df.height:
            self.df = self.df.filter(self.pl.col("last") > cutoff)

    def step(self, key: np.ndarray, member: np.ndarray, learn: np.ndarray, day: int):
        pl = self.pl
        count, seen, rows, k, mem, lrn, pair = _step_rows(key, member, learn)
        if not len(rows):
            return count, seen
        state = self.df
        prior = state.group_by("key").agg(prior=pl.len())
        lcol = pl.col("learn").cast(pl.Int64)
        c = (pl.DataFrame({"key": k, "pair": pair, "learn": lrn})
             .with_columns(in_prior=pl.col("pair").is_in(state["pair"].implode()),
                           learned_before=lcol.cum_sum().over("pair") - lcol)
             .with_columns(new=(pl.col("learn") & ~pl.col("in_prior") & (pl.col("learned_before") == 0))
                           .cast(pl.Int64))
             .with_columns(new_before=pl.col("new").cum_sum().over("key") - pl.col("new"))
             .join(prior, on="key", how="left", maintain_order="left")
             .with_columns(count=pl.col("prior").fill_null(0) + pl.col("new_before"),
                           seen=(pl.col("in_prior") | (pl.col("learned_before") > 0)) & (pl.col("pair") >= 0)))
        count[rows] = c["count"].to_numpy()
        seen[rows] = c["seen"].to_numpy()
        if lrn.any():
            upd = (c.filter(pl.col("learn")).select("pair", "key").unique("pair", keep="first")
                   .with_columns(last=pl.lit(day, dtype=pl.Int64)))
            later = state.filter(pl.col("pair").is_in(upd["pair"].implode()) & (pl.col("last") > day))["pair"]
            if later.len():  # a late event: keep the newer day
                upd = upd.filter(~pl.col("pair").is_in(later.implode()))
            self.df = pl.concat([state.filter(~pl.col("pair").is_in(upd["pair"].implode())), upd])
        return count, seen

    def nbytes(self) -> int:
        return int(self.df.estimated_size())


class _DuckDbTable:
    """The same windowed table as a DuckDB table ``st(pair, key, last)`` on its own in-memory, single-threaded
    connection; a chunk is a registered Arrow table, its exclusive cumulative counts are window functions."""

    _STEP = """
        WITH c1 AS (
            SELECT c.i, c.key, c.pair, c.learn, s.pair IS NOT NULL AS in_prior,
                   coalesce(sum(c.learn::BIGINT) OVER (PARTITION BY c.pair ORDER BY c.i
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::BIGINT AS learned_before
            FROM c LEFT JOIN st s ON s.pair = c.pair),
        c2 AS (
            SELECT *, (learn AND NOT in_prior AND learned_before = 0)::BIGINT AS new FROM c1),
        c3 AS (
            SELECT *, coalesce(sum(new) OVER (PARTITION BY key ORDER BY i
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::BIGINT AS new_before FROM c2)
        SELECT (coalesce(p.prior, 0) + c3.new_before)::BIGINT AS count,
               (c3.in_prior OR c3.learned_before > 0) AND c3.pair >= 0 AS seen
        FROM c3 LEFT JOIN (SELECT key, count(*) AS prior FROM st GROUP BY key) p ON p.key = c3.key
        ORDER BY c3.i"""

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect(":memory:")
        self.con.execute("SET threads = 1")
        self.con.execute("CREATE TABLE st (pair BIGINT, key BIGINT, last BIGINT)")

    def forget(self, cutoff: int) -> None:
        self.con.execute("DELETE FROM st WHERE last <= ?", [int(cutoff)])

    def step(self, key: np.ndarray, member: np.ndarray, learn: np.ndarray, day: int):
        count, seen, rows, k, mem, lrn, pair = _step_rows(key, member, learn)
        if not len(rows):
            return count, seen
        con = self.con
        c = pa.table({"i": np.arange(len(rows), dtype=np.int64), "key": k, "pair": pair, "learn": lrn})
        con.register("c", c)
        out = con.execute(self._STEP).fetchnumpy()
        count[rows] = out["count"]
        seen[rows] = out["seen"]
        if lrn.any():
            # learned pairs get last = day, unless already seen on a later day (a late event): keep the max
            con.execute("CREATE OR REPLACE TEMP TABLE upd AS SELECT DISTINCT pair, key FROM c WHERE learn")
            d = int(day)
            con.execute("UPDATE st SET last = ? FROM upd WHERE st.pair = upd.pair AND st.last < ?", [d, d])
            con.execute("INSERT INTO st SELECT u.pair, u.key, ? FROM upd u ANTI JOIN st ON st.pair = u.pair", [d])
        con.unregister("c")
        return count, seen

    def nbytes(self) -> int:
        # the payload of the three BIGINT columns: DuckDB reports no per-table in-memory size
        return 24 * int(self.con.execute("SELECT count(*) FROM st").fetchone()[0])


_TABLES = ("prevalence", "process_seen", "kind_agents", "agent_seen_kind", "new_rare", "new_rare_agent",
           "im_agents", "im_agent_days", "binary_agents", "pair_agents", "cmdline_agents", "location_agents",
           "process_agents")


class GroupByPeer(ReferenceEngine):
    """Group-by formulation, one chunk per (batch, day) (see the module docstring).

    Reuses the reference's configuration, catalogue, org/agent presence (``active_agents``, ``_agent_first``,
    ``_learn_presence``: a few dict operations per agent and day) and its ``_gate`` for dedup and the volume
    guards. Exact for input in time order. For a late event (a day before the newest seen) the chunk is
    scored against the current state like the reference, but ``active_agents`` is taken once per chunk, not
    after each late event's presence is learned (the reference re-counts when a late event adds a past day).
    """

    table_cls = _PandasTable

    def __init__(self, config=None, catalog=None) -> None:
        super().__init__(config, catalog)
        self._tables = []  # the reference's dict tables stay empty
        self.frames = {name: self.table_cls() for name in _TABLES}
        self.vocab = _Vocab()
        self.pair_vocab = _Vocab()

    def _advance(self, day: int) -> None:
        super()._advance(day)  # trims agent days (its _tables is empty)
        cutoff = day - self.W
        for f in self.frames.values():
            f.forget(cutoff)

    def process(self, batch: pa.Table) -> list[dict]:
        cfg = self.config
        t = raresketch.conform(batch)
        n = t.num_rows
        if n == 0:
            return []
        ts = t.column("@timestamp").combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
        order = np.argsort(ts, kind="stable")
        t = t.take(pa.array(order))
        ts = ts[order]
        res = self.catalog.resolve_batch(t)
        base_row = self.rows
        self.rows += n
        day = ts // _US_PER_DAY

        keep = np.ones(n, dtype=bool)
        if cfg.max_future_days is not None:
            future = day > _ref._wall_day() + cfg.max_future_days
            self.suppressed["skipped_future"] += int(future.sum())
            keep &= ~future
        if self.newest is not None:
            old = keep & (self.newest - day >= self.W)  # days are sorted: only the previous batches matter
            self.suppressed["too_old"] += int(old.sum())
            keep &= ~old
        if not keep.any():
            return []

        # ---- columns as dense ids / numpy (once per batch)
        V, P = self.vocab, self.pair_vocab
        col, rcol = t.column, res.column
        agent = V.strings(col("host.id"))
        proc = V.strings(rcol("raresketch.process.key"))
        R = V.strings(rcol("raresketch.cloud.resource"))
        kind_s = pc.binary_join_element_wise(pc.fill_null(rcol("raresketch.cloud.provider"), "None"),
                                             pc.fill_null(rcol("raresketch.cloud.service"), "None"), "/")
        K = np.where(R >= 0, V.strings(kind_s), -1)
        S = V.strings(rcol("raresketch.im.service"))
        binary = V.strings(pc.coalesce(col("process.hash.sha256"), rcol("raresketch.process.key")))
        # the habitual-explorer exemptions' location: (process, folder shape of its path; None when no path)
        shape = V.strings(pc.fill_null(col("process.executable"), "\x00None"),
                          lambda x: "\x02shape:" + repr(path_shape(None if x == "\x00None" else x)))
        is_engine, _ = _bools(rcol("raresketch.process.is_script_engine"))
        engine_arr = pc.fill_null(rcol("raresketch.process.script_engine"), "\x00None")  # None is a value
        engine = V.strings(engine_arr)
        parent = V.strings(col("process.parent.name"), str.lower)
        cmd_arr = pc.if_else(pa.array(is_engine), col("process.command_line"), pa.scalar(None, pa.string()))
        cmdline = V.strings(cmd_arr, _ref.normalize_command_line)
        _, unsigned = _bools(col("process.code_signature.exists"))
        _, untrusted = _bools(col("process.code_signature.trusted"))
        writable, _ = _bools(rcol("raresketch.process.user_writable_path"))
        renamed, _ = _bools(rcol("raresketch.process.renamed"))
        allow, _ = _bools(rcol("raresketch.allowlisted"))
        learn_all = keep & ~(allow & (not cfg.allowlist_learn))
        cols = {"agent": agent, "proc": proc, "R": R, "K": K, "S": S, "binary": binary, "is_engine": is_engine,
                "parent": parent, "cmdline": cmdline, "unsigned": unsigned, "untrusted": untrusted,
                "writable": writable, "renamed": renamed, "allow": allow, "learn": learn_all,
                "pk": P.pairs(proc, K), "pa": P.pairs(proc, agent), "ps": P.pairs(proc, S),
                "pe": P.pairs(parent, np.where(is_engine, engine, -1)), "loc": P.pairs(proc, shape)}

        alerts: list[dict] = []
        idx_keep = np.flatnonzero(keep)
        for rows in np.split(idx_keep, np.flatnonzero(np.diff(day[idx_keep])) + 1):
            g = {k: v[rows] for k, v in cols.items()}
            alerts += self._chunk(t, res, rows, int(day[rows[0]]), ts, base_row, g)
        return alerts

    def _chunk(self, t, res, rows, d, ts, base_row, g) -> list[dict]:
        """Score then learn one day's run of events of a batch (``g``: their columns)."""
        cfg = self.config
        if self.newest is not None and self.newest <= d - self.W:
            self.first_day = d
        if self.newest is None or d > self.newest:
            self._advance(d)
        ref = self.newest
        active = self.active_agents(ref)
        thr = self.rare_threshold(active)
        org_first = self.first_day if self.first_day is not None else d
        org_activated = d - org_first >= self.A
        names_ = self.vocab.names

        agent, proc, R, K, S = g["agent"], g["proc"], g["R"], g["K"], g["S"]
        learn = g["learn"]
        has_p, has_r, has_s = proc >= 0, R >= 0, S >= 0

        # agent run start: constant through the day for each agent
        ua, inv = np.unique(agent, return_inverse=True)
        first = np.array([self._agent_first(names_[a], d) for a in ua], dtype=np.int64)[inv]
        agent_activated = d - first >= self.A

        F = self.frames
        pr = has_r & has_p
        prev, _ = F["prevalence"].step(R, agent, learn & has_r, d)
        _, pseen = F["process_seen"].step(np.where(pr, R, -1), proc, learn & pr, d)
        first_rare = pr & (prev <= thr) & ~pseen
        kind_n, _ = F["kind_agents"].step(np.where(pr, g["pk"], -1), agent, learn & pr, d)
        _, agent_kind = F["agent_seen_kind"].step(K, agent, learn & has_r, d)
        nra, _ = F["new_rare_agent"].step(np.where(pr, g["pa"], -1), R, learn & first_rare, d)
        nr, _ = F["new_rare"].step(np.where(pr, proc, -1), R,
                                   learn & first_rare & (nra < cfg.explorer_cap_per_agent), d)
        im = has_s & has_p
        n_ag, _ = F["im_agents"].step(np.where(im, g["ps"], -1), agent, learn & im, d)
        agent_day = self.pair_vocab.pairs(agent, np.full(len(rows), d, dtype=np.int64))
        n_ad, _ = F["im_agent_days"].step(np.where(im, g["ps"], -1), agent_day, learn & im, d)
        binary = g["binary"]
        b_n, _ = F["binary_agents"].step(binary, agent, learn & (binary >= 0), d)
        eng = g["is_engine"]
        par_ok = eng & (g["parent"] >= 0)
        cmd_ok = eng & (g["cmdline"] >= 0)
        pair_n, _ = F["pair_agents"].step(np.where(par_ok, g["pe"], -1), agent, learn & par_ok, d)
        cmd_n, _ = F["cmdline_agents"].step(np.where(cmd_ok, g["cmdline"], -1), agent, learn & cmd_ok, d)
        loc_n, _ = F["location_agents"].step(np.where(has_p, g["loc"], -1), agent, learn & has_p, d)
        proc_n, _ = F["process_agents"].step(proc, agent, learn & has_p, d)

        # ---- score (vectorised), then the sequential gates on the survivors
        im_max = cfg.im_max_agents if cfg.im_max_agents is not None else thr
        im_match = im & (n_ag <= im_max) & (n_ad <= cfg.im_max_agent_days)
        allow = g["allow"]
        habitual = np.maximum(nr, nra) >= cfg.habitual_explorer_n
        # what the status never covers (the reference's exemptions): a copy elsewhere; an unusual process
        elsewhere = (loc_n <= thr) & (proc_n - loc_n > thr)
        unusual = ((eng & ((par_ok & (pair_n <= thr)) | (cmd_ok & (cmd_n <= thr))))
                   | ((binary >= 0) & (b_n <= thr) & (g["unsigned"] | g["untrusted"])))
        habitual &= ~(elsewhere | (unusual & (nra < max(1, cfg.habitual_explorer_n // 4))))
        sup = self.suppressed
        if not org_activated:
            sup["activation"] += int(first_rare.sum() + im_match.sum())
            cloud_go = im_go = np.zeros(len(rows), dtype=bool)
        else:
            sup["allowlist"] += int((first_rare & allow).sum() + (im_match & allow).sum())
            sup["habitual_explorer"] += int((first_rare & ~allow & habitual).sum())
            cloud_go = first_rare & ~allow & ~habitual
            im_go = im_match & ~allow
        if not (cloud_go.any() or im_go.any()):
            self._learn_agents(agent[learn], d)
            return []

        rare_binary = (binary >= 0) & (b_n <= thr)
        susp = g["unsigned"] | g["untrusted"] | g["writable"] | rare_binary | g["renamed"]
        rare_pair = par_ok & (pair_n <= thr)
        rare_cmd = cmd_ok & (cmd_n <= thr)
        scripting = rare_pair | rare_cmd
        atyp_agent = ~agent_kind & agent_activated
        atyp = kind_n <= thr

        go = np.flatnonzero(cloud_go | im_go)
        at = rows[go]
        tt, rr = t.take(pa.array(at)), res.take(pa.array(at))
        host = tt.column("host.id").to_pylist()
        pkey = rr.column("raresketch.process.key").to_pylist()
        dom = tt.column("destination.domain").to_pylist()
        ip = tt.column("destination.ip").to_pylist()
        out = []
        common = {"active_agents": active, "threshold": thr, "window_days": self.W, "org_first_day": org_first,
                  "baseline_days": d - org_first, "day": d, "reference_day": ref, "late": d < ref}
        for j, i in enumerate(go):
            ev = {"host.id": host[j], "raresketch.process.key": pkey[j], "destination.domain": dom[j],
                  "destination.ip": ip[j], "ts": int(ts[at[j]]), "row": base_row + int(at[j])}
            if cloud_go[i]:
                names = []
                if atyp_agent[i]:
                    names.append(_ref.RARE_CLOUD_ATYPICAL_AGENT)
                if atyp[i]:
                    names.append(_ref.RARE_CLOUD_ATYPICAL)
                names.append(_ref.RARE_CLOUD)
                evidence = dict(common, prevalence=int(prev[i]), kind_agents=int(kind_n[i]),
                                agent_seen_kind=bool(agent_kind[i]), new_rare=int(nr[i]),
                                new_rare_agent=int(nra[i]))
                a = self._gate("rare_cloud", names, ev, d, names_[R[i]], evidence, True, False, False)
                if a:
                    out.append(a)
            if im_go[i]:
                names = []
                if scripting[i]:
                    names.append(_ref.IM_SCRIPTING)
                if susp[i]:
                    names.append(_ref.IM_SUSPICIOUS)
                names.append(_ref.IM)
                dest = dom[j] if dom[j] is not None else ip[j]
                evidence = dict(common, im_service=names_[S[i]], im_agents=int(n_ag[i]),
                                im_agent_days=int(n_ad[i]), binary_agents=int(b_n[i]))
                a = self._gate("uncommon_im", names, ev, d, dest, evidence, True, False, False)
                if a:
                    out.append(a)
        self._learn_agents(agent[learn], d)
        return out

    def _learn_agents(self, agents: np.ndarray, d: int) -> None:
        names = self.vocab.names
        for a in np.unique(agents):
            self._learn_presence(names[a], d)

    def state_nbytes(self) -> int:
        return sum(f.nbytes() for f in self.frames.values())


class PandasPeer(GroupByPeer):
    """Group-by formulation on pandas (groupby size / isin / groupby cumsum / concat + groupby max)."""

    table_cls = _PandasTable


class PolarsPeer(GroupByPeer):
    """The same on polars (single-threaded unless POLARS_MAX_THREADS says otherwise)."""

    table_cls = _PolarsTable


class DuckDbPeer(GroupByPeer):
    """The same in DuckDB SQL (one in-memory connection per table, ``SET threads = 1``; window functions)."""

    table_cls = _DuckDbTable
