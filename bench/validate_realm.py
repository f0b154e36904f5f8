#!/usr/bin/env python3
"""Measures the live diff of `validate-realm` against a plain `run` of the same checks,
in pairs run back to back (so both see the same machine), and renders the timing
section of docs/validate-a-config-change.md from every bench/results/validate-realm-*.json.

    python3 bench/validate_realm.py [--pairs 2] [--realm fixtures/realms/change-no-basic-scope.json] [--cpus N]
    python3 bench/validate_realm.py --render-only
    python3 bench/validate_realm.py --print-section   # what the doc should contain (tests)

Uses the debug binary (`cargo build` first). The ratio of each pair is the live diff's
wall time over the plain run's: the live diff runs the whole catalogue on two realms
(two MCP server deployments, two stand-ins) in one Keycloak. `--cpus N` pins both runs
(and everything they start) to the first N CPUs, to see how the ratio depends on cores.
"""
import argparse
import glob
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "mcp-authz-harness")
RESULTS = os.path.join(ROOT, "bench", "results")
DOC = os.path.join(ROOT, "docs", "validate-a-config-change.md")
BEGIN = "<!-- timing: rendered by bench/validate_realm.py; do not edit by hand -->"
END = "<!-- end of timing -->"
TIMEOUT_S = 900
# Every process the harness starts carries this variable, set to its run's ID.
MARKER = b"MCP_AUTHZ_HARNESS_RUN="
SAMPLE_S = 0.5
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
CPU_COMPONENTS = ("harness", "keycloak", "chromium", "mcp-server", "other")


class CpuSampler(threading.Thread):
    """CPU seconds (user + system) of the harness process and of every process a run of it
    started, by component. Polls /proc every SAMPLE_S and keeps each process's last
    figure, so a process that lives less than SAMPLE_S may be missed. A process counts
    when it carries the run marker with one of the run IDs the harness logged (other runs
    on the machine carry other IDs), or when its parent counts: Chromium starts its
    zygotes, renderers and GPU process without the harness's environment."""

    def __init__(self, harness_pid):
        super().__init__(daemon=True)
        self.harness_pid = str(harness_pid)
        self.seen = {}  # (pid, start time) -> [run id, component, ticks], or None
        self.current = {}  # pid -> its (pid, start time) in seen
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.sample()
            self.done.wait(SAMPLE_S)
        self.sample()

    def sample(self):
        # Oldest first, so that a parent is known before its children.
        procs = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                procs.append((int(fields[19]), pid, fields[1], int(fields[11]) + int(fields[12])))
        for start, pid, ppid, ticks in sorted(procs):
            key = (pid, start)
            if key not in self.seen:
                owner = self.owner(pid, ppid)
                self.seen[key] = None if owner is None else list(owner) + [0]
                self.current[pid] = key
            if self.seen[key] is not None:
                self.seen[key][2] = max(self.seen[key][2], ticks)

    def owner(self, pid, ppid):
        """(run ID, component) of a process of the harness's, else None."""
        if pid == self.harness_pid:
            return ("", "harness")
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return None
        run = next((v[len(MARKER):].decode() for v in env if v.startswith(MARKER)), None)
        if run is None:
            parent = self.seen.get(self.current.get(ppid))
            if parent is None or parent[1] == "harness":
                return None
            run = parent[0]
        return (run, component_of(cmd))

    def totals(self, run_ids):
        out = dict.fromkeys(CPU_COMPONENTS, 0.0)
        for entry in self.seen.values():
            if entry and (entry[1] == "harness" or entry[0] in run_ids):
                out[entry[1]] += entry[2] * TICK_S
        return {k: round(v, 1) for k, v in out.items()}


def component_of(cmd):
    if cmd.split(" ", 1)[0].endswith("java"):
        return "keycloak"  # the only JVM the harness starts
    if "chrom" in cmd:
        return "chromium"
    if "nextcloud-mcp-server" in cmd or "nextcloud_mcp_server" in cmd:
        return "mcp-server"
    return "other"


def timed(argv, label):
    """Runs argv (output to a log file); returns (wall seconds, exit status, log path, CPU
    seconds by component)."""
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{label}-", suffix=".log", delete=False)
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    sampler = CpuSampler(child.pid)
    sampler.start()
    try:
        status = child.wait(timeout=TIMEOUT_S)
    except BaseException as e:
        # Ctrl-C or the deadline: the harness tears down on SIGINT as it does for a user.
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # Its watchdog stops what it started once the harness itself is gone.
            child.kill()
            child.wait()
        sampler.done.set()
        if isinstance(e, subprocess.TimeoutExpired):
            sys.exit(f"{label}: no exit after {TIMEOUT_S}s: {' '.join(argv)} (log {log.name})")
        raise
    wall = round(time.monotonic() - started, 1)
    sampler.done.set()
    sampler.join()
    with open(log.name, errors="replace") as f:
        run_ids = set(re.findall(r"\brun (\S+) in /", f.read()))
    return wall, status, log.name, sampler.totals(run_ids)


def phases(report_json):
    with open(report_json) as f:
        report = json.load(f)
    return report["phases"], report["summary"], report["components"]


def one_pair(realm, index):
    with tempfile.TemporaryDirectory(prefix="bench-vr-") as tmp:
        run_dir, diff_dir = os.path.join(tmp, "run"), os.path.join(tmp, "diff")
        run_s, run_status, run_log, run_cpu = timed([BIN, "run", "--report-dir", run_dir], f"run-{index}")
        if run_status != 0:
            sys.exit(f"the plain run exited {run_status}; see {run_log}")
        diff_s, diff_status, diff_log, diff_cpu = timed(
            [BIN, "validate-realm", realm, "--report-dir", diff_dir, "--format", "json"],
            f"diff-{index}",
        )
        if diff_status not in (0, 1):
            sys.exit(f"validate-realm exited {diff_status}; see {diff_log}")
        run_phases, run_summary, components = phases(os.path.join(run_dir, "report.json"))
        diff_phases, _, _ = phases(os.path.join(diff_dir, "baseline", "report.json"))
        print(f"pair {index}: run {run_s}s, live diff {diff_s}s, ratio {diff_s / run_s:.2f}; CPU s run {run_cpu}, live diff {diff_cpu}")
        for log in (run_log, diff_log):
            os.remove(log)
        return {
            "run": {"wall_s": run_s, "phases": run_phases, "summary": run_summary, "cpu_s": run_cpu},
            "live_diff": {"wall_s": diff_s, "exit": diff_status, "phases": diff_phases, "cpu_s": diff_cpu},
            "ratio": round(diff_s / run_s, 2),
            "components": components,
        }


def machine():
    load = os.getloadavg()
    mem_kib = int(open("/proc/meminfo").readline().split()[1])
    return {
        # The CPUs the runs may use (fewer than the machine's with --cpus).
        "cpus": len(os.sched_getaffinity(0)),
        "machine_cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024),
        "kernel": platform.release(),
        "load_at_start": [round(x, 2) for x in load],
    }


def commit():
    out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def render_section():
    files = sorted(glob.glob(os.path.join(RESULTS, "validate-realm-*.json")))
    lines = [BEGIN, ""]
    for path in files:
        with open(path) as f:
            r = json.load(f)
        m = r["machine"]
        comps = r["pairs"][0]["components"]
        cpus = f"{m['cpus']} CPUs"
        pinned = ""
        if m.get("machine_cpus", m["cpus"]) != m["cpus"]:
            cpus = f"{m['cpus']} of the machine's {m['machine_cpus']} CPUs"
            pinned = f" --cpus {m['cpus']}"
        lines += [
            f"Measured {r['date']} at commit {r['commit']} on {cpus}, {m['memory_gib']} GiB,"
            f" Linux {m['kernel']} (load average at start {', '.join(map(str, m['load_at_start']))});"
            f" Keycloak {comps['keycloak']}, nextcloud-mcp-server {comps['mcp-server']}, Nextcloud {comps['nextcloud']};"
            f" `python3 bench/validate_realm.py --pairs {len(r['pairs'])} --realm {r['realm']}{pinned}`"
            " (raw figures in `bench/results/`):",
            "",
            "| pair | plain `run` s | live diff s | ratio | run: boot.keycloak / checks / teardown s | live diff: boot.keycloak / checks / teardown s |",
            "|---|---|---|---|---|---|",
        ]
        for i, p in enumerate(r["pairs"], 1):
            rp, dp = p["run"]["phases"], p["live_diff"]["phases"]
            lines.append(
                f"| {i} | {p['run']['wall_s']} | {p['live_diff']['wall_s']} | {p['ratio']:.2f} |"
                f" {rp.get('boot.keycloak')} / {rp.get('checks')} / {rp.get('teardown')} |"
                f" {dp.get('boot.keycloak')} / {dp.get('checks')} / {dp.get('teardown')} |"
            )
        lines.append("")
        lines += cpu_table(r["pairs"])
    lines.append(END)
    return "\n".join(lines)


def cpu_table(pairs):
    """CPU seconds by component, where the raw figures have them (since 2026-12-07)."""
    if not all("cpu_s" in p["run"] for p in pairs):
        return []
    head = " / ".join(CPU_COMPONENTS)
    lines = [f"CPU seconds summed over the harness and every process it started ({head}, then the total):", "",
             "| pair | plain `run` | live diff | live diff − run |", "|---|---|---|---|"]
    for i, p in enumerate(pairs, 1):
        run, diff = p["run"]["cpu_s"], p["live_diff"]["cpu_s"]
        cells = [" / ".join(f"{c[k]:.0f}" for k in CPU_COMPONENTS) + f", {sum(c.values()):.0f}" for c in (run, diff)]
        extra = {k: diff[k] - run[k] for k in CPU_COMPONENTS}
        cells.append(" / ".join(f"{extra[k]:+.0f}" for k in CPU_COMPONENTS) + f", {sum(extra.values()):+.0f}")
        lines.append(f"| {i} | " + " | ".join(cells) + " |")
    return lines + [""]


def render():
    with open(DOC) as f:
        doc = f.read()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{DOC}: the timing markers are missing; add the two lines\n{BEGIN}\n{END}")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(DOC, "w") as f:
        f.write(head + render_section() + tail)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--realm", default="fixtures/realms/change-no-basic-scope.json")
    ap.add_argument("--cpus", type=int, help="pin the runs to the first N CPUs")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--print-section", action="store_true")
    args = ap.parse_args()
    if args.print_section:
        print(render_section())
        return
    if not args.render_only:
        if not os.path.exists(BIN):
            sys.exit(f"{BIN} is missing: run `cargo build` first")
        if args.pairs < 1:
            sys.exit("--pairs must be at least 1")
        if args.cpus is not None:
            allowed = sorted(os.sched_getaffinity(0))
            if not 1 <= args.cpus <= len(allowed):
                sys.exit(f"--cpus must be between 1 and {len(allowed)}, the CPUs this process may use")
            # Inherited by the harness and everything it starts.
            os.sched_setaffinity(0, allowed[: args.cpus])
        record = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit(),
            "realm": args.realm,
            "machine": machine(),
            "pairs": [one_pair(os.path.join(ROOT, args.realm), i) for i in range(1, args.pairs + 1)],
        }
        name = "validate-realm-" + record["date"].replace(":", "").replace("-", "") + ".json"
        with open(os.path.join(RESULTS, name), "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
    render()


if __name__ == "__main__":
    main()
