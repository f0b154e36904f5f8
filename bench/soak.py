#!/usr/bin/env python3
"""Runs the full catalogue N times back to back and records, for each run, its exit
status, its failures (check ID and message) and what it left behind; then renders
docs/reliability.md from every bench/results/soak-*.json.

    python3 bench/soak.py [--runs 20] [-- run's flags ...]
    python3 bench/soak.py --render-only

A failure is any check whose status fails the run (fail, xpass, a blocked check whose
blocker passed): the report's own verdict, not a re-interpretation. Leftovers after each
run: processes carrying the run marker, run dirs under the temp dir, and what the run's
own teardown measured (clients, realms, dirs, processes). Uses the debug binary (`cargo
build` first).
"""
import argparse
import collections
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "mcp-authz-harness")
RESULTS = os.path.join(ROOT, "bench", "results")
DOC = os.path.join(ROOT, "docs", "reliability.md")
MARKER = b"MCP_AUTHZ_HARNESS_RUN="
RUN_TIMEOUT_S = 1200
FAILING = {"fail", "xpass"}


def marked_processes(run_id=None):
    """(pid, command) of every process whose environment carries the run marker (of
    `run_id`, when given: other runs may be under way on the machine)."""
    marker = MARKER + run_id.encode() + b"\0" if run_id else MARKER
    found = []
    for env in glob.glob("/proc/[0-9]*/environ"):
        pid = env.split("/")[2]
        try:
            with open(env, "rb") as f:
                if marker not in f.read() + b"\0":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
        except OSError:
            continue
        found.append((int(pid), cmd))
    return found


def run_dirs(run_id="*"):
    return sorted(glob.glob(os.path.join(tempfile.gettempdir(), f"mcp-authz-harness-{run_id}")))


def one_run(index, extra):
    report_dir = tempfile.mkdtemp(prefix=f"soak-{index}-")
    argv = [BIN, "run", "--report-dir", report_dir, *extra]
    log_path = os.path.join(report_dir, "stderr.log")
    started = time.monotonic()
    with open(log_path, "w") as log:
        try:
            status = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            status = "no exit after %ss" % RUN_TIMEOUT_S
    wall = round(time.monotonic() - started, 1)
    failures, teardown, summary, run_id, components = [], {}, {}, None, {}
    try:
        with open(os.path.join(report_dir, "report.json")) as f:
            report = json.load(f)
        summary, teardown, run_id = report["summary"], report["teardown"], report["run_id"]
        components = report["components"]
        failures = [
            {"id": c["id"], "status": c["status"], "message": c.get("detail", "")[:300]}
            for c in report["checks"]
            if c["status"] in FAILING
        ]
    except (OSError, ValueError, KeyError) as e:
        failures.append({"id": "(report)", "status": "missing", "message": f"report.json unreadable: {e}"})
    # Without a report the run id is unknown: count everything of any run.
    leftovers = {
        "run_id": run_id,
        "processes": [f"{pid} {cmd}" for pid, cmd in marked_processes(run_id)],
        "run_dirs": run_dirs(run_id or "*"),
        "teardown": {k: v for k, v in teardown.items() if k != "clients_deleted"},
    }
    if status == 0 and not failures:
        # Kept only when the run failed, for its evidence.
        shutil.rmtree(report_dir, ignore_errors=True)
        report_dir = None
    print(
        f"run {index}: exit {status}, {wall}s, {summary}, {len(failures)} failure(s), "
        f"{len(leftovers['processes'])} processes and {len(leftovers['run_dirs'])} run dirs left",
        flush=True,
    )
    return {
        "index": index,
        "exit": status,
        "wall_s": wall,
        "summary": summary,
        "failures": failures,
        "leftovers": leftovers,
        "report_dir": report_dir,
        "components": components,
    }


def left_anything(run):
    t = run["leftovers"]["teardown"]
    counted = sum(v for k, v in t.items() if isinstance(v, int))
    return bool(run["leftovers"]["processes"] or run["leftovers"]["run_dirs"] or counted)


def render():
    lines = [
        "# Reliability",
        "",
        "Rendered by `python3 bench/soak.py --render-only` from `bench/results/soak-*.json`",
        "(do not edit by hand). Each soak runs the full catalogue N times back to back",
        "(`python3 bench/soak.py --runs N`) and records every failing check with its message,",
        "and what each run left behind: processes carrying the run marker, run dirs in the",
        "temp dir, and what the run's own teardown measured (clients, realms, dirs, processes",
        "left). Any flake found is fixed at its cause, not retried away.",
        "",
    ]
    for path in sorted(glob.glob(os.path.join(RESULTS, "soak-*.json"))):
        with open(path) as f:
            soak = json.load(f)
        runs = soak["runs"]
        failed = [r for r in runs if r["exit"] != 0]
        leaky = [r for r in runs if left_anything(r)]
        m = soak["machine"]
        walls = sorted(r["wall_s"] for r in runs)
        lines += [
            f"## {soak['date']}: {len(runs)} runs at commit {soak['commit']}",
            "",
            f"- machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Linux {m['kernel']};"
            f" load average at start {', '.join(map(str, m['load_at_start']))}",
            f"- components: {', '.join(f'{k} {v}' for k, v in soak['components'].items())}",
            f"- command: `python3 bench/soak.py --runs {len(runs)}"
            + (f" -- {' '.join(soak['run_flags'])}" if soak["run_flags"] else "")
            + "`",
            f"- runs that exited non-zero: **{len(failed)}**; runs that left anything: **{len(leaky)}**",
            f"- wall time per run: min {walls[0]} s, median {walls[len(walls) // 2]} s, max {walls[-1]} s",
            "",
        ]
        by_check = collections.defaultdict(list)
        for r in runs:
            for fl in r["failures"]:
                by_check[fl["id"]].append((r["index"], fl))
        if by_check:
            lines += ["| check | failures | runs | first message |", "|---|---|---|---|"]
            for check, hits in sorted(by_check.items()):
                msg = hits[0][1]["message"].replace("|", "\\|").replace("\n", " ")[:200]
                lines.append(f"| {check} | {len(hits)} | {', '.join(str(i) for i, _ in hits)} | {msg} |")
        else:
            lines.append("No check failed in any run.")
        lines.append("")
        for r in leaky:
            lines.append(f"- run {r['index']} left: {json.dumps(r['leftovers'])}")
        if leaky:
            lines.append("")
    with open(DOC, "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("run_flags", nargs="*", help="passed to `run` (after --)")
    args = ap.parse_args()
    if not args.render_only:
        if not os.path.exists(BIN):
            sys.exit(f"{BIN} is missing: run `cargo build` first")
        if args.runs < 1:
            sys.exit("--runs must be at least 1")
        load = os.getloadavg()
        record = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gib": round(int(open("/proc/meminfo").readline().split()[1]) / 1024 / 1024),
                "kernel": platform.release(),
                "load_at_start": [round(x, 2) for x in load],
            },
            "run_flags": args.run_flags,
            "runs": [],
        }
        for i in range(1, args.runs + 1):
            record["runs"].append(one_run(i, args.run_flags))
        record["components"] = record["runs"][0].pop("components")
        for run in record["runs"][1:]:
            run.pop("components")
        name = "soak-" + record["date"].replace(":", "").replace("-", "") + ".json"
        with open(os.path.join(RESULTS, name), "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        print(f"wrote bench/results/{name}")
    render()


if __name__ == "__main__":
    main()
