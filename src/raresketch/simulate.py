"""A synthetic organisation: endpoint network events for demos, tests and benchmarks.

:class:`Organisation` simulates N agents over D days of event time, deterministically from a seed, and emits
Arrow tables in :data:`raresketch.events.EVENT_SCHEMA`, in global event-time order, generated slice by slice
(15 minutes of event time at a time), so memory stays bounded whatever the number of days or agents.

What is in it (profiles live in ``raresketch/data/simulate/profiles.json``; they are synthetic):

- agents with roles (office workers, developers, meeting-room PCs, AWS and Azure servers), mostly Windows,
  some macOS and Linux; a share join late (their first event is after day 0); one user per workstation;
- processes with realistic paths, signers, SHA-256 (changing with updates), original file names, parents and
  command lines: browsers, Office, OneDrive, Teams, Slack / Telegram / Discord / WhatsApp desktop clients on
  some agents (vendor-signed), updaters, AV/EDR, cloud agents, developer tools on developer agents;
- destinations with Zipf popularity (plus per-agent favourites), company cloud resources every agent uses,
  per-team and per-agent cloud resources, and a stream of first-seen rare cloud hosts met every day by the
  *habitual explorers* (browsers, sync clients, developer tools, cloud agents); IM traffic from the vendors'
  signed desktop clients and browsers to web IM; some rows carry only an IP (null ``destination.domain``)
  inside published cloud / IM networks;
- injected attacks (needles) after the activation period, with :attr:`Organisation.ground_truth` naming
  the alert(s) each should raise, plus a few benign-but-rare injections (``malicious`` false).

Units: times are UTC; ``start`` is the first day's midnight UTC; ``days`` counts whole days of event time;
``events_per_agent_day`` is the mean number of network events per agent per weekday (workstations are
quieter at weekends, servers are not); timestamps have microsecond resolution.

Examples
--------
>>> from raresketch.simulate import Organisation
>>> org = Organisation(agents=20, days=2, seed=1, events_per_agent_day=50, attacks=False)
>>> sum(t.num_rows for t in org.batches(batch_size=10_000)) > 0
True
"""
from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .events import EVENT_SCHEMA, mark_conformed

__all__ = [
    "ALERT_NAMES",
    "GROUND_TRUTH_SCHEMA",
    "Organisation",
    "load_profiles",
    "write_ecs_jsonl",
    "write_parquet",
]

#: The six alert names of DESIGN.md, keyed by the short codes used in the scenario profiles.
ALERT_NAMES: dict[str, str] = {
    "rare_cloud": "A process connected to a rare cloud resource",
    "rare_cloud_atypical": "A process connected to an atypical rare cloud resource",
    "rare_cloud_atypical_agent": "A process connected to a rare cloud resource atypical to this agent",
    "im": "Uncommon communication to an instant messaging server",
    "im_suspicious": "Uncommon communication to an instant messaging server by a suspicious process",
    "im_scripting": "Uncommon communication to an instant messaging server by an uncommon scripting engine execution",
}

#: One row per injected connection burst.  ``alert_name`` is the scenario's headline alert; ``matched_alert_names``
#: lists every alert name (base and variations) whose conditions the injection meets, so an engine that reports
#: any of them for the burst's first event has caught it (DESIGN.md leaves the precedence between two variations
#: to the detector).  Benign injections (``malicious`` false) are legitimate but rare: they are expected to alert.
GROUND_TRUTH_SCHEMA = pa.schema(
    [
        pa.field("@timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("end", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("day", pa.int32(), nullable=False),
        pa.field("scenario", pa.string(), nullable=False),
        pa.field("malicious", pa.bool_(), nullable=False),
        pa.field("host.id", pa.string(), nullable=False),
        pa.field("host.name", pa.string()),
        pa.field("host.os.type", pa.string()),
        pa.field("process.name", pa.string()),
        pa.field("process.executable", pa.string()),
        pa.field("process.parent.name", pa.string()),
        pa.field("process.hash.sha256", pa.string()),
        pa.field("process.code_signature.subject_name", pa.string()),
        pa.field("process.pe.original_file_name", pa.string()),
        pa.field("process.command_line", pa.string()),
        pa.field("destination.domain", pa.string()),
        pa.field("destination.ip", pa.string()),
        pa.field("destination.port", pa.int32()),
        pa.field("n_connections", pa.int32(), nullable=False),
        pa.field("alert_name", pa.string(), nullable=False),
        pa.field("matched_alert_names", pa.list_(pa.string()), nullable=False),
        pa.field("description", pa.string()),
    ]
)

_US = 1_000_000
_DAY_US = 86_400 * _US
_SLICES = 96  # 15-minute slices of event time
_SLICE_US = _DAY_US // _SLICES
_STR_NULL = pa.scalar(None, pa.string())


@lru_cache(maxsize=4)
def _load_profiles_cached(path: str | None) -> str:
    if path is None:
        return resources.files("raresketch").joinpath("data/simulate/profiles.json").read_text(encoding="utf-8")
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def load_profiles(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Return the simulator's profiles (a fresh copy): the packaged synthetic ones, or those at ``path``."""
    return json.loads(_load_profiles_cached(None if path is None else os.fspath(path)))


# --------------------------------------------------------------------------------------------------------------
# small vectorised helpers


def _cidr(text: str) -> tuple[int, int]:
    """``a.b.c.d/n`` -> (first address as int, number of addresses)."""
    addr, _, bits = text.partition("/")
    a, b, c, d = (int(x) for x in addr.split("."))
    n = int(bits) if bits else 32
    return (a << 24) | (b << 16) | (c << 8) | d, 1 << (32 - n)


_OCTETS = pa.array([str(i) for i in range(256)], pa.string())
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _format_ips(ips: np.ndarray) -> pa.Array:
    """uint32 IPv4 addresses -> dotted-quad strings, vectorised."""
    ips = np.ascontiguousarray(ips, dtype=np.uint32)
    parts = [_OCTETS.take(_arr(((ips >> shift) & 0xFF).astype(np.uint8))) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def _hex_strings(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    """``n`` random lower-case hex strings of ``width`` characters."""
    if n == 0:
        return pa.array([], pa.string())
    chars = _HEX[rng.integers(0, 16, size=(n, width), dtype=np.uint8)]
    return _fixed_strings(chars, width)


def _fixed_strings(chars: np.ndarray, width: int) -> pa.Array:
    """(n, width) uint8 ASCII codes -> n strings of ``width`` characters, via Arrow buffers."""
    n = chars.shape[0]
    data = np.ascontiguousarray(chars, dtype=np.uint8).ravel()
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _digit_strings(rng: np.random.Generator, n: int, width: int) -> pa.Array:
    chars = np.frombuffer(b"0123456789", dtype=np.uint8)[rng.integers(0, 10, size=(n, width), dtype=np.uint8)]
    return _fixed_strings(chars, width)


def _segment_cum(weights_per_segment: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenated cumulative weights, segment ``k`` normalised to ``(k, k + 1]``.

    ``searchsorted(cum, k + u, side="right")`` with ``u`` uniform in [0, 1) then draws an element of segment
    ``k`` with probability proportional to its weight (zero-weight elements are never drawn).
    """
    out = []
    for k, w in enumerate(weights_per_segment):
        w = np.asarray(w, dtype=np.float64)
        total = w.sum()
        if total <= 0:
            raise ValueError(f"segment {k} has no positive weight")
        c = np.cumsum(w) / total
        c[-1] = 1.0
        out.append(k + c)
    return np.concatenate(out) if out else np.zeros(0)


def _draw(cum: np.ndarray, seg: np.ndarray, u: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(cum, seg + u, side="right")
    return np.minimum(idx, len(cum) - 1)


_NP_TYPES = {
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.uint32): pa.uint32(),
    np.dtype(np.uint8): pa.uint8(),
    np.dtype(np.float64): pa.float64(),
}


def _arr(a: np.ndarray, type: pa.DataType | None = None) -> pa.Array:
    """numpy -> Arrow without ``pa.array``'s per-call probing for pandas (slow when it is absent).

    Numeric arrays are wrapped zero-copy; booleans are bit-packed.  ``type`` reinterprets the values (for
    example int64 -> timestamp).
    """
    a = np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        bits = np.packbits(a, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(a), [None, pa.py_buffer(bits)])
    t = _NP_TYPES[a.dtype] if type is None else type
    return pa.Array.from_buffers(t, len(a), [None, pa.py_buffer(a)])


_S = {k: pa.scalar(k, pa.string()) for k in ("udp", "tcp", "event", "egress", "{", "}", "d", "md")}


def _fmt(template: str | None, **kw: str) -> str | None:
    if template is None:
        return None
    for k, v in kw.items():
        template = template.replace("{" + k + "}", v)
    return template


def _to_schema(cols: dict[str, pa.Array], n: int) -> pa.Table:
    """Columns -> a table with exactly EVENT_SCHEMA; a schema column we do not generate is all null."""
    arrays = []
    for f in EVENT_SCHEMA:
        a = cols.get(f.name)
        if a is None:
            a = pa.nulls(n, f.type)
        elif a.type != f.type:
            a = a.cast(f.type)
        arrays.append(a)
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _stable_hash(*parts: object) -> int:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


# --------------------------------------------------------------------------------------------------------------
# labels of cloud hosts


class _Labeler:
    """Vectorised tenant labels in the styles of the profiles (``fresh_styles``)."""

    def __init__(self, words: Sequence[str]):
        self.words = pa.array(list(words), pa.string())
        self.n = len(words)

    def _w(self, rng: np.random.Generator, n: int) -> pa.Array:
        return self.words.take(_arr(rng.integers(0, self.n, n)))

    def labels(self, rng: np.random.Generator, style: str, n: int) -> pa.Array:
        if n == 0:
            return pa.array([], pa.string())
        w, j = self._w, pc.binary_join_element_wise
        if style == "words":
            return j(w(rng, n), w(rng, n), "-")
        if style == "words_hex":
            return j(w(rng, n), w(rng, n), _hex_strings(rng, n, 6), "-")
        if style == "cfdist":
            return j(pa.repeat(_S["d"], n), _hex_strings(rng, n, 13), "")
        if style == "account":
            return j(w(rng, n), w(rng, n), _hex_strings(rng, n, 4), "")
        if style == "md":
            return j(pa.repeat(_S["md"], n), _hex_strings(rng, n, 12), "-")
        if style == "worker":
            return j(j(w(rng, n), w(rng, n), "-"), w(rng, n), ".")
        if style == "tunnel":
            return j(w(rng, n), w(rng, n), w(rng, n), w(rng, n), "-")
        if style == "ngrok":
            return j(_hex_strings(rng, n, 4), _hex_strings(rng, n, 4), _hex_strings(rng, n, 4), "-")
        if style == "appspot":
            return j(w(rng, n), w(rng, n), _digit_strings(rng, n, 6), "-")
        if style == "lambda":
            return _hex_strings(rng, n, 32)
        raise ValueError(f"unknown label style {style!r}")


# --------------------------------------------------------------------------------------------------------------
# the organisation


@dataclass
class _Fresh:
    suffixes: list[str]
    styles: list[str]
    nets: list[list[tuple[int, int]]]
    cum: np.ndarray


@dataclass
class _Plan:
    scenario: dict[str, Any]
    day: int
    agent: int
    times_us: np.ndarray
    row: dict[str, Any]
    gt: dict[str, Any] = field(default_factory=dict)


class Organisation:
    """A simulated organisation's endpoint network events, deterministic from ``seed``.

    Parameters
    ----------
    agents : int
        Number of agents (hosts) over the whole period, late joiners included.
    days : int
        Days of event time, starting at ``start`` 00:00 UTC.
    seed : int
        Same seed, same parameters -> identical batches and ground truth.
    start : str or datetime.date
        First day (ISO date, UTC).
    events_per_agent_day : float
        Mean network events per agent on a weekday (a busy developer makes more, a meeting-room PC fewer;
        workstations are quieter at weekends).  The default, 500, is a realistic office endpoint; lower it
        for quick tests.
    attacks : bool, int or sequence of str
        ``True``: inject every scenario of the profiles once (after the activation period); an int: that many
        rounds of every scenario (each on other agents); a sequence: only those scenario ids; ``False``: none.
    benign : bool
        Also inject the benign-but-rare scenarios (ground truth rows with ``malicious`` false).
    late_join_share : float
        Share of agents whose first event is after day 0 (their join day is uniform over the first 60 %).
    activation_days : int
        Attacks are injected strictly after this many days, on agents observed for longer than that.
    mean_burst : float
        Mean connections per session (a process opening several connections to one destination in seconds).
    profiles : dict, optional
        Profiles to use instead of the packaged ones (see :func:`load_profiles`).
    """

    def __init__(
        self,
        agents: int = 200,
        days: int = 45,
        seed: int = 0,
        start: str | _dt.date = "2026-01-01",
        events_per_agent_day: float = 500.0,
        attacks: bool | int | Sequence[str] = True,
        *,
        benign: bool = True,
        late_join_share: float = 0.12,
        activation_days: int = 14,
        mean_burst: float = 3.0,
        profiles: dict[str, Any] | None = None,
    ) -> None:
        if int(agents) < 1:
            raise ValueError(f"agents must be >= 1, got {agents}")
        if int(days) < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        if not events_per_agent_day > 0:
            raise ValueError(f"events_per_agent_day must be > 0, got {events_per_agent_day}")
        if not 0 <= late_join_share <= 1:
            raise ValueError(f"late_join_share must be in [0, 1], got {late_join_share}")
        if not mean_burst >= 1:
            raise ValueError(f"mean_burst must be >= 1, got {mean_burst}")
        self.n_agents = int(agents)
        self.days = int(days)
        self.seed = int(seed)
        if isinstance(start, str):
            start = _dt.date.fromisoformat(start)
        self.start = start
        self.start_us = int(
            _dt.datetime(start.year, start.month, start.day, tzinfo=_dt.timezone.utc).timestamp()
        ) * _US
        self.events_per_agent_day = float(events_per_agent_day)
        self.late_join_share = float(late_join_share)
        self.activation_days = int(activation_days)
        self.mean_burst = float(mean_burst)
        self.profiles = load_profiles() if profiles is None else profiles

        rng = np.random.default_rng([self.seed, 0x5EED, 1])
        self._labeler = _Labeler(self.profiles["words"])
        self._nets = {k: [_cidr(c) for c in v] for k, v in self.profiles["nets"].items()}
        self._build_agents(rng)
        self._build_processes(rng)
        self._build_destinations(rng)
        self._build_installs(rng)
        self._build_diurnal()
        self._plans: list[_Plan] = []
        self._attack_rows = {}
        self.skipped_scenarios: list[str] = []
        if attacks is not False and attacks is not None:
            self._plan_attacks(attacks, benign)

    # ---------------------------------------------------------------------------------------------- agents
    def _build_agents(self, rng: np.random.Generator) -> None:
        P = self.profiles
        roles = list(P["roles"])
        shares = np.array([P["roles"][r]["share"] for r in roles])
        n = self.n_agents
        counts = np.floor(shares / shares.sum() * n).astype(int)
        if n >= 10:
            counts = np.maximum(counts, 1)
        while counts.sum() < n:
            counts[int(np.argmax(shares / shares.sum() * n - counts))] += 1
        while counts.sum() > n:
            counts[int(np.argmax(counts))] -= 1
        role = np.repeat(np.arange(len(roles)), counts)
        rng.shuffle(role)
        self.roles = roles
        self.agent_role = role
        role_name = [roles[r] for r in role]

        os_ = []
        for r in role_name:
            mix = P["roles"][r]["os"]
            keys = list(mix)
            os_.append(keys[int(rng.choice(len(keys), p=np.array(list(mix.values())) / sum(mix.values())))])
        # every scenario needs a host of its kind: make sure the small populations exist when the org is not tiny
        if n >= 20:
            def ensure(role_names: tuple[str, ...], os_name: str) -> None:
                idx = [i for i, r in enumerate(role_name) if r in role_names]
                if idx and not any(os_[i] == os_name for i in idx):
                    os_[idx[0]] = os_name
            ensure(("office", "developer"), "macos")
            ensure(("server_aws",), "linux")
            ensure(("server_azure",), "windows")
        self.agent_os = np.array(os_, dtype=object)

        # join day: most on day 0, a share later (uniform over the first 60 % of the period)
        late = rng.random(n) < self.late_join_share
        last = max(1, int(self.days * 0.6))
        join = np.where(late, rng.integers(1, last + 1, n), 0) if self.days > 1 else np.zeros(n, int)
        self.agent_join = join.astype(np.int64)

        tz_opts = P["timezones_hours"]
        tz = np.array([t for t, _ in tz_opts])[
            rng.choice(len(tz_opts), size=n, p=np.array([w for _, w in tz_opts]) / sum(w for _, w in tz_opts))
        ]
        is_server = np.array([r.startswith("server") for r in role_name])
        tz = np.where(is_server, 0.0, tz)
        self.agent_tz_slices = np.rint(tz * 4).astype(np.int64)

        act = np.exp(rng.normal(-0.125, 0.5, n))  # lognormal, mean ~1
        self.agent_activity = act * np.array([P["roles"][r]["activity"] for r in role_name])
        self.agent_bg_share = np.array([P["roles"][r]["background_share"] for r in role_name])

        teams: list[str] = []
        team_names: list[str] = []
        for r in role_name:
            opts = P["teams"][r]
            w = 1.0 / np.arange(1, len(opts) + 1) ** 0.6
            teams.append(opts[int(rng.choice(len(opts), p=w / w.sum()))])
        team_names = sorted(set(teams))
        self.team_names = team_names
        self.agent_team = np.array([team_names.index(t) for t in teams], dtype=np.int64)

        first, last_ = P["names"]["first"], P["names"]["last"]
        users, hosts, ids = [], [], []
        seen: set[str] = set()
        n_ws = 0
        for i, r in enumerate(role_name):
            hid = hashlib.blake2b(f"{self.seed}|agent|{i}".encode(), digest_size=16).hexdigest()
            ids.append(f"{hid[:8]}-{hid[8:12]}-4{hid[13:16]}-a{hid[17:20]}-{hid[20:32]}")
            o = os_[i]
            if r.startswith("server"):
                users.append({"linux": "ec2-user" if r == "server_aws" else "azureuser"}.get(o, "Administrator"))
                if o == "linux":
                    hosts.append(
                        f"ip-10-{rng.integers(0, 40)}-{rng.integers(0, 255)}-{rng.integers(1, 255)}"
                        if r == "server_aws" else f"acme-az-app-{i:03d}"
                    )
                else:
                    hosts.append(f"ACME-{'AWS' if r == 'server_aws' else 'AZ'}-WEB{i:03d}")
                continue
            if r == "kiosk":
                users.append("SYSTEM")
                hosts.append(f"ACME-MR-{i:04d}")
                continue
            u = f"{first[int(rng.integers(len(first)))][0]}{last_[int(rng.integers(len(last_)))]}"
            k = 2
            base = u
            while u in seen:
                u = f"{base}{k}"
                k += 1
            seen.add(u)
            users.append(u)
            n_ws += 1
            if o == "macos":
                hosts.append(f"{u}-mbp")
            elif o == "linux":
                hosts.append(f"{u}-dev")
            else:
                hosts.append(f"ACME-{'DEV' if r == 'developer' else 'LT'}-{i:04d}")
        subnet = {"office": 20, "developer": 30, "kiosk": 40, "server_aws": 0, "server_azure": 1}
        self.agent_ip = [
            f"10.{subnet.get(r, 50)}.{(i >> 8) & 0xFF}.{(i & 0xFF) or 254}" for i, r in enumerate(role_name)
        ]
        self.agent_user = users
        self.agent_host = hosts
        self.agent_id = ids

    # ------------------------------------------------------------------------------------------- processes
    def _build_processes(self, rng: np.random.Generator) -> None:
        P = self.profiles
        self.pdefs: list[dict[str, Any]] = list(P["processes"])
        self.pdef_by_id = {p["id"]: i for i, p in enumerate(self.pdefs)}
        signers = P["signers"]
        self._signer_names = [signers[p["signer"]]["subject"] for p in self.pdefs]
        self._signer_trusted = [signers[p["signer"]].get("trusted") for p in self.pdefs]
        self._signer_exists = [
            signers[p["signer"]].get("exists", True if signers[p["signer"]]["subject"] else None) for p in self.pdefs
        ]
        self._original = [
            p.get("original", p["name"] if p["os"] == "windows" else None) for p in self.pdefs
        ]
        # hash table: one string per (hash key, version); the key ignores the per-user part of the path
        self._hash_strings: list[str] = []
        self._hash_base = np.zeros(len(self.pdefs), np.int64)
        self._update_days = np.array([int(p.get("update_days", 0)) for p in self.pdefs], np.int64)
        for i, p in enumerate(self.pdefs):
            ud = self._update_days[i]
            nver = 1 if ud <= 0 else self.days // ud + 3
            self._hash_base[i] = len(self._hash_strings)
            for v in range(nver):
                self._hash_strings.append(self._hash_for(p["os"], p["name"], p["path"], p["signer"], v))
        # traffic mixtures: segment per process def
        self._pool_names: list[str] = list(P["pools"])
        pool_ix = {k: i for i, k in enumerate(self._pool_names)}
        mix_w, mix_pool = [], []
        for p in self.pdefs:
            keys = list(p["traffic"])
            for k in keys:
                if k not in pool_ix:
                    raise ValueError(f"process {p['id']!r} refers to unknown pool {k!r}")
            mix_pool.extend(pool_ix[k] for k in keys)
            mix_w.append(np.array([p["traffic"][k] for k in keys], float))
        self._mix_cum = _segment_cum(mix_w)
        self._mix_pool = np.array(mix_pool, np.int64)

    def _hash_for(self, os_: str, name: str, path: str, signer: str | None, version: int) -> str:
        path = path.replace("{user}", "*")
        return hashlib.sha256(f"raresketch-sim|{self.seed}|{os_}|{name.lower()}|{path}|{signer}|{version}".encode()).hexdigest()

    # ------------------------------------------------------------------------------------------ destinations
    def _ip_of(self, name: str, net: str) -> tuple[int, int]:
        """A fixed IP inside ``net`` for a named destination (base, size 1)."""
        ranges = self._nets[net]
        h = _stable_hash(self.seed, name)
        base, size = ranges[h % len(ranges)]
        return base + (h >> 16) % size, 1

    def _build_destinations(self, rng: np.random.Generator) -> None:
        P = self.profiles
        company = P["company"]
        dom: list[str | None] = []
        ip_base: list[int] = []
        port: list[int] = []
        n_added: dict[int, int] = {}
        udp: list[bool] = []
        index: dict[tuple[Any, ...], int] = {}

        def add(domain: str | None, net: str, p: int = 443, proto: str = "tcp", k: int = 1) -> int:
            """Index of a destination; an IP-only entry becomes ``k`` fixed addresses inside ``net``."""
            key = (domain, net if domain is None else None, p, proto)
            if key in index:
                return index[key]
            first = len(dom)
            if domain is None:
                ranges = self._nets[net]
                sizes = np.array([z for _, z in ranges], float)
                seen_ips: set[int] = set()
                for j in range(k):
                    b, z = ranges[int(rng.choice(len(ranges), p=sizes / sizes.sum()))]
                    ip = b + int(rng.integers(z))
                    if ip in seen_ips:
                        continue
                    seen_ips.add(ip)
                    dom.append(None); ip_base.append(ip); port.append(p); udp.append(proto == "udp")
                n_added[first] = len(dom) - first
            else:
                ip, _ = self._ip_of(domain, net)
                dom.append(domain); ip_base.append(ip); port.append(p); udp.append(proto == "udp")
                n_added[first] = 1
            index[key] = first
            return first

        def entry_ids(e: Sequence[Any], default_net: str, weight_override: float | None = None) -> list[tuple[int, float]]:
            d = _fmt(e[0], org=company) if e[0] is not None else None
            w = float(e[1]) if weight_override is None else weight_override
            net = e[2] if len(e) > 2 and e[2] else default_net
            p = int(e[3]) if len(e) > 3 else 443
            proto = e[4] if len(e) > 4 else "tcp"
            first = add(d, net, p, proto, k=8)
            m = n_added[first]
            if m > 1:  # IP-only: a few addresses, Zipf-weighted (a client prefers its nearest data centre)
                z = np.arange(1, m + 1, dtype=float) ** -1.0
                return [(first + j, w * z[j] / z.sum()) for j in range(m)]
            return [(first, w)]

        seg_w: list[np.ndarray] = []
        seg_idx: list[np.ndarray] = []
        self._pool_kind: list[str] = []
        self._pool_seg_base: list[int] = []
        self._fresh: dict[int, _Fresh] = {}
        web_ids: np.ndarray | None = None
        web_tail_start = 0
        n_agents = self.n_agents
        role_name = [self.roles[r] for r in self.agent_role]

        def push(pairs: list[tuple[int, float]]) -> None:
            seg_idx.append(np.array([i for i, _ in pairs], np.int64))
            seg_w.append(np.array([w for _, w in pairs], float))

        for pi, name in enumerate(self._pool_names):
            spec = P["pools"][name]
            kind = spec["kind"]
            self._pool_seg_base.append(len(seg_w))
            net = spec.get("net", "hosting")
            if kind == "list":
                pairs = [pe for e in spec["entries"] for pe in entry_ids(e, net)]
                push(pairs)
                self._pool_kind.append("static")
            elif kind == "zipf_list":
                ranks = np.arange(1, len(spec["entries"]) + 1, dtype=float) ** -float(spec["exponent"])
                pairs = [pe for e, w in zip(spec["entries"], ranks) for pe in entry_ids(e, net, float(w))]
                push(pairs)
                self._pool_kind.append("static")
            elif kind == "zipf":
                head = [pe for e in spec["head"] for pe in entry_ids(e, net)]
                head_w = np.array([w for _, w in head])
                tail_names, tail_nets = self._web_tail(rng, spec)
                tail_ids = np.array([add(d, nt) for d, nt in zip(tail_names, tail_nets)], np.int64)
                s = float(spec["exponent"])
                ranks = np.arange(len(head) + 1, len(head) + 1 + len(tail_ids), dtype=float)
                tail_w = ranks ** -s
                # scale so the tail continues the head's Zipf curve at its first rank
                tail_w *= head_w.min() / tail_w[0] * 0.9
                ids = np.concatenate([np.array([i for i, _ in head], np.int64), tail_ids])
                ws = np.concatenate([head_w, tail_w])
                seg_idx.append(ids)
                seg_w.append(ws)
                web_ids, web_tail_start = ids, len(head)
                self._pool_kind.append("static")
            elif kind == "personal":
                if web_ids is None:
                    raise ValueError("the 'personal' pool must come after its 'zipf' pool")
                k = int(spec["per_agent"])
                tail = web_ids[web_tail_start:]
                w = np.arange(1, len(tail) + 1, dtype=float) ** -float(spec["exponent"])
                picks = rng.choice(len(tail), size=(n_agents, k), p=w / w.sum())
                for a in range(n_agents):
                    seg_idx.append(tail[picks[a]])
                    seg_w.append(np.ones(k))
                self._pool_kind.append("agent")
            elif kind == "team":
                for t in self.team_names:
                    pairs = [
                        pe
                        for e in spec["templates"]
                        for pe in entry_ids([_fmt(e[0], team=t, teamalnum=t.replace("-", "")), e[1], e[2]], net)
                    ]
                    push(pairs)
                self._pool_kind.append("team")
            elif kind == "agent":
                fb = spec.get("fallback", "company")
                fb_spec = P["pools"][fb]
                fb_pairs = [pe for e in fb_spec["entries"] for pe in entry_ids(e, fb_spec.get("net", "hosting"))]
                for a in range(n_agents):
                    if role_name[a] in spec["roles"]:
                        kw = dict(
                            user=self.agent_user[a].lower(),
                            host=self.agent_host[a].lower(),
                            hostalnum="".join(ch for ch in self.agent_host[a].lower() if ch.isalnum())[:14],
                        )
                        pairs = [pe for e in spec["templates"] for pe in entry_ids([_fmt(e[0], **kw), e[1], e[2]], net)]
                    else:
                        pairs = fb_pairs
                    push(pairs)
                self._pool_kind.append("agent")
            elif kind == "fresh":
                sfx = spec["suffixes"]
                self._fresh[pi] = _Fresh(
                    suffixes=[s[0] for s in sfx],
                    styles=[s[3] for s in sfx],
                    nets=[self._nets[s[2]] for s in sfx],
                    cum=_segment_cum([np.array([s[1] for s in sfx], float)]),
                )
                seg_idx.append(np.zeros(1, np.int64))  # placeholder segment, never used for a draw
                seg_w.append(np.ones(1))
                self._pool_kind.append("fresh")
            else:
                raise ValueError(f"pool {name!r}: unknown kind {kind!r}")

        self._seg_cum = _segment_cum(seg_w)
        self._seg_idx = np.concatenate(seg_idx)
        self._pool_seg_base_arr = np.array(self._pool_seg_base, np.int64)
        kinds = {"static": 0, "team": 1, "agent": 2, "fresh": 3}
        self._pool_kind_arr = np.array([kinds[k] for k in self._pool_kind], np.int64)
        self._dest_domain = pa.array(dom, pa.string())
        self._dest_ip = np.array(ip_base, np.uint32)
        self._dest_ip_str = _format_ips(self._dest_ip)
        self._dest_port = np.array(port, np.int32)
        self._dest_udp = np.array(udp, bool)
        self._dest_index = index

    def _web_tail(self, rng: np.random.Generator, spec: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Synthetic long tail of web destinations: ordinary sites and cloud-hosted ones."""
        n = int(spec["tail"])
        words = self.profiles["words"]
        tlds = self.profiles["tlds"]
        tld_w = np.array([w for _, w in tlds], float)
        cloud = spec["cloud_tail"]
        cloud_w = np.array([c[1] for c in cloud], float)
        is_cloud = rng.random(n) < float(spec["cloud_share"])
        n_cloud = int(is_cloud.sum())
        which = rng.choice(len(cloud), size=n_cloud, p=cloud_w / cloud_w.sum())
        cloud_names: list[str] = [""] * n_cloud
        for k in range(len(cloud)):
            pos = np.flatnonzero(which == k)
            labels = self._labeler.labels(rng, cloud[k][3], len(pos)).to_pylist()
            for p_, lab in zip(pos, labels):
                cloud_names[p_] = f"{lab}.{cloud[k][0]}"
        tld_pick = rng.choice(len(tlds), size=n, p=tld_w / tld_w.sum())
        w1 = rng.integers(0, len(words), n)
        w2 = rng.integers(0, len(words), n)
        names: list[str] = []
        nets: list[str] = []
        seen: set[str] = set()
        ci = 0
        for i in range(n):
            if is_cloud[i]:
                d = cloud_names[ci]
                nt = cloud[int(which[ci])][2]
                ci += 1
            else:
                d = f"{words[w1[i]]}{words[w2[i]]}.{tlds[tld_pick[i]][0]}"
                nt = "hosting"
            if d in seen:
                d = f"{d.split('.', 1)[0]}{i}.{d.split('.', 1)[1]}"
            seen.add(d)
            names.append(d)
            nets.append(nt)
        return names, nets

    # ---------------------------------------------------------------------------------------------- installs
    def _build_installs(self, rng: np.random.Generator) -> None:
        """One row per (agent, installed process): the 'agent-process' table."""
        role_name = [self.roles[r] for r in self.agent_role]
        rows_agent, rows_pdef = [], []
        w_int, w_bg = [], []
        exe, pname, pexe, user, cmd_start, cmd_n = [], [], [], [], [], []
        cmds: list[str] = []
        ver_off = []
        self._installed: dict[tuple[int, int], int] = {}
        for a in range(self.n_agents):
            r, o, u = role_name[a], self.agent_os[a], self.agent_user[a]
            team = self.team_names[self.agent_team[a]]
            for i, p in enumerate(self.pdefs):
                if p["os"] != o:
                    continue
                prob = p["roles"].get(r, 0.0)
                if prob <= 0 or rng.random() >= prob:
                    continue
                self._installed[(a, i)] = len(rows_agent)
                rows_agent.append(a)
                rows_pdef.append(i)
                bg = p["kind"] == "background"
                w_int.append(0.0 if bg else float(p["weight"]))
                w_bg.append(float(p["weight"]) if bg else 0.0)
                path = _fmt(p["path"], user=u)
                exe.append(path)
                par = self._parent(p.get("parent"))
                pname.append(par[0])
                pexe.append(_fmt(par[1], user=u))
                user.append(self._user_for(p.get("user", "user"), o, u))
                cmd_start.append(len(cmds))
                variants = [_fmt(c, path=path, user=u, team=team) for c in p["cmd"]]
                cmds.extend(variants)
                cmd_n.append(len(variants))
                ud = int(p.get("update_days", 0))
                ver_off.append(int(rng.integers(0, min(ud, 5))) if ud > 0 else 0)
        self._ap_agent = np.array(rows_agent, np.int64)
        self._ap_pdef = np.array(rows_pdef, np.int64)
        self._n_ap = len(rows_agent)
        # per-agent cumulative weights for interactive and background traffic (segment per agent)
        self._ap_cum = {}
        self._agent_has = {}
        for name, w in (("i", np.array(w_int)), ("b", np.array(w_bg))):
            totals = np.bincount(self._ap_agent, weights=w, minlength=self.n_agents)
            has = totals > 0
            # agents without such traffic get their whole segment weight spread evenly (never drawn: rate 0)
            w = w + np.where(has[self._ap_agent], 0.0, 1.0)
            segs = np.split(w, np.cumsum(np.bincount(self._ap_agent, minlength=self.n_agents))[:-1])
            self._ap_cum[name] = _segment_cum(segs)
            self._agent_has[name] = has
        self._ap_exe = pa.array(exe, pa.string())
        self._ap_parent_name = pa.array(pname, pa.string())
        self._ap_parent_exe = pa.array(pexe, pa.string())
        self._ap_user = pa.array(user, pa.string())
        self._ap_cmd_start = np.array(cmd_start, np.int64)
        self._ap_cmd_n = np.array(cmd_n, np.int64)
        self._cmds = pa.array(cmds, pa.string())
        self._ap_ver_off = np.array(ver_off, np.int64)
        self._agent_guid_prefix = pa.array([f"{h[:8]}-{h[9:13]}" for h in self.agent_id], pa.string())
        self._agent_arr = {
            "source.ip": pa.array(self.agent_ip, pa.string()),
            "host.id": pa.array(self.agent_id, pa.string()),
            "host.name": pa.array(self.agent_host, pa.string()),
            "host.os.type": pa.array(list(self.agent_os), pa.string()),
        }
        self._pdef_arr = {
            "process.name": pa.array([p["name"] for p in self.pdefs], pa.string()),
            "process.code_signature.subject_name": pa.array(self._signer_names, pa.string()),
            "process.code_signature.trusted": pa.array(self._signer_trusted, pa.bool_()),
            "process.code_signature.exists": pa.array(self._signer_exists, pa.bool_()),
            "process.pe.original_file_name": pa.array(self._original, pa.string()),
        }
        self._hash_arr = pa.array(self._hash_strings, pa.string())
        self._domain_gap = np.array(
            [float(self.profiles["roles"][r].get("domain_gap", 0.0)) for r in self.roles]
        )[self.agent_role]

    def _parent(self, ref: str | None) -> tuple[str | None, str | None]:
        if ref is None:
            return None, None
        parents = self.profiles["parents"]
        if ref in parents:
            return parents[ref]["name"], parents[ref]["path"]
        if ref in self.pdef_by_id:
            p = self.pdefs[self.pdef_by_id[ref]]
            return p["name"], p["path"]
        raise ValueError(f"unknown parent {ref!r}")

    @staticmethod
    def _user_for(kind: str, os_: str, user: str) -> str:
        if kind == "user":
            return user
        if kind == "system":
            return "SYSTEM" if os_ == "windows" else "root"
        if kind == "network_service":
            return "NETWORK SERVICE"
        return kind

    # ----------------------------------------------------------------------------------------------- diurnal
    def _build_diurnal(self) -> None:
        h = (np.arange(_SLICES) + 0.5) / 4.0  # local hour at slice centre
        office = (
            np.exp(-0.5 * ((h - 10.5) / 1.8) ** 2)
            + 0.9 * np.exp(-0.5 * ((h - 15.0) / 1.9) ** 2)
            + 0.12 * np.exp(-0.5 * ((h - 21.0) / 1.5) ** 2)
            + 0.01
        )
        office /= office.sum()
        flat = np.full(_SLICES, 1.0 / _SLICES)
        self._prof_interactive = office
        self._prof_background = 0.35 * flat + 0.65 * office  # laptops sleep at night

    # ------------------------------------------------------------------------------------------------ per day
    def _weekday(self, day: int) -> int:
        return (self.start + _dt.timedelta(days=day)).weekday()

    def _day_state(self, day: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, 0xDA7, day])
        n = self.n_agents
        server = np.array([self.roles[r].startswith("server") for r in self.agent_role])
        weekend = self._weekday(day) >= 5
        absent = (rng.random(n) < 0.03) & ~server
        active = (self.agent_join <= day) & ~absent
        sessions = self.events_per_agent_day * self.agent_activity / self.mean_burst * active
        f_int = np.where(server, 1.0, 0.1 if weekend else 1.0)
        f_bg = np.where(server, 1.0, 0.45 if weekend else 1.0)
        lam_i = sessions * (1 - self.agent_bg_share) * f_int * self._agent_has["i"]
        lam_b = sessions * self.agent_bg_share * f_bg * self._agent_has["b"]
        # a slice index per agent into its local diurnal profile, server profiles are flat
        ud = self._update_days[self._ap_pdef]
        version = np.where(ud > 0, (day + self._ap_ver_off) // np.maximum(ud, 1), 0)
        ent_prefix = self._agent_guid_prefix.take(_arr(self._ap_agent))
        day_part = pa.repeat(pa.scalar(f"{(day * 2654435761) & 0xFFFF:04x}"), self._n_ap)
        entity = pc.binary_join_element_wise(
            ent_prefix, day_part, _hex_strings(rng, self._n_ap, 4), _hex_strings(rng, self._n_ap, 12), "-"
        )
        entity = pc.binary_join_element_wise(pa.repeat(_S["{"], self._n_ap), entity, pa.repeat(_S["}"], self._n_ap), "")
        return {
            "entity": entity,
            "lam_i": lam_i,
            "lam_b": lam_b,
            "server": server,
            "pid": rng.integers(600, 65_000, self._n_ap).astype(np.int64) // 4 * 4,
            "hash_idx": self._hash_base[self._ap_pdef] + version,
        }

    def _chunk_slices(self) -> int:
        """Slices generated together: enough that a chunk holds ~50k events (fixed per organisation)."""
        per_slice = self.events_per_agent_day * self.n_agents / _SLICES
        want = max(1, int(50_000 / max(per_slice, 1.0)))
        return max(k for k in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96) if k <= want)

    def _slice(self, day: int, s: int, st: dict[str, np.ndarray], k: int = 1) -> pa.Table | None:
        """Events of slices ``s .. s + k - 1`` of ``day``, sorted by time."""
        rng = np.random.default_rng([self.seed, day, s, k, 0x511CE])
        local = (s + np.arange(k)[None, :] + self.agent_tz_slices[:, None]) % _SLICES
        server = st["server"][:, None]
        pi = np.where(server, 1.0 / _SLICES, self._prof_interactive[local])
        pb = np.where(server, 1.0 / _SLICES, self._prof_background[local])
        n_i = rng.poisson(st["lam_i"][:, None] * pi).ravel()
        n_b = rng.poisson(st["lam_b"][:, None] * pb).ravel()
        cell_agent = np.repeat(np.arange(self.n_agents), k)
        cell_slice = np.tile(np.arange(k), self.n_agents)
        ag_i = np.repeat(cell_agent, n_i)
        ag_b = np.repeat(cell_agent, n_b)
        sl = np.concatenate([np.repeat(cell_slice, n_i), np.repeat(cell_slice, n_b)])
        ap = np.concatenate(
            [
                _draw(self._ap_cum["i"], ag_i, rng.random(len(ag_i))),
                _draw(self._ap_cum["b"], ag_b, rng.random(len(ag_b))),
            ]
        )
        ag = np.concatenate([ag_i, ag_b])
        n_sess = len(ag)
        attack_rows = [r for j in range(k) for r in self._attack_rows.get((day, s + j), [])]
        if n_sess == 0 and not attack_rows:
            return None
        pdef = self._ap_pdef[ap]
        pool = self._mix_pool[_draw(self._mix_cum, pdef, rng.random(n_sess))]
        kind = self._pool_kind_arr[pool]
        key = np.where(kind == 1, self.agent_team[ag], np.where(kind == 2, ag, 0))
        seg = self._pool_seg_base_arr[pool] + key
        dest = self._seg_idx[_draw(self._seg_cum, seg, rng.random(n_sess))]
        fresh = kind == 3

        # bursts: sessions -> connections
        p_geo = 1.0 / self.mean_burst
        L = rng.geometric(p_geo, n_sess)
        rows = np.repeat(np.arange(n_sess), L)
        n = len(rows)
        t0 = self.start_us + day * _DAY_US + s * _SLICE_US
        start = sl * _SLICE_US + rng.integers(0, _SLICE_US, n_sess)
        gaps = rng.exponential(1.5 * _US, n).astype(np.int64)
        first = np.concatenate([[0], np.cumsum(L)[:-1]])
        gaps[first] = 0  # a session's first connection is at its start
        csum = np.cumsum(gaps)
        offs = csum - np.repeat(csum[first], L)
        ts = t0 + np.minimum(start[rows] + offs, (sl[rows] + 1) * _SLICE_US - 1)
        order = np.argsort(ts, kind="stable")
        ts = ts[order]
        rows = rows[order]

        ag_r = ag[rows]
        ap_r = ap[rows]
        pdef_r = pdef[rows]
        dest_r = dest[rows]
        fresh_r = fresh[rows]

        # fresh rare cloud hosts: one new host per session, all of the session's connections go to it
        f_sess = np.flatnonzero(fresh)
        fresh_dom = None
        fresh_ip = None
        if len(f_sess):
            f_ip = np.zeros(len(f_sess), np.uint32)
            f_pool = pool[f_sess]
            doms: list[pa.Array] = []
            pos_all: list[np.ndarray] = []
            for pid_ in np.unique(f_pool):
                fr = self._fresh[int(pid_)]
                pos = np.flatnonzero(f_pool == pid_)
                which = _draw(fr.cum, np.zeros(len(pos), np.int64), rng.random(len(pos)))
                for k in np.unique(which):
                    sub = pos[which == k]
                    labels = self._labeler.labels(rng, fr.styles[k], len(sub))
                    doms.append(pc.binary_join_element_wise(labels, pa.repeat(pa.scalar(fr.suffixes[k], pa.string()), len(sub)), "."))
                    pos_all.append(sub)
                    ranges = fr.nets[k]
                    r_pick = rng.integers(0, len(ranges), len(sub))
                    bases = np.array([b for b, _ in ranges], np.int64)[r_pick]
                    sizes = np.array([z for _, z in ranges], np.int64)[r_pick]
                    f_ip[sub] = (bases + (rng.random(len(sub)) * sizes).astype(np.int64)).astype(np.uint32)
            order_f = np.argsort(np.concatenate(pos_all), kind="stable")
            fresh_dom = pa.concat_arrays(doms).take(_arr(order_f))
            # map each fresh row to its session's rank among fresh sessions
            rank = np.full(n_sess, -1, np.int64)
            rank[f_sess] = np.arange(len(f_sess))
            fresh_rank_r = rank[rows]
            fresh_ip = f_ip

        # destination strings
        domain = self._dest_domain.take(_arr(dest_r))
        if fresh_dom is not None:
            mask = _arr(fresh_r)
            fr_rows = fresh_rank_r[fresh_r]
            domain = pc.replace_with_mask(domain, mask, fresh_dom.take(_arr(fr_rows)))
            ip_col = pc.replace_with_mask(
                self._dest_ip_str.take(_arr(dest_r)), mask, _format_ips(fresh_ip).take(_arr(fr_rows))
            )
        else:
            ip_col = self._dest_ip_str.take(_arr(dest_r))
        gap_rate = self._domain_gap[ag_r]
        gap = rng.random(n) < gap_rate
        if gap.any():
            domain = pc.if_else(_arr(gap), _STR_NULL, domain)
        port = np.where(fresh_r, 443, self._dest_port[dest_r]).astype(np.int32)
        udp = np.where(fresh_r, False, self._dest_udp[dest_r])
        cmd = self._ap_cmd_start[ap_r] + (rng.random(n) * self._ap_cmd_n[ap_r]).astype(np.int64)

        ap_pa = _arr(ap_r)
        ag_pa = _arr(ag_r)
        pdef_pa = _arr(pdef_r)
        cols = {
            "@timestamp": _arr(ts.astype(np.int64), pa.timestamp("us", tz="UTC")),
            "host.id": self._agent_arr["host.id"].take(ag_pa),
            "host.name": self._agent_arr["host.name"].take(ag_pa),
            "host.os.type": self._agent_arr["host.os.type"].take(ag_pa),
            "process.executable": self._ap_exe.take(ap_pa),
            "process.name": self._pdef_arr["process.name"].take(pdef_pa),
            "process.pid": _arr(st["pid"][ap_r]),
            "process.hash.sha256": self._hash_arr.take(_arr(st["hash_idx"][ap_r])),
            "process.code_signature.subject_name": self._pdef_arr["process.code_signature.subject_name"].take(pdef_pa),
            "process.code_signature.trusted": self._pdef_arr["process.code_signature.trusted"].take(pdef_pa),
            "process.code_signature.exists": self._pdef_arr["process.code_signature.exists"].take(pdef_pa),
            "process.pe.original_file_name": self._pdef_arr["process.pe.original_file_name"].take(pdef_pa),
            "process.command_line": self._cmds.take(_arr(cmd)),
            "process.parent.executable": self._ap_parent_exe.take(ap_pa),
            "process.parent.name": self._ap_parent_name.take(ap_pa),
            "user.name": self._ap_user.take(ap_pa),
            "destination.ip": ip_col,
            "destination.port": _arr(port.astype(np.int32)),
            "destination.domain": domain,
            "network.transport": pc.if_else(_arr(udp), _S["udp"], _S["tcp"]),
            "raresketch.domain_source": pc.if_else(pc.is_valid(domain), _S["event"], _STR_NULL),
        }
        cols["network.direction"] = pa.repeat(_S["egress"], n)
        cols["process.entity_id"] = st["entity"].take(ap_pa)
        cols["source.ip"] = self._agent_arr["source.ip"].take(ag_pa)
        cols["source.port"] = _arr(rng.integers(49152, 65536, n).astype(np.int32))
        table = _to_schema(cols, n)
        if attack_rows:
            names = [f.name for f in EVENT_SCHEMA]
            extra = pa.Table.from_pylist([{k: r.get(k) for k in names} for r in attack_rows], schema=EVENT_SCHEMA)
            table = pa.concat_tables([table, extra])
            order = np.argsort(table.column("@timestamp").to_numpy().astype(np.int64), kind="stable")
            table = table.take(_arr(order.astype(np.int64))).combine_chunks()
        return table

    # --------------------------------------------------------------------------------------------- batches
    def slices(self, start_day: int = 0, end_day: int | None = None) -> Iterator[pa.Table]:
        """Yield tables of consecutive 15-minute slices of event time (several per table when slices are
        sparse, see ``_chunk_slices``; empty ones skipped), in time order."""
        end_day = self.days if end_day is None else min(end_day, self.days)
        for day in range(max(0, start_day), end_day):
            st = self._day_state(day)
            k = self._chunk_slices()
            for s in range(0, _SLICES, k):
                t = self._slice(day, s, st, k)
                if t is not None and t.num_rows:
                    yield t

    def batches(
        self, batch_size: int = 100_000, start_day: int = 0, end_day: int | None = None
    ) -> Iterator[pa.Table]:
        """Yield tables of ``batch_size`` events (the last one shorter) in :data:`EVENT_SCHEMA`, in event-time order.

        A generator: memory is bounded by a batch and a 15-minute slice whatever ``days`` and ``agents``.
        The events are the same whatever ``batch_size``; ``start_day`` / ``end_day`` (0-based, end exclusive)
        select whole days without generating the others.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        buf: list[pa.Table] = []
        n_buf = 0
        for t in self.slices(start_day, end_day):
            buf.append(t)
            n_buf += t.num_rows
            if n_buf >= batch_size:
                big = pa.concat_tables(buf)
                off = 0
                while n_buf - off >= batch_size:
                    yield mark_conformed(big.slice(off, batch_size).combine_chunks())
                    off += batch_size
                rest = big.slice(off)
                buf = [rest] if rest.num_rows else []
                n_buf -= off
        if n_buf:
            yield mark_conformed(pa.concat_tables(buf).combine_chunks())

    def __iter__(self) -> Iterator[pa.Table]:
        return self.batches()

    def expected_events(self) -> float:
        """Rough expected number of events over the whole period (for progress bars and sizing)."""
        total = 0.0
        for day in range(self.days):
            st = self._day_state(day)
            total += float((st["lam_i"] + st["lam_b"]).sum()) * self.mean_burst
        return total

    # ------------------------------------------------------------------------------------------------- agents
    @property
    def agents(self) -> pa.Table:
        """One row per agent: ``host.id``, ``host.name``, ``host.os.type``, role, team, ``user.name``,
        ``join_day`` (first day with events, 0-based) and ``utc_offset_hours``."""
        return pa.table(
            {
                "host.id": self.agent_id,
                "host.name": self.agent_host,
                "host.os.type": list(self.agent_os),
                "role": [self.roles[r] for r in self.agent_role],
                "team": [self.team_names[t] for t in self.agent_team],
                "user.name": self.agent_user,
                "join_day": pa.array(self.agent_join, pa.int32()),
                "utc_offset_hours": pa.array(self.agent_tz_slices / 4.0, pa.float64()),
            }
        )

    # ------------------------------------------------------------------------------------------------ attacks
    def _plan_attacks(self, attacks: bool | int | Sequence[str], benign: bool) -> None:
        P = self.profiles
        scen_all = P["scenarios"]
        if attacks is True:
            chosen, rounds = [s for s in scen_all if s["malicious"]], 1
        elif isinstance(attacks, int):
            chosen, rounds = [s for s in scen_all if s["malicious"]], int(attacks)
        else:
            ids = list(attacks)
            known = {s["id"] for s in scen_all}
            bad = [i for i in ids if i not in known]
            if bad:
                raise ValueError(f"unknown attack scenario(s) {bad}; known: {sorted(known)}")
            chosen, rounds = [s for s in scen_all if s["id"] in ids], 1
        if benign:
            chosen += [s for s in scen_all if not s["malicious"] and s not in chosen]
        first_day = self.activation_days + 1
        if self.days <= first_day:
            self.skipped_scenarios = [s["id"] for s in chosen]
            return
        rng = np.random.default_rng([self.seed, 0xA77AC, 2])
        role_name = [self.roles[r] for r in self.agent_role]
        used: set[int] = set()
        days = [d for d in range(first_day, self.days)]
        weekdays = [d for d in days if self._weekday(d) < 5] or days
        for rnd in range(rounds):
            for sc in chosen:
                want = sc["agent"]
                ref = sc["process"].get("ref")
                needs = self.pdef_by_id.get(ref) if ref and not ref.startswith("@") else None
                placed = False
                for _ in range(40):
                    day = int(rng.choice(weekdays))
                    cands = [
                        a
                        for a in range(self.n_agents)
                        if role_name[a] in want["roles"]
                        and self.agent_os[a] == want["os"]
                        and self.agent_join[a] <= day - self.activation_days - 1
                        and (needs is None or (a, needs) in self._installed)
                    ]
                    if not cands:
                        continue
                    fresh_c = [a for a in cands if a not in used] or cands
                    a = int(rng.choice(fresh_c))
                    used.add(a)
                    self._plans.append(self._make_plan(sc, day, a, rng))
                    placed = True
                    break
                if not placed:
                    self.skipped_scenarios.append(sc["id"])
        self._plans.sort(key=lambda p: int(p.times_us[0]))
        self._index_attack_rows()

    def _make_plan(self, sc: dict[str, Any], day: int, a: int, rng: np.random.Generator) -> _Plan:
        P = self.profiles
        u = self.agent_user[a]
        o = self.agent_os[a]
        spec = sc["process"]
        ref = spec.get("ref")
        if ref and ref.startswith("@"):
            lb = P["lolbins"][ref]
            name, path, original, signer_key, hash_mode = lb["name"], lb["path"], lb.get("original"), lb["signer"], "catalogue"
            parent_ref = spec.get("parent")
            pdef_i = None
        elif ref:
            pdef_i = self.pdef_by_id[ref]
            p = self.pdefs[pdef_i]
            name, path, signer_key, hash_mode = p["name"], p["path"], p["signer"], "catalogue"
            original = self._original[pdef_i]
            parent_ref = spec.get("parent", p.get("parent"))
        else:
            name, path, original, signer_key = spec["name"], spec["path"], spec.get("original"), spec["signer"]
            hash_mode = spec.get("hash", "unique")
            parent_ref = spec.get("parent")
            pdef_i = None
        signer = P["signers"][signer_key]
        exe = _fmt(path, user=u)
        if hash_mode == "unique":
            sha = hashlib.sha256(f"raresketch-sim|{self.seed}|attack|{sc['id']}|{a}|{day}".encode()).hexdigest()
        elif pdef_i is not None:
            ud = int(self._update_days[pdef_i])
            ap_i = self._installed.get((a, pdef_i))
            off = int(self._ap_ver_off[ap_i]) if ap_i is not None else 0
            v = (day + off) // ud if ud > 0 else 0
            sha = self._hash_strings[int(self._hash_base[pdef_i]) + v]
        else:
            sha = self._hash_for(o, name, path, signer_key, 0)
        par_name, par_path = self._parent(parent_ref)
        # destination
        d = sc["destination"]
        port = int(d.get("port", 443))
        if "fresh" in d:
            label = self._labeler.labels(rng, d["style"], 1)[0].as_py()
            domain: str | None = f"{label}.{d['fresh']}"
            net = d["net"]
            base, size = self._nets[net][int(rng.integers(len(self._nets[net])))]
            ip = base + int(rng.integers(size))
        elif "domain" in d:
            domain = d["domain"]
            label = domain
            ip, _ = self._ip_of(domain, d["net"])  # a named host keeps its address, as in the regular traffic
        else:
            domain = None
            label = ""
            base, size = self._nets[d["ip_only"]][int(rng.integers(len(self._nets[d["ip_only"]])))]
            ip = base + int(rng.integers(size))
        ip_s = ".".join(str((ip >> k) & 0xFF) for k in (24, 16, 8, 0))
        cmd = _fmt(spec.get("cmd") or (self.pdefs[pdef_i]["cmd"][0] if pdef_i is not None else exe),
                   user=u, path=exe, host=domain or ip_s, label=label.split(".")[0])
        # time: a working hour, local
        local_h = float(rng.uniform(9.0, 17.0))
        t = self.start_us + day * _DAY_US + int((local_h - self.agent_tz_slices[a] / 4.0) * 3600 * _US)
        t = min(max(t, self.start_us + day * _DAY_US), self.start_us + (day + 1) * _DAY_US - 3600 * _US)
        lo, hi = sc.get("burst", [3, 10])
        k = int(rng.integers(lo, hi + 1))
        ilo, ihi = sc.get("interval_s", [1, 10])
        gaps = (rng.uniform(ilo, ihi, k - 1) * _US).astype(np.int64)
        times = t + np.concatenate([[0], np.cumsum(gaps)])
        times = np.minimum(times, self.start_us + (day + 1) * _DAY_US - 1)
        user = self._user_for(spec.get("user", "user"), o, u)
        row = {
            "host.id": self.agent_id[a],
            "host.name": self.agent_host[a],
            "host.os.type": o,
            "process.executable": exe,
            "process.name": name,
            "process.pid": int(rng.integers(600, 65_000)) // 4 * 4,
            "process.hash.sha256": sha,
            "process.code_signature.subject_name": signer["subject"],
            "process.code_signature.trusted": signer.get("trusted"),
            "process.code_signature.exists": signer.get("exists", True if signer["subject"] else None),
            "process.pe.original_file_name": original,
            "process.command_line": cmd,
            "process.parent.executable": _fmt(par_path, user=u),
            "process.parent.name": par_name,
            "user.name": user,
            "destination.ip": ip_s,
            "destination.port": port,
            "destination.domain": domain,
            "network.transport": "tcp",
            "raresketch.domain_source": "event" if domain else None,
            "network.direction": "egress",
            "process.entity_id": "{" + self.agent_id[a][:13] + "-" + hashlib.sha256(f"{sc['id']}|{a}|{day}".encode()).hexdigest()[:21] + "}",
            "source.ip": self.agent_ip[a],
            "source.port": int(rng.integers(49152, 65536)),
        }
        gt = {
            "@timestamp": int(times[0]),
            "end": int(times[-1]),
            "day": day,
            "scenario": sc["id"],
            "malicious": bool(sc["malicious"]),
            "host.id": self.agent_id[a],
            "host.name": self.agent_host[a],
            "host.os.type": o,
            "process.name": name,
            "process.executable": exe,
            "process.parent.name": par_name,
            "process.hash.sha256": sha,
            "process.code_signature.subject_name": signer["subject"],
            "process.pe.original_file_name": original,
            "process.command_line": cmd,
            "destination.domain": domain,
            "destination.ip": ip_s,
            "destination.port": port,
            "n_connections": k,
            "alert_name": ALERT_NAMES[sc["alert"]],
            "matched_alert_names": [ALERT_NAMES[m] for m in sc["matches"]],
            "description": sc["description"],
        }
        return _Plan(sc, day, a, times, row, gt)

    def _index_attack_rows(self) -> None:
        """Event rows of the injected bursts, keyed by the (day, slice) their timestamp falls in."""
        self._attack_rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for p in self._plans:
            for t in p.times_us:
                t = int(t)
                rel = t - self.start_us
                r = dict(p.row)
                r["@timestamp"] = _dt.datetime.fromtimestamp(t // _US, tz=_dt.timezone.utc).replace(microsecond=t % _US)
                self._attack_rows.setdefault((rel // _DAY_US, (rel % _DAY_US) // _SLICE_US), []).append(r)

    @property
    def ground_truth(self) -> pa.Table:
        """Injected connection bursts, one row each, in :data:`GROUND_TRUTH_SCHEMA` (sorted by time)."""
        rows = [dict(p.gt) for p in self._plans]
        for r in rows:
            for k in ("@timestamp", "end"):
                r[k] = pa.scalar(r[k], pa.timestamp("us", tz="UTC"))
        return pa.Table.from_pylist(rows, schema=GROUND_TRUTH_SCHEMA)

    def __repr__(self) -> str:
        return (
            f"Organisation(agents={self.n_agents}, days={self.days}, seed={self.seed}, start={self.start.isoformat()!r}, "
            f"events_per_agent_day={self.events_per_agent_day:g}, injected={len(self._plans)})"
        )

    # ------------------------------------------------------------------------------------------------ writers
    def write_parquet(self, path: str | os.PathLike[str], **kw: Any) -> int:
        """Write every event to a Parquet file; see :func:`write_parquet`."""
        return write_parquet(path, self, **kw)

    def write_ecs_jsonl(self, path: str | os.PathLike[str], **kw: Any) -> int:
        """Write every event as ECS JSON lines; see :func:`write_ecs_jsonl`."""
        return write_ecs_jsonl(path, self, **kw)


# --------------------------------------------------------------------------------------------------------------
# writers


def _tables(source: Organisation | Iterable[pa.Table] | pa.Table, batch_size: int) -> Iterator[pa.Table]:
    if isinstance(source, Organisation):
        yield from source.batches(batch_size=batch_size)
    elif isinstance(source, pa.Table):
        yield source
    else:
        yield from source


def write_parquet(
    path: str | os.PathLike[str],
    source: Organisation | Iterable[pa.Table] | pa.Table,
    *,
    batch_size: int = 500_000,
    compression: str = "zstd",
) -> int:
    """Stream ``source`` (an :class:`Organisation` or tables in :data:`EVENT_SCHEMA`) to a Parquet file.

    Each batch becomes a row group (``batch_size`` events).  Returns the number of events written.
    """
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(os.fspath(path), EVENT_SCHEMA, compression=compression) as w:
        for t in _tables(source, batch_size):
            w.write_table(t.cast(EVENT_SCHEMA) if t.schema != EVENT_SCHEMA else t)
            n += t.num_rows
    return n


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if v is None:
            continue
        parts = k.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return out


def write_ecs_jsonl(
    path: str | os.PathLike[str],
    source: Organisation | Iterable[pa.Table] | pa.Table,
    *,
    batch_size: int = 100_000,
    nested: bool = True,
) -> int:
    """Stream ``source`` to ECS JSON lines (one event per line; ``.gz`` paths are gzip-compressed).

    ``nested`` writes ECS objects (``{"host": {"id": ...}}``), otherwise dotted keys as in the schema.  Null
    fields are omitted; ``@timestamp`` is RFC 3339 UTC with microseconds; each event also carries
    ``event.kind: "event"``, ``event.category: ["network"]`` and ``event.type: ["connection", "start"]``.
    Returns the number of events written.
    """
    try:
        import orjson

        def dumps(o: Any) -> bytes:
            return orjson.dumps(o)
    except ImportError:  # pragma: no cover - orjson is optional
        def dumps(o: Any) -> bytes:
            return json.dumps(o, separators=(",", ":")).encode()

    p = os.fspath(path)
    opener = gzip.open if p.endswith(".gz") else open
    n = 0
    event_fields = {"event.kind": "event", "event.category": ["network"], "event.type": ["connection", "start"]}
    with opener(p, "wb") as fh:
        for t in _tables(source, batch_size):
            # whole seconds first: Arrow's %S carries the sub-second digits of a finer unit
            secs = pc.cast(t.column("@timestamp"), pa.timestamp("s", tz="UTC"), safe=False)
            ts = pc.strftime(secs, format="%Y-%m-%dT%H:%M:%S").to_pylist()
            us = (t.column("@timestamp").cast(pa.int64()).to_numpy() % _US).tolist()
            names = [c for c in t.column_names if c != "@timestamp"]
            cols = [t.column(c).to_pylist() for c in names]
            lines = []
            for i in range(t.num_rows):
                flat = {"@timestamp": f"{ts[i]}.{us[i]:06d}Z"}
                flat.update(event_fields)
                for name, col in zip(names, cols):
                    v = col[i]
                    if v is not None:
                        flat[name] = v
                lines.append(dumps(_nest(flat) if nested else flat))
            fh.write(b"\n".join(lines) + b"\n")
            n += t.num_rows
    return n


def match_ground_truth(alerts: Sequence[Any], ground_truth: pa.Table) -> tuple[list[list[int]], list[int]]:
    """Which alerts explain which injected bursts.

    An alert matches a ground-truth row when it is on the same host, to the same destination (domain, else IP),
    within the burst's time span. Returns, per ground-truth row, the indices of matching alerts, and the
    indices of alerts that match no row (false positives if the simulator's benign traffic is benign).
    """
    used: set[int] = set()
    hits: list[list[int]] = []
    for g in ground_truth.to_pylist():
        found = [k for k, a in enumerate(alerts)
                 if a.host_id == g["host.id"] and g["@timestamp"] <= a.timestamp <= g["end"]
                 and ((g["destination.domain"] is not None and a.event.get("destination.domain") == g["destination.domain"])
                      or (g["destination.domain"] is None and a.event.get("destination.ip") == g["destination.ip"]))]
        used.update(found)
        hits.append(found)
    return hits, [k for k in range(len(alerts)) if k not in used]
