#!/usr/bin/env bash
# The compose deployment, checked: docker-compose.yml with ci/compose-override.yml (host
# networking, local images, the harness's Nextcloud stand-in in place of Nextcloud) under
# a project name of its own, then `run --backend external` against it, then always
# `docker-compose down -v` (also on failure and Ctrl-C).
#
#   cargo build && scripts/compose-check.sh [extra `run` flags, e.g. --only RS]
#
# Needs docker-compose (1.29), a Docker engine (DOCKER_HOST), ./target/debug/mcp-authz-harness,
# and the images the override names (KEYCLOAK_IMAGE, MCP_IMAGE, with their versions). Unless
# STAND_IN_IMAGE is set, the stand-in image is built first from the binary
# (images/nextcloud-stand-in). Secrets and passwords are generated per run into the
# environment, never printed nor passed on a command line. Free loopback ports are chosen
# for every service. Exit status: that of `run` (0 green, 1 a check failed, 2 usage or
# Keycloak not up, 130 interrupted); 2 when the deployment did not come up in time
# (COMPOSE_CHECK_TIMEOUT seconds, default 300).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
harness=./target/debug/mcp-authz-harness
timeout_s=${COMPOSE_CHECK_TIMEOUT:-300}
report_dir=${COMPOSE_CHECK_REPORT_DIR:-target/compose-check}

for tool in docker docker-compose curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "compose-check: $tool is missing" >&2; exit 2; }
done
[ -x "$harness" ] || { echo "compose-check: $harness is missing: run \`cargo build\` first" >&2; exit 2; }

version=$("$harness" --version | awk '{print $2}')
project="mah-compose-check-$$"
compose=(docker-compose -p "$project" -f docker-compose.yml -f ci/compose-override.yml)

# Secrets: exported, so that compose reads them from the environment.
MCP_HARNESS_SECRET_NEXTCLOUD_MCP_SERVER=$(openssl rand -hex 24)
MCP_HARNESS_SECRET_NEXTCLOUD=$(openssl rand -hex 24)
MCP_HARNESS_PASSWORD_ADMIN=$(openssl rand -hex 16)
MCP_HARNESS_PASSWORD_ALICE=$(openssl rand -hex 16)
MCP_HARNESS_PASSWORD_BOB=$(openssl rand -hex 16)
MCP_HARNESS_PASSWORD_CAROL=$(openssl rand -hex 16)
KC_ADMIN_PASSWORD=$(openssl rand -hex 16)
TOKEN_ENCRYPTION_KEY=$(python3 -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
export MCP_HARNESS_SECRET_NEXTCLOUD_MCP_SERVER MCP_HARNESS_SECRET_NEXTCLOUD \
  MCP_HARNESS_PASSWORD_ADMIN MCP_HARNESS_PASSWORD_ALICE MCP_HARNESS_PASSWORD_BOB \
  MCP_HARNESS_PASSWORD_CAROL KC_ADMIN_PASSWORD TOKEN_ENCRYPTION_KEY
secret_vars=(MCP_HARNESS_SECRET_NEXTCLOUD_MCP_SERVER MCP_HARNESS_SECRET_NEXTCLOUD
  MCP_HARNESS_PASSWORD_ADMIN MCP_HARNESS_PASSWORD_ALICE MCP_HARNESS_PASSWORD_BOB
  MCP_HARNESS_PASSWORD_CAROL KC_ADMIN_PASSWORD TOKEN_ENCRYPTION_KEY)

# Five free loopback ports (Keycloak, its management interface, the stand-in, the MCP
# server, the harness's redirect listener): the engine is shared, the defaults may be taken.
read -r KEYCLOAK_PORT KEYCLOAK_MANAGEMENT_PORT STAND_IN_PORT MCP_PORT redirect_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
MCP_REDIRECT_URI="http://127.0.0.1:${redirect_port}/callback"
ALLOWED_MCP_CLIENTS="mcp-authz-harness|${MCP_REDIRECT_URI}"
export KEYCLOAK_PORT KEYCLOAK_MANAGEMENT_PORT STAND_IN_PORT MCP_PORT MCP_REDIRECT_URI ALLOWED_MCP_CLIENTS

# Prints stdin with every secret's value replaced by ***.
# shellcheck disable=SC2317 # called from teardown, which runs from a trap
redact() {
  python3 -c '
import os, sys
values = [os.environ[v] for v in sys.argv[1:] if os.environ.get(v)]
for line in sys.stdin:
    for v in values:
        line = line.replace(v, "***")
    sys.stdout.write(line)' "${secret_vars[@]}"
}

up_started=0
# shellcheck disable=SC2317 # runs from the EXIT trap
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$up_started" = 1 ]; then
    if [ "$rc" != 0 ]; then
      echo "compose-check: failed (exit $rc); the last log lines of each service (secrets redacted):" >&2
      "${compose[@]}" logs --no-color --tail 40 2>&1 | redact >&2 || true
    fi
    echo "compose-check: tearing down $project (containers and volumes)" >&2
    "${compose[@]}" down -v --remove-orphans >&2 2>&1 || echo "compose-check: docker-compose down failed" >&2
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "${STAND_IN_IMAGE:-}" ]; then
  STAND_IN_IMAGE=mcp-authz-harness/nextcloud-stand-in
  STAND_IN_VERSION=$version
  tag="$STAND_IN_IMAGE:$STAND_IN_VERSION"
  old=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  ctx=$(mktemp -d)
  cp images/nextcloud-stand-in/Dockerfile "$ctx/"
  strip -o "$ctx/mcp-authz-harness" "$harness" 2>/dev/null || cp "$harness" "$ctx/mcp-authz-harness"
  echo "compose-check: building $tag from $harness" >&2
  if ! docker build --network host -q -t "$tag" "$ctx" >/dev/null; then
    rm -rf "$ctx"
    echo "compose-check: building $tag failed" >&2
    exit 2
  fi
  rm -rf "$ctx"
  new=$(docker image inspect --format '{{.Id}}' "$tag")
  # The image this build replaced, unless something else still names or uses it.
  if [ -n "$old" ] && [ "$old" != "$new" ]; then
    docker rmi "$old" >/dev/null 2>&1 || true
  fi
fi
export STAND_IN_IMAGE STAND_IN_VERSION

started=$(date +%s)
up_started=1
echo "compose-check: docker-compose up ($project: keycloak :$KEYCLOAK_PORT, stand-in :$STAND_IN_PORT, mcp :$MCP_PORT)" >&2
"${compose[@]}" up -d >&2

# Waits until GET $2 answers 200, or the deadline passes (then exit 2).
wait_for() {
  local what=$1 url=$2
  echo "compose-check: waiting for $what ($url)" >&2
  until curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; do
    if [ $(($(date +%s) - started)) -ge "$timeout_s" ]; then
      echo "compose-check: $what did not answer 200 within ${timeout_s} s: $url" >&2
      "${compose[@]}" ps >&2 || true
      exit 2
    fi
    sleep 2
  done
  echo "compose-check: $what answers after $(($(date +%s) - started)) s" >&2
}
wait_for "Keycloak's realm discovery" \
  "http://127.0.0.1:$KEYCLOAK_PORT/realms/nextcloud-mcp/.well-known/openid-configuration"
wait_for "the Nextcloud stand-in's status.php" "http://127.0.0.1:$STAND_IN_PORT/status.php"
wait_for "the MCP server's /health/live" "http://127.0.0.1:$MCP_PORT/health/live"
echo "compose-check: deployment up in $(($(date +%s) - started)) s" >&2

set +e
"$harness" run --backend external \
  --keycloak-url "http://127.0.0.1:$KEYCLOAK_PORT" \
  --admin-user admin --admin-password-env KC_ADMIN_PASSWORD \
  --resource-server-url "http://127.0.0.1:$STAND_IN_PORT" \
  --mcp-url "http://127.0.0.1:$MCP_PORT" \
  --mcp-redirect-uri "$MCP_REDIRECT_URI" \
  --report-dir "$report_dir" "$@"
rc=$?
set -e
echo "compose-check: run exited $rc (reports in $report_dir)" >&2
exit "$rc"
