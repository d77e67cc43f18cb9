"""Rebuild src/raresketch/data/catalog/ip_services.tsv.gz from a folder of the providers' service-tagged feeds
(file names as in raresketch.catalog._tenancy.FEEDS; maintainers' tool). ``raresketch catalog refresh`` does the
same from the providers' URLs.

    python tools/build_ip_services.py FEED_DIR
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from raresketch.catalog._data import data_dir  # noqa: E402
from raresketch.catalog._tenancy import FEEDS, derive_ip_services, write_ip_services  # noqa: E402

src = sys.argv[1]
feeds = {n: open(os.path.join(src, n), "rb").read() for n in sorted(os.listdir(src))
         if n in FEEDS or n.startswith("akamai-")}
rows = derive_ip_services(feeds)
write_ip_services(rows, os.path.join(data_dir(), "ip_services.tsv.gz"), [
    "Tenant-rentable (cloud), shared CDN (edge) and first-party (platform) networks per provider.",
    "Source: the providers' service-tagged feeds as collected by femueller/cloud-ip-ranges @60937f4c (2025-07-25):",
    "AWS ip-ranges.json (createDate 2025-07-24), Google cloud.json (2025-07-24), Azure Service Tags (Public,",
    "changeNumber 363), Oracle public_ip_ranges.json (2025-07-21), Fastly public-ip-list, GitHub api/meta, Akamai;",
    "derived by raresketch.catalog._tenancy.derive_ip_services (tools/build_ip_services.py), 2026-12-06.",
    "Licence: the providers' public feeds (facts; the mirror states no licence); derived table ships with raresketch."])
print(f"{len(rows)} rows")
