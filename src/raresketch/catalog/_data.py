"""The shipped lists (``data/catalog/*.tsv``, ``ip_ranges/``, the PSL PRIVATE blocks) and their provenance.

Every list carries its source, date and licence in its leading ``#`` comment lines; :func:`load_shipped` records
the relevant lines by list name, which :meth:`Catalog.sources` returns. See ``data/catalog/README.md``.
"""
from __future__ import annotations

import os
from importlib import resources
from typing import Callable

from ._ip import IpOwner, parse_cidr_spans, refresh_ip_ranges
from ._process import ProcessRules
from ._suffix import SuffixTrie, derive_service, psl_private_blocks, registrable_domain
from ._tenancy import read_ip_services, refresh_ip_services

__all__ = ["data_dir", "load_shipped", "read_tsv", "refresh"]


def data_dir() -> str:
    """The folder of the shipped lists (``raresketch/data/catalog``)."""
    return str(resources.files("raresketch") / "data" / "catalog")


def read_tsv(path: str) -> tuple[list[dict], list[str]]:
    """Rows (dicts by header) and the leading ``#`` comment lines (provenance) of a TSV file."""
    rows, comments, header = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                comments.append(line[1:].strip())
                continue
            if not line.strip():
                continue
            parts = line.split("\t")
            if header is None:
                header = parts
                continue
            parts += [""] * (len(header) - len(parts))
            rows.append(dict(zip(header, parts)))
    return rows, comments


def load_shipped(trie: SuffixTrie, add_im: Callable[[str, str, str], None], process: ProcessRules,
                 use_psl: bool, ip_ranges_dir: str | None,
                 web: dict[str, str] | None = None, provider_domains: set[str] | None = None
                 ) -> tuple[dict[str, str], list]:
    """Fill ``trie`` (PSL PRIVATE cloud blocks first, then ``free_subdomain_hosts.txt``, then
    ``cloud_suffixes.tsv``, which wins on naming and excludes rules with service ``-``), the IM domains (through
    ``add_im(service, match, domain)``), ``web`` (web-service host -> kind, ``web_services.tsv``),
    ``provider_domains`` (the registrable domain of every tenant suffix rule, and the providers' first-party
    domains of ``first_party_domains.tsv``: never a hosted domain) and ``process``.

    A trie value is ``(provider, service, whole)``: ``whole`` = the tenant label is everything left of the suffix.
    Returns the provenance by list name and the ``(network, priority, owner)`` entries of the published networks
    (from ``ip_ranges_dir``, else ``$RARESKETCH_IP_RANGES``, else the shipped snapshot), the per-service table
    ``ip_services.tsv.gz`` (priorities -0.6 / -0.5 by rank) over the merged lists (their provider's default class)."""
    data = data_dir()
    sources: dict[str, str] = {}
    web = {} if web is None else web
    provider_domains = set() if provider_domains is None else provider_domains
    proj, com = read_tsv(os.path.join(data, "cloud_suffixes.tsv"))
    sources["cloud_suffixes.tsv"] = " ".join(com[1:3]) + " " + com[5]
    excluded = {r["suffix"].lower() for r in proj if r["service"] == "-"}
    proj = [r for r in proj if r["service"] != "-"]
    whole = {(r["provider"], r["service"]) for r in proj if r.get("label") == "all"}
    proj_services = [(r["suffix"], r["provider"], r["service"]) for r in proj]

    def add(rule: str, prov: str, svc: str, override: bool) -> None:
        trie.add(rule, (prov, svc, (prov, svc) in whole), override=override)
        lit = ".".join(x for x in rule.lower().split(".") if "*" not in x and "?" not in x and "[" not in x)
        rd = registrable_domain(lit) if lit else None
        if rd:
            provider_domains.add(rd)
    if use_psl:
        sections, com = read_tsv(os.path.join(data, "psl_sections.tsv"))
        wanted = {r["title"]: (r["provider"], r["service"]) for r in sections}
        blocks, meta = psl_private_blocks()
        sources["public_suffix_list"] = (
            f"publicsuffixlist package PSL VERSION {meta.get('version')} COMMIT {meta.get('commit')}, "
            f"{len(wanted)} PRIVATE blocks selected by psl_sections.tsv")
        for title, rules in blocks:
            if title not in wanted:
                continue
            prov, svc = wanted[title]
            for rule in rules:
                if rule.lower() not in excluded:
                    add(rule, prov, derive_service(rule, svc, proj_services), False)
    hosts, com = _read_lines(os.path.join(data, "free_subdomain_hosts.txt"))
    sources["free_subdomain_hosts.txt"] = com[1]
    for h in hosts:
        if h not in excluded:
            add(h, registrable_label(h), "site", False)
    for r in proj:  # project list wins on naming
        add(r["suffix"], r["provider"], r["service"], True)

    rows, com = read_tsv(os.path.join(data, "first_party_domains.tsv"))
    sources["first_party_domains.tsv"] = " ".join(com[3:5])
    provider_domains.update(r["domain"].lower() for r in rows)

    rows, com = read_tsv(os.path.join(data, "web_services.tsv"))
    sources["web_services.tsv"] = " ".join(com[2:5])
    for r in rows:
        web[r["host"].lower()] = r["kind"]

    rows, com = read_tsv(os.path.join(data, "im_domains.tsv"))
    sources["im_domains.tsv"] = " ".join(com[:3])
    for r in rows:
        add_im(r["service"], r["match"], r["domain"])

    prov_rows, com = read_tsv(os.path.join(data, "ip_providers.tsv"))
    sources["ip_ranges"] = " ".join(com[1:4])
    ip_dir = ip_ranges_dir or os.environ.get("RARESKETCH_IP_RANGES") or os.path.join(data, "ip_ranges")
    ip_entries: list = []
    svc_path = os.path.join(ip_dir, "ip_services.tsv.gz")
    if not os.path.exists(svc_path):
        svc_path = os.path.join(data, "ip_services.tsv.gz")
    svc_rows, com = read_ip_services(svc_path)
    sources["ip_services.tsv.gz"] = " ".join(com[1:6]) + (f" (from {svc_path})" if not svc_path.startswith(data)
                                                          else "")
    owners: dict[tuple[str, str], IpOwner] = {}
    for prov, cls, net, rank in svc_rows:             # above every merged list (0..9), below user ranges (-1)
        owner = owners.get((prov, cls))
        if owner is None:
            owner = owners[(prov, cls)] = IpOwner(prov, cls)
        ip_entries.append((net, -0.6 + 0.1 * rank, owner))
    for r in prov_rows:
        owner = IpOwner(r["provider"], r["kind"], r["im_service"] or None)
        for fam in ("ipv4", "ipv6"):
            p = os.path.join(ip_dir, r["directory"], f"{fam}_merged.txt")
            if os.path.exists(p):
                with open(p, encoding="utf-8") as f:
                    ip_entries += [(n, int(r["priority"]), owner) for n in parse_cidr_spans(f.read())]
    if ip_dir != os.path.join(data, "ip_ranges"):
        sources["ip_ranges"] += f" (overridden by {ip_dir})"

    eng_rows, com = read_tsv(os.path.join(data, "script_engines.tsv"))
    sources["script_engines.tsv"] = " ".join(com[2:4])
    for r in eng_rows:
        process.add_engine(r["os"], r["pattern"], r["engine"])
    uw_rows, com = read_tsv(os.path.join(data, "user_writable_paths.tsv"))
    sources["user_writable_paths.tsv"] = " ".join(com[3:5])
    for r in uw_rows:
        process.add_writable(r["os"], r["pattern"])
    return sources, ip_entries


def _read_lines(path: str) -> tuple[list[str], list[str]]:
    """Lower-cased non-empty lines and the leading ``#`` comment lines of a one-entry-a-line list."""
    out, com = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("#"):
                com.append(s[1:].strip())
            elif s:
                out.append(s.lower())
    return out, com


def registrable_label(host: str) -> str:
    """The label left of the public suffix (``glitch`` for ``glitch.me``): a provider name for a tenant host."""
    rd = registrable_domain(host) or host
    return rd.split(".")[0]


def refresh(dest: str | None = None, timeout: float = 20.0, urls: dict[str, str] | None = None) -> str:
    """Re-download every shipped provider's published networks (see :func:`refresh_ip_ranges`) into ``dest``,
    and rebuild the per-service table from the providers' service-tagged feeds
    (:func:`~raresketch.catalog._tenancy.refresh_ip_services`, ``urls`` overrides their addresses); returns
    ``dest``. Raises ``RuntimeError`` (one line, naming the URL) when the network does not allow it."""
    rows, _ = read_tsv(os.path.join(data_dir(), "ip_providers.tsv"))
    dest = refresh_ip_ranges([r["directory"] for r in rows], dest, timeout)
    refresh_ip_services(dest, timeout=timeout, **({"urls": urls} if urls else {}))
    return dest
