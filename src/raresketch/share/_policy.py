"""What the engine does with a consortium file (docs/SHARING.md, "Policy"): the ``global_orgs`` evidence of
every alert, the suppression of rare-cloud alerts whose resource other organisations hold as common while the
local fleet is small, and the raise to Low of those no contributing organisation holds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import Config
from ._keys import read_key
from ._sketch import Consortium, PrevalenceExport

__all__ = ["GlobalPrevalence", "Verdict"]


@dataclass
class Verdict:
    """``action``: ``"suppress"``, ``"raise"`` (to Low) or ``""``; ``evidence``: the alert's ``global_orgs``."""

    action: str
    evidence: dict[str, Any]


class GlobalPrevalence:
    """A loaded consortium file with its key, the organisation's own export (its vote excluded) and the policy's
    thresholds (``Config.global_min_orgs``, ``Config.global_small_fleet``). :meth:`judge` costs one HMAC and a
    few array reads per alert."""

    def __init__(self, consortium: Consortium, key: bytes, own: PrevalenceExport | None = None,
                 min_orgs: int = 3, small_fleet: int = 200):
        if own is not None and own.params["key_id"] != consortium.params["key_id"]:
            raise ValueError("the own export was made with another consortium key")
        consortium.lookup(key, [])          # checks the key
        self.consortium, self.key, self.own = consortium, key, own
        self.min_orgs, self.small_fleet = int(min_orgs), int(small_fleet)
        self._cache: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_config(cls, config: Config) -> "GlobalPrevalence":
        """Load ``config.global_prevalence`` with ``config.global_key_file`` (required) and
        ``config.global_own_export`` (optional); ``ValueError`` naming the file that is wrong."""
        if not config.global_key_file:
            raise ValueError("global_prevalence needs global_key_file (the consortium key)")
        try:
            cons = Consortium.load(config.global_prevalence)
        except (OSError, ValueError) as e:
            raise ValueError(f"global_prevalence {config.global_prevalence}: {getattr(e, 'strerror', None) or e}") from None
        try:
            key = read_key(config.global_key_file, "consortium key file")
        except OSError as e:
            raise ValueError(f"global_key_file {config.global_key_file}: {e.strerror or e}") from None
        own = None
        if config.global_own_export:
            try:
                own = PrevalenceExport.load(config.global_own_export)
            except (OSError, ValueError) as e:
                raise ValueError(f"global_own_export {config.global_own_export}: "
                                 f"{getattr(e, 'strerror', None) or e}") from None
        return cls(cons, key, own, config.global_min_orgs, config.global_small_fleet)

    def orgs(self, resource: str) -> dict[str, Any]:
        """The ``global_orgs`` evidence of a cloud resource: ``estimate`` (organisations holding it as common,
        excluding this one), ``interval`` (95 %), ``votes``, ``contributing_orgs``, ``own_vote_excluded``,
        ``min_orgs``. Cached per resource (bounded)."""
        got = self._cache.get(resource)
        if got is None:
            r = self.consortium.lookup(self.key, [resource], exclude=self.own)
            got = {"estimate": round(float(r["estimate"][0]), 2),
                   "interval": [round(float(r["low"][0]), 2), round(float(r["high"][0]), 2)],
                   "votes": int(r["votes"][0]), "contributing_orgs": int(r["orgs"][0]),
                   "own_vote_excluded": bool(r["excluded"]), "min_orgs": self.min_orgs}
            # the lower end once min_orgs - 1 votes (what a tolerated coalition could forge) are discounted
            low = self.consortium.interval([max(0, got["votes"] - self.min_orgs + 1)], got["contributing_orgs"],
                                           r["ones"])["low"]
            got["low_discounting_forgeable_votes"] = round(float(low[0]), 2)
            if len(self._cache) >= 1 << 16:
                self._cache.clear()
            self._cache[resource] = got
        return got

    def judge(self, detector: str, resource: str | None, active_agents: int) -> Verdict:
        """The policy for one alert of ``detector`` on cloud resource ``resource`` (None: the event has none; an
        IM alert's endpoint may be cloud-hosted) in a fleet of ``active_agents``:

        - ``suppress`` a rare-cloud alert when the fleet is below ``small_fleet``, at least ``min_orgs`` other
          organisations voted for the resource and the interval's lower end is at least ``min_orgs`` (one
          member, or two, marking a C2 common never suffice);
        - ``raise`` a rare-cloud alert to Low when at least ``min_orgs`` organisations contribute and none is
          known to hold the resource even if ``min_orgs - 1`` of the votes are forged: the lower end of the
          interval of ``votes - (min_orgs - 1)`` is 0 (so fewer than ``min_orgs`` colluding members cannot take
          the raise away either; the price: a resource only a couple of organisations hold is raised too);
        - else only the evidence. An IM alert is never suppressed or raised; one without a cloud resource gets
          ``{"exchanged": false, "contributing_orgs": n}``."""
        if resource is None:     # IM services are not exchanged (docs/SHARING.md): only the consortium's size
            n = self.consortium.n_orgs - (self.own is not None and self.own.org_id in self.consortium.org_ids)
            return Verdict("", {"exchanged": False, "contributing_orgs": int(n)})
        ev = self.orgs(resource)
        action = ""
        if detector == "rare_cloud" and ev["contributing_orgs"] >= self.min_orgs:
            if (active_agents < self.small_fleet and ev["votes"] >= self.min_orgs
                    and ev["interval"][0] >= self.min_orgs):
                action = "suppress"
            elif ev["low_discounting_forgeable_votes"] <= 0:
                action = "raise"
        return Verdict(action, dict(ev, raised_to_low=action == "raise"))
