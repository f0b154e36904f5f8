#!/usr/bin/env bash
# Runs the MCP area against several nextcloud-mcp-server releases and keeps a trimmed copy
# of each report in fixtures/releases/<version>.json (check statuses and first detail
# lines, no evidence). `UPDATE_DOCS=1 cargo test --test docs` renders
# docs/mcp-release-matrix.md from those files.
#
#   scripts/release-matrix.sh [VERSION ...]    (default: 0.65.3 0.68.3 0.147.2 0.202.1)
#
# A release without a pinned scope map gets one first (`mcp-authz-harness pin --only
# MCP-10`, its own stack); review new pins in fixtures/snapshots/ before committing them.
# The run itself compares with the committed pins: a changed scope map is recorded as
# MCP-10 failing, not re-pinned.
set -uo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(0.65.3 0.68.3 0.147.2 0.202.1)
cargo build --locked -q
for v in "${versions[@]}"; do
  out=$(mktemp -d)
  echo "=== nextcloud-mcp-server $v"
  if [ ! -f "fixtures/snapshots/scope-map-$v.snap" ]; then
    ./target/debug/mcp-authz-harness pin --only MCP-10 --mcp-server-version "$v" --report-dir "$out/pin"
    echo "pin exit status $?"
  fi
  ./target/debug/mcp-authz-harness run --only MCP --mcp-server-version "$v" --report-dir "$out"
  echo "exit status $?"
  python3 - "$out/report.json" "fixtures/releases/$v.json" "$v" <<'PY'
import json, sys
src, dst, version = sys.argv[1:]
r = json.load(open(src))
trim = {
    "mcp_server_version": version,
    "run_id": r["run_id"],
    "finished_at": r["finished_at"],
    "components": r["components"],
    "summary": r["summary"],
    "checks": [
        {"id": c["id"], "title": c["title"], "status": c["status"],
         "detail": (c["detail"].splitlines() or [""])[0][:300]}
        for c in r["checks"]
    ],
}
json.dump(trim, open(dst, "w"), indent=2)
print(f"wrote {dst}")
PY
  rm -rf "$out"
done
