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
- the destination shapes real telemetry has: web services opened by browsers (Google Drive / Docs, Dropbox,
  OneDrive links, WeTransfer, URL shorteners, rarely transfer.sh and pastebin.com), first-party provider noise
  (svchost DNS to 8.8.8.8 / 8.8.4.4, OneDrive and Teams to Microsoft 365 addresses with no name), and, on a quarter
  of the agents, reverse-lookup (PTR) names in place of the asked ones for EC2, S3, CloudFront, Google, GCP VM and
  Akamai addresses, as Sysmon's ``DestinationHostname`` gives them (``_ptr``);
- injected attacks (needles) after the activation period, with :attr:`Organisation.ground_truth` naming
  the alert(s) each should raise (names from the rule files, :data:`raresketch.alerts.ALERTS`), plus a few
  benign-but-rare injections (``malicious`` false).

Modules: ``_world`` (agents, processes, destinations, profiles), ``_traffic`` (legitimate traffic), ``_ptr``
(reverse-lookup names),
``_attacks`` (injections and ground truth), ``_organisation`` (the public class composing them), ``_write``
(Parquet and ECS JSON lines), ``_evaluate`` (matching alerts to the ground truth), ``_vec`` (vectorised helpers).

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

from ._attacks import GROUND_TRUTH_SCHEMA
from ._evaluate import match_ground_truth
from ._organisation import Organisation
from ._world import load_profiles
from ._write import write_ecs_jsonl, write_elastic_defend_jsonl, write_parquet, write_winlogbeat_sysmon_jsonl

__all__ = [
    "GROUND_TRUTH_SCHEMA",
    "Organisation",
    "load_profiles",
    "match_ground_truth",
    "write_ecs_jsonl",
    "write_elastic_defend_jsonl",
    "write_parquet",
    "write_winlogbeat_sysmon_jsonl",
]
