#!/usr/bin/env bash
# A private Docker engine for CI and for the containers backend: Debian's dockerd
# (apt-get install -y docker.io), as root, with its own socket, data root and exec root
# under DIR, and no networking of its own: no bridge, no iptables rules, no masquerading
# (the harness's containers use the host network). It never touches another engine.
#
#   scripts/dockerd.sh start DIR   starts it (or finds it running), waits until
#                                  `docker version` answers, and prints on stdout the one
#                                  line `export DOCKER_HOST=unix://DIR/docker.sock`, so
#                                  `eval "$(scripts/dockerd.sh start DIR)"` works
#   scripts/dockerd.sh stop DIR    stops it (SIGTERM, then SIGKILL after a bounded wait),
#                                  unmounts what it left mounted under DIR and removes its
#                                  runtime files; the data root DIR/data (the images) is
#                                  kept for the next start unless DOCKERD_PURGE=1
#
# Environment: DOCKERD_START_TIMEOUT (seconds, default 60), DOCKERD_STOP_TIMEOUT (default
# 30), DOCKERD_EXTRA_ARGS (more dockerd flags, split on spaces), DOCKERD_PURGE,
# DOCKERD_DATA_ROOT (the data root instead of DIR/data, e.g. in a cache that outlives DIR:
# DOCKERD_PURGE never removes a data root outside DIR).
# DIR/dockerd.log is dockerd's log.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
action=$1
if [ -z "$2" ] || [ "$2" = / ]; then usage; fi
if [ "$action" = stop ] && [ ! -d "$2" ]; then
  exit 0 # nothing was started there, or it is already cleaned up
fi
mkdir -p "$2"
dir=$(cd "$2" && pwd -P)

start_timeout=${DOCKERD_START_TIMEOUT:-60}
stop_timeout=${DOCKERD_STOP_TIMEOUT:-30}
socket=$dir/docker.sock
pidfile=$dir/dockerd.pid
log=$dir/dockerd.log
exec_root=$dir/exec
data_root=${DOCKERD_DATA_ROOT:-$dir/data}

say() { echo "dockerd.sh: $*" >&2; }

# The pid of our dockerd when it is running, else nothing.
running_pid() {
  local pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--exec-root $exec_root"; then
    echo "$pid"
  fi
}

answers() { DOCKER_HOST=unix://$socket docker version >/dev/null 2>&1; }

# Mount points under DIR, deepest first.
mounts_under() {
  awk -v d="$dir/" 'index($2, d) == 1 { print length($2), $2 }' /proc/self/mounts \
    | sort -rn | cut -d' ' -f2-
}

start() {
  [ "$(id -u)" -eq 0 ] || { say "dockerd runs as root: run this with sudo"; exit 1; }
  command -v dockerd >/dev/null || { say "dockerd is not installed: apt-get install -y docker.io"; exit 1; }
  command -v docker >/dev/null || { say "the docker CLI is not installed: apt-get install -y docker.io"; exit 1; }
  # The containerd socket lives under the exec root; unix socket paths are short.
  if [ ${#exec_root} -gt 60 ]; then
    say "DIR is too long for dockerd's sockets (${#exec_root} > 60 characters in $exec_root); use a shorter DIR"
    exit 1
  fi
  if [ -n "$(running_pid)" ]; then
    say "already running (pid $(running_pid)) at $socket"
  else
    mkdir -p "$exec_root" "$data_root"
    # An empty configuration, so /etc/docker/daemon.json of the host engine does not apply.
    echo '{}' >"$dir/daemon.json"
    local extra=()
    read -r -a extra <<<"${DOCKERD_EXTRA_ARGS:-}"
    setsid dockerd \
      --config-file "$dir/daemon.json" \
      --bridge=none --iptables=false --ip-masq=false \
      --data-root "$data_root" --exec-root "$exec_root" --pidfile "$pidfile" \
      -H "unix://$socket" "${extra[@]}" </dev/null >"$log" 2>&1 &
    say "started dockerd (pid $!), log $log"
  fi
  local waited=0
  until answers; do
    if [ -z "$(running_pid)" ] && [ "$waited" -ge 2 ]; then
      say "dockerd exited before answering at $socket; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    if [ "$waited" -ge "$start_timeout" ]; then
      say "dockerd did not answer \`docker version\` at $socket within ${start_timeout}s; last lines of $log:"
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    [ $((waited % 5)) -ne 0 ] || say "waiting for dockerd to answer at $socket (${waited}s of ${start_timeout}s)"
    sleep 1
    waited=$((waited + 1))
  done
  say "dockerd answers at $socket"
  echo "export DOCKER_HOST=unix://$socket"
}

stop() {
  local pid waited=0
  pid=$(running_pid)
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$waited" -ge "$stop_timeout" ]; then
        say "dockerd (pid $pid) did not stop within ${stop_timeout}s of SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      [ $((waited % 5)) -ne 0 ] || say "waiting for dockerd (pid $pid) to stop (${waited}s of ${stop_timeout}s)"
      sleep 1
      waited=$((waited + 1))
    done
    say "dockerd (pid $pid) stopped"
  fi
  # The containerd dockerd started, if it outlived a killed dockerd.
  local cpid
  cpid=$(cat "$exec_root/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$cpid/cmdline" 2>/dev/null | grep -q -- "$exec_root"; then
    kill -KILL "$cpid" 2>/dev/null || true
  fi
  local point
  while IFS= read -r point; do
    if [ -n "$point" ]; then umount -l "$point" 2>/dev/null || true; fi
  done < <(mounts_under)
  rm -rf "$exec_root" "$socket" "$pidfile" "$dir/daemon.json"
  if [ "${DOCKERD_PURGE:-}" = 1 ]; then
    case $data_root in "$dir"/*) rm -rf "$data_root" ;; esac
    rm -f "$log"
    rmdir "$dir" 2>/dev/null || true
  fi
}

case $action in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
