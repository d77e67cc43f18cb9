"""Reverse-lookup (PTR) names in place of the asked name, as Sysmon's ``DestinationHostname`` reports them.

Sysmon resolves the destination address backwards: a connection to an EC2 instance shows
``ec2-3-5-6-7.compute-1.amazonaws.com``, one to S3 ``s3-w.us-east-1.amazonaws.com``, to CloudFront
``server-13-224-1-2.fra56.r.cloudfront.net``, never the bucket or distribution the process asked for. The profiles'
``ptr`` section says which share of the agents report that way (``agent_share``) and the PTR shape of each
simulated net that has one (``templates``, octets as ``{a}.{b}.{c}.{d}``). On those agents, every legitimate
connection to an address of such a net carries the PTR name (the rows with no name too: the reverse lookup does
not depend on the process); other addresses keep the asked name, as a sensor joining DNS answers reports it.
Injected attacks keep their names (their ground truth names the destination).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._vec import arr, ptr_names, stable_hash

__all__ = ["PtrNames"]


class PtrNames:
    """Which agents report PTR names and the PTR shape of each net; :meth:`apply` rewrites a slice's names.

    The agents are chosen by a stable hash of (seed, agent), so adding this section draws nothing from the world's
    generator and leaves every other column of the traffic as it was."""

    def __init__(self, spec: dict[str, Any], nets: dict[str, list[tuple[int, int]]], seed: int, n_agents: int):
        share = float(spec.get("agent_share", 0.0))
        if not 0 <= share <= 1:
            raise ValueError(f"ptr.agent_share must be in [0, 1], got {share}")
        self.agent = np.array([stable_hash(seed, "ptr", a) % 10_000 < share * 10_000 for a in range(n_agents)], bool)
        self.nets: list[tuple[np.ndarray, np.ndarray, str]] = []
        for net, template in (spec.get("templates") or {}).items():
            if net not in nets:
                raise ValueError(f"ptr template for unknown net {net!r}")
            self.nets.append((np.array([b for b, _ in nets[net]], np.int64),
                              np.array([z for _, z in nets[net]], np.int64), template))

    def apply(self, domain: pa.Array, ips: np.ndarray, agents: np.ndarray) -> pa.Array:
        """``domain`` with the PTR name on the rows of PTR agents (``agents``: agent index per row) whose address
        (``ips``, uint32 per row) lies in a net with a template. O(rows x ranges), vectorised."""
        on = self.agent[agents] if len(agents) else np.zeros(0, bool)
        if not on.any() or not self.nets:
            return domain
        ip64 = ips.astype(np.int64)
        for first, size, template in self.nets:
            inside = on & ((ip64[:, None] >= first[None, :]) & (ip64[:, None] < (first + size)[None, :])).any(axis=1)
            if inside.any():
                pos = np.flatnonzero(inside)
                names = ptr_names(ips[pos], template)
                domain = pc.replace_with_mask(domain, arr(inside), names)
                on = on & ~inside
        return domain
