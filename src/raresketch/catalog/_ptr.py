"""Reverse-lookup (PTR) names of provider addresses: recognised by shape, they are the *address's* identity.

Sysmon's ``DestinationHostname`` (and what Winlogbeat maps to ``destination.domain``) is the PTR of the address,
never the name the process asked for. A PTR such as ``server-13-224-1-2.fra56.r.cloudfront.net`` names the
provider's machine, not a tenant: resolving it as a hostname gives a resource every tenant shares
(``aws/cloudfront/r``) or one per address under a wrong service. :func:`ptr_address` recognises the shapes below;
the catalogue then treats the event as if it had no name (the event's address decides; when there is none, the
address the PTR encodes), and keeps the PTR text as evidence (``raresketch.destination.ptr``).

Shapes (provider documentation and observed reverse zones, written by the raresketch maintainers, 2026-12-06):
AWS EC2 ``ec2-A-B-C-D.<region>.compute.amazonaws.com`` / ``compute-1``; AWS S3 fronts ``s3-w.<region>.amazonaws.com``,
``s3-1-w.amazonaws.com``, ``s3-r-w.<region>.amazonaws.com``; CloudFront ``server-A-B-C-D.<pop>.r.cloudfront.net``;
Google Cloud VMs ``D.C.B.A.bc.googleusercontent.com`` (reversed); Google ``*.1e100.net``; Akamai
``aA-B-C-D.deploy.static.akamaitechnologies.com`` and ``*.akamaitechnologies.com``; Linode ``liN-N.members.linode.com``
and ``A-B-C-D.ip.linodeusercontent.com``; Vultr ``*.vultrusercontent.com``; Microsoft edge ``*.msedge.net``; and the
generic ``...A-B-C-D...`` form (an address written with dashes inside the first label, as many hosting and ISP
reverse zones do). DigitalOcean droplets' PTR is the droplet's own name: not recognisable by shape.
"""
from __future__ import annotations

import re

__all__ = ["PTR_SHAPES", "ptr_address"]

_Q = r"(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})"
_D = r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})"
#: (shape name, regex, how the groups give the address: "in order", "reversed" or None)
PTR_SHAPES: list[tuple[str, str, str | None]] = [
    ("aws-ec2", rf"^ec2-{_Q}\.(?:[a-z0-9-]+\.)?compute(?:-1)?\.amazonaws\.com(?:\.cn)?$", "in order"),
    ("aws-s3", r"^s3(?:-[a-z0-9]+)*-w\.(?:[a-z0-9-]+\.)?amazonaws\.com$", None),
    ("aws-cloudfront", rf"^server-{_Q}\.[a-z0-9-]+\.r\.cloudfront\.net$", "in order"),
    ("gcp-vm", rf"^{_D}\.bc\.googleusercontent\.com$", "reversed"),
    ("google", r"\.1e100\.net$", None),
    ("akamai", rf"^a{_Q}\.deploy\.(?:static\.)?akamaitechnologies\.com$", "in order"),
    ("akamai", r"\.akamaitechnologies\.com$", None),
    ("linode", rf"^{_Q}\.ip\.linodeusercontent\.com$", "in order"),
    ("linode", r"^li\d+-\d+\.members\.linode\.com$", None),
    ("vultr", r"\.vultrusercontent\.com$", None),
    ("microsoft-edge", r"msedge\.net$", None),
    ("generic", rf"^[a-z]*-?{_Q}(?:[.-][a-z0-9-]*)?\.[a-z0-9.-]+$", "in order"),
]
_RES = [(name, re.compile(rx), how) for name, rx, how in PTR_SHAPES]
_HINT = re.compile(r"\d-\d|1e100|akamaitech|msedge|vultrusercontent|members\.linode|\d\.bc\.google|^s3-")


def ptr_address(name: str) -> tuple[str, str | None] | None:
    """``(shape name, encoded IPv4 address or None)`` when the normalised ``name`` has a PTR shape, else None.
    O(len(name)); a name without a digit-dash-digit or a provider PTR zone costs one regex search."""
    if not _HINT.search(name):
        return None
    for shape, rx, how in _RES:
        m = rx.search(name)
        if m is None:
            continue
        addr = None
        if how is not None:
            g = m.groups()[:4]
            g = g[::-1] if how == "reversed" else g
            if all(0 <= int(x) <= 255 for x in g):
                addr = ".".join(str(int(x)) for x in g)
            elif shape == "generic":
                continue
        return shape, addr
    return None
