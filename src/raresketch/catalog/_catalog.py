"""The catalogue: what a destination is (cloud resource, IM service, allow-listed) and what a process is (key,
scripting engine, user-writable path, renamed binary), from the shipped lists plus user extensions.

Sources, all shipped as data with provenance (see ``data/catalog/README.md``, :meth:`Catalog.sources`):

- cloud resources by hostname: the Public Suffix List PRIVATE section (from the ``publicsuffixlist``
  package, offline), restricted to the cloud/hosting blocks named in ``psl_sections.tsv``, plus the project
  list ``cloud_suffixes.tsv`` (wins on naming; adds what the PSL lacks, and regional templates);
- cloud / IM networks by address: ``ip_ranges/`` (dated snapshot) with owners in ``ip_providers.tsv``;
- IM services by domain: ``im_domains.tsv`` (``suffix`` = the domain and all subdomains, ``exact`` = that name);
- processes: ``script_engines.tsv`` (globs per OS), ``user_writable_paths.tsv`` (regexes per OS);
- user extensions and allow-list: a TOML file (see :meth:`Catalog.__init__`).

Keys (docs/DETECTORS.md): cloud resource ``provider/service/label`` where ``label`` is the single label left of
the matched suffix (``mybucket`` in ``mybucket.s3.us-west-2.amazonaws.com``; for a rule ending in ``*`` that
covers the whole name, as EC2 ``ec2-1-2-3-4.compute-1.amazonaws.com``, the label the ``*`` matched), or
``provider/ip/<address>`` for an IP-only destination inside a published cloud network; destination key =
lower-cased FQDN, else the IP; process key = lower-cased image base name, plus ``|`` and the lower-cased
signer when known.

Resolution is memoised per distinct value (LRU, and per parent domain for hostnames); :meth:`Catalog.resolve_batch`
goes through a :class:`~raresketch.catalog._resolver.CatalogResolver`, so its cost grows with the number of
*distinct* hostnames / IPs / processes, not rows.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import re
import threading
import tomllib
from dataclasses import dataclass
from typing import Any, Iterable

import pyarrow as pa

from ..events import MAYBE_IP, normalize_domain, normalize_ip
from ._batch import RESOLVED_SCHEMA
from ._data import load_shipped
from ._ip import IpOwner, IpTable, ip_values
from ._process import ProcessInfo, ProcessRules
from ._ptr import ptr_address
from ._resolver import CatalogResolver
from ._suffix import SuffixTrie, registrable_domain

__all__ = ["Catalog", "HostInfo", "default_catalog"]


@dataclass(frozen=True)
class HostInfo:
    """Resolution of one hostname. ``cloud_resource`` is the key ``provider/service/label`` (None when the
    name is the provider's own endpoint, e.g. ``s3.amazonaws.com``). A reverse-lookup name (``ptr``, its shape
    recognised) has no ``name`` (it is the address's identity) and ``ptr_address`` is the address it encodes, if
    any; ``hosted`` is the registrable domain of a name that would be a hosted domain
    (``<provider>/hosted/<hosted>``) if its address lies in a provider's tenant-rentable network."""

    name: str | None
    cloud_provider: str | None = None
    cloud_service: str | None = None
    cloud_label: str | None = None
    cloud_resource: str | None = None
    im_service: str | None = None
    allowlisted: bool = False
    ptr: str | None = None
    hosted: str | None = None
    ptr_address: str | None = None


class Catalog:
    """Resolves destinations (hostname, IP) and processes against the shipped lists plus user extensions.

    Parameters
    ----------
    extensions : path or list of paths, optional
        TOML files adding entries and an allow-list::

            source = "acme SOC, 2026-11-01"          # recorded in sources()
            [[cloud]]                                  # tenant-controlled suffixes
            provider = "acme"
            service = "files"
            suffix = "files.acme.example"              # '*' = one label, 'x-*' = glob in a label
            [[im]]
            service = "mattermost"
            match = "suffix"                           # or "exact"
            domain = "chat.acme.example"
            [[ip_ranges]]
            provider = "acme"
            kind = "cloud"                             # or "im" with im_service = "..."
            cidrs = ["203.0.113.0/24", "2001:db8::/32"]
            [process]
            script_engines = [{os = "windows", pattern = "autohotkey*.exe", engine = "autohotkey"}]
            user_writable_paths = [{os = "windows", pattern = "^d:/scratch/"}]
            [allow]
            destinations = ["mybucket.s3.amazonaws.com", ".corp.example"]   # leading '.' = suffix
            processes = ["backup.exe|acme corp", "tool.exe|*"]     # name|trusted signer; '|*' = any binary
    use_psl : bool
        Include the PSL PRIVATE cloud/hosting blocks (default True).
    ip_ranges_dir : str, optional
        A directory laid out like ``data/catalog/ip_ranges`` (e.g. written by :func:`refresh_ip_ranges`);
        default: ``$RARESKETCH_IP_RANGES`` if set, else the shipped snapshot.
    cache_size : int
        Entries of each per-value LRU memo (hostnames, processes).
    """

    def __init__(self, extensions: str | os.PathLike | Iterable[str | os.PathLike] | None = None, *,
                 use_psl: bool = True, ip_ranges_dir: str | None = None, cache_size: int = 1 << 18):
        self._trie = SuffixTrie()
        self._im_exact: dict[str, str] = {}
        self._im_suffix: dict[str, str] = {}
        self._allow_exact: set[str] = set()
        self._allow_suffix: set[str] = set()
        self._rules = ProcessRules()
        self._web: dict[str, str] = {}                 # web-service host -> kind (web_services.tsv)
        self._provider_domains: set[str] = set()      # registrable domains of the tenant suffix rules
        self._sources, ip_entries = load_shipped(self._trie, self._add_im, self._rules, use_psl, ip_ranges_dir,
                                                 self._web, self._provider_domains)
        if extensions is not None:
            paths = [extensions] if isinstance(extensions, (str, os.PathLike)) else list(extensions)
            for p in paths:
                ip_entries += self._load_extension(os.fspath(p))
        self._ip = IpTable(ip_entries)

        self.resolve_host = functools.lru_cache(maxsize=cache_size)(self._resolve_host)  # type: ignore[method-assign]
        self._cache_size = cache_size
        self._parents: dict[str, tuple] = {}       # parent domain -> _parent_info (bounded by cache_size)
        self._process = functools.lru_cache(maxsize=cache_size)(self._rules.info)
        self._batch_lock = threading.Lock()
        self._batch_resolver: CatalogResolver | None = None

    # ------------------------------------------------------------------ loading helpers
    def _add_im(self, service: str, match: str, domain: str) -> None:
        d = normalize_domain(domain)
        if not d:
            raise ValueError(f"IM entry for {service!r}: empty domain")
        if match in ("suffix", "domain"):
            self._im_suffix[d] = service
        elif match in ("exact", "full"):
            self._im_exact[d] = service
        else:
            raise ValueError(f"IM entry {domain!r}: match must be 'suffix' or 'exact', got {match!r}")

    def _load_extension(self, path: str) -> list:
        with open(path, "rb") as f:
            try:
                doc = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{path}: invalid TOML ({e})") from e
        self._sources[f"extension {os.path.basename(path)}"] = str(doc.get("source", path))
        for e in doc.get("cloud", []):
            self._trie.add(e["suffix"], (e["provider"], e.get("service", "custom"), e.get("label") == "all"),
                           override=True)
        for e in doc.get("web", []):
            self._web[normalize_domain(e["host"])] = e.get("kind", "custom")
        for e in doc.get("im", []):
            self._add_im(e["service"], e.get("match", "suffix"), e["domain"])
        entries = []
        for e in doc.get("ip_ranges", []):
            owner = IpOwner(e["provider"], e.get("kind", "cloud"), e.get("im_service"))
            if owner.kind not in ("cloud", "platform", "edge", "im"):
                raise ValueError(f"{path}: ip_ranges kind must be 'cloud', 'platform', 'edge' or 'im', "
                                 f"got {owner.kind!r}")
            for c in e.get("cidrs", []):
                entries.append((ipaddress.ip_network(c, strict=False), -1, owner))  # priority -1: user ranges win overlaps
        proc = doc.get("process", {})
        for e in proc.get("script_engines", []):
            e = {"pattern": e} if isinstance(e, str) else e
            self._rules.add_engine(e.get("os", "any"), e["pattern"], e.get("engine", e["pattern"]))
        for e in proc.get("user_writable_paths", []):
            e = {"pattern": e} if isinstance(e, str) else e
            self._rules.add_writable(e.get("os", "any"), e["pattern"])
        allow = doc.get("allow", {})
        for d in allow.get("destinations", []):
            if d.startswith("."):
                self._allow_suffix.add(normalize_domain(d[1:]))
            else:
                nd = normalize_domain(d)
                self._allow_exact.add(normalize_ip(nd) or nd)
        for p in allow.get("processes", []):
            self._rules.add_allowed(p)
        return entries

    # ------------------------------------------------------------------ scalar API
    def sources(self) -> dict[str, str]:
        """Provenance (source, version/date) of every list in use, by list name."""
        return dict(self._sources)

    def _resolve_host(self, name: str | None) -> HostInfo:
        """One hostname -> :class:`HostInfo` (normalised first; an IP literal resolves to nothing).
        O(labels); memoised (LRU) as ``resolve_host``."""
        n, lit, prov, svc, label, res, im, allowed, ptr, hosted = self._host_tuples([name])[0]
        return HostInfo(None if ptr else n, prov, svc, label, res, im, allowed, ptr, hosted, lit if ptr else None)

    def _host_tuples(self, names) -> list[tuple]:
        """``(normalised name, IP literal, provider, service, label, resource, IM service, allow-listed, PTR,
        hosted)`` for each raw hostname: the one implementation behind :meth:`resolve_host`, :meth:`resolve_batch`
        and the Engine's key resolver. An IP-literal name has only its literal (and allow-listing by address).

        Order of the name rules: an IP literal; a reverse-lookup shape (:func:`~raresketch.catalog._ptr.ptr_address`:
        ``ptr`` = the name, the literal = the address it encodes, no cloud answer: the address decides); a web
        service's own host (``web/<kind>/<host>``); a tenant suffix rule (``provider/service/label``, the label being
        the tenant-controlled part); a subdomain of a web service; else ``hosted`` = the name's registrable domain,
        unless it is an IM domain or a provider's own domain (the compiled pass makes it ``<provider>/hosted/...``
        when the event's address is tenant-rentable).

        What depends on the parent domain (``b.c`` of ``a.b.c``: the suffix-rule walk, IM, web-service and
        allow-list suffixes, the registrable domain) is memoised per parent, so a stream of new names under known
        parents (``<x>.s3.amazonaws.com``) costs a few dict look-ups and one trie step each; a new parent costs
        O(labels) and one PSL look-up."""
        im_exact, im_suffix, web = self._im_exact.get, self._im_suffix.get, self._web.get
        allow_exact, allow_suffix = self._allow_exact, self._allow_suffix
        parents, extend = self._parents, SuffixTrie.extend
        out = []
        for name in names:
            n = normalize_domain(name)
            if not n:
                out.append((n, None, None, None, None, None, None, False, None, None))
                continue
            lit = _ip_literal(n)
            if lit is not None:
                out.append((n, lit, None, None, None, None, None, lit in allow_exact, None, None))
                continue
            k = n.find(".")
            first, parent = (n, "") if k < 0 else (n[:k], n[k + 1:])
            memo = parents.get(parent)
            if memo is None:
                memo = self._parent_info(parent)
                if len(parents) >= self._cache_size:
                    parents.clear()
                parents[parent] = memo
            best, frontier, im_parent, allowed_parent, nl, web_parent, rd_parent = memo
            im = im_exact(n) or im_suffix(n) or im_parent
            allowed = allowed_parent or n in allow_exact or n in allow_suffix
            ptr = ptr_address(n)
            if ptr is not None:
                out.append((n, ptr[1], None, None, None, None, im, allowed, n, None))
                continue
            prov = svc = label = res = hosted = None
            kind = web(n)
            if kind is not None:
                prov, svc, label = "web", kind, n
            else:
                m = extend(best, frontier, first, nl + 1) if frontier else best
                if m is not None:
                    depth, (prov, svc, whole), star_label = m
                    # a rule ending inside the name names the tenant part left of it; one consuming every label,
                    # its ``*``
                    if depth > nl:
                        label = star_label
                    elif whole:
                        label = n.rsplit(".", depth)[0]
                    else:
                        label = n.rsplit(".", depth + 1)[-depth - 1]
                elif web_parent is not None:
                    prov, svc, label = "web", web_parent[0], web_parent[1]
            if prov is not None:
                res = f"{prov}/{svc}/{label}" if label else None
            elif im is None:
                rd = rd_parent if rd_parent else (registrable_domain(n) if parent else None)
                if rd is not None and rd not in self._provider_domains:
                    hosted = rd
            out.append((n, None, prov, svc, label, res, im, allowed, None, hosted))
        return out

    def _parent_info(self, parent: str) -> tuple:
        """(trie match, frontier, IM service by suffix, allow-listed by suffix, labels, (web kind, web host) by
        suffix, registrable domain) of a parent domain ("" for a single-label name): what :meth:`_host_tuples`
        memoises."""
        labels = parent.split(".") if parent else []
        best, frontier = self._trie.walk(labels[::-1])
        im, allowed, web = None, False, None
        suf = parent
        while suf:                                        # every suffix, longest first: b.c, c
            if im is None:
                im = self._im_suffix.get(suf)
            if not allowed and suf in self._allow_suffix:
                allowed = True
            if web is None and suf in self._web:
                web = (self._web[suf], suf)
            k = suf.find(".")
            suf = suf[k + 1:] if k >= 0 else ""
        rd = registrable_domain(parent) if "." in parent else None
        return best, frontier, im, allowed, len(labels), web, rd

    def resolve_ip(self, ip: str | None) -> IpOwner | None:
        """The published owner of one address (cloud provider or IM network), or None. O(log R)."""
        return self._ip.owner(normalize_ip(ip) if ip else None)

    def process_info(self, executable: str | None, name: str | None = None, signer: str | None = None,
                     original_file_name: str | None = None, os_type: str | None = None, exists=None, trusted=None,
                     sha256: str | None = None) -> ProcessInfo:
        """Process signals for one process (see :meth:`ProcessRules.info` and :func:`process_key`; memoised per
        distinct argument tuple, LRU of ``cache_size``)."""
        return self._process(executable, name, signer, original_file_name, os_type, exists, trusted, sha256)

    # ------------------------------------------------------------------ batch API
    def host_rows(self, values: Iterable[Any]) -> list[tuple]:
        """What a batch needs of each raw ``destination.domain`` value: ``(name key, the IP literal's normalised
        address, cloud provider, service, resource, IM service, allow-listed, PTR text, hosted registrable
        domain)``; the name key is None for an IP literal and for a reverse-lookup name (whose literal is the
        address it encodes, if any). O(new parent domains) trie walks (see :meth:`_host_tuples`), a few dict
        look-ups per value otherwise."""
        return [(None if lit is not None or ptr else n, lit, prov, svc, res, im, bool(allowed), ptr, hosted)
                for n, lit, prov, svc, _label, res, im, allowed, ptr, hosted in self._host_tuples(values)]

    def ip_values(self, values: pa.Array) -> dict[str, Any]:
        """What the catalogue knows of each address text of a string array (usually its distinct values), as
        aligned columns: ``norm``, ``provider``, ``cloud``, ``service``, ``resource``, ``im`` (Arrow string arrays)
        and ``allow`` (numpy bool); see :func:`~raresketch.catalog._ip.ip_values`. Vectorised, O(n log R)."""
        return ip_values(self._ip, values, self._allow_exact)

    def resolve_batch(self, table: pa.Table) -> pa.Table:
        """Resolved columns (:data:`RESOLVED_SCHEMA`) for a batch with EVENT_SCHEMA column names.

        Computed by the catalogue's own :class:`~raresketch.catalog._resolver.CatalogResolver` (one per
        catalogue, kept across calls, serialised by a lock): each distinct hostname, address and process tuple
        is resolved once for the life of the catalogue (up to ``cache_size`` per identity), and every row reads
        its answers through ids and the compiled pass that decides which source wins. O(rows) numpy/Arrow work
        plus O(new distinct values) Python work. Missing input columns count as null. The rows align with
        ``table``.
        """
        if table.num_rows == 0:
            return RESOLVED_SCHEMA.empty_table()
        with self._batch_lock:
            if self._batch_resolver is None:
                self._batch_resolver = CatalogResolver(self, self._cache_size)
            ids = self._batch_resolver.lookup(table).flags.ids
        return ids.table()

    def explain(self, name: str | None, ip: str | None = None) -> dict[str, Any]:
        """What a destination (``destination.domain`` = ``name``, ``destination.ip`` = ``ip``) resolves to, as
        :meth:`resolve_batch` resolves it, and why: the :data:`RESOLVED_SCHEMA` destination columns (short
        names), ``source`` (0 none, 1 the name, 2 the address, 3 the name's own IP literal, 4 the name hosted at the
        address) and ``why``, one line per decision (which source won, which PTR shape, web service, suffix rule,
        network, class or list matched, what allow-listed it)."""
        t = pa.table({"destination.domain": pa.array([name], pa.string()),
                      "destination.ip": pa.array([ip], pa.string())})
        with self._batch_lock:
            flags = CatalogResolver(self, 16).lookup(t).flags
        r = flags.ids.table().to_pylist()[0]
        src, im_src = int(flags.source[0]), int(flags.ids.im_source[0])
        out = {short: r["raresketch." + col] for short, col in _EXPLAINED.items()}
        out["source"] = src
        host = self.resolve_host(name) if name is not None else None
        why = [("no name and no address: nothing to resolve", "the name", "the event's address",
                "the name's own IP literal", "the name, hosted at the event's address")[src]
               + (f" {out['destination']!r} decides the destination" if src else "")]
        if host is not None and host.ptr is not None:
            shape = ptr_address(host.ptr)
            why.append(f"reverse-lookup name: {host.ptr!r} has the PTR shape {shape[0]!r} (_ptr.PTR_SHAPES), so it "
                       "is the address's identity, not a name" + (f"; it encodes {host.ptr_address}"
                                                                   if host.ptr_address else ""))
        if src in (1, 4) and host.cloud_provider == "web":
            src_list = "an extension" if host.name not in self._web and host.cloud_label not in self._web else \
                "web_services.tsv"
            why.append(f"web service: {host.cloud_label!r} is a shared {host.cloud_service} service ({src_list}); "
                       "every tenant's use is one resource")
        elif src == 1 and host.cloud_provider is not None:
            n, label = host.name, host.cloud_label
            rule = n[len(label) + 1:] if label and n.startswith(label + ".") else n
            why.append(f"cloud suffix rule matched: {rule!r} -> provider {host.cloud_provider}, service "
                       f"{host.cloud_service}" + (f", tenant label {label!r}" if label else " (the provider's own endpoint)")
                       + " (PSL PRIVATE blocks, free_subdomain_hosts.txt, cloud_suffixes.tsv, extensions)")
        elif src == 4:
            why.append(f"hosted domain: {host.name!r} is neither a tenant label nor a web service; its registrable "
                       f"domain {host.hosted!r} is the resource, because the address is tenant-rentable")
        elif src == 1:
            why.append("no cloud suffix rule or web service matches the name" + (
                f"; its domain {host.hosted!r} would be a hosted domain on a tenant-rentable address"
                if host.hosted else ""))
        if src in (2, 3, 4) or out["ip_provider"]:
            addr = ip if src != 3 else out["destination"]
            cls = out["ip_class"]
            what = {"cloud": "tenant-rentable (a tenant's resource)", "platform": "the provider's first-party "
                    "services (not a tenant resource)", "edge": "a shared CDN front (identifies no tenant)",
                    "im": "an IM service's network"}.get(cls, "")
            why.append(f"address {addr!r}: " + (f"published network of {out['ip_provider']}, class {cls}: {what} "
                                                 "(ip_ranges snapshot, ip_services.tsv.gz)"
                                                 if out["ip_provider"] else "in no published network"))
        if im_src == 1:
            why.append(f"IM domain list matched the name: {out['im_service']} (im_domains.tsv, extensions)")
        elif im_src in (2, 3):
            why.append(f"IM network of {out['im_service']} (ip_ranges)")
        if out["allowlisted"]:
            why.append("allow-listed by an extension's [allow] destinations (exact name or address, or '.suffix')")
        out["why"] = why
        return out


# Catalog.explain's keys -> RESOLVED_SCHEMA columns (without the ``raresketch.`` prefix)
_EXPLAINED = {"destination": "destination.key", "cloud_resource": "cloud.resource", "cloud_provider": "cloud.provider",
              "cloud_service": "cloud.service", "ip_provider": "destination.ip_provider",
              "ip_class": "destination.ip_class", "ptr": "destination.ptr", "im_service": "im.service",
              "allowlisted": "allowlisted"}
_MAYBE_IP_RE = re.compile(MAYBE_IP)


def _ip_literal(name: str) -> str | None:
    """``normalize_ip(name)``, skipping the (exception-raising, slow) parse for names that cannot be addresses."""
    return normalize_ip(name) if _MAYBE_IP_RE.search(name) else None


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The shipped catalogue without extensions, built once per process (about 0.4 s: the ~49k published prefixes,
    37,752 of them from ip_services.tsv.gz, parsed by :func:`~raresketch.catalog._ip.cidr_span` and packed by
    :class:`~raresketch.catalog._ip.IpTable`, and the suffix rules)."""
    return Catalog()
