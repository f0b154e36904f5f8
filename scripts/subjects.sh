#!/usr/bin/env bash
# Runs the whole catalogue once per MCP subject, nextcloud-mcp-server (the reference) and
# the generic subject (FastMCP, started by the harness), each on its own stack, and keeps
# a trimmed copy of each report in fixtures/subjects/reports/<subject>.json (check statuses
# and first detail lines, no evidence). `UPDATE_DOCS=1 cargo test --test docs` renders
# docs/mcp-subjects.md from those files.
#
#   scripts/subjects.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bin=./target/debug/mcp-authz-harness
cargo build --locked -q || exit 2
mkdir -p fixtures/subjects/reports
status=0
for subject in nextcloud-mcp-server generic; do
  out=$(mktemp -d)
  CI=true $bin run --mcp-subject "$subject" --report-dir "$out"
  code=$?
  echo "$subject: exit status $code"
  [ $code -eq 0 ] || status=1
  python3 scripts/trim-report.py "$out/report.json" "fixtures/subjects/reports/$subject.json" "subject=$subject"
  rm -rf "$out"
done
exit $status
