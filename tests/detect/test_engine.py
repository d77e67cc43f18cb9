"""Engine behaviour beyond the reference scenarios: state round trips, agent allow-list, output formats."""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pytest

import raresketch as rs
from raresketch.simulate import Organisation

from support.scenarios import HOSTS, background, row, table


@pytest.fixture(scope="module")
def org_batches():
    return list(Organisation(agents=40, days=34, seed=5, events_per_agent_day=120).batches(40_000))


def keys(alerts):
    return [(a.name, a.host_id, a.process_key, a.destination, a.timestamp) for a in alerts]


def test_save_load_midstream_gives_the_same_alerts(org_batches, tmp_path):
    straight = rs.Engine()
    want = [a for b in org_batches for a in straight.process(b)]
    half = len(org_batches) // 2
    first = rs.Engine()
    got = [a for b in org_batches[:half] for a in first.process(b)]
    first.save(tmp_path / "s.state")
    second = rs.Engine.load(tmp_path / "s.state")
    got += [a for b in org_batches[half:] for a in second.process(b)]
    assert keys(got) == keys(want) and len(want) > 20
    assert second.stats == straight.stats and second.suppressed == straight.suppressed
    # A state is reproducible: the same events give byte-identical states.
    assert second.to_bytes() == straight.to_bytes()


def test_record_batches_and_bad_types():
    eng = rs.Engine()
    t = table(background(HOSTS, 2))
    assert eng.process(t.to_batches()[0]) == []
    with pytest.raises(TypeError, match="pyarrow Table"):
        eng.process([{"@timestamp": 1}])


def test_agent_allow_list_never_alerts_but_learns():
    rows = background(HOSTS + ["build-7"], 16) + [row(15, "build-7", "evil", "x1.s3.amazonaws.com"),
                                                    row(15, "h1", "evil", "x2.s3.amazonaws.com")]
    eng = rs.Engine(rs.Config(allow_agents=["BUILD-*"]))
    alerts = eng.process(table(rows))
    assert [a.host_id for a in alerts] == ["h1"]
    assert eng.suppressed["allowlist"] == 1
    assert eng.baseline.structures["prevalence"].count_one(int(rs.sketches.hash64("aws/s3/x1"))) == 1  # learned
    with pytest.raises(ValueError, match="allow_agents"):
        rs.Config(allow_agents=[""])


def test_outputs_ecs_ocsf_and_table():
    eng = rs.Engine()
    rows = background(HOSTS, 16) + [row(15, "h1", "dropper", "api.telegram.org")]
    (a,) = eng.process(table(rows))
    doc = rs.to_ecs(a)
    assert doc["event"]["kind"] == "alert" and doc["rule"]["name"] == a.name
    assert doc["threat"]["tactic"]["id"] == "TA0011" and doc["threat"]["technique"]["id"] == "T1102"
    assert doc["host"]["id"] == "h1" and doc["destination"]["domain"] == "api.telegram.org"
    assert doc["raresketch"]["evidence"]["process_im_agents"] == 0
    assert doc["raresketch"]["investigative_actions"] and doc["raresketch"]["why"]
    oc = rs.to_ocsf(a)
    assert oc["class_uid"] == 2004 and oc["type_uid"] == 200401 and oc["severity_id"] == 2
    assert oc["finding_info"]["attacks"][0]["technique"]["uid"] == "T1102"
    buf = io.StringIO()
    assert rs.write_alerts([a, a], buf, "ocsf") == 2
    assert all(json.loads(line)["class_uid"] == 2004 for line in buf.getvalue().splitlines())
    t = rs.alerts_to_table([a])
    assert t.num_rows == 1 and t["rule.name"][0].as_py() == a.name
    assert json.loads(t["raresketch.evidence"][0].as_py())["im_service"] == "telegram"
    with pytest.raises(ValueError, match="ecs"):
        rs.write_alerts([a], buf, "xml")


def test_exact_limit_warning_when_threshold_reaches_it():
    eng = rs.Engine(rs.Config(exact_limit=2, rare_min_agents=2))
    eng.process(table(background(HOSTS, 3)))
    assert any("exact_limit" in w for w in eng.warnings)


def test_timestamps_out_of_range_and_empty_batches_are_counted():
    eng = rs.Engine()
    assert eng.process(table([])) == []
    t = pa.Table.from_pydict({"@timestamp": pa.array([0], pa.timestamp("us", tz="UTC")), "host.id": ["h"]})
    assert eng.process(t) == []
    assert eng.stats["skipped_timestamp_out_of_range"] == 1
