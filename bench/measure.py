#!/usr/bin/env python3
"""Measures Keycloak boot time (cold, with the download and `kc.sh build`; cached), the
harness's overhead before the first check and after the last, and the peak RSS of
Keycloak and of the harness, by running the real binary on `run --only REALM-02`.

Writes bench/results/<timestamp>.json (argv, versions, machine, date, numbers) and renders
docs/performance.md from every JSON file in bench/results.

    python3 bench/measure.py [--cached-runs 3] [--keycloak-version 26.7.3] [--skip-cold]
    python3 bench/measure.py --render-only
"""
import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "mcp-authz-harness")
RESULTS = os.path.join(ROOT, "bench", "results")
DOC = os.path.join(ROOT, "docs", "performance.md")
MARKER = "MCP_AUTHZ_HARNESS_RUN="


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def marked_java_pids():
    pids = []
    for env in glob.glob("/proc/[0-9]*/environ"):
        pid = env.split("/")[2]
        try:
            data = open(env, "rb").read()
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        program = cmd.split(b"\0")[0]
        if MARKER.encode() in data and program.endswith(b"java"):
            pids.append(pid)
    return pids


def one_run(env, label):
    """Runs the harness once; returns phases and peak RSS of the harness and Keycloak."""
    report = tempfile.mkdtemp(prefix="bench-report-")
    argv = [BIN, "run", "--only", "REALM-02", "--report-dir", report]
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks = {"harness": 0, "keycloak": 0}

    def watch():
        while proc.poll() is None:
            peaks["harness"] = max(peaks["harness"], peak_rss_kib(proc.pid) or 0)
            for pid in marked_java_pids():
                peaks["keycloak"] = max(peaks["keycloak"], peak_rss_kib(pid) or 0)
            time.sleep(0.2)

    t = threading.Thread(target=watch)
    t.start()
    code = proc.wait()
    t.join()
    wall = time.monotonic() - started
    r = json.load(open(os.path.join(report, "report.json")))
    shutil.rmtree(report, ignore_errors=True)
    if code != 0:
        sys.exit(f"{label}: the harness exited {code}")
    ph = r["phases"]
    return {
        "label": label,
        "wall_s": round(wall, 1),
        "phases": ph,
        "before_first_check_s": round(sum(v for k, v in ph.items() if k not in ("checks", "teardown")), 1),
        "after_last_check_s": ph.get("teardown"),
        "peak_rss_mib": {k: round(v / 1024) for k, v in peaks.items()},
        "components": r["components"],
        "keycloak_argv": r["keycloak_argv"],
    }


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 ** 3)
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": mem, "kernel": platform.release(),
            "load_avg_at_start": os.getloadavg()}


def measure(args):
    subprocess.run(["cargo", "build", "--locked"], cwd=ROOT, check=True)
    env = dict(os.environ, CI="true", KEYCLOAK_VERSION=args.keycloak_version)
    env.pop("KEYCLOAK_HOME", None)
    runs = []
    if not args.skip_cold:
        cold_cache = tempfile.mkdtemp(prefix="bench-cache-")
        runs.append(one_run(dict(env, XDG_CACHE_HOME=cold_cache), "cold (download + kc.sh build)"))
        shutil.rmtree(cold_cache, ignore_errors=True)
    one_run(env, "warm-up (fills the cache if empty)")
    for i in range(args.cached_runs):
        runs.append(one_run(env, f"cached #{i + 1}"))
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv,
        "harness_commit": sha,
        "selection": "run --only REALM-02 (debug build: Keycloak dominates)",
        "keycloak_version": args.keycloak_version,
        "machine": machine(),
        "runs": runs,
    }
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, doc["date"].replace(":", "") + ".json")
    json.dump(doc, open(path, "w"), indent=2)
    print(f"wrote {path}")


def render():
    docs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(RESULTS, "*.json")))]
    out = ["# Performance", "",
           "Rendered by `python3 bench/measure.py` from the raw measurements in `bench/results/`",
           "(do not edit by hand). Each measurement runs the (debug) binary on",
           "`run --only REALM-02` and reads the phase times from its `report.json`; peak RSS is",
           "`VmHWM` of the harness process and of the Keycloak JVM, polled every 200 ms.",
           "Tests never assert on time; these numbers are for sizing CI and spotting regressions.", ""]
    for d in docs:
        m = d["machine"]
        out += [f"## {d['date']} — Keycloak {d['keycloak_version']}, harness {d['harness_commit']}", "",
                f"- machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
                f"load average at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}",
                f"- command: `{' '.join(d['argv'])}`", ""]
        comps = d["runs"][0]["components"] if d["runs"] else {}
        out += [f"- components: {', '.join(f'{k} {v}' for k, v in comps.items())}", ""]
        out += ["| run | provision.keycloak s | boot.keycloak s | before first check s | after last check s | wall s | Keycloak peak RSS MiB | harness peak RSS MiB |",
                "|---|---|---|---|---|---|---|---|"]
        for r in d["runs"]:
            ph = r["phases"]
            out.append(f"| {r['label']} | {ph.get('provision.keycloak', '')} | {ph.get('boot.keycloak', '')} | "
                       f"{r['before_first_check_s']} | {r['after_last_check_s']} | {r['wall_s']} | "
                       f"{r['peak_rss_mib']['keycloak']} | {r['peak_rss_mib']['harness']} |")
        out.append("")
    open(DOC, "w").write("\n".join(out))
    print(f"rendered {DOC}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cached-runs", type=int, default=3)
    p.add_argument("--keycloak-version", default="26.7.3")
    p.add_argument("--skip-cold", action="store_true")
    p.add_argument("--render-only", action="store_true")
    a = p.parse_args()
    if not a.render_only:
        measure(a)
    render()


if __name__ == "__main__":
    main()
