#!/usr/bin/env bash
# Runs the MCP area against several nextcloud-mcp-server releases with `mcp-authz-harness
# matrix` (one Keycloak boot shared by every release, each release with an MCP server
# instance of its own) and keeps a trimmed copy of each cell's report in
# fixtures/releases/<version>.json (check statuses and first detail lines, no evidence).
# `UPDATE_DOCS=1 cargo test --test docs` renders docs/mcp-release-matrix.md from those files.
#
#   scripts/release-matrix.sh [VERSION ...]    (default: 0.65.3 0.68.3 0.147.2 0.202.1)
#
# KEYCLOAK_VERSION picks the Keycloak (default: the harness's). A release without a pinned
# scope map gets one first (`mcp-authz-harness pin --only MCP-10`, its own stack); review
# new pins in fixtures/snapshots/ before committing them. The run itself compares with the
# committed pins: a changed scope map is recorded as MCP-10 failing, not re-pinned.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(0.65.3 0.68.3 0.147.2 0.202.1)
bin=./target/debug/mcp-authz-harness
cargo build --locked -q
for v in "${versions[@]}"; do
  if [ ! -f "fixtures/snapshots/scope-map-$v.snap" ]; then
    pin_dir=$(mktemp -d)
    $bin pin --only MCP-10 --mcp-server-version "$v" --report-dir "$pin_dir"
    echo "pin $v: exit status $?"
    rm -rf "$pin_dir"
  fi
done
out=$(mktemp -d)
keycloak=()
[ -n "${KEYCLOAK_VERSION:-}" ] && keycloak=(--keycloak-versions "$KEYCLOAK_VERSION")
list=$(IFS=,; echo "${versions[*]}")
$bin matrix --only MCP "${keycloak[@]}" --mcp-server-versions "$list" --report-dir "$out"
echo "matrix: exit status $?"
for v in "${versions[@]}"; do
  python3 scripts/trim-report.py "$out"/*-"$v"/report.json "fixtures/releases/$v.json" "mcp_server_version=$v"
done
rm -rf "$out"
