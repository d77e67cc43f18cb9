#!/usr/bin/env bash
# Snapshot every alert raresketch raises on fixed inputs, so a refactor can be proven behaviour-preserving:
#   bash tools/alert_snapshot.sh OUTDIR        (then: diff -r BEFORE AFTER  -> no output)
# Inputs: the OTRF Sysmon recordings and Zeek logs in tests/data, the sample .evtx, and the demo's simulated
# organisation (150 agents, 45 days, seed 0) as Parquet, as ECS JSON lines and split in two --state runs.
# Each output is the ECS and the OCSF JSON lines of `raresketch run`, plus the demo's printed table.
set -euo pipefail
out=${1:?usage: tools/alert_snapshot.sh OUTDIR}
here="$(cd "$(dirname "$0")/.." && pwd)"
read -ra rs <<< "${RARESKETCH:-raresketch}"      # a command, e.g. "python -m raresketch"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d="$here/tests/data"
"${rs[@]}" run "$d/otrf/sysmon_net_subset" --activation-days 0 --out "$out/otrf.ecs.jsonl" 2>/dev/null
"${rs[@]}" run "$d/otrf/sysmon_net_subset" --activation-days 0 --output-format ocsf --out "$out/otrf.ocsf.jsonl" 2>/dev/null
"${rs[@]}" run "$d/otrf/zeek" "$d/zeek-zat/conn.log" --activation-days 0 --out "$out/zeek.ecs.jsonl" 2>/dev/null || true
"${rs[@]}" run "$d/evtx-samples/sysmon.evtx" --activation-days 0 --out "$out/evtx.ecs.jsonl" 2>/dev/null
"${rs[@]}" simulate --agents 150 --days 45 --seed 0 --out "$tmp/org.parquet" --ground-truth "$out/gt.jsonl" >/dev/null 2>&1
"${rs[@]}" run "$tmp/org.parquet" --out "$out/sim.ecs.jsonl" 2>/dev/null
"${rs[@]}" run "$tmp/org.parquet" --output-format ocsf --out "$out/sim.ocsf.jsonl" 2>/dev/null
# the same organisation in two --state runs, split at day 30
python3 - "$tmp/org.parquet" "$tmp" <<'PY'
import sys, pyarrow.parquet as pq, pyarrow.compute as pc, pyarrow as pa
t = pq.read_table(sys.argv[1]); ts = t["@timestamp"]
cut = pc.add(pc.min(ts), pa.scalar(30 * 86400 * 10**6, pa.duration("us")))
pq.write_table(t.filter(pc.less(ts, cut)), sys.argv[2] + "/a.parquet")
pq.write_table(t.filter(pc.greater_equal(ts, cut)), sys.argv[2] + "/b.parquet")
PY
"${rs[@]}" run "$tmp/a.parquet" --state "$tmp/org.state" --out "$out/split1.ecs.jsonl" 2>/dev/null
"${rs[@]}" run "$tmp/b.parquet" --state "$tmp/org.state" --out "$out/split2.ecs.jsonl" 2>/dev/null
"${rs[@]}" demo --show 0 2>/dev/null | grep -v '^raresketch demo:' > "$out/demo.txt"
wc -l "$out"/* | tail -1
