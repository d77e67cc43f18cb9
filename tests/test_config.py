"""``raresketch.Config``: the declarative range checks (each bound, naming the key), ``from_toml`` (``[raresketch]``
table or top-level keys, the file as catalogue), unknown keys and booleans-for-numbers refused, and the
``to_dict``/``from_dict`` round trip (what an EngineState stores)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from raresketch import Config

# (key, lowest accepted, highest accepted); one below / above is refused
BOUNDS = [("training_days", 1, 3650), ("activation_days", 0, 3650), ("dedup_hours", 0, 24 * 365),
          ("rare_fraction", 0, 1), ("exact_limit", 1, 1 << 24), ("capacity", 64, 1 << 28),
          ("max_agents", 8, 1 << 28), ("seed", 0, (1 << 64) - 1)]
LOWER = [("rare_min_agents", 0), ("habitual_explorer_n", 1), ("im_max_agent_days", 0), ("max_alerts_per_day", 0),
         ("im_max_agents", 0), ("max_alerts_per_agent_day", 0), ("habitual_explorer_per_agent", 1),
         ("max_future_days", 0)]


@pytest.mark.parametrize("key, lo, hi", BOUNDS)
def test_range_bounds_are_inclusive_and_refusals_name_the_key(key, lo, hi):
    assert getattr(Config(**{key: lo}), key) == lo and getattr(Config(**{key: hi}), key) == hi
    step = 0.5 if isinstance(lo, float) or key in ("rare_fraction", "dedup_hours") else 1
    for bad in (lo - step, hi + step):
        with pytest.raises(ValueError, match=f"config: {key} = .* is out of range"):
            Config(**{key: bad})


@pytest.mark.parametrize("key, lo", LOWER)
def test_lower_bounds(key, lo):
    assert getattr(Config(**{key: lo}), key) == lo
    with pytest.raises(ValueError, match=f"config: {key} = {lo - 1} is out of range"):
        Config(**{key: lo - 1})


@pytest.mark.parametrize("key", ["im_max_agents", "max_alerts_per_agent_day", "habitual_explorer_per_agent",
                                 "max_future_days", "catalog_file"])
def test_optional_keys_accept_none(key):
    assert getattr(Config(**{key: None}), key) is None


def test_allow_agents_is_a_tuple_of_non_empty_strings():
    assert Config(allow_agents="h1").allow_agents == ("h1",)
    assert Config(allow_agents=["h1", "h2"]).allow_agents == ("h1", "h2")
    with pytest.raises(ValueError, match="allow_agents"):
        Config(allow_agents=["h1", ""])
    with pytest.raises(ValueError, match="allow_agents"):
        Config(allow_agents=[1])


def test_frozen_and_replace_checks_again():
    c = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.training_days = 3
    assert c.replace(training_days=7).training_days == 7 and c.training_days == 30
    with pytest.raises(ValueError, match="training_days"):
        c.replace(training_days=0)


def test_rare_threshold_and_explorer_cap():
    c = Config(rare_min_agents=2, rare_fraction=0.01)
    assert c.rare_threshold(np.array([0, 299, 300, 1000])).tolist() == [2, 2, 3, 10]
    assert Config(habitual_explorer_n=20).explorer_cap_per_agent == 15
    assert Config(habitual_explorer_n=1).explorer_cap_per_agent == 1
    assert Config(habitual_explorer_per_agent=4).explorer_cap_per_agent == 4


def test_to_dict_from_dict_round_trip_through_json():
    c = Config(training_days=7, dedup_hours=1.5, im_max_agents=3, allow_agents=("a", "b"), seed=2**63,
               catalog_file="/x.toml")
    d = json.loads(json.dumps(c.to_dict()))
    assert d["allow_agents"] == ["a", "b"]
    assert Config.from_dict(d) == c
    assert set(d) == {f.name for f in dataclasses.fields(Config)}


def test_from_dict_refuses_unknown_keys_and_booleans_for_numbers():
    with pytest.raises(ValueError, match=r"unknown key\(s\) bogus, zz; known: activation_days"):
        Config.from_dict({"zz": 1, "bogus": 2, "training_days": 3})
    with pytest.raises(ValueError, match="training_days must be a whole number, got True"):
        Config.from_dict({"training_days": True})
    assert Config.from_dict({"allowlist_learn": False}).allowlist_learn is False


def test_from_toml_table_or_top_level_keys_and_the_file_as_catalogue(tmp_path):
    p = tmp_path / "a.toml"
    p.write_text('[raresketch]\ntraining_days = 10\nallow_agents = ["h1"]\n[allow]\nprocesses = ["x.exe"]\n')
    c = Config.from_toml(p)
    assert (c.training_days, c.allow_agents, c.catalog_file) == (10, ("h1",), str(p))
    q = tmp_path / "b.toml"
    q.write_text('activation_days = 3\ncatalog_file = "/other.toml"\n[process]\nscript_engines = []\n')
    c = Config.from_toml(q)
    assert (c.activation_days, c.catalog_file) == (3, "/other.toml")
    # a table nobody reads ([allowlist], [catalog]) was ignored silently: refused now
    q.write_text('[raresketch]\nactivation_days = 3\n[allowlist]\nprocesses = ["x.exe"]\n')
    with pytest.raises(ValueError, match=r"unknown table\(s\) \[allowlist\]"):
        Config.from_toml(q)


@pytest.mark.parametrize("text, message", [
    ("[raresketch]\ntraining_dayz = 10\n", r"unknown key\(s\) training_dayz"),
    ("[raresketch]\ntraining_days = 0\n", "training_days = 0 is out of range"),
    ("[raresketch\n", "config: .*b.toml"),
    ('[raresketch]\ntraining_days = "ten"\n', "config: "),
])
def test_from_toml_refusals(tmp_path, text, message):
    p = tmp_path / "b.toml"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        Config.from_toml(p)
