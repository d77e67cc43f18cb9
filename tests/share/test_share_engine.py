"""The engine and the command line with a consortium file (Config.global_prevalence, run --global, share ...)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from raresketch import Config, Engine, to_ecs
from raresketch.cli import main
from raresketch.share import merge_exports
from raresketch.share._keys import destination_digests, positions
from raresketch.simulate import Organisation

from test_share import KEY, export_prevalence, fake_engine, org_key


@pytest.fixture(scope="module")
def small_org():
    org = Organisation(agents=15, days=24, seed=5, events_per_agent_day=40)
    return org, [b for b in org.batches(100_000)]


def run(batches, config=Config()):
    eng = Engine(config)
    return eng, [a for b in batches for a in eng.process(b)]


def sig(a):
    return (a.name, a.host_id, a.destination, a.timestamp.isoformat(), a.severity)


def write_consortium(tmp_path, common: list[str], n_orgs=30, holders=25, poisoners=0, poison=()):
    exps = []
    for j in range(n_orgs):
        mine = {n: 50 for n in common} if j < holders else {"aws/s3/filler": 50}
        e = export_prevalence(fake_engine(mine), KEY, org_key(j), bits=1 << 16)[0]
        if j >= n_orgs - poisoners:
            e.bits[positions(destination_digests(KEY, "cloud", list(poison)), 1 << 16)] = True
        exps.append(e)
    path = tmp_path / f"c{poisoners}.prev"
    merge_exports(exps).save(path)
    return str(path)


def test_engine_policy_evidence_and_poisoning(small_org, tmp_path):
    org, batches = small_org
    _, plain = run(batches)
    assert plain and not any("global_orgs" in a.evidence for a in plain)
    resources = sorted({a.cloud_resource for a in plain if a.detector == "rare_cloud"})
    assert len(resources) >= 4
    common, unknown = resources[::2], resources[1::2]
    (tmp_path / "k.key").write_bytes(KEY)
    cfg = Config(global_prevalence=write_consortium(tmp_path, common), global_key_file=str(tmp_path / "k.key"))
    eng, glob = run(batches, cfg)
    assert eng.suppressed["global_common"] > 0
    assert all("global_orgs" in a.evidence for a in glob)
    assert not any(a.cloud_resource in common for a in glob if a.detector == "rare_cloud")
    left = [a for a in glob if a.detector == "rare_cloud"]
    assert left and all(a.cloud_resource in unknown for a in left)
    raised = [a for a in left if a.severity == "low"]      # the rest drew noise votes: interval above 0
    assert len(raised) >= 0.8 * len(left) and all(a.evidence["global_orgs"]["low_discounting_forgeable_votes"] > 0
                                                    for a in left if a.severity != "low")
    ev = raised[0].evidence["global_orgs"]
    assert ev["contributing_orgs"] == 30 and ev["raised_to_low"] and ev["low_discounting_forgeable_votes"] == 0
    assert to_ecs(raised[0])["event"]["severity"] == 2
    # a lone member marking every unknown resource common changes no alert
    cfg1 = cfg.replace(global_prevalence=write_consortium(tmp_path, common, poisoners=1, poison=unknown))
    _, poisoned = run(batches, cfg1)
    assert sorted(map(sig, poisoned)) == sorted(map(sig, glob))
    assert all(a.evidence["global_orgs"]["votes"] >= 1 for a in poisoned if a.cloud_resource in unknown)


def test_engine_refuses_a_missing_key_file(tmp_path):
    eng = Engine(Config(global_prevalence=str(tmp_path / "none.prev")))
    with pytest.raises(ValueError, match="global_key_file"):
        eng.global_prevalence()


def test_cli_share_commands_and_run_global(small_org, tmp_path):
    org, _ = small_org
    ev = tmp_path / "org.parquet"
    org.write_parquet(str(ev))
    r = CliRunner()
    st, k, ok, exp = (str(tmp_path / n) for n in ("s.state", "c.key", "o.key", "o.prev"))
    assert r.invoke(main, ["run", str(ev), "--state", st, "--out", str(tmp_path / "a.jsonl")]).exit_code == 0
    assert r.invoke(main, ["share", "keygen", "--out", k]).exit_code == 0
    assert r.invoke(main, ["share", "keygen", "--out", ok]).exit_code == 0
    res = r.invoke(main, ["share", "keygen", "--out", k])
    assert res.exit_code == 1 and "exists" in res.output
    res = r.invoke(main, ["share", "export", "--state", st, "--key-file", k, "--org-key", ok, "--out", exp])
    assert res.exit_code == 0, res.output
    assert "common destinations" in res.output and "epsilon 2.94" in res.output
    others = []
    for j, flip in ((1, "0.1"), (2, "0.2")):
        okj = str(tmp_path / f"o{j}.key")
        r.invoke(main, ["share", "keygen", "--out", okj])
        others.append(str(tmp_path / f"o{j}.prev"))
        assert r.invoke(main, ["share", "export", "--state", st, "--key-file", k, "--org-key", okj,
                               "--out", others[-1], "--flip", flip]).exit_code == 0
    cons = str(tmp_path / "c.prev")
    res = r.invoke(main, ["share", "merge", exp, *others, "--out", cons])
    assert res.exit_code == 1 and "differ in flip" in res.output and len(res.output.strip().splitlines()) == 1
    res = r.invoke(main, ["share", "merge", exp, exp, "--out", cons])
    assert res.exit_code == 1 and "one organisation" in res.output
    assert r.invoke(main, ["share", "merge", exp, others[0], "--out", cons]).exit_code == 0
    res = r.invoke(main, ["share", "lookup", "aws/s3/x", "--consortium", cons, "--key-file", k, "--own", exp])
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["contributing_orgs"] == 1 and line["own_vote_excluded"]
    short = tmp_path / "short.key"
    short.write_bytes(b"0" * 16)
    res = r.invoke(main, ["run", str(ev), "--global", cons, "--global-key", str(short), "--out", "-"])
    assert res.exit_code == 1 and "at least 32" in res.output
    out = tmp_path / "g.jsonl"
    res = r.invoke(main, ["run", str(ev), "--global", cons, "--global-key", k, "--global-own", exp,
                          "--out", str(out)])
    assert res.exit_code == 0, res.output
    docs = [json.loads(x) for x in out.read_text().splitlines()]
    alerts = [d for d in docs if d["event"]["kind"] == "alert"]
    assert alerts and all("global_orgs" in d["raresketch"]["evidence"] for d in alerts)
