"""Destination and process catalogues: what a destination is (cloud resource, IM service) and what a
process is (key, scripting engine, user-writable path, renamed binary).

Sources, all shipped as data with provenance (see ``data/catalog/README.md``, :meth:`Catalog.sources`):

- cloud resources by hostname: the Public Suffix List PRIVATE section (from the ``publicsuffixlist``
  package, offline), restricted to the cloud/hosting blocks named in ``psl_sections.tsv``, plus the project
  list ``cloud_suffixes.tsv`` (wins on naming; adds what the PSL lacks, and regional templates);
- cloud / IM networks by address: ``ip_ranges/`` (dated snapshot) with owners in ``ip_providers.tsv``;
- IM services by domain: ``im_domains.tsv`` (``suffix`` = the domain and all subdomains, ``exact`` = that name);
- processes: ``script_engines.tsv`` (globs per OS), ``user_writable_paths.tsv`` (regexes per OS);
- user extensions and allow-list: a TOML file (see :meth:`Catalog.__init__`).

Keys (DESIGN.md): cloud resource ``provider/service/label`` where ``label`` is the single label left of the
matched suffix (``mybucket`` in ``mybucket.s3.us-west-2.amazonaws.com``; for a rule ending in ``*`` that
covers the whole name, as EC2 ``ec2-1-2-3-4.compute-1.amazonaws.com``, the label the ``*`` matched), or
``provider/ip/<address>`` for an IP-only destination inside a published cloud network; destination key =
lower-cased FQDN, else the IP; process key = lower-cased image base name, plus ``|`` and the lower-cased
signer when known.

Resolution is memoised per distinct value (LRU) and :meth:`Catalog.resolve_batch` dictionary-encodes the
batch first, so its cost grows with the number of *distinct* hostnames / IPs / processes, not rows.
"""
from __future__ import annotations

import fnmatch
import functools
import ipaddress
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._catalog_ip import IpOwner, IpTable, parse_cidrs, refresh_ip_ranges
from .events import basename, dictionary_encode, normalize_domain, normalize_ip, normalize_ip_values
from .events._normalise import MAYBE_IP as _MAYBE_IP, as_string_array as _as_string_array

__all__ = ["Catalog", "HostInfo", "IpOwner", "ProcessInfo", "RESOLVED_SCHEMA", "default_catalog",
           "refresh_ip_ranges", "parse_cidrs", "process_key"]

RESOLVED_SCHEMA = pa.schema([
    pa.field("raresketch.destination.key", pa.string()),
    pa.field("raresketch.cloud.provider", pa.string()),
    pa.field("raresketch.cloud.service", pa.string()),
    pa.field("raresketch.cloud.resource", pa.string()),
    pa.field("raresketch.destination.ip_provider", pa.string()),
    pa.field("raresketch.im.service", pa.string()),
    pa.field("raresketch.process.key", pa.string()),
    pa.field("raresketch.process.is_script_engine", pa.bool_()),
    pa.field("raresketch.process.script_engine", pa.string()),
    pa.field("raresketch.process.user_writable_path", pa.bool_()),
    pa.field("raresketch.process.renamed", pa.bool_()),
    pa.field("raresketch.allowlisted", pa.bool_()),
])
"""Columns returned by :meth:`Catalog.resolve_batch` (all nullable; null = unknown)."""


# --------------------------------------------------------------------------------------------- data files

def _data_dir() -> str:
    return str(resources.files("raresketch") / "data" / "catalog")


def _read_tsv(path: str) -> tuple[list[dict], list[str]]:
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


# --------------------------------------------------------------------------------------------- suffix trie

class _Node:
    __slots__ = ("exact", "globs", "star", "value")

    def __init__(self) -> None:
        self.exact: dict[str, _Node] = {}
        self.globs: list[tuple[str, _Node]] = []
        self.star: _Node | None = None
        self.value: tuple | None = None


class SuffixTrie:
    """Hostname suffix rules, matched right to left, longest match wins.

    A rule label is literal, ``*`` (exactly one label) or a glob inside one label (``s3-website-*``).
    ``add`` with ``override=False`` keeps an existing value for the same rule. Match cost O(labels) plus
    the (few) glob/wildcard branches.
    """

    def __init__(self) -> None:
        self.root = _Node()
        self.n_rules = 0

    def add(self, rule: str, value: tuple, override: bool = True) -> None:
        node = self.root
        for lab in reversed(rule.lower().strip(".").split(".")):
            if lab == "*":
                node.star = node.star or _Node()
                node = node.star
            elif "*" in lab or "?" in lab:
                for g, child in node.globs:
                    if g == lab:
                        node = child
                        break
                else:
                    child = _Node()
                    node.globs.append((lab, child))
                    node.globs.sort(key=lambda gc: -len(gc[0].replace("*", "")))  # most literal first
                    node = child
            else:
                node = node.exact.setdefault(lab, _Node())
        if node.value is None:
            self.n_rules += 1
        if node.value is None or override:
            node.value = value

    def match(self, labels_rev: list[str]) -> tuple[int, tuple, str | None] | None:
        """(depth, value, label matched by a final ``*``) of the longest rule matching, or None. Depth first,
        exact labels before globs before ``*``; the first rule found at the greatest depth wins."""
        return self.walk(labels_rev)[0]

    def walk(self, labels_rev: list[str]) -> tuple[tuple | None, list[_Node]]:
        """:meth:`match`'s answer and the *frontier*: the nodes reached with every label consumed, in visit
        order, from which :meth:`extend` continues by one more (leftmost) label."""
        best = None
        frontier = []
        nl = len(labels_rev)
        stack = [(self.root, 0, None)]
        pop, push = stack.pop, stack.append
        while stack:
            node, i, star_label = pop()
            if node.value is not None and (best is None or i > best[0]):
                best = (i, node.value, star_label)
            if i == nl:
                if node.exact or node.globs or node.star is not None:
                    frontier.append(node)
                continue
            lab = labels_rev[i]
            # pushed in reverse order of visit: exact, then the first matching glob, then ``*``
            if node.star is not None:
                push((node.star, i + 1, lab))
            for g, gchild in node.globs:
                if fnmatch.fnmatchcase(lab, g):
                    push((gchild, i + 1, None))
                    break
            child = node.exact.get(lab)
            if child is not None:
                push((child, i + 1, None))
        return best, frontier

    @staticmethod
    def extend(best: tuple | None, frontier: list[_Node], label: str, depth: int) -> tuple | None:
        """:meth:`match` of ``labels_rev + [label]`` from :meth:`walk` of ``labels_rev`` (``depth`` = its
        length + 1): a rule ending at the new label wins (first in visit order), else the shorter match."""
        for node in frontier:
            child = node.exact.get(label)
            if child is not None and child.value is not None:
                return depth, child.value, None
            for g, gchild in node.globs:
                if fnmatch.fnmatchcase(label, g):
                    if gchild.value is not None:
                        return depth, gchild.value, None
                    break
            if node.star is not None and node.star.value is not None:
                return depth, node.star.value, label
        return best


def _psl_path() -> str:
    import publicsuffixlist

    return os.path.join(os.path.dirname(publicsuffixlist.__file__), "public_suffix_list.dat")


def psl_private_blocks(path: str | None = None) -> tuple[list[tuple[str, list[str]]], dict]:
    """The PSL PRIVATE section as (block title, rules) pairs, and the list's VERSION/COMMIT header fields.

    A block starts at a comment line after a blank line; its title is that comment up to `` : ``."""
    path = path or _psl_path()
    meta, blocks, cur, in_private, prev_blank = {}, [], None, False, True
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("// VERSION:") or s.startswith("// COMMIT:"):
                k, _, v = s[3:].partition(":")
                meta[k.strip().lower()] = v.strip()
            if s == "// ===BEGIN PRIVATE DOMAINS===":
                in_private = True
                continue
            if s == "// ===END PRIVATE DOMAINS===":
                break
            if not in_private:
                continue
            if not s:
                prev_blank = True
                continue
            if s.startswith("//"):
                if prev_blank:
                    cur = (s[2:].strip().split(" : ")[0].strip(), [])
                    blocks.append(cur)
            elif cur is not None and not s.startswith("!"):
                cur[1].append(s.split()[0])
            prev_blank = False
    return blocks, meta


# --------------------------------------------------------------------------------------------- results

@dataclass(frozen=True)
class HostInfo:
    """Resolution of one hostname. ``cloud_resource`` is the key ``provider/service/label`` (None when the
    name is the provider's own endpoint, e.g. ``s3.amazonaws.com``)."""

    name: str | None
    cloud_provider: str | None = None
    cloud_service: str | None = None
    cloud_label: str | None = None
    cloud_resource: str | None = None
    im_service: str | None = None
    allowlisted: bool = False


@dataclass(frozen=True)
class ProcessInfo:
    key: str | None
    is_script_engine: bool | None
    script_engine: str | None
    user_writable_path: bool | None
    renamed: bool | None
    allowlisted: bool = False


def process_key(executable: str | None, name: str | None = None, signer: str | None = None) -> str | None:
    """``powershell.exe|microsoft windows``: lower-cased image base name, plus ``|signer`` when known."""
    base = basename(executable) or basename(name)
    if not base:
        return None
    base = base.strip().lower()
    s = signer.strip().lower() if signer and signer.strip() else None
    return f"{base}|{s}" if s else base


def _stem(n: str) -> str:
    n = n.lower()
    return n.rsplit(".", 1)[0] if "." in n else n


_DRIVE = re.compile(r"^[a-z]:/")


def _guess_os(path: str | None, base: str | None) -> str | None:
    if path:
        if "\\" in path or _DRIVE.match(path.lower()):
            return "windows"
        if path.startswith("/"):
            return "macos" if path.startswith(("/Users/", "/Applications/", "/System/", "/private/")) else "linux"
    if base and base.lower().endswith(".exe"):
        return "windows"
    return None


# --------------------------------------------------------------------------------------------- catalog

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
            processes = ["backup.exe|acme corp", "teams.exe"]              # process key or base name
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
        data = _data_dir()
        self._sources: dict[str, str] = {}
        self._trie = SuffixTrie()
        self._im_exact: dict[str, str] = {}
        self._im_suffix: dict[str, str] = {}
        self._allow_exact: set[str] = set()
        self._allow_suffix: set[str] = set()
        self._allow_proc: set[str] = set()

        proj, com = _read_tsv(os.path.join(data, "cloud_suffixes.tsv"))
        self._sources["cloud_suffixes.tsv"] = " ".join(com[1:3])
        proj_services = [(r["suffix"], r["provider"], r["service"]) for r in proj]
        if use_psl:
            sections, com = _read_tsv(os.path.join(data, "psl_sections.tsv"))
            wanted = {r["title"]: (r["provider"], r["service"]) for r in sections}
            blocks, meta = psl_private_blocks()
            self._sources["public_suffix_list"] = (
                f"publicsuffixlist package PSL VERSION {meta.get('version')} COMMIT {meta.get('commit')}, "
                f"{len(wanted)} PRIVATE blocks selected by psl_sections.tsv")
            self._n_psl = 0
            for title, rules in blocks:
                if title not in wanted:
                    continue
                prov, svc = wanted[title]
                for rule in rules:
                    s = _derive_service(rule, svc, proj_services)
                    self._trie.add(rule, (prov, s), override=False)
                    self._n_psl += 1
        for r in proj:  # project list wins on naming
            self._trie.add(r["suffix"], (r["provider"], r["service"]), override=True)

        rows, com = _read_tsv(os.path.join(data, "im_domains.tsv"))
        self._sources["im_domains.tsv"] = " ".join(com[:3])
        for r in rows:
            self._add_im(r["service"], r["match"], r["domain"])

        prov_rows, com = _read_tsv(os.path.join(data, "ip_providers.tsv"))
        self._sources["ip_ranges"] = " ".join(com[1:4])
        ip_dir = ip_ranges_dir or os.environ.get("RARESKETCH_IP_RANGES") or os.path.join(data, "ip_ranges")
        self._ip_dirs = [r["directory"] for r in prov_rows]
        ip_entries: list = []
        for r in prov_rows:
            owner = IpOwner(r["provider"], r["kind"], r["im_service"] or None)
            for fam in ("ipv4", "ipv6"):
                p = os.path.join(ip_dir, r["directory"], f"{fam}_merged.txt")
                if os.path.exists(p):
                    with open(p, encoding="utf-8") as f:
                        ip_entries += [(n, int(r["priority"]), owner) for n in parse_cidrs(f.read())]
        if ip_dir != os.path.join(data, "ip_ranges"):
            self._sources["ip_ranges"] += f" (overridden by {ip_dir})"

        eng_rows, com = _read_tsv(os.path.join(data, "script_engines.tsv"))
        self._sources["script_engines.tsv"] = " ".join(com[2:4])
        self._engines: dict[str, list[tuple[str, str]]] = {}
        for r in eng_rows:
            self._engines.setdefault(r["os"], []).append((r["pattern"].lower(), r["engine"]))
        uw_rows, com = _read_tsv(os.path.join(data, "user_writable_paths.tsv"))
        self._sources["user_writable_paths.tsv"] = " ".join(com[3:5])
        self._writable: dict[str, list[re.Pattern]] = {}
        for r in uw_rows:
            self._writable.setdefault(r["os"], []).append(re.compile(r["pattern"]))

        if extensions is not None:
            paths = [extensions] if isinstance(extensions, (str, os.PathLike)) else list(extensions)
            for p in paths:
                ip_entries += self._load_extension(os.fspath(p))
        self._ip = IpTable(ip_entries)

        self.resolve_host = functools.lru_cache(maxsize=cache_size)(self._resolve_host)  # type: ignore[method-assign]
        self._cache_size = cache_size
        self._host_rows: dict[Any, tuple] = {}
        self._parents: dict[str, tuple] = {}       # parent domain -> _parent_info (bounded by cache_size)
        self._process = functools.lru_cache(maxsize=cache_size)(self._process_uncached)

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
            self._trie.add(e["suffix"], (e["provider"], e.get("service", "custom")), override=True)
        for e in doc.get("im", []):
            self._add_im(e["service"], e.get("match", "suffix"), e["domain"])
        entries = []
        for e in doc.get("ip_ranges", []):
            owner = IpOwner(e["provider"], e.get("kind", "cloud"), e.get("im_service"))
            if owner.kind not in ("cloud", "im"):
                raise ValueError(f"{path}: ip_ranges kind must be 'cloud' or 'im', got {owner.kind!r}")
            for c in e.get("cidrs", []):
                entries.append((ipaddress.ip_network(c, strict=False), -1, owner))  # priority -1: user ranges win overlaps
        proc = doc.get("process", {})
        for e in proc.get("script_engines", []):
            e = {"pattern": e} if isinstance(e, str) else e
            self._engines.setdefault(e.get("os", "any"), []).append((e["pattern"].lower(), e.get("engine", e["pattern"])))
        for e in proc.get("user_writable_paths", []):
            e = {"pattern": e} if isinstance(e, str) else e
            self._writable.setdefault(e.get("os", "any"), []).append(re.compile(e["pattern"]))
        allow = doc.get("allow", {})
        for d in allow.get("destinations", []):
            if d.startswith("."):
                self._allow_suffix.add(normalize_domain(d[1:]))
            else:
                nd = normalize_domain(d)
                self._allow_exact.add(normalize_ip(nd) or nd)
        for p in allow.get("processes", []):
            self._allow_proc.add(p.strip().lower())
        return entries

    # ------------------------------------------------------------------ scalar API
    def sources(self) -> dict[str, str]:
        """Provenance (source, version/date) of every list in use, by list name."""
        return dict(self._sources)

    def _resolve_host(self, name: str | None) -> HostInfo:
        """One hostname -> :class:`HostInfo` (normalised first; an IP literal resolves to nothing).
        O(labels); memoised (LRU) as ``resolve_host``."""
        n, _lit, prov, svc, label, res, im, allowed = self._host_tuples([name])[0]
        return HostInfo(n, prov, svc, label, res, im, allowed)

    def _host_tuples(self, names) -> list[tuple]:
        """``(normalised name, IP literal, provider, service, label, resource, IM service, allow-listed)`` for
        each raw hostname: the one implementation behind :meth:`resolve_host`, :meth:`resolve_batch` and the
        Engine's key resolver. An IP-literal name has only its literal (and allow-listing by address).

        What depends on the parent domain (``b.c`` of ``a.b.c``: the suffix-rule walk, IM and allow-list
        suffixes) is memoised per parent, so a stream of new names under known parents (``<x>.s3.amazonaws.com``)
        costs a few dict look-ups and one trie step each; a new parent costs O(labels)."""
        im_exact, im_suffix = self._im_exact.get, self._im_suffix.get
        allow_exact, allow_suffix = self._allow_exact, self._allow_suffix
        parents, extend = self._parents, SuffixTrie.extend
        out = []
        for name in names:
            n = normalize_domain(name)
            if not n:
                out.append((n, None, None, None, None, None, None, False))
                continue
            lit = _ip_literal(n)
            if lit is not None:
                out.append((n, lit, None, None, None, None, None, lit in allow_exact))
                continue
            k = n.find(".")
            first, parent = (n, "") if k < 0 else (n[:k], n[k + 1:])
            memo = parents.get(parent)
            if memo is None:
                memo = self._parent_info(parent)
                if len(parents) >= self._cache_size:
                    parents.clear()
                parents[parent] = memo
            best, frontier, im_parent, allowed_parent, nl = memo
            m = extend(best, frontier, first, nl + 1) if frontier else best
            prov = svc = label = res = None
            if m is not None:
                depth, (prov, svc), star_label = m
                # a rule ending inside the name names its next label; one consuming every label, its ``*``
                label = n.rsplit(".", depth + 1)[-depth - 1] if depth <= nl else star_label
                res = f"{prov}/{svc}/{label}" if label else None
            im = im_exact(n) or im_suffix(n) or im_parent
            allowed = allowed_parent or n in allow_exact or n in allow_suffix
            out.append((n, None, prov, svc, label, res, im, allowed))
        return out

    def _parent_info(self, parent: str) -> tuple:
        """(trie match, frontier, IM service by suffix, allow-listed by suffix, labels) of a parent domain
        ("" for a single-label name): what :meth:`_host_tuples` memoises."""
        labels = parent.split(".") if parent else []
        best, frontier = self._trie.walk(labels[::-1])
        im, allowed = None, False
        suf = parent
        while suf and (im is None or not allowed):       # every suffix, longest first: b.c, c
            if im is None:
                im = self._im_suffix.get(suf)
            if not allowed and suf in self._allow_suffix:
                allowed = True
            k = suf.find(".")
            suf = suf[k + 1:] if k >= 0 else ""
        return best, frontier, im, allowed, len(labels)

    def resolve_ip(self, ip: str | None) -> IpOwner | None:
        """The published owner of one address (cloud provider or IM network), or None. O(log R)."""
        return self._ip.owner(normalize_ip(ip) if ip else None)

    def process_info(self, executable: str | None, name: str | None = None, signer: str | None = None,
                     original_file_name: str | None = None, os_type: str | None = None) -> ProcessInfo:
        """Process signals for one process (memoised per distinct argument tuple)."""
        return self._process(executable, name, signer, original_file_name, os_type)

    def _process_uncached(self, executable, name, signer, original_file_name, os_type) -> ProcessInfo:
        base = basename(executable) or basename(name)
        key = process_key(executable, name, signer)
        if not base:
            return ProcessInfo(None, None, None, None, None)
        b = base.lower()
        os_ = (os_type or "").lower() or _guess_os(executable, base)
        oses = [os_] if os_ in self._engines else list(self._engines)
        engine = None
        for o in oses + ["any"]:
            for pat, eng in self._engines.get(o, ()):
                if fnmatch.fnmatchcase(b, pat):
                    engine = eng
                    break
            if engine:
                break
        writable = None
        if executable:
            p = executable.replace("\\", "/").lower()
            w_oses = [os_] if os_ in self._writable else list(self._writable)
            writable = any(r.search(p) for o in w_oses + ["any"] for r in self._writable.get(o, ()))
        renamed = None
        if original_file_name and original_file_name.strip() not in ("", "-", "?"):
            renamed = _stem(original_file_name.strip()) != _stem(b)
        allowed = bool(self._allow_proc) and (b in self._allow_proc or (key or "") in self._allow_proc)
        return ProcessInfo(key, engine is not None, engine, writable, renamed, allowed)

    # ------------------------------------------------------------------ batch API
    def _host_row(self, value) -> tuple:
        """What :meth:`resolve_batch` needs of one raw ``destination.domain`` value: (name key, the normalised
        address when the name is an IP literal, provider, service, resource, IM service, allow-listed).
        Memoised per raw value (bounded by ``cache_size``: the memo is emptied when full)."""
        row = self._host_rows.get(value)
        if row is None:
            row = self._host_rows_of([value])[0]
            if len(self._host_rows) >= self._cache_size:
                self._host_rows.clear()
            self._host_rows[value] = row
        return row

    def _host_rows_of(self, values) -> list[tuple]:
        """What :meth:`resolve_batch` needs of each raw ``destination.domain`` value: (name key — None for an IP
        literal —, the literal's normalised address, provider, service, resource, IM service, allow-listed)."""
        return [(None if lit is not None else n, lit, prov, svc, res, im, bool(allowed))
                for n, lit, prov, svc, _label, res, im, allowed in self._host_tuples(values)]

    def _ip_values(self, values: pa.Array) -> dict[str, Any]:
        """Per distinct address text (a string array): normalised form, owner and what follows from it, all
        vectorised (regex + numpy searchsorted; Python only for IPv6 and odd spellings)."""
        norm, is_v4, v4 = normalize_ip_values(values)
        owner = np.full(len(norm), -1, np.int32)
        if is_v4.any():
            owner[is_v4] = self._ip.lookup_v4(v4[is_v4])
        other = ~is_v4 & _valid(norm)
        if other.any():
            owner[other] = self._ip.lookup(norm.filter(pa.array(other)).to_pylist())
        tables = self._owner_tables()
        o = pa.array(np.where(owner >= 0, owner, len(self._ip.owners)))
        cloud = tables["cloud"].take(o)
        if self._allow_exact:
            allow = _valid_true(pc.is_in(norm, value_set=pa.array(sorted(self._allow_exact), pa.string())))
        else:
            allow = np.zeros(len(norm), bool)
        return {
            "norm": norm,
            "provider": tables["provider"].take(o),
            "cloud": cloud,
            "service": pc.if_else(pc.is_valid(cloud), pa.scalar("ip"), pa.scalar(None, pa.string())),
            "resource": pc.binary_join_element_wise(cloud, pa.scalar("ip"), norm, "/"),
            "im": tables["im"].take(o),
            "allow": allow,
        }

    def _owner_tables(self) -> dict[str, pa.Array]:
        t = self.__dict__.get("_owner_tables_cache")
        if t is None:
            owners = self._ip.owners
            t = {"provider": pa.array([o.provider for o in owners] + [None], pa.string()),
                 "cloud": pa.array([o.provider if o.kind == "cloud" else None for o in owners] + [None], pa.string()),
                 "im": pa.array([o.im_service if o.kind == "im" else None for o in owners] + [None], pa.string())}
            self._owner_tables_cache = t
        return t

    def resolve_batch(self, table: pa.Table) -> pa.Table:
        """Resolved columns (:data:`RESOLVED_SCHEMA`) for a batch with EVENT_SCHEMA column names.

        Each distinct hostname, IP and process tuple is resolved once: hostnames and processes by the
        memoised scalar functions, addresses by vectorised parsing (canonical IPv4 by one regex pass, then
        ``numpy.searchsorted`` over the published networks). Every output column is then built with one
        ``take`` over the concatenated per-value results: O(rows) Arrow/numpy work + O(distinct) Python work
        (O(new distinct) for hostnames). Missing input columns count as null. The rows align with ``table``;
        append them with ``table`` columns as needed.
        """
        n = table.num_rows
        if n == 0:
            return RESOLVED_SCHEMA.empty_table()
        names = set(table.column_names)

        def col(c: str) -> pa.Array | None:
            if c not in names:
                return None
            a = _as_string_array(table.column(c))
            return a if a.null_count < n else None

        # hostnames: one memo row per distinct value
        dom = col("destination.domain")
        if dom is not None:
            d_enc = dictionary_encode(dom)
            d_idx = _codes(d_enc.indices)
            rows = [self._host_row(v) for v in d_enc.dictionary.to_pylist()]
        else:
            d_idx, rows = np.full(n, -1, np.int32), []
        nd = len(rows)
        h = list(zip(*rows)) if rows else [()] * 7
        name_key, ip_lit, c_prov, c_svc, c_res, im_dom = [pa.array(v, pa.string()) for v in h[:6]]
        allow_dom = np.array(h[6], bool)

        # addresses: the event's, else the domain's own when it is an IP literal
        ip = col("destination.ip")
        if ip_lit.null_count < nd and (ip is None or ip.null_count):
            from_dom = _take2(ip_lit, pa.array([], pa.string()), d_idx)
            ip = from_dom if ip is None else pc.coalesce(ip, from_dom)
            ip = ip if ip.null_count < n else None
        if ip is not None:
            i_enc = dictionary_encode(ip)
            i_idx = _codes(i_enc.indices)
            iv = self._ip_values(i_enc.dictionary)
        else:
            i_idx = np.full(n, -1, np.int32)
            iv = self._ip_values(pa.array([], pa.string()))

        # destination key and cloud fields: from the name when there is one, else from the address
        has_name = _ext(_valid(name_key), False)[d_idx]
        sel = np.where(has_name, d_idx, np.where(i_idx >= 0, nd + i_idx, -1))
        from_dom_im = _ext(_valid(im_dom), False)[d_idx]
        im_sel = np.where(from_dom_im, d_idx, np.where(i_idx >= 0, nd + i_idx, -1))
        allow = _ext(allow_dom, False)[d_idx] | _ext(iv["allow"], False)[i_idx]

        procs = _resolve_unique(self, [col(c) for c in _PROCESS_COLUMNS], n)
        allow |= procs.pop("allowlisted")
        out = {
            "raresketch.destination.key": _take2(name_key, iv["norm"], sel),
            "raresketch.cloud.provider": _take2(c_prov, iv["cloud"], sel),
            "raresketch.cloud.service": _take2(c_svc, iv["service"], sel),
            "raresketch.cloud.resource": _take2(c_res, iv["resource"], sel),
            "raresketch.destination.ip_provider": _take2(pa.array([], pa.string()), iv["provider"],
                                                         np.where(i_idx >= 0, i_idx, -1)),
            "raresketch.im.service": _take2(im_dom, iv["im"], im_sel),
            **procs,
            "raresketch.allowlisted": pa.array(allow, pa.bool_()),
        }
        return pa.Table.from_arrays([out[f.name] for f in RESOLVED_SCHEMA], schema=RESOLVED_SCHEMA)


_MAYBE_IP_RE = re.compile(_MAYBE_IP)


def _ip_literal(name: str) -> str | None:
    """``normalize_ip(name)``, skipping the (exception-raising, slow) parse for names that cannot be addresses."""
    return normalize_ip(name) if _MAYBE_IP_RE.search(name) else None


_PROCESS_COLUMNS = ("process.executable", "process.name", "process.code_signature.subject_name",
                    "process.pe.original_file_name", "host.os.type")


def _valid(a: pa.Array) -> np.ndarray:
    """Validity of an Arrow array as a numpy bool array."""
    if a.null_count == 0:
        return np.ones(len(a), bool)
    return pc.is_valid(a).to_numpy(zero_copy_only=False)


def _valid_true(a: pa.Array) -> np.ndarray:
    return a.fill_null(False).to_numpy(zero_copy_only=False)


def _codes(indices: pa.Array) -> np.ndarray:
    """Dictionary indices as int32 numpy, -1 for null."""
    if indices.null_count:
        indices = indices.fill_null(-1)
    return indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _ext(values: np.ndarray, pad) -> np.ndarray:
    """``values`` with ``pad`` appended, so that index -1 reads ``pad``."""
    return np.append(values, np.array([pad], dtype=values.dtype))


def _take2(a: pa.Array, b: pa.Array, idx: np.ndarray) -> pa.Array:
    """Row i: ``a[idx[i]]`` for ``idx[i] < len(a)``, else ``b[idx[i] - len(a)]``; null for -1. One take."""
    values = pa.concat_arrays([a, b, pa.nulls(1, a.type)])
    return values.take(pa.array(np.where(idx >= 0, idx, len(values) - 1)))


def _resolve_unique(cat: Catalog, arrays: list[pa.Array | None], n: int) -> dict[str, Any]:
    """Process columns resolved once per distinct tuple: per-column dictionary codes are combined into one
    integer code (re-numbered densely by a hash-based dictionary encoding whenever it could grow large), then
    each distinct tuple is read from its first row, resolved by the memoised :meth:`Catalog.process_info`, and
    the results expanded with one ``take`` per column. ``arrays``: None for a column that is null throughout.
    Returns Arrow arrays, and ``allowlisted`` as a numpy bool array."""
    names = ["raresketch.process.key", "raresketch.process.is_script_engine", "raresketch.process.script_engine",
             "raresketch.process.user_writable_path", "raresketch.process.renamed"]
    types = [pa.string(), pa.bool_(), pa.string(), pa.bool_(), pa.bool_()]
    code: np.ndarray | None = None
    bound = 1
    for a in arrays:
        if a is None:
            continue
        enc = pc.dictionary_encode(a)
        k = len(enc.dictionary) + 1
        idx = _codes(enc.indices).astype(np.int64)
        if code is None:
            code, bound = idx, k
            continue
        if bound * k >= (1 << 62):
            code, bound = _dense(code)
        code = code * k + idx + 1
        bound *= k
    if code is None:  # every process column null: one tuple
        gid, firsts = np.zeros(n, np.int32), np.zeros(1, np.int64)
    else:
        gid, firsts = _groups(code)
    cols_py = [a.take(pa.array(firsts)).to_pylist() if a is not None else [None] * len(firsts) for a in arrays]
    infos = [cat.process_info(*t) for t in zip(*cols_py)]
    g = pa.array(gid)
    out: dict[str, Any] = {}
    for name, typ, attr in zip(names, types, ("key", "is_script_engine", "script_engine", "user_writable_path",
                                              "renamed")):
        vals = [getattr(i, attr) for i in infos]
        if typ == pa.bool_():  # numpy gather: cheaper than an Arrow take
            known = np.array([v is not None for v in vals], bool)[gid]
            out[name] = pa.array(np.array([bool(v) for v in vals], bool)[gid], pa.bool_(),
                                 mask=None if known.all() else ~known)
        else:
            out[name] = pa.array(vals, typ).take(g)
    out["allowlisted"] = np.array([bool(i.allowlisted) for i in infos], bool)[gid]
    return out


def _groups(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes -> (group id per row, numbered in order of first appearance; first row of each group)."""
    gid = pc.dictionary_encode(pa.array(code)).indices.to_numpy(zero_copy_only=False)
    # ids are handed out in order of first appearance, so a group's first row is where the running max grows
    cummax = np.maximum.accumulate(gid)
    firsts = np.flatnonzero(np.diff(cummax, prepend=-1) > 0)
    return gid, firsts


def _dense(code: np.ndarray) -> tuple[np.ndarray, int]:
    gid = pc.dictionary_encode(pa.array(code)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return gid, int(gid.max(initial=0)) + 1


def _project_service(rule: str, proj: list[tuple[str, str, str]]) -> str | None:
    """Service of the most literal project suffix (``cloud_suffixes.tsv``, globs allowed) that a PSL rule
    equals or ends with; None when there is none."""
    r = rule.lstrip("*.").lower()
    best = None
    for suffix, _prov, svc in proj:
        pat = suffix.lower()
        if fnmatch.fnmatchcase(r, pat) or fnmatch.fnmatchcase(r, "*." + pat):
            lit = len(pat.replace("*", ""))
            if best is None or lit > best[0]:
                best = (lit, svc)
    return best[1] if best else None


def _derive_service(rule: str, section_service: str, proj: list[tuple[str, str, str]]) -> str:
    """Service name for a PSL rule: the project list's (see :func:`_project_service`), else the PSL block's
    from ``psl_sections.tsv``, else the rule's registrable label (``azurewebsites`` for
    ``x.azurewebsites.net``)."""
    s = _project_service(rule, proj)
    if s:
        return s
    if section_service != "-":
        return section_service
    return _registrable_label(rule.lstrip("*.").lower())


@functools.lru_cache(maxsize=None)
def _icann_psl():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


def _registrable_label(domain: str) -> str:
    ps = _icann_psl().publicsuffix(domain) or domain.rsplit(".", 1)[-1]
    rest = domain[: -len(ps)].rstrip(".")
    return rest.rsplit(".", 1)[-1] if rest else domain.split(".")[0]


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The shipped catalogue without extensions, built once per process (about 0.3 s)."""
    return Catalog()


def refresh(dest: str | None = None, timeout: float = 20.0) -> str:
    """Re-download every provider's published networks (see :func:`refresh_ip_ranges`) into ``dest``."""
    rows, _ = _read_tsv(os.path.join(_data_dir(), "ip_providers.tsv"))
    return refresh_ip_ranges([r["directory"] for r in rows], dest, timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m raresketch.catalog refresh [DEST]`` | ``sources`` | ``resolve NAME_OR_IP...``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("refresh", "sources", "resolve"):
        print("usage: python -m raresketch.catalog refresh [DEST] | sources | resolve NAME_OR_IP...", file=sys.stderr)
        return 2
    if argv[0] == "refresh":
        try:
            dest = refresh(argv[1] if len(argv) > 1 else None)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"wrote {dest}; use it with RARESKETCH_IP_RANGES={dest}")
        return 0
    cat = default_catalog()
    if argv[0] == "sources":
        for k, v in cat.sources().items():
            print(f"{k}: {v}")
        return 0
    for v in argv[1:]:
        print(v, cat.resolve_ip(v) if normalize_ip(v) else cat.resolve_host(v))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
