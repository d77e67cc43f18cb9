"""Rebuild src/raresketch/data/catalog/web_services.tsv from the sublime-security/static-files lists and the
project's own paste / webhook / code / tunnel list (maintainers' tool; the package never runs it).

    python tools/build_web_services.py SUBLIME_DIR   # the folder with free_file_hosts.txt, url_shorteners.txt, ...

Kept out: entries under which tenants get their own label (free_subdomain_hosts.txt, or a rule of the shipped
cloud suffixes: those are tenant resources, not one shared service), entries that are a provider's registrable
domain (amazonaws.com, windows.net, ...), IM domains (the IM detector covers them), and a few first-party
endpoints that every browser contacts (``_NOT_A_SERVICE``).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
from raresketch.catalog import Catalog  # noqa: E402
from raresketch.catalog._data import data_dir  # noqa: E402

# (kind, host): written by the raresketch maintainers, 2026-12-06, from the services' own public pages (each is a
# public service that serves anyone's content under one host name); "match" suffix = the host and its subdomains.
OWN = """
paste pastebin.com
paste pastebin.pl
paste paste.ee
paste rentry.co
paste rentry.org
paste hastebin.com
paste controlc.com
paste dpaste.org
paste dpaste.com
paste paste.rs
paste pastes.io
paste justpaste.it
paste privatebin.net
paste termbin.com
paste ix.io
paste sprunge.us
paste bpa.st
paste paste.mozilla.org
paste paste.ubuntu.com
paste paste.gg
paste paste.fo
paste paste2.org
paste ghostbin.com
paste textbin.net
paste pastecode.io
paste paste4btc.com
paste pastelink.net
paste telegra.ph
webhook webhook.site
webhook requestbin.com
webhook m.pipedream.net
webhook requestcatcher.com
webhook beeceptor.com
webhook mockbin.org
webhook mocky.io
webhook postb.in
webhook requestinspector.com
webhook hookbin.com
webhook webhook.cool
webhook oast.fun
webhook oast.pro
webhook oast.live
webhook oast.site
webhook oast.online
webhook oast.me
webhook oastify.com
webhook burpcollaborator.net
webhook canarytokens.com
webhook interact.sh
code raw.githubusercontent.com
code gist.githubusercontent.com
code objects.githubusercontent.com
code codeload.github.com
code gist.github.com
code raw.githack.com
code gitee.com
code cdn.jsdelivr.net
code bitbucket.org
code gitlab.com
tunnel bore.pub
tunnel serveo.net
tunnel localhost.run
tunnel pinggy.io
tunnel localtonet.com
tunnel playit.gg
tunnel portmap.io
file-sharing uguu.se
file-sharing transfer.sh
file-sharing dl.dropboxusercontent.com
file-sharing api.onedrive.com
file-sharing paste.c-net.org
"""
_NOT_A_SERVICE = {"apis.google.com", "amazonaws.com", "windows.net", "googleapis.com", "appdomain.cloud",
                  "customer-oci.com", "oraclecloud.com", "aliyun.com", "sharepoint.com", "telegram.org"}
_LISTS = (("file-sharing", "free_file_hosts.txt"), ("shortener", "url_shorteners.txt"),
          ("site-builder", "self_service_creation_platform_domains.txt"))


def main(src: str) -> None:
    cat = Catalog(use_psl=True)
    with open(os.path.join(src, "free_subdomain_hosts.txt")) as f:
        tenant = {x.strip().lower() for x in f if x.strip()}
    rows: dict[str, tuple[str, str]] = {}
    for line in OWN.strip().splitlines():
        kind, host = line.split()
        rows[host] = (kind, "raresketch")
    dropped = []
    for kind, fn in _LISTS:
        with open(os.path.join(src, fn)) as f:
            for x in f:
                h = x.strip().lower()
                if not h or h in rows:
                    continue
                info = cat.resolve_host(h)
                probe = cat.resolve_host("tenant-probe." + h)
                if (h in tenant or h in _NOT_A_SERVICE or info.im_service or info.cloud_provider not in (None, "web")
                        or (probe.cloud_resource and probe.cloud_provider != "web")):
                    dropped.append(h)
                    continue
                rows[h] = (kind, f"sublime-security/static-files {fn}")
    out = os.path.join(data_dir(), "web_services.tsv")
    with open(out, "w") as f:
        f.write("# Shared web services: paste sites, file sharing, URL shorteners, webhooks/request bins, raw code\n"
                "# hosting, tunnels with one shared host, site builders. Resource web/<kind>/<host>, kind web/<kind>.\n"
                "# Sources: sublime-security/static-files @eb76f526 (2026-08-21), MIT (web_services.LICENSE):\n"
                "#   free_file_hosts.txt, url_shorteners.txt, self_service_creation_platform_domains.txt;\n"
                "#   rows with source 'raresketch': written by the raresketch maintainers, 2026-12-06, from public facts.\n"
                f"# Built by tools/build_web_services.py; {len(dropped)} entries left out (tenant-label suffixes,\n"
                "#   provider domains, IM domains). Match: the host and every subdomain, unless a tenant suffix rule\n"
                "#   matches deeper (x.github.io stays a tenant); an exact host always wins over a suffix rule.\n"
                "kind\thost\tsource\n")
        for h, (kind, s) in sorted(rows.items(), key=lambda r: (r[1][0], r[0])):
            f.write(f"{kind}\t{h}\t{s}\n")
    print(f"wrote {len(rows)} rows, left out {len(dropped)}: {' '.join(sorted(dropped))}")


if __name__ == "__main__":
    main(sys.argv[1])
