"""Hostname suffix rules: the trie that matches them right to left, and the Public Suffix List blocks they come
from (the PRIVATE section of the PSL shipped in the ``publicsuffixlist`` package, read offline)."""
from __future__ import annotations

import fnmatch
import functools
import os
import re

__all__ = ["SuffixTrie", "derive_service", "psl_private_blocks", "registrable_domain"]


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


def psl_path() -> str:
    import publicsuffixlist

    return os.path.join(os.path.dirname(publicsuffixlist.__file__), "public_suffix_list.dat")


def psl_private_blocks(path: str | None = None) -> tuple[list[tuple[str, list[str]]], dict]:
    """The PSL PRIVATE section as (block title, rules) pairs, and the list's VERSION/COMMIT header fields.

    A block starts at a comment line after a blank line; its title is that comment up to `` : ``."""
    path = path or psl_path()
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


def _project_service(rule: str, proj: list[tuple[str, str, str]]) -> str | None:
    """Service of the most literal project suffix (``cloud_suffixes.tsv``, globs allowed) that a PSL rule
    equals or ends with; None when there is none (the first of equally literal ones). O(len(proj)) per rule."""
    r = rule.lstrip("*.").lower()
    best = None
    for test, lit, svc in _project_matchers(tuple(proj)):
        if (best is None or lit > best[0]) and test(r):
            best = (lit, svc)
    return best[1] if best else None


@functools.lru_cache(maxsize=4)
def _project_matchers(proj: tuple[tuple[str, str, str], ...]) -> list:
    """Per project suffix: a test "the rule equals it or ends with '.' + it" (``fnmatch`` semantics: a plain
    string comparison for a literal suffix, one compiled pattern for a glob), its literal length and service."""
    out = []
    for suffix, _prov, svc in proj:
        pat = suffix.lower()
        if any(c in pat for c in "*?["):
            rx = re.compile(r"(?:.*\.)?" + fnmatch.translate(pat), re.S)
            test = rx.match
        else:
            test = (lambda p, d: lambda r: r == p or r.endswith(d))(pat, "." + pat)
        out.append((test, len(pat.replace("*", "")), svc))
    return out


def derive_service(rule: str, section_service: str, proj: list[tuple[str, str, str]]) -> str:
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


def registrable_domain(name: str) -> str | None:
    """The registrable domain of a normalised name by the PSL ICANN section (``example.co.uk`` for
    ``a.b.example.co.uk``); None when the name is itself a public suffix or its top-level domain is not an ICANN
    one (``intranet.corp``). O(labels)."""
    return _icann_psl().privatesuffix(name, accept_unknown=False)
