#!/usr/bin/env python3
"""Measures the full catalogue against its floor, in one run, and renders docs/performance.md.

The floor is what the deployment itself costs, without the harness: a bare Keycloak boot to
ready, the MCP server process from exec to healthy, Chromium headless to its first page.
One measurement runs the full catalogue (`mcp-authz-harness run`, the debug binary `cargo
run -- run` builds, default `--jobs`) and reads its phase times from `report.json`; then it
does what the harness does for each floor component, with the same distribution, prepared
build, JDK, command line, venv and environment the catalogue's report names, one component
at a time, polling every 50 ms:

- Keycloak: a fresh home assembled like the harness's (copies of bin, conf and the prepared
  lib/quarkus, links to the jars and themes), `kc.sh start --optimized` with the catalogue's
  arguments, until the master realm's discovery answers 200 and the bootstrap admin gets a
  token (the harness's readiness); then one POST of the realm file (placeholders filled);
- the MCP server: the cached venv's executable with the catalogue's arguments and the
  harness's environment, against that Keycloak, until `GET /health/live` answers 200;
- Chromium: `chromium --headless ... --dump-dom URL` with a fresh `--user-data-dir`, until a
  local server has served it the page and it has printed the DOM;
- stopping: SIGTERM to the MCP server and Keycloak together, until both process groups are
  gone (the harness stops all its processes at once too).

Also in the same invocation, neither part of the floor: the catalogue's per-check
`duration_ms` grouped by each check's needs (the `needs` column of docs/catalogue.md), and
`--dcr-runs` anonymous DCR create+delete pairs against the floor's Keycloak after its realm
import.

Writes bench/results/<timestamp>.json (argv, versions, machine, load, numbers) and renders
docs/performance.md from every JSON file in bench/results (`--render-only`; `--stdout`
prints it instead, which the staleness test in tests/docs.rs compares with the file).

    python3 bench/measure.py [--label after] [--floor-runs 1] [--jobs 4] [--dcr-runs 20]
    python3 bench/measure.py --boot-only [--cached-runs 3] [--skip-cold]   # Keycloak boot, REALM-02
    python3 bench/measure.py --render-only [--stdout]
"""
import argparse
import glob
import http.server
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "mcp-authz-harness")
RESULTS = os.path.join(ROOT, "bench", "results")
DOC = os.path.join(ROOT, "docs", "performance.md")
REALM_FILE = os.path.join(ROOT, "keycloak", "realm-export.json")
MARKER = "MCP_AUTHZ_HARNESS_RUN="
HARNESS_JVM_OPTS = "-XX:TieredStopAtLevel=1"
POLL_S = 0.05
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def commit():
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return sha + ("+changes" if dirty else "")


def save(doc):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, doc["date"].replace(":", "") + ".json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


# --- the full catalogue ---------------------------------------------------------------------

def run_harness(argv, env, label):
    """Runs the harness once; returns its report, wall time, exit code and peak RSS."""
    report = tempfile.mkdtemp(prefix="bench-report-")
    argv = [BIN] + argv + ["--report-dir", report]
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks = {"harness": 0, "keycloak": 0}
    seen = {}

    def watch():
        while proc.poll() is None:
            peaks["harness"] = max(peaks["harness"], peak_rss_kib(proc.pid) or 0)
            for pid in marked_java_pids():
                peaks["keycloak"] = max(peaks["keycloak"], peak_rss_kib(pid) or 0)
            if "report" not in seen and os.path.exists(os.path.join(report, "report.json")):
                seen["report"] = time.monotonic()
            time.sleep(0.2)

    t = threading.Thread(target=watch)
    t.start()
    code = proc.wait()
    t.join()
    ended = time.monotonic()
    try:
        r = json.load(open(os.path.join(report, "report.json")))
    except OSError:
        sys.exit(f"{label}: the harness exited {code} without a report")
    shutil.rmtree(report, ignore_errors=True)
    return {
        "label": label,
        "argv": ["mcp-authz-harness"] + argv[1:-2],
        "exit_code": code,
        "wall_s": round(ended - started, 1),
        "exit_after_report_s": round(ended - seen.get("report", ended), 1),
        "peak_rss_mib": {k: round(v / 1024) for k, v in peaks.items()},
    }, r


def catalogue(args, env):
    argv = ["run", "--jobs", str(args.jobs)]
    if args.only:
        argv += ["--only", args.only]
    run, r = run_harness(argv, env, "full catalogue")
    if run["exit_code"] != 0:
        sys.exit(f"the catalogue exited {run['exit_code']}: {r['summary']}")
    run.update({
        "phases": r["phases"],
        "summary": r["summary"],
        "components": r["components"],
        "keycloak_argv": r["keycloak_argv"],
        "checks": {c["id"]: c.get("duration_ms") for c in r["checks"]},
        "check_status": {c["id"]: c.get("status") for c in r["checks"]},
        "needs_source": os.path.relpath(CATALOGUE_MD, ROOT),
        "check_needs": {k: sorted(v) for k, v in catalogue_needs().items()},
        "mcp_server_argv": mcp_argv_from(r),
    })
    return run


def mcp_argv_from(report):
    for c in report["checks"]:
        for ev in c.get("evidence", []):
            for note in ev.get("notes", []):
                if c["id"] == "MCP-01" and note.startswith("started as: "):
                    return note[len("started as: "):].split()
    return None


CATALOGUE_MD = os.path.join(ROOT, "docs", "catalogue.md")
# Needs that make a check more than HTTP round trips to Keycloak and the MCP server: a
# Chromium session, or further MCP server instances of its own.
HEAVY_NEEDS = ("browser", "mcp-instances")
# Statuses of checks that did their work (a blocked or skipped check returns at once).
RAN = ("pass", "xfail", "fail")


def table_cells(line):
    """The cells of one Markdown table row (None for any other line), split on pipes that
    are not escaped: src/markdown.rs writes a pipe inside a cell as `\\|`."""
    line = line.strip()
    if len(line) < 2 or not (line.startswith("|") and line.endswith("|")):
        return None
    return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line[1:-1])]


def parse_needs(text):
    """{check id: set of needs} from docs/catalogue.md: every table whose header has an
    `ID` and a `needs` column (found by name, not position), needs split on commas."""
    needs = {}
    cols = None
    for line in text.splitlines():
        cells = table_cells(line)
        if cells is None:
            cols = None
            continue
        if cols is None:
            lower = [c.lower() for c in cells]
            cols = (lower.index("id"), lower.index("needs")) if "id" in lower and "needs" in lower else False
            continue
        if not cols or all(set(c) <= set("-: ") for c in cells):
            continue
        i, n = cols
        if max(i, n) < len(cells) and re.fullmatch(r"[A-Z]+-\d+", cells[i]):
            needs[cells[i]] = {x.strip() for x in cells[n].split(",") if x.strip()}
    return needs


def catalogue_needs():
    needs = parse_needs(open(CATALOGUE_MD).read())
    if not needs:
        sys.exit(f"no check's needs found in {CATALOGUE_MD}")
    return needs


def nearest_rank(vals, q):
    """The q-quantile by nearest rank: the smallest value with at least q of them at or
    below it (p90 of 20 values is the 18th)."""
    vals = sorted(vals)
    return vals[max(0, -(-int(q * 100) * len(vals) // 100) - 1)]


def check_groups(cat):
    """Median and p90 duration_ms of the checks that ran, by what they need; None when the
    raw JSON predates the needs."""
    if "check_needs" not in cat:
        return None
    groups = {"HTTP-only (neither browser nor mcp-instances)": lambda n: not (n & set(HEAVY_NEEDS)),
              "browser": lambda n: "browser" in n,
              "mcp-instances, no browser": lambda n: "mcp-instances" in n and "browser" not in n}
    out = {}
    for name, test in groups.items():
        ids = [k for k, n in cat["check_needs"].items() if test(set(n)) and k in cat["checks"]]
        ran = [cat["checks"][k] for k in ids
               if cat["check_status"].get(k) in RAN and isinstance(cat["checks"].get(k), (int, float))]
        out[name] = {"checks": len(ids), "ran": len(ran),
                     "median_ms": statistics.median(ran) if ran else None,
                     "p90_ms": nearest_rank(ran, 0.9) if ran else None,
                     "max_ms": max(ran) if ran else None}
    return out


# --- the floor ------------------------------------------------------------------------------

def cache_root():
    base = os.environ.get("XDG_CACHE_HOME")
    if not (base and os.path.isabs(base)):
        base = os.path.join(os.environ["HOME"], ".cache")
    return os.path.join(base, "mcp-authz-harness")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(method, url, data=None, headers=None, timeout=5):
    """(status, body) of one request; (None, why) when it could not be sent."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError) as e:
        return None, str(e).encode()


def wait_for(what, probe, proc, started, timeout):
    """Polls `probe` every POLL_S until it holds; seconds since `started`. Fails naming
    what it waited for when `timeout` passes or the process exits."""
    deadline = started + timeout
    last = "(not probed yet)"
    while True:
        ok, last = probe()
        if ok:
            return time.monotonic() - started
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited ({proc.returncode}); last: {last}")
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what}: not after {timeout}s; last: {last}")
        time.sleep(POLL_S)


def stop_groups(procs, grace=10):
    """SIGTERM to every process group at once; seconds until each group is gone (SIGKILL
    after `grace`)."""
    started = time.monotonic()
    for p in procs.values():
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    took = {}
    while len(took) < len(procs):
        for name, p in procs.items():
            if name in took:
                continue
            p.poll()
            try:
                os.killpg(p.pid, 0)
            except ProcessLookupError:
                took[name] = round(time.monotonic() - started, 2)
        if time.monotonic() - started > grace:
            for name, p in procs.items():
                if name not in took:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    took[name] = f"killed after {grace}s"
        time.sleep(POLL_S)
    return took


def pick_jdk(java_version):
    """The JDK the harness used (the report names its version): JAVA_HOME, then /usr/lib/jvm."""
    homes = [os.environ["JAVA_HOME"]] if os.environ.get("JAVA_HOME") else []
    homes += sorted(glob.glob("/usr/lib/jvm/*"))
    for home in homes:
        try:
            release = open(os.path.join(home, "release")).read()
        except OSError:
            continue
        m = re.search(r'^JAVA_VERSION="?([^"\n]*)"?', release, re.M)
        if m and m.group(1) == java_version and os.path.exists(os.path.join(home, "bin/java")):
            return os.path.realpath(home)
    sys.exit(f"no JDK {java_version} under JAVA_HOME or /usr/lib/jvm")


def keycloak_home(version, build_args, into):
    """A run home as the harness assembles it, from the cached distribution and the
    prepared build whose options are `build_args`."""
    base = os.path.join(cache_root(), f"keycloak-{version}")
    dist = os.path.join(base, "dist")
    prepared = None
    for marker in glob.glob(os.path.join(base, "builds", "*", "complete")):
        if open(marker).read() == " ".join(build_args):
            prepared = os.path.dirname(marker)
    if prepared is None:
        sys.exit(f"no prepared build of Keycloak {version} for {' '.join(build_args)} (run the catalogue once)")
    os.makedirs(os.path.join(into, "lib"))
    os.makedirs(os.path.join(into, "data"))
    shutil.copytree(os.path.join(dist, "bin"), os.path.join(into, "bin"))
    shutil.copytree(os.path.join(dist, "conf"), os.path.join(into, "conf"))
    shutil.copytree(os.path.join(prepared, "lib", "quarkus"), os.path.join(into, "lib", "quarkus"))
    shutil.copy(os.path.join(dist, "lib", "quarkus-run.jar"), os.path.join(into, "lib", "quarkus-run.jar"))
    shutil.copy(os.path.join(dist, "version.txt"), os.path.join(into, "version.txt"))
    for link in ["lib/lib", "lib/app", "themes", "providers"]:
        if os.path.exists(os.path.join(dist, link)):
            os.symlink(os.path.join(dist, link), os.path.join(into, link))
    return into


def filled_realm():
    text = open(REALM_FILE).read()
    names = sorted(set(re.findall(r"\$\{([A-Z0-9_]+)\}", text)))
    values = {n: secrets.token_urlsafe(18) + "aA1-" for n in names}
    for n, v in values.items():
        text = text.replace("${" + n + "}", v)
    return json.loads(text), values


class StubNextcloud(http.server.ThreadingHTTPServer):
    """Answers 404 to everything and records what was asked: the MCP server's
    NEXTCLOUD_HOST during its start (the harness gives it the stand-in)."""

    def __init__(self):
        self.paths = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                stub.paths.append(f"{self.command} {self.path}")
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_HEAD = do_GET

            def log_message(self, *a):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def mcp_env(version, venv, base_url, kc_base, realm, client_secret, nextcloud):
    """The environment the harness gives the MCP server (stack/native/mcp_server.rs
    `prepare`), for this floor's Keycloak and Nextcloud stub."""
    home = tempfile.mkdtemp(prefix="bench-mcp-")
    for d in ("cwd", "data", "tmp"):
        os.makedirs(os.path.join(home, d))
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR")
           if k in os.environ}
    scopes = "openid profile email"
    for cli in glob.glob(os.path.join(venv, "lib", "*", "site-packages", "nextcloud_mcp_server", "cli.py")):
        m = re.search(r'envvar="NEXTCLOUD_OIDC_SCOPES",\s*default="([^"]*)"', open(cli).read())
        if m:
            scopes = m.group(1)
    from base64 import urlsafe_b64encode
    env.update({
        "TMPDIR": os.path.join(home, "tmp"),
        "NEXTCLOUD_HOST": nextcloud,
        "NEXTCLOUD_MCP_SERVER_URL": base_url,
        "NEXTCLOUD_OIDC_SCOPES": scopes,
        "NEXTCLOUD_OIDC_CLIENT_ID": "nextcloud-mcp-server",
        "NEXTCLOUD_OIDC_CLIENT_SECRET": client_secret,
        "TOKEN_ENCRYPTION_KEY": urlsafe_b64encode(os.urandom(32)).decode(),
        "TOKEN_STORAGE_DB": os.path.join(home, "data", "tokens.db"),
        "METRICS_ENABLED": "false",
        "OIDC_DISCOVERY_MAX_ATTEMPTS": "2",
        "ENABLE_BACKGROUND_OPERATIONS": "true",
        "MCP_DISABLE_CAPABILITY_GATING": "true",
        "ALLOWED_MCP_CLIENTS": "mcp-authz-harness|http://127.0.0.1:9/callback",
        "OIDC_DISCOVERY_URL": f"{kc_base}/realms/{realm}/.well-known/openid-configuration",
        "MCP_DEPLOYMENT_MODE": "login_flow",
    })
    return env, home


DCR_METADATA = {
    # DCR-01's confidential client on loopback (a trusted host of the realm's anonymous
    # registration policies).
    "redirect_uris": ["http://127.0.0.1:8765/callback"],
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "client_secret_post",
}


def dcr_pairs(issuer, n, timeout=10):
    """`n` anonymous RFC 7591 registrations, each followed by its RFC 7592 DELETE with the
    registration access token; after one untimed warm-up pair. Each pair must answer 201
    then 204, and a GET of the deleted client must then be refused, or it fails."""
    endpoint = f"{issuer}/clients-registrations/openid-connect"
    body = json.dumps(DCR_METADATA).encode()
    pairs = []
    for i in range(n + 1):
        t0 = time.monotonic()
        s, b = fetch("POST", endpoint, body, {"content-type": "application/json"}, timeout=timeout)
        t1 = time.monotonic()
        if s != 201:
            raise RuntimeError(f"DCR create #{i}: HTTP {s}: {b[:200]!r}")
        reg = json.loads(b)
        auth = {"authorization": f"Bearer {reg['registration_access_token']}"}
        t2 = time.monotonic()
        s, b = fetch("DELETE", reg["registration_client_uri"], None, auth, timeout=timeout)
        t3 = time.monotonic()
        if s != 204:
            raise RuntimeError(f"DCR delete #{i} of {reg['client_id']}: HTTP {s}: {b[:200]!r}")
        s, _ = fetch("GET", reg["registration_client_uri"], None, auth, timeout=timeout)
        if s in (200, None):
            raise RuntimeError(f"DCR #{i}: {reg['client_id']} still answers after its DELETE (HTTP {s})")
        if i:
            pairs.append({"create_ms": round((t1 - t0) * 1000, 1), "delete_ms": round((t3 - t2) * 1000, 1),
                          "pair_ms": round((t1 - t0 + t3 - t2) * 1000, 1)})
    return pairs


def floor_once(cat, dcr_runs=0):
    """One floor measurement: Keycloak, the realm, the MCP server, stopping, Chromium."""
    argv = cat["keycloak_argv"]
    split = argv.index("&&")
    build_args, start_args = argv[2:split], argv[split + 2:]
    version = cat["components"]["keycloak"]
    java_home = pick_jdk(cat["components"]["java"])
    out = {}
    work = tempfile.mkdtemp(prefix="bench-floor-")
    procs = {}
    stub = StubNextcloud()
    try:
        home = keycloak_home(version, build_args, os.path.join(work, "keycloak"))
        port, mgmt = free_port(), free_port()
        start_args = [re.sub(r"^--http-port=\d+$", f"--http-port={port}",
                             re.sub(r"^--http-management-port=\d+$", f"--http-management-port={mgmt}", a))
                      for a in start_args]
        password = secrets.token_urlsafe(18)
        # The JVM's temp dir (Vert.x's vertx-cache, Quarkus' uploads) in the work dir, as
        # the harness does for its own Keycloak: /tmp keeps nothing of the floor's boot.
        java_tmp = os.path.join(work, "tmp")
        os.makedirs(java_tmp)
        # The JVM options the harness gives every Keycloak (KEYCLOAK_JVM_OPTS in
        # src/stack/mod.rs; a unit test in src/stack/native/keycloak.rs keeps the two equal), then the user's.
        java_opts = f"{HARNESS_JVM_OPTS} {os.environ.get('JAVA_OPTS_APPEND', '')} -Djava.io.tmpdir={java_tmp}"
        java_opts = " ".join(java_opts.split())
        env = dict(os.environ, JAVA_HOME=java_home, KC_BOOTSTRAP_ADMIN_USERNAME="harness-admin",
                   KC_BOOTSTRAP_ADMIN_PASSWORD=password, JAVA_OPTS_APPEND=java_opts)
        base = f"http://127.0.0.1:{port}"
        log = open(os.path.join(work, "keycloak.log"), "w")
        started = time.monotonic()
        kc = subprocess.Popen(["/bin/sh", os.path.join(home, "bin", "kc.sh")] + start_args, cwd=home, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs["keycloak"] = kc

        def discovery():
            s, b = fetch("GET", f"{base}/realms/master/.well-known/openid-configuration")
            return s == 200, f"HTTP {s}: {b[:80]!r}"

        token = {}

        def admin_token():
            form = urllib.parse.urlencode({"grant_type": "password", "client_id": "admin-cli",
                                           "username": "harness-admin", "password": password}).encode()
            s, b = fetch("POST", f"{base}/realms/master/protocol/openid-connect/token", form,
                        {"content-type": "application/x-www-form-urlencoded"})
            if s == 200:
                token["t"] = json.loads(b)["access_token"]
            return s == 200, f"HTTP {s}: {b[:80]!r}"

        out["keycloak_discovery_s"] = round(wait_for("Keycloak's master discovery", discovery, kc, started, 300), 2)
        out["keycloak_boot_s"] = round(wait_for("a bootstrap admin token", admin_token, kc, started, 300), 2)

        # Not part of the floor: what the harness asks before it imports (the enabled
        # features), timed to tell the realm phase's parts apart.
        t = time.monotonic()
        s, b = fetch("GET", f"{base}/admin/serverinfo", None, {"authorization": f"Bearer {token['t']}"}, timeout=120)
        if s != 200:
            raise RuntimeError(f"serverinfo: HTTP {s}: {b[:200]!r}")
        out["serverinfo_s"] = round(time.monotonic() - t, 2)
        realm, values = filled_realm()
        t = time.monotonic()
        s, b = fetch("POST", f"{base}/admin/realms", json.dumps(realm).encode(),
                    {"content-type": "application/json", "authorization": f"Bearer {token['t']}"}, timeout=120)
        if s != 201:
            raise RuntimeError(f"realm import: HTTP {s}: {b[:200]!r}")
        out["realm_import_s"] = round(time.monotonic() - t, 2)
        if dcr_runs:
            # Not part of the floor either: anonymous DCR create+delete against this
            # Keycloak, before the MCP server starts (nothing else asks it meanwhile).
            try:
                out["dcr"] = dcr_pairs(f"{base}/realms/{realm['realm']}", dcr_runs)
            except (RuntimeError, ValueError, KeyError) as e:
                out["dcr_error"] = str(e)

        mcp_argv = list(cat["mcp_server_argv"])
        mport = free_port()
        mcp_argv[mcp_argv.index("--port") + 1] = str(mport)
        venv = os.path.dirname(os.path.dirname(mcp_argv[0]))
        secret = values["MCP_HARNESS_SECRET_NEXTCLOUD_MCP_SERVER"]
        menv, mhome = mcp_env(cat["components"]["mcp-server"], venv, f"http://127.0.0.1:{mport}", base,
                              realm["realm"], secret, f"http://127.0.0.1:{stub.server_address[1]}")
        mlog = open(os.path.join(work, "mcp-server.log"), "w")
        started = time.monotonic()
        mcp = subprocess.Popen(mcp_argv, cwd=os.path.join(mhome, "cwd"), env=menv, stdout=mlog,
                               stderr=subprocess.STDOUT, start_new_session=True)
        procs["mcp-server"] = mcp

        def live():
            s, b = fetch("GET", f"http://127.0.0.1:{mport}/health/live")
            return s == 200, f"HTTP {s}: {b[:80]!r}"

        out["mcp_server_boot_s"] = round(wait_for("the MCP server's /health/live", live, mcp, started, 180), 2)
        out["nextcloud_requests_during_mcp_boot"] = list(stub.paths)
        stops = stop_groups(procs)
        out["stop_s"] = {k: v for k, v in stops.items()}
        out["stop_all_s"] = max((v for v in stops.values() if isinstance(v, float)), default=None)
        procs.clear()
        shutil.rmtree(mhome, ignore_errors=True)
        out.update(chromium_once())
    except Exception as e:
        sys.exit(f"floor: {e}; logs in {work}")
    finally:
        stop_groups(procs)
        stub.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    return out


def chromium_once():
    """Chromium headless, fresh profile, to its first page served and its DOM printed."""
    served = {}

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.setdefault("t", time.monotonic())
            body = b"<!doctype html><title>floor</title><p>first page</p>"
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    argv = ["chromium"] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}", "--dump-dom", url]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        dom, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise RuntimeError("Chromium did not print the page's DOM within 60s")
    done = time.monotonic()
    server.shutdown()
    shutil.rmtree(profile, ignore_errors=True)
    if b"first page" not in dom or "t" not in served:
        raise RuntimeError(f"Chromium did not load {url} (exit {proc.returncode})")
    return {"chromium_first_request_s": round(served["t"] - started, 2),
            "chromium_first_page_s": round(done - started, 2),
            "chromium_argv": ["chromium"] + CHROMIUM_FLAGS + ["--user-data-dir=<fresh>", "--dump-dom", "<url>"]}


def versions(cat):
    v = dict(cat["components"])
    venv_python = os.path.join(os.path.dirname(cat["mcp_server_argv"][0]), "python")
    py = subprocess.run([venv_python, "--version"], capture_output=True, text=True).stdout.strip()
    v["python (MCP server venv)"] = py.split()[-1] if py else "unknown"
    chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.split()
    v["chromium (floor)"] = next((w for w in chromium if w[:1].isdigit()), "unknown")
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.split()
    v["rustc"] = rustc[1] if len(rustc) > 1 else "unknown"
    return v


def measure_floor(args):
    subprocess.run(["cargo", "build", "--locked"], cwd=ROOT, check=True)
    env = dict(os.environ, CI="true")
    if args.keycloak_version:
        env["KEYCLOAK_VERSION"] = args.keycloak_version
    env.pop("KEYCLOAK_HOME", None)
    doc = {
        "kind": "floor",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "label": args.label,
        "argv": ["python3", "bench/measure.py"] + sys.argv[1:],
        "harness_commit": commit(),
        "machine": machine(),
    }
    print("the full catalogue ...", flush=True)
    cat = catalogue(args, env)
    print(f"  {cat['wall_s']} s; phases {cat['phases']}", flush=True)
    if not cat["mcp_server_argv"]:
        sys.exit("the catalogue's report does not say how the MCP server was started (MCP-01)")
    floors = []
    for i in range(args.floor_runs):
        print(f"the floor #{i + 1} ...", flush=True)
        floors.append(floor_once(cat, args.dcr_runs if i == 0 else 0))
        print(f"  {dict((k, v) for k, v in floors[-1].items() if k != 'dcr')}", flush=True)
        if floors[-1].get("dcr"):
            pair = sorted(p["pair_ms"] for p in floors[-1]["dcr"])
            print(f"  DCR create+delete: median {statistics.median(pair)} ms, p90 {nearest_rank(pair, 0.9)} ms",
                  flush=True)
    doc.update({
        "catalogue": cat,
        "floor_runs": floors,
        "versions": versions(cat),
        "load_avg_at_end": os.getloadavg(),
    })
    save(doc)


# --- Keycloak boot only (REALM-02), the earlier measurement ---------------------------------

def boot_run(env, label):
    run, r = run_harness(["run", "--only", "REALM-02"], env, label)
    if run["exit_code"] != 0:
        sys.exit(f"{label}: the harness exited {run['exit_code']}")
    ph = r["phases"]
    run.update({
        "phases": ph,
        "before_first_check_s": round(sum(v for k, v in ph.items() if k not in ("checks", "teardown")), 1),
        "after_last_check_s": ph.get("teardown"),
        "components": r["components"],
        "keycloak_argv": r["keycloak_argv"],
    })
    return run


def measure_boot(args):
    subprocess.run(["cargo", "build", "--locked"], cwd=ROOT, check=True)
    version = args.keycloak_version or "26.7.3"
    env = dict(os.environ, CI="true", KEYCLOAK_VERSION=version)
    env.pop("KEYCLOAK_HOME", None)
    runs = []
    if not args.skip_cold:
        cold_cache = tempfile.mkdtemp(prefix="bench-cache-")
        runs.append(boot_run(dict(env, XDG_CACHE_HOME=cold_cache), "cold (download + kc.sh build)"))
        shutil.rmtree(cold_cache, ignore_errors=True)
    boot_run(env, "warm-up (fills the cache if empty)")
    for i in range(args.cached_runs):
        runs.append(boot_run(env, f"cached #{i + 1}"))
    save({
        "kind": "boot",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": ["python3", "bench/measure.py"] + sys.argv[1:],
        "harness_commit": commit(),
        "selection": "run --only REALM-02 (debug build: Keycloak dominates)",
        "keycloak_version": version,
        "machine": machine(),
        "runs": runs,
    })


# --- rendering ------------------------------------------------------------------------------

def fmt(x):
    return "" if x is None else f"{x:.1f}"


def fmt0(x):
    return "—" if x is None else f"{x:.0f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


def median(runs, key):
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def load(xs):
    return ", ".join(f"{x:.2f}" for x in xs)


def render_floor(d):
    m, cat, floors = d["machine"], d["catalogue"], d["floor_runs"]
    ph = cat["phases"]
    kc, realm, mcp = (median(floors, k) for k in ("keycloak_boot_s", "realm_import_s", "mcp_server_boot_s"))
    chromium, stop = median(floors, "chromium_first_page_s"), median(floors, "stop_all_s")
    floor = kc + mcp + chromium
    title = f"## {d['date']} — full catalogue against the floor" + (f" ({d['label']})" if d.get("label") else "")
    s = cat["summary"]
    out = [title, "",
           f"- harness {d['harness_commit']}; command: `{' '.join(d['argv'])}`",
           f"- machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
           f"load average {load(m['load_avg_at_start'])} at start, {load(d['load_avg_at_end'])} at end",
           f"- versions: {', '.join(f'{k} {v}' for k, v in d['versions'].items())}",
           f"- catalogue: `{' '.join(cat['argv'])}` (debug build, `CI=true`): {len(cat['checks'])} checks, "
           f"{s.get('pass', 0)} pass, {s.get('xfail', 0)} xfail, {s.get('blocked', 0)} blocked, {s.get('fail', 0)} fail; "
           f"exit {cat['exit_code']}; peak RSS harness {cat['peak_rss_mib']['harness']} MiB, "
           f"Keycloak {cat['peak_rss_mib']['keycloak']} MiB",
           f"- floor: {len(floors)} run(s) after the catalogue, median shown", "",
           "| phase | catalogue s | floor: the same work without the harness | floor s | catalogue ÷ floor |",
           "|---|---|---|---|---|"]
    rows = [
        ("provision.keycloak", ph.get("provision.keycloak"), "(cached distribution and build)", None),
        ("boot.chromedriver", ph.get("boot.chromedriver"), "(runs while Keycloak boots)", None),
        ("boot.keycloak", ph.get("boot.keycloak"), "`kc.sh start --optimized` to discovery 200 and an admin token", kc),
        ("realm", ph.get("realm"), "one POST of the realm file", realm),
        ("boot.mcp-server", ph.get("boot.mcp-server"), "exec to `GET /health/live` 200", mcp),
        ("boot.mcp-instances", ph.get("boot.mcp-instances"), "none: further instances checks start", None),
        ("checks", ph.get("checks"), "Chromium headless, fresh profile, to its first page", chromium),
        ("teardown", ph.get("teardown"), "SIGTERM to the MCP server and Keycloak until both are gone", stop),
    ]
    for name, c, what, f in rows:
        out.append(f"| {name} | {fmt(c)} | {what} | {fmt(f)} | {ratio(c, f)} |")
    out.append(f"| process exit after the report | {fmt(cat['exit_after_report_s'])} | | | |")
    out.append(f"| **whole run (wall)** | **{fmt(cat['wall_s'])}** | **Keycloak boot + MCP server start + "
               f"Chromium first page** | **{fmt(floor)}** | **{ratio(cat['wall_s'], floor)}** |")
    out.append("")
    if len(floors) > 1:
        out += ["Floor runs: " + "; ".join(
            f"Keycloak {f['keycloak_boot_s']} s, realm {f['realm_import_s']} s, MCP server {f['mcp_server_boot_s']} s, "
            f"Chromium {f['chromium_first_page_s']} s, stop {f['stop_all_s']} s" for f in floors), ""]
    slow = sorted(((v or 0, k) for k, v in cat["checks"].items()), reverse=True)[:8]
    out += ["Slowest checks (ms; checks run `--jobs` at a time, so they overlap): "
            + ", ".join(f"{k} {v}" for v, k in slow), ""]
    groups = check_groups(cat)
    if groups:
        out += [f"Per-check `duration_ms` from this run's report.json, by the needs `{cat['needs_source']}` "
                f"gives each check (checks that ran: {', '.join(RAN)}; p90 by nearest rank):", "",
                "| checks | in this run | ran | median ms | p90 ms | max ms |", "|---|---|---|---|---|---|"]
        for name, g in groups.items():
            out.append(f"| {name} | {g['checks']} | {g['ran']} | {fmt0(g['median_ms'])} | {fmt0(g['p90_ms'])} "
                       f"| {fmt0(g['max_ms'])} |")
        http = next(iter(groups.values()))["median_ms"]
        if http is not None:
            out += ["", f"Target for the HTTP-only median, under 100 ms: {'met' if http < 100 else 'not met'} ({fmt0(http)} ms)."]
        out.append("")
    for f in floors:
        if f.get("dcr"):
            col = {k: sorted(p[k] for p in f["dcr"]) for k in ("pair_ms", "create_ms", "delete_ms")}
            out += [f"DCR create+delete against the floor's Keycloak, {len(f['dcr'])} pairs after one warm-up "
                    f"(anonymous POST 201, then DELETE with the registration access token 204): median "
                    f"{fmt(statistics.median(col['pair_ms']))} ms (create {fmt(statistics.median(col['create_ms']))}, "
                    f"delete {fmt(statistics.median(col['delete_ms']))}), p90 {fmt(nearest_rank(col['pair_ms'], 0.9))} ms, "
                    f"max {fmt(col['pair_ms'][-1])} ms. Target for one create+delete, under 50 ms: "
                    f"{'met' if statistics.median(col['pair_ms']) < 50 else 'not met'} by the median.", ""]
        elif f.get("dcr_error"):
            out += [f"DCR create+delete against the floor's Keycloak failed: {f['dcr_error']}", ""]
    return out


def render_boot(d):
    m = d["machine"]
    out = [f"## {d['date']} — Keycloak boot only, {d['keycloak_version']}, harness {d['harness_commit']}", "",
           f"- machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}; "
           f"load average at start {load(m['load_avg_at_start'])}",
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
    return out


NOTES = os.path.join(ROOT, "bench", "notes.md")


def render():
    docs = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(RESULTS, "*.json")))]
    out = ["# Performance", "",
           "Rendered by `python3 bench/measure.py --render-only` from the raw measurements in",
           "`bench/results/` and the text in `bench/notes.md` (do not edit by hand; the test",
           "`docs_performance_md_is_up_to_date` in tests/docs.rs fails when this file differs from",
           "what they render to). Measure again with `python3 bench/measure.py` (about four",
           "minutes: the full catalogue, then the floor).",
           "Tests never assert on time; these numbers are for sizing CI and spotting regressions.", ""]
    if os.path.exists(NOTES):
        out += open(NOTES).read().rstrip("\n").split("\n") + [""]
    floors = [d for d in docs if d.get("kind") == "floor"]
    # bench/results also holds other scripts' figures (validate-realm-*.json): skip them.
    boots = [d for d in docs if d.get("kind") in (None, "boot") and "runs" in d and "selection" in d]
    if floors:
        out += ["# The full catalogue against its floor, newest first", ""]
        for d in reversed(floors):
            out += render_floor(d)
    if boots:
        out += ["# Keycloak boot only (`run --only REALM-02`)", "",
                "Each run reads the phase times from `report.json`; peak RSS is `VmHWM` of the harness",
                "process and of the Keycloak JVM, polled every 200 ms.", ""]
        for d in boots:
            out += render_boot(d)
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label", default="", help="a word naming the measurement in the doc (e.g. before, after)")
    p.add_argument("--floor-runs", type=int, default=1)
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--dcr-runs", type=int, default=20,
                   help="anonymous DCR create+delete pairs timed against the first floor's Keycloak")
    p.add_argument("--only", default="", help="a selection instead of the whole catalogue (not for the doc)")
    p.add_argument("--keycloak-version", default="")
    p.add_argument("--boot-only", action="store_true", help="the earlier measurement: run --only REALM-02")
    p.add_argument("--cached-runs", type=int, default=3)
    p.add_argument("--skip-cold", action="store_true")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--stdout", action="store_true", help="print the rendered doc instead of writing it")
    a = p.parse_args()
    if not a.render_only:
        (measure_boot if a.boot_only else measure_floor)(a)
    text = render()
    if a.stdout:
        sys.stdout.write(text)
    else:
        open(DOC, "w").write(text)
        print(f"rendered {DOC}")


if __name__ == "__main__":
    main()
