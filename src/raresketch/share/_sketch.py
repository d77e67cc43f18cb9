"""The two shared files (docs/SHARING.md): an organisation's :class:`PrevalenceExport` (the keyed, randomised
one-hash membership filter of the destinations common in it) and the coordinator's :class:`Consortium` (the
per-position number of organisations whose filter reads 1, and each organisation's fill), with the estimator of
how many organisations hold a destination.

Estimator. An organisation that holds destination ``x`` (and kept it when down-sampling at rate ``s``) reports
its position as 1 with probability ``1 - f/2``; one that does not, with probability ``t_j`` (its filter's share
of ones: ``f/2`` plus its collisions). With ``V`` the votes (organisations reading 1 at ``x``'s position) among
``N``, ``T = sum t_j`` and ``d = s (1 - f/2 - T/N)``, ``estimate = (V - T) / d`` is unbiased when the holders are
a random subset of the organisations; the interval maps Wilson's 95 % score interval of ``V / N`` through the
same line, clipped to ``[0, N]`` (conservative: ``V`` is a Poisson-binomial, whose variance is at most the
binomial's with the same mean).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import _format
from .._state import atomic_write_bytes, read_state_bytes_limited
from ._keys import destination_digests, key_id, noise, org_id, positions, sampled

__all__ = ["PrevalenceExport", "Consortium", "export_prevalence", "merge_exports", "epsilon", "SHARED_PARAMS"]

#: Parameters every export of a merge must share (the merge refuses otherwise).
SHARED_PARAMS = ("scheme", "bits", "flip", "sample", "min_share", "min_agents", "window_days", "key_id")
_SCHEME = "hmac-sha256/one-hash/prr"
_MAX_FILE = 1 << 30
_Z = 1.959963984540054   # two-sided 95 %


def epsilon(flip: float) -> float:
    """Differential privacy of one destination's membership in an export (add or remove one destination: one
    position changes): ``ln((1 - f/2) / (f/2))``. Replacing one destination by another changes two positions:
    twice this (RAPPOR's ``2h ln(...)`` with ``h = 1``)."""
    return math.log((1 - flip / 2) / (flip / 2))


def _check_params(p: dict[str, Any], family: str) -> None:
    ok = (p.get("scheme") == _SCHEME and isinstance(p.get("bits"), int) and 1 << 10 <= p["bits"] <= 1 << 26
          and p["bits"] & (p["bits"] - 1) == 0 and isinstance(p.get("flip"), float) and 0 < p["flip"] < 1
          and isinstance(p.get("sample"), float) and 0 < p["sample"] <= 1
          and isinstance(p.get("min_share"), float) and 0 <= p["min_share"] <= 1
          and isinstance(p.get("min_agents"), int) and p["min_agents"] >= 1
          and isinstance(p.get("window_days"), int) and isinstance(p.get("key_id"), str))
    _format.expect(ok, family, "bad parameters")


@dataclass
class PrevalenceExport:
    """One organisation's summary: ``bits`` reported positions (bool array), its ``org_id``, the window it
    covers (``first_day`` .. ``last_day``, days since 1970-01-01) and the parameters (:data:`SHARED_PARAMS`).
    Carries no names, counts or fleet size."""

    params: dict[str, Any]
    org_id: str
    first_day: int
    last_day: int
    bits: np.ndarray

    @property
    def ones(self) -> float:
        """Share of positions reading 1 (``f/2`` plus the destinations' own positions and collisions)."""
        return float(self.bits.mean())

    def to_bytes(self) -> bytes:
        meta = {**self.params, "org_id": self.org_id, "first_day": self.first_day, "last_day": self.last_day}
        return _format.pack("PrevalenceExport", meta, [np.packbits(self.bits, bitorder="little")])

    @classmethod
    def from_bytes(cls, data) -> "PrevalenceExport":
        meta, arrays = _format.unpack(data, "PrevalenceExport")
        _check_params(meta, "PrevalenceExport")
        m = meta["bits"]
        _format.expect(len(arrays) == 1 and arrays[0].dtype == np.uint8 and arrays[0].shape == (m // 8,),
                       "PrevalenceExport", "unexpected arrays")
        oid = meta.get("org_id")
        _format.expect(isinstance(oid, str) and len(oid) == 32 and all(c in "0123456789abcdef" for c in oid)
                       and isinstance(meta.get("first_day"), int) and isinstance(meta.get("last_day"), int),
                       "PrevalenceExport", "bad organisation id or window")
        params = {k: meta[k] for k in SHARED_PARAMS}
        bits = np.unpackbits(arrays[0], bitorder="little").astype(bool)
        return cls(params, oid, meta["first_day"], meta["last_day"], bits)

    def save(self, path) -> None:
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path) -> "PrevalenceExport":
        return cls.from_bytes(read_state_bytes_limited(path, _MAX_FILE, what="a prevalence export"))


def export_prevalence(engine, key: bytes, org_key: bytes, *, bits: int = 1 << 20, flip: float = 0.1,
                      sample: float = 1.0, min_share: float = 0.05, min_agents: int = 3
                      ) -> tuple[PrevalenceExport, dict[str, int]]:
    """The export of ``engine``'s current window (a :class:`~raresketch.Engine`) and what was counted.

    A cloud resource (tenant resources, web services, hosted domains, provider addresses: the engine's
    ``prevalence`` structure) is *common* when at least ``max(min_agents, ceil(min_share * active agents))``
    agents used it in the window; only common ones are inserted (rare ones never are), each kept with
    probability ``sample`` (a permanent keyed coin), then every position is randomised with probability
    ``flip`` (permanent: :func:`~raresketch.share._keys.noise`). A common resource whose name the state does
    not hold (the name table is bounded) cannot be keyed: counted in ``unnamed``.

    Returns the export and ``{"active_agents", "resources", "common", "unnamed", "sampled_out", "inserted"}``.
    O(resources in the window) plus O(bits).
    """
    p = {"scheme": _SCHEME, "bits": int(bits), "flip": float(flip), "sample": float(sample),
         "min_share": float(min_share), "min_agents": int(min_agents),
         "window_days": int(engine.config.training_days), "key_id": key_id(key)}
    try:
        _check_params(p, "PrevalenceExport")
    except ValueError:
        raise ValueError("export parameters: bits must be a power of two in 2**10..2**26, 0 < flip < 1, "
                         "0 < sample <= 1, 0 <= min_share <= 1, min_agents >= 1") from None
    base = engine.baseline
    today = base.today
    active = base.agents.active_agents(today + 1) if today else 0
    need = max(int(min_agents), math.ceil(min_share * active))
    keys, counts = base.structures["prevalence"].items()
    common = keys[counts >= need] if active >= min_agents else keys[:0]
    names = [engine.resource_name(int(k)) for k in common]
    named = [n for n in names if n is not None]
    dig = destination_digests(key, "cloud", named)
    keep = sampled(org_key, dig, sample)
    truth = np.zeros(bits, bool)
    truth[positions(dig[keep], bits)] = True
    randomised, value = noise(org_key, bits, flip)
    reported = np.where(randomised, value, truth)
    first = max(base.first_day, today - engine.config.training_days + 1) if today else 0
    stats = {"active_agents": int(active), "resources": int(keys.size), "common": int(common.size),
             "unnamed": len(names) - len(named), "sampled_out": int((~keep).sum()), "inserted": int(keep.sum())}
    return PrevalenceExport(p, org_id(key, org_key), int(first), int(today), reported), stats


@dataclass
class Consortium:
    """The merge of several organisations' exports: per position, how many read 1 (``votes``), and per
    organisation its id, its share of ones and its window. :meth:`lookup` estimates holders per destination."""

    params: dict[str, Any]
    org_ids: list[str]
    ones: np.ndarray            # float64 per organisation
    first_days: np.ndarray      # int64 per organisation
    last_days: np.ndarray
    votes: np.ndarray           # uint16 per position
    warnings: list[str] = field(default_factory=list)

    @property
    def n_orgs(self) -> int:
        return len(self.org_ids)

    def lookup(self, key: bytes, names: Sequence[str], kind: str = "cloud",
               exclude: PrevalenceExport | None = None) -> dict[str, np.ndarray]:
        """Per name: ``votes``, ``orgs`` (contributing organisations; ``ones``: their shares of ones, summed), ``estimate`` (unbiased, may be
        negative), ``low`` / ``high`` (95 % interval, clipped to ``[0, orgs]``) and ``excluded`` (whether
        ``exclude``'s vote, an organisation's own export, was taken out because it is part of this merge).
        ``key`` must be the consortium's (checked by its id). O(names) HMACs plus numpy."""
        if key_id(key) != self.params["key_id"]:
            raise ValueError("the key file is not the key this consortium file was made with")
        pos = positions(destination_digests(key, kind, names), self.params["bits"])
        v = self.votes[pos].astype(np.float64)
        n, t = float(self.n_orgs), float(self.ones.sum())
        excluded = exclude is not None and exclude.org_id in self.org_ids
        if excluded:
            j = self.org_ids.index(exclude.org_id)
            v -= exclude.bits[pos]
            n -= 1
            t -= float(self.ones[j])
        return {"votes": v.astype(np.int64), "orgs": np.full(len(pos), int(n)), "excluded": excluded, "ones": t,
                **_estimate(v, n, t, self.params["flip"], self.params["sample"])}

    def interval(self, votes, orgs: int, ones: float) -> dict[str, np.ndarray]:
        """``estimate`` / ``low`` / ``high`` of given vote counts among ``orgs`` organisations whose shares of ones
        sum to ``ones`` (what :meth:`lookup` computes, for other vote counts)."""
        return _estimate(np.asarray(votes, np.float64), float(orgs), float(ones), self.params["flip"],
                         self.params["sample"])

    def to_bytes(self) -> bytes:
        meta = {**self.params, "warnings": self.warnings[:20]}
        ids = np.frombuffer(bytes.fromhex("".join(self.org_ids)), np.uint8).reshape(self.n_orgs, 16)
        return _format.pack("Consortium", meta, [ids, self.ones.astype(np.float64), self.first_days.astype(np.int64),
                                                 self.last_days.astype(np.int64), self.votes.astype(np.uint16)])

    @classmethod
    def from_bytes(cls, data) -> "Consortium":
        meta, a = _format.unpack(data, "Consortium")
        _check_params(meta, "Consortium")
        _format.expect(len(a) == 5 and a[0].dtype == np.uint8 and a[0].ndim == 2 and a[0].shape[1] == 16
                       and all(x.shape == (a[0].shape[0],) for x in a[1:4]) and a[1].dtype == np.float64
                       and a[4].dtype == np.uint16 and a[4].shape == (meta["bits"],) and a[0].shape[0] >= 1,
                       "Consortium", "unexpected arrays")
        n = a[0].shape[0]
        _format.expect(bool(np.all((a[1] >= 0) & (a[1] <= 1))) and int(a[4].max(initial=0)) <= n,
                       "Consortium", "counts exceed the organisations")
        ids = [bytes(r).hex() for r in a[0]]
        return cls({k: meta[k] for k in SHARED_PARAMS}, ids, a[1], a[2], a[3], a[4],
                   [str(w) for w in meta.get("warnings", [])])

    def save(self, path) -> None:
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path) -> "Consortium":
        return cls.from_bytes(read_state_bytes_limited(path, _MAX_FILE, what="a consortium file"))


def _estimate(v: np.ndarray, n: float, t: float, flip: float, sample: float) -> dict[str, np.ndarray]:
    if n <= 0:
        z = np.zeros(v.shape)
        return {"estimate": z, "low": z, "high": z}
    d = sample * (1 - flip / 2 - t / n)
    est = (v - t) / d
    p = v / n
    centre = (p + _Z * _Z / (2 * n)) / (1 + _Z * _Z / n)
    half = _Z / (1 + _Z * _Z / n) * np.sqrt(p * (1 - p) / n + _Z * _Z / (4 * n * n))
    low = np.clip((n * (centre - half) - t) / d, 0, n)
    high = np.clip((n * (centre + half) - t) / d, 0, n)
    return {"estimate": est, "low": low, "high": high}


def merge_exports(exports: Sequence[PrevalenceExport], labels: Sequence[str] | None = None) -> Consortium:
    """Merge organisations' exports: one vote per organisation. Refuses (``ValueError``, one line naming the
    inputs) exports whose :data:`SHARED_PARAMS` differ, and two exports of one organisation (same ``org_id``:
    give one). O(organisations x bits)."""
    if not exports:
        raise ValueError("nothing to merge")
    labels = list(labels) if labels is not None else [f"export {i + 1}" for i in range(len(exports))]
    if len(exports) > 65535:
        raise ValueError(f"{len(exports)} exports: at most 65535 organisations per consortium file")
    first = exports[0]
    seen: dict[str, str] = {}
    for e, lab in zip(exports, labels):
        diff = [k for k in SHARED_PARAMS if e.params[k] != first.params[k]]
        if diff:
            k = diff[0]
            raise ValueError(f"{lab} and {labels[0]} differ in {k} ({e.params[k]!r} vs {first.params[k]!r}): "
                             "every export of a consortium must use the same parameters and key")
        if e.org_id in seen:
            raise ValueError(f"{lab} and {seen[e.org_id]} come from one organisation (id {e.org_id}): give one "
                             "export per organisation")
        seen[e.org_id] = lab
    votes = np.zeros(first.params["bits"], np.uint16)
    for e in exports:
        votes += e.bits
    last = np.array([e.last_day for e in exports], np.int64)
    warnings = []
    if last.max() - last.min() >= first.params["window_days"]:
        warnings.append(f"the exports' windows end {int(last.max() - last.min())} days apart (more than a window)")
    return Consortium(dict(first.params), [e.org_id for e in exports], np.array([e.ones for e in exports]),
                      np.array([e.first_day for e in exports], np.int64), last, votes, warnings)
