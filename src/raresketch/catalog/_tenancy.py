"""Which part of a provider's published space a tenant can rent: the derived table ``ip_services.tsv``.

The merged per-provider lists (``ip_ranges/``) say *whether* an address is a provider's; the providers' own
service-tagged feeds say *which service* it serves. This module derives, from those feeds, one compact table of
``provider, class, cidr`` rows (collapsed per class) with three classes:

- ``cloud``: tenant-rentable compute and storage (AWS ``EC2``/``S3``, Google ``cloud.json`` customer ranges, Azure
  ``AzureCloud.*`` less every other service tag, Oracle ``OCI``/``OBJECT_STORAGE``): an address here is a tenant's resource ``<provider>/ip/<address>``;
- ``platform``: the provider's own first-party services (AWS prefixes tagged only ``AMAZON`` or another AWS
  service, every Azure service tag other than ``AzureCloud*``, Oracle ``OSN``, GitHub's ``api/meta`` services):
  known, shown by ``inspect``, never a tenant resource;
- ``edge``: shared CDN fronts that serve many tenants' names (AWS ``CLOUDFRONT``, Fastly, Akamai): an address
  identifies no tenant.

Within the table the most specific prefix wins (a ``/24`` tagged ``EC2`` inside a ``/16`` tagged ``AMAZON`` is
``cloud``); a prefix listed under two classes keeps the first of ``cloud``, ``edge``, ``platform`` (for Azure,
where every service tag's prefixes are also AzureCloud's, the service tag: ``platform``). Azure's ``platform`` rows
have rank 0: they win over its ``cloud`` rows even where those are more specific. What the
table does not cover falls back to the provider's default class in ``ip_providers.tsv``.
:func:`derive_ip_services` is pure (bytes in, rows out); :func:`refresh_ip_services` downloads the feeds.
"""
from __future__ import annotations

import gzip
import ipaddress
import json
import os
import urllib.error
import urllib.request
from typing import Iterable

from ._ip import cidr_span

__all__ = ["CLASSES", "FEEDS", "derive_ip_services", "read_ip_services", "refresh_ip_services",
           "write_ip_services"]

CLASSES = ("cloud", "edge", "platform")

#: The providers' feeds (file name -> URL) that :func:`refresh_ip_services` downloads. Azure publishes its
#: Service Tags under a weekly-changing URL; the femueller/cloud-ip-ranges mirror keeps a stable one.
FEEDS = {
    "aws-ip-ranges.json": "https://ip-ranges.amazonaws.com/ip-ranges.json",
    "google-cloud-ip-ranges.json": "https://www.gstatic.com/ipranges/cloud.json",
    "microsoft-azure-ip-ranges.json":
        "https://raw.githubusercontent.com/femueller/cloud-ip-ranges/master/microsoft-azure-ip-ranges.json",
    "oracle-cloud-ip-ranges.json": "https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",
    "fastly-ip-ranges.json": "https://api.fastly.com/public-ip-list",
    "github-ip-ranges.json": "https://api.github.com/meta",
    "akamai-v4-ip-ranges.txt":
        "https://raw.githubusercontent.com/femueller/cloud-ip-ranges/master/akamai-v4-ip-ranges.txt",
}

_AWS_CLASS = {"EC2": "cloud", "S3": "cloud", "CLOUDFRONT": "edge", "CLOUDFRONT_ORIGIN_FACING": "platform"}
_GITHUB_KEYS = ("hooks", "web", "api", "git", "packages", "pages", "importer")   # GitHub's own (not Actions on Azure)
_ORACLE_CLASS = {"OCI": "cloud", "OBJECT_STORAGE": "cloud", "OSN": "platform"}
# rank 0 rows win over rank 1 rows whatever their prefix lengths: a regional AzureCloud prefix is often *more*
# specific than a service tag's (AzureActiveDirectory's 40.126.0.0/18 holds AzureCloud's 40.126.35.0/24)
_FIRST = {("azure", "platform")}


def _net(s: str):
    return ipaddress.ip_network(s.strip(), strict=False)


def derive_ip_services(feeds: dict[str, bytes]) -> list[tuple[str, str, str, str]]:
    """``(provider, class, cidr, rank)`` rows from the feeds present in ``feeds`` (file name -> content, names as in
    :data:`FEEDS`); missing feeds contribute nothing. Raises ``ValueError`` naming a feed that does not parse.
    O(P log P) for P prefixes (about 100k, mostly Azure's)."""
    by: dict[tuple[str, object], str] = {}       # (provider, network) -> class, first of CLASSES wins

    def put(provider: str, cls: str, net, order=CLASSES) -> None:
        key = (provider, net)
        old = by.get(key)
        if old is None or order.index(cls) < order.index(old):
            by[key] = cls

    for name, data in feeds.items():
        try:
            if name == "aws-ip-ranges.json":
                doc = json.loads(data)
                for p in doc["prefixes"] + doc.get("ipv6_prefixes", []):
                    cidr = p.get("ip_prefix") or p.get("ipv6_prefix")
                    put("aws", _AWS_CLASS.get(p["service"], "platform"), _net(cidr))
            elif name == "google-cloud-ip-ranges.json":
                for p in json.loads(data)["prefixes"]:
                    put("google", "cloud", _net(p.get("ipv4Prefix") or p.get("ipv6Prefix")))
            elif name == "microsoft-azure-ip-ranges.json":
                for v in json.loads(data)["values"]:
                    # AzureCloud.<region>: Azure's public space, where tenants rent addresses; every other tag
                    # (more specific inside it) is a Microsoft service. Microsoft 365 and the rest of Microsoft's
                    # published space are in no AzureCloud tag: the provider default (platform) covers them.
                    cls = "cloud" if v["name"].startswith("AzureCloud") else "platform"
                    for cidr in v["properties"]["addressPrefixes"]:
                        put("azure", cls, _net(cidr), ("platform", "edge", "cloud"))
            elif name == "oracle-cloud-ip-ranges.json":
                for r in json.loads(data)["regions"]:
                    for c in r["cidrs"]:
                        cls = min((_ORACLE_CLASS.get(t, "platform") for t in c["tags"]), key=CLASSES.index)
                        put("oracle", cls, _net(c["cidr"]))
            elif name == "fastly-ip-ranges.json":
                doc = json.loads(data)
                for cidr in doc.get("addresses", []) + doc.get("ipv6_addresses", []):
                    put("fastly", "edge", _net(cidr))
            elif name == "github-ip-ranges.json":
                doc = json.loads(data)
                for k in _GITHUB_KEYS:
                    for cidr in doc.get(k, []):
                        put("github", "platform", _net(cidr))
            elif name.startswith("akamai-"):
                for line in data.decode().splitlines():
                    if line.strip():
                        put("akamai", "edge", _net(line))
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{name}: not a provider feed this version understands ({e!r})") from None
    # documented platform addresses no feed lists: Azure's host endpoint (DHCP, DNS, health probes: Microsoft,
    # "What is IP address 168.63.129.16?") and the instance metadata address range's public twin is private (none)
    if "microsoft-azure-ip-ranges.json" in feeds:
        put("azure", "platform", _net("168.63.129.16/32"))
    # collapse per (provider, class); a collapsed prefix equal to one of an earlier class is dropped
    groups: dict[tuple[str, str], list] = {}
    for (prov, net), cls in by.items():
        groups.setdefault((prov, cls), []).append(net)
    rows, seen = [], set()
    for prov in sorted({p for p, _ in groups}):
        for cls in sorted(CLASSES, key=lambda c: ((prov, c) not in _FIRST, CLASSES.index(c))):
            nets = groups.get((prov, cls), [])
            for fam in (4, 6):
                for n in ipaddress.collapse_addresses([x for x in nets if x.version == fam]):
                    if (prov, n) not in seen:
                        seen.add((prov, n))
                        rows.append((prov, cls, str(n), "0" if (prov, cls) in _FIRST else "1"))
    return rows


def _open(path: str, mode: str):
    """A text file, gzip-compressed when ``path`` ends with ``.gz`` (the shipped table is, about 140 KB)."""
    if path.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def write_ip_services(rows: Iterable[tuple[str, ...]], path: str, provenance: list[str]) -> None:
    """Write the table atomically (``path`` + ``.tmp`` then rename) with ``#`` provenance lines; gzip when
    ``path`` ends with ``.gz``."""
    tmp = path + ".tmp" + (".gz" if path.endswith(".gz") else "")
    with _open(tmp, "w") as f:
        for line in provenance:
            f.write(f"# {line}\n")
        f.write("provider\tclass\tcidr\trank\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    os.replace(tmp, path)


def read_ip_services(path: str) -> tuple[list[tuple[str, str, tuple[int, int, int], int]], list[str]]:
    """``(provider, class, span, rank)`` rows and the provenance lines of a table written by
    :func:`write_ip_services` (rank 0 wins over rank 1 whatever the prefix lengths; within a rank the most
    specific prefix wins). ``span`` is the network's :func:`~raresketch.catalog._ip.cidr_span` (first, last,
    prefix length in the 129-bit space): the same as parsing with ``ipaddress`` at about a twentieth of the
    cost, which is most of the catalogue's start-up. Raises ``ValueError`` naming a bad line."""
    rows, com = [], []
    with _open(path, "r") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                com.append(line[1:].strip())
                continue
            if not line or line.startswith("provider\t"):
                continue
            parts = line.split("\t")
            if len(parts) != 4 or parts[1] not in CLASSES or parts[3] not in ("0", "1"):
                raise ValueError(f"{path}:{n}: expected provider, class ({'/'.join(CLASSES)}), cidr, rank (0/1): "
                                 f"{line!r}")
            try:
                rows.append((parts[0], parts[1], cidr_span(parts[2].strip()), int(parts[3])))
            except ValueError as e:
                raise ValueError(f"{path}:{n}: {e}") from None
    return rows, com


def refresh_ip_services(dest: str, timeout: float = 20.0, urls: dict[str, str] | None = None,
                        date: str | None = None) -> str:
    """Download every feed of :data:`FEEDS` (or ``urls``), derive the table and write ``dest/ip_services.tsv``
    (gzip-compressed ``ip_services.tsv.gz``; only after every feed downloaded and parsed). Returns the path. Raises ``RuntimeError`` naming the URL when
    the network does not allow it; the shipped table stays in use."""
    import datetime as _dt

    feeds: dict[str, bytes] = {}
    for name, u in (urls or FEEDS).items():
        try:
            with urllib.request.urlopen(u, timeout=timeout) as r:  # noqa: S310 (fixed https URLs)
                feeds[name] = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"refresh failed: {u}: HTTP {e.code}; the shipped snapshot stays in use") from e
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise RuntimeError(f"refresh failed: cannot download {u} ({e}); this network does not allow it. "
                               "The shipped snapshot stays in use.") from e
    rows = derive_ip_services(feeds)
    os.makedirs(dest, exist_ok=True)
    path = os.path.join(dest, "ip_services.tsv.gz")
    day = date or _dt.date.today().isoformat()
    write_ip_services(rows, path, [
        "Tenant-rentable (cloud), shared CDN (edge) and first-party (platform) networks per provider.",
        f"Source: the providers' service-tagged feeds, downloaded {day} by raresketch catalog refresh "
        f"({', '.join(sorted(feeds))}); derived by raresketch.catalog._tenancy.derive_ip_services.",
        "Licence: the providers' public feeds (facts); the derived table is distributed with raresketch."])
    return path
