"""``raresketch catalog refresh|sources|resolve``: output, the refreshed lists in use, one-line errors."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest
from click.testing import CliRunner

from raresketch import catalog
from raresketch.catalog import Catalog, refresh_ip_ranges
from raresketch.cli import main


@pytest.fixture
def runner():
    return CliRunner()


def _fields(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in output.splitlines():
        key, value = line[:15].strip(), line[16:]
        out.setdefault(key, []).append(value)
    return out


def test_sources_lists_every_list_with_provenance(runner):
    res = runner.invoke(main, ["catalog", "sources"])
    assert res.exit_code == 0, res.output
    lines = dict(line.split(": ", 1) for line in res.output.splitlines())
    assert lines == catalog.default_catalog().sources()
    assert "CC0 1.0" in lines["ip_ranges"] and "MIT" in lines["im_domains.tsv"]   # licences
    assert "2026-08-22" in lines["ip_ranges"]                                       # dates


@pytest.mark.parametrize("args, want, why", [
    (["mybucket.s3.us-west-2.amazonaws.com", "--ip", "52.216.1.1"],
     {"destination": "mybucket.s3.us-west-2.amazonaws.com", "cloud resource": "aws/s3/mybucket",
      "cloud provider": "aws", "cloud service": "s3", "ip provider": "aws", "im service": "-", "allow-listed": "no"},
     ["the name", "cloud suffix rule matched: 's3.us-west-2.amazonaws.com'", "published network of aws"]),
    (["149.154.167.99"],
     {"destination": "149.154.167.99", "cloud resource": "-", "ip provider": "telegram", "im service": "telegram"},
     ["the name's own IP literal", "IM network of telegram"]),
    (["intranet.corp", "--ip", "52.216.1.1"],
     {"destination": "intranet.corp", "cloud resource": "-", "ip provider": "aws"},
     ["the name 'intranet.corp' decides", "no cloud suffix rule"]),
    (["api.telegram.org"], {"im service": "telegram", "cloud resource": "-"}, ["IM domain list matched the name"]),
])
def test_resolve_says_what_and_why(runner, args, want, why):
    res = runner.invoke(main, ["catalog", "resolve", *args])
    assert res.exit_code == 0, res.output
    got = _fields(res.output)
    for k, v in want.items():
        assert got[k] == [v], (k, res.output)
    for w in why:
        assert any(w in line for line in got["why"]), (w, res.output)


def test_resolve_agrees_with_resolve_batch():
    import pyarrow as pa

    cat = catalog.default_catalog()
    names = ["x.blob.core.windows.net", "54.231.0.10", "slack.com", None, "s3.amazonaws.com", "example.com"]
    ips = [None, "52.216.0.1", "149.154.167.99", "13.107.6.152", None, "2600:1f18::1"]
    t = pa.table({"destination.domain": pa.array(names, pa.string()), "destination.ip": pa.array(ips, pa.string())})
    rows = cat.resolve_batch(t).to_pylist()
    for n, ip, row in zip(names, ips, rows):
        info = cat.explain(n, ip)
        assert info["destination"] == row["raresketch.destination.key"]
        assert info["cloud_resource"] == row["raresketch.cloud.resource"]
        assert info["ip_provider"] == row["raresketch.destination.ip_provider"]
        assert info["im_service"] == row["raresketch.im.service"]


def test_resolve_rejects_a_bad_address_in_one_line(runner):
    res = runner.invoke(main, ["catalog", "resolve", "example.com", "--ip", "not-an-ip"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == ["raresketch: error: --ip 'not-an-ip' is not an IP address"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server laid out like the refresh source: <directory>/<family>_merged.txt for every provider."""
    root = tmp_path / "mirror"
    for row in catalog._data.read_tsv(catalog._data.data_dir() + "/ip_providers.tsv")[0]:
        d = root / row["directory"]
        d.mkdir(parents=True, exist_ok=True)
        (d / "ipv4_merged.txt").write_text("198.51.100.0/24\n" if row["directory"] == "telegram" else "")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{{directory}}/{{family}}_merged.txt"
    server.shutdown()


def test_refresh_writes_lists_the_catalogue_then_uses(runner, tmp_path, mirror, monkeypatch):
    monkeypatch.setattr(catalog._data, "refresh_ip_ranges", functools.partial(refresh_ip_ranges, url=mirror))
    dest = tmp_path / "ranges"
    res = runner.invoke(main, ["catalog", "refresh", str(dest)])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"wrote {dest}; use it with RARESKETCH_IP_RANGES={dest}"
    c = Catalog(ip_ranges_dir=str(dest))
    assert c.resolve_ip("198.51.100.7").im_service == "telegram"     # the refreshed list, not the snapshot
    assert c.resolve_ip("52.216.1.1") is None


def test_refresh_without_network_fails_in_one_line(runner, tmp_path, monkeypatch):
    monkeypatch.setattr(catalog._data, "refresh_ip_ranges",
                        functools.partial(refresh_ip_ranges, url="http://127.0.0.1:9/{directory}/{family}"))
    res = runner.invoke(main, ["catalog", "refresh", str(tmp_path / "x")])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raresketch: error: refresh failed: cannot download http://127.0.0.1:9/")
    assert not (tmp_path / "x").exists()
