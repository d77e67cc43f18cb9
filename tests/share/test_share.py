"""Prevalence sharing (docs/SHARING.md): keys, the export's privacy mechanics, the merge's contract and estimator,
and the policy the engine applies with a consortium file."""
from __future__ import annotations

import types

import numpy as np
import pytest

from raresketch import _format
from raresketch.share import (Consortium, GlobalPrevalence, PrevalenceExport, epsilon, export_prevalence,
                              merge_exports, new_key_file, read_key)
from raresketch.share._keys import destination_digests, noise, positions

KEY = bytes(range(32))


def fake_engine(counts: dict[str, int], active: int = 100, today: int = 20_000, days: int = 30):
    """What export_prevalence reads of an Engine: the prevalence structure's items, names, window, agents."""
    names = {i + 1: n for i, n in enumerate(counts)}
    keys = np.array(list(names), np.uint64)
    cnt = np.array(list(counts.values()), np.uint32)
    base = types.SimpleNamespace(
        today=today, first_day=today - 100,
        agents=types.SimpleNamespace(active_agents=lambda day: active),
        structures={"prevalence": types.SimpleNamespace(items=lambda: (keys, cnt))})
    return types.SimpleNamespace(baseline=base, config=types.SimpleNamespace(training_days=days),
                                 resource_name=lambda k: names.get(k))


def org_key(i: int) -> bytes:
    return bytes([i % 256]) * 31 + bytes([i // 256 + 1])


def test_key_files(tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    with pytest.raises(ValueError, match="at least 32"):
        read_key(short)
    k = tmp_path / "k.key"
    new_key_file(k)
    assert len(read_key(k)) == 65 and oct(k.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="refusing to replace"):
        new_key_file(k)


def test_export_inserts_only_common_destinations_and_carries_no_names():
    counts = {f"aws/s3/common-{i}": 50 for i in range(200)} | {f"aws/s3/rare-{i}": 2 for i in range(200)}
    eng = fake_engine(counts, active=100)
    bits = 1 << 16
    exp, st = export_prevalence(eng, KEY, org_key(1), bits=bits, flip=0.1)
    assert st["common"] == 200 and st["inserted"] == 200 and st["unnamed"] == 0
    randomised, value = noise(org_key(1), bits, 0.1)
    pos_c = positions(destination_digests(KEY, "cloud", [n for n in counts if "common" in n]), bits)
    pos_r = positions(destination_digests(KEY, "cloud", [n for n in counts if "rare" in n]), bits)
    # a position is the noise where randomised, else the truth: common -> 1, rare (never inserted) -> 0
    assert exp.bits[pos_c][~randomised[pos_c]].all()
    free = ~randomised[pos_r] & ~np.isin(pos_r, pos_c)
    assert free.sum() > 150 and not exp.bits[pos_r][free].any()
    assert np.array_equal(exp.bits[randomised], value[randomised])
    blob = exp.to_bytes()
    assert b"common-" not in blob and b"rare-" not in blob
    back = PrevalenceExport.from_bytes(blob)
    assert np.array_equal(back.bits, exp.bits) and back.org_id == exp.org_id and back.params == exp.params


def test_noise_is_permanent_per_organisation_and_differs_between_them():
    eng = fake_engine({"aws/s3/x": 50})
    a, _ = export_prevalence(eng, KEY, org_key(1), bits=1 << 12)
    b, _ = export_prevalence(eng, KEY, org_key(1), bits=1 << 12)
    c, _ = export_prevalence(eng, KEY, org_key(2), bits=1 << 12)
    assert np.array_equal(a.bits, b.bits) and a.org_id == b.org_id
    assert not np.array_equal(a.bits, c.bits) and a.org_id != c.org_id


def test_unnamed_and_small_fleets_export_nothing_they_cannot_key():
    eng = fake_engine({"aws/s3/a": 50, "aws/s3/b": 60})
    eng.resource_name = lambda k: "aws/s3/a" if k == 1 else None
    _, st = export_prevalence(eng, KEY, org_key(1), bits=1 << 12)
    assert st["common"] == 2 and st["unnamed"] == 1 and st["inserted"] == 1
    _, st = export_prevalence(fake_engine({"aws/s3/a": 2}, active=2), KEY, org_key(1), bits=1 << 12)
    assert st["common"] == 0


def test_bad_blobs_are_refused():
    exp, _ = export_prevalence(fake_engine({"aws/s3/a": 50}), KEY, org_key(1), bits=1 << 12)
    blob = bytearray(exp.to_bytes())
    blob[40] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        PrevalenceExport.from_bytes(bytes(blob))
    cons = merge_exports([exp])
    with pytest.raises(ValueError, match="not a PrevalenceExport"):
        PrevalenceExport.from_bytes(cons.to_bytes())
    assert _format.FAMILIES[19] == "PrevalenceExport" and _format.FAMILIES[20] == "Consortium"


def test_merge_refuses_other_parameters_keys_and_duplicate_organisations():
    eng = fake_engine({"aws/s3/a": 50})
    a, _ = export_prevalence(eng, KEY, org_key(1), bits=1 << 12)
    b, _ = export_prevalence(eng, KEY, org_key(2), bits=1 << 12, flip=0.2)
    with pytest.raises(ValueError, match="B.prev and A.prev differ in flip"):
        merge_exports([a, b], ["A.prev", "B.prev"])
    c, _ = export_prevalence(eng, bytes(32), org_key(2), bits=1 << 12)
    with pytest.raises(ValueError, match="differ in key_id"):
        merge_exports([a, c])
    with pytest.raises(ValueError, match="one organisation"):
        merge_exports([a, a], ["A.prev", "A2.prev"])


def consortium(held: dict[str, int], n_orgs: int, bits: int = 1 << 16, flip: float = 0.1, extra=None):
    """Exports of ``n_orgs`` organisations; the first ``held[name]`` hold ``name`` as common."""
    exps = []
    for j in range(n_orgs):
        mine = {n: 50 for n, k in held.items() if j < k} or {"aws/s3/filler": 1}
        exps.append(export_prevalence(fake_engine(mine), KEY, org_key(j), bits=bits, flip=flip)[0])
    if extra:
        extra(exps)
    return merge_exports(exps), exps


def test_estimate_is_unbiased_and_the_interval_covers_the_truth():
    truth = {f"aws/s3/k{i}": i % 21 for i in range(400)}
    cons, _ = consortium(truth, 20)
    r = cons.lookup(KEY, list(truth))
    k = np.array(list(truth.values()), float)
    assert abs(float((r["estimate"] - k).mean())) < 0.3           # unbiased (400 keys: s.e. about 0.06)
    assert ((r["low"] <= k) & (k <= r["high"])).mean() >= 0.9      # a 95 % interval
    assert (r["orgs"] == 20).all()


def test_own_vote_is_excluded():
    cons, exps = consortium({"aws/s3/x": 10}, 12)
    with_own = cons.lookup(KEY, ["aws/s3/x"])
    without = cons.lookup(KEY, ["aws/s3/x"], exclude=exps[0])
    assert without["excluded"] and int(without["orgs"][0]) == 11
    assert int(with_own["votes"][0]) - int(without["votes"][0]) == int(exps[0].bits[
        positions(destination_digests(KEY, "cloud", ["aws/s3/x"]), cons.params["bits"])][0])
    with pytest.raises(ValueError, match="not the key"):
        cons.lookup(bytes(32), ["aws/s3/x"])


def test_policy_suppresses_common_raises_unknown_and_one_poisoner_changes_nothing():
    held = {"aws/s3/everyone": 25, "aws/s3/c2": 0}
    cons, _ = consortium(held, 30)
    g = GlobalPrevalence(cons, KEY, min_orgs=3, small_fleet=200)
    assert g.judge("rare_cloud", "aws/s3/everyone", 15).action == "suppress"
    assert g.judge("rare_cloud", "aws/s3/everyone", 500).action == ""       # a large fleet trusts itself
    c2 = g.judge("rare_cloud", "aws/s3/c2", 15)
    assert c2.action == "raise" and c2.evidence["contributing_orgs"] == 30
    assert g.judge("uncommon_im", "aws/s3/everyone", 15).action == ""
    assert g.judge("uncommon_im", None, 15).evidence == {"exchanged": False, "contributing_orgs": 30}

    def poison(k):
        def do(exps):
            pos = positions(destination_digests(KEY, "cloud", ["aws/s3/c2"]), exps[0].params["bits"])
            for e in exps[:k]:
                e.bits[pos] = True
        return do
    for k in (1, 2):     # fewer than min_orgs poisoners change nothing (the evidence counts their votes)
        pc, _ = consortium(held, 30, extra=poison(k))
        v = GlobalPrevalence(pc, KEY).judge("rare_cloud", "aws/s3/c2", 15)
        assert v.action == "raise" and v.evidence["votes"] >= k


def test_epsilon():
    assert epsilon(0.5) == pytest.approx(np.log(3))
    assert epsilon(0.1) == pytest.approx(np.log(19))


def test_consortium_round_trip(tmp_path):
    cons, _ = consortium({"aws/s3/x": 3}, 4, bits=1 << 12)
    cons.save(tmp_path / "c.prev")
    back = Consortium.load(tmp_path / "c.prev")
    assert back.org_ids == cons.org_ids and np.array_equal(back.votes, cons.votes)
    assert back.params == cons.params
