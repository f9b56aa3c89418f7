#!/usr/bin/env python3
"""wasmail side by side with the Flask + gunicorn baseline (shared/bench), in one run, on the same
data and the same load; prints a markdown table with ratios against Flask.

Once per machine (wrk from Debian; the client and the baseline in a venv):

    apt-get update && apt-get install -y wrk
    python3 -m venv ~/.cache/wasmail/bench-venv
    ~/.cache/wasmail/bench-venv/bin/pip install flask gunicorn pyjwt aiohttp

The wasmail binary and the plugins are built beforehand (`cargo build --release` and `cargo plugins`)
and found under $CARGO_TARGET_DIR, else ~/.cache/wasmail/target, else ./target (or --wasmail,
--guest-dir). Then, at the repository root (about 5 minutes, 8 with --postgres, at the default
--idle 60):

    ~/.cache/wasmail/bench-venv/bin/python host/benches/compare.py
    ~/.cache/wasmail/bench-venv/bin/python host/benches/compare.py --postgres postgres://postgres@127.0.0.1:5432
    ~/.cache/wasmail/bench-venv/bin/python host/benches/compare.py --idle 5     # a quicker run

What it does, one server at a time (they would fight over the cores otherwise), each on a fresh
database:
- a 2,000-message corpus from gen_corpus.py (seed 42; cached under the temp dir and reused);
- import: every message POSTed as message/rfc822, 8 in flight, msgs/s until the last answer;
  wasmail twice: without a pipeline, and on another fresh server with the 3-stage on-import pipeline
  (rules, spam-score, attachment-guard with the golden configurations, as benches/server.rs), timed
  until the last import answered and no run is queued or running;
- resident memory (VmRSS of the server's whole process tree: gunicorn's master and workers,
  wasmail and any compile worker) right after each import and after --idle seconds idle;
- on the imported mail: wrk -t2 -c64 -d10s --latency on the list (a page of 50, newest first) and
  on a full-text search (`q=zurich`: ~29% of this corpus, found through diacritic folding of
  "Zürich" on both), then an open-loop client at a fixed 1,000 req/s for 10 s on the list (wrk2 is
  not in Debian; latency counts from each request's scheduled time, so a stalled server cannot hide
  its queue).
A wasmail on PostgreSQL (--postgres) gets a fresh database per server (CREATE DATABASE through psql,
dropped at the end); a server that fails is reported as failed, with why, and the run goes on. The
exit status is 0 unless the run itself could not be set up.
"""
import argparse, asyncio, glob, json, os, re, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.parse, urllib.request
from pathlib import Path

try:
    import aiohttp
except ImportError:
    sys.exit("aiohttp is missing: run this with the venv's python (see the docstring)")

REPO = Path(__file__).resolve().parents[2]
ADMIN = "bench-admin-" + secrets.token_hex(16)
PLUGINS = [("rules", "rules"), ("spam-score", "spam_score"), ("attachment-guard", "attachment_guard")]
IMPORT_CONCURRENCY = 8
SERVERS = ["Flask", "wasmail SQLite", "wasmail PG"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- memory

def tree_pids(root):
    """root and its descendants: gunicorn's workers and wasmail's compile workers are memory the
    server uses as much as its own."""
    parents = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = open(stat).read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        fields = text[text.rindex(")") + 2:].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def rss_mb(root):
    total = 0
    for pid in tree_pids(root):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def jiffies(pid):
    """CPU time of a process and of its children it has waited for, in clock ticks."""
    try:
        text = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0
    fields = text[text.rindex(")") + 2:].split()
    return sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime


def pids_named(names):
    out = []
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            if open(comm).read().strip() in names:
                out.append(int(comm.split("/")[2]))
        except OSError:
            pass
    return out


def others_jiffies(server_pid, also=()):
    """The machine's busy time not spent by this script (wrk and psql included once waited for)
    nor by the server under test and the processes named `also` (its database server): on 2
    cores, a build next door halves what the server gets."""
    # user, nice, system: what processes run (interrupts, loopback traffic's softirqs included, are
    # charged to no process, so they would count against the server).
    busy = sum(int(x) for x in open("/proc/stat").readline().split()[1:4])
    ours = set(tree_pids(server_pid)) | set(pids_named(also))
    return busy - jiffies("self") - sum(jiffies(p) for p in ours)


# --------------------------------------------------------------------------------------- servers

class Server:
    """A server process whose output goes to a log file (a pipe nobody reads would block it)."""

    def __init__(self, name, cmd, env, logfile):
        self.name, self.logfile = name, logfile
        self.out = open(logfile, "wb")
        # A session of its own: a Ctrl-C meant for this script must not kill it before cleanup.
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.base = self.token = None
        self.also = ()  # processes whose CPU is the server's too

    def log_tail(self, lines=15):
        try:
            return "\n".join(Path(self.logfile).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def wait_http(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer /health in {timeout} s:\n{self.log_tail()}")

    def start_clock(self):
        """From now until stop(), the CPU the rest of the machine uses is counted."""
        self.clock = (others_jiffies(self.proc.pid, self.also), time.monotonic())

    def rss_mb(self):
        self.check_alive()
        return rss_mb(self.proc.pid)

    def stop(self):
        self.other_cores = None
        if self.proc.poll() is None and getattr(self, "clock", None):
            ticks, t0 = self.clock
            self.other_cores = ((others_jiffies(self.proc.pid, self.also) - ticks) / os.sysconf("SC_CLK_TCK")
                                / max(1e-3, time.monotonic() - t0))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)  # wasmail's shutdown grace is 30 s
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()

    def problems(self):
        """wasmail's ERROR/WARN log lines: a benchmark that hid server errors would measure them."""
        text = Path(self.logfile).read_text(errors="replace")
        return [l for l in text.splitlines() if re.search(r"\b(ERROR|WARN|panicked)\b", l)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_flask(work, baseline_dir, venv_bin):
    work.mkdir(parents=True)
    db, secret = str(work / "flask-baseline.db"), secrets.token_hex(16)
    init = subprocess.run([sys.executable, str(baseline_dir / "flask_baseline.py"), "init", db, secret],
                          capture_output=True, text=True)
    if init.returncode != 0:
        raise RuntimeError(f"flask_baseline.py init: {init.stderr.strip()[-1000:]}")
    token = init.stdout.strip()
    gunicorn = venv_bin / "gunicorn" if (venv_bin / "gunicorn").exists() else shutil.which("gunicorn")
    if not gunicorn:
        raise RuntimeError("gunicorn not found (install it in the venv this script runs in)")
    port = free_port()
    # /health answers as soon as one worker has loaded the app, and the first worker up accepts
    # every keep-alive connection of the load that follows: 8 importers all on one worker import at
    # half the rate. So the load waits for all 4; a hook says when each is ready (it only logs).
    hooks = work / "gunicorn_ready.py"
    hooks.write_text("def post_worker_init(worker):\n    worker.log.info('bench: worker ready')\n")
    # 4 workers x 2 threads: the seeds' gunicorn configuration (shared/bench/README.md).
    s = Server("Flask", [str(gunicorn), "-c", str(hooks), "-w", "4", "--threads", "2",
                         "-b", f"127.0.0.1:{port}", "--chdir", str(baseline_dir), "flask_baseline:app"],
               {"FLASK_BASELINE_DB": db, "FLASK_BASELINE_SECRET": secret}, work / "flask.log")
    s.base, s.token = f"http://127.0.0.1:{port}", token
    s.messages_path = "/messages"
    try:
        s.wait_http()
        deadline = time.monotonic() + 60
        while Path(s.logfile).read_text(errors="replace").count("bench: worker ready") < 4:
            s.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all 4 gunicorn workers came up:\n{s.log_tail()}")
            time.sleep(0.1)
    except Exception:
        s.stop()
        raise
    return s


def start_wasmail(name, binary, work, database_url=None):
    data = work / "data"
    data.mkdir(parents=True)  # also makes work/, for the log
    env = {"WASMAIL_ADMIN_TOKEN": ADMIN}
    if database_url:
        env["DATABASE_URL"] = database_url
    # Port 0: the server picks a free port and says which; no race with other listeners.
    s = Server(name, [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
               env, work / "wasmail.log")
    s.messages_path = "/v1/messages"
    if database_url:
        s.also = ("postgres",)  # the postmaster, which reaps the backends, and the backends
    try:
        deadline = time.monotonic() + 120  # migrations on a fresh PostgreSQL database take a moment
        while s.base is None:
            s.check_alive()
            m = re.search(r"listening on (http://\S+)", Path(s.logfile).read_text(errors="replace"))
            if m:
                s.base = m.group(1)
            elif time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not say it was listening:\n{s.log_tail()}")
            else:
                time.sleep(0.1)
        s.wait_http()
        s.token = tenant_token(s.base)
    except Exception:
        s.stop()
        raise
    return s


def api(method, url, token, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {url}: {e.code} {e.read()[:500].decode(errors='replace')}") from None


def tenant_token(base):
    tenant = api("POST", f"{base}/v1/admin/tenants", ADMIN, {"name": "bench"})
    return api("POST", f"{base}/v1/admin/tenants/{tenant['id']}/tokens", ADMIN, {})["token"]


def setup_pipeline(s, guest_dir):
    """The three first-party plugins with their golden configurations, run on every import."""
    stages = []
    for name, file in PLUGINS:
        api("POST", f"{s.base}/v1/plugins/{name}/versions", s.token,
            (guest_dir / f"{file}.wasm").read_bytes(), "application/wasm")
        config = json.loads((REPO / "host/tests/golden" / f"{name}.config.json").read_text())
        stages.append({"plugin": name, "version": 1, "config": config})
    api("POST", f"{s.base}/v1/pipelines", s.token, {"name": "triage", "on_import": True, "stages": stages})


# ---------------------------------------------------------------------------------------- import

async def import_all(s, messages, wait_runs=False, time_limit=900):
    """ingest_load.py's load: every message in memory, 8 requests in flight on one connection each.
    Returns (msgs/s, notes)."""
    headers = {"Authorization": f"Bearer {s.token}", "Content-Type": "message/rfc822"}
    statuses, run_ids, errors = {}, set(), []
    todo = iter(range(len(messages)))
    deadline = time.monotonic() + time_limit
    conn = aiohttp.TCPConnector(limit=IMPORT_CONCURRENCY)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def worker():
            for i in todo:
                if time.monotonic() > deadline:
                    return
                try:
                    async with session.post(s.base + s.messages_path, data=messages[i], headers=headers) as r:
                        body = await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                        if r.status == 201:
                            run_ids.update(json.loads(body).get("runs") or [])
                        elif len(errors) < 3:
                            errors.append(f"#{i}: {r.status} {body[:200].decode(errors='replace')}")
                except Exception as e:  # timeouts, resets: counted, the load goes on
                    statuses["exception"] = statuses.get("exception", 0) + 1
                    if len(errors) < 3:
                        errors.append(f"#{i}: {e!r}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IMPORT_CONCURRENCY)))
        elapsed = time.perf_counter() - t0
        notes = []
        ok = statuses.get(201, 0)
        if ok != len(messages):
            notes.append(f"{ok}/{len(messages)} imports answered 201 ({statuses}); first errors: {errors}")
        if wait_runs:
            runs = await wait_for_runs(session, s, deadline)
            elapsed = time.perf_counter() - t0
            by_status = {}
            items = {}
            for run in runs:
                by_status[run["status"]] = by_status.get(run["status"], 0) + 1
                for k, v in (run.get("counts") or {}).items():
                    items[k] = items.get(k, 0) + v
            missing = run_ids - {r["id"] for r in runs}
            notes.append(f"{len(run_ids)} on-import runs {by_status}, items {items}"
                         + (f"; {len(missing)} run ids the imports returned are not listed" if missing else ""))
            if not run_ids:
                raise RuntimeError("the imports queued no run: the on-import pipeline did not take")
            if by_status.get("completed", 0) != len(runs):
                notes.append("not every run completed")
    if ok == 0:
        raise RuntimeError(f"no import succeeded: {statuses} {errors}")
    return ok / elapsed, notes


async def wait_for_runs(session, s, deadline):
    """Polls GET /v1/runs (every page) until none is queued or running; returns the runs."""
    headers = {"Authorization": f"Bearer {s.token}"}
    while True:
        runs, cursor = [], None
        while True:
            url = f"{s.base}/v1/runs?limit=200" + (f"&cursor={cursor}" if cursor else "")
            async with session.get(url, headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"GET /v1/runs: {r.status} {(await r.text())[:300]}")
                page = await r.json()
            runs.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if not any(r["status"] in ("queued", "running") for r in runs):
            return runs
        if time.monotonic() > deadline:
            raise RuntimeError("runs still queued or running at the time limit")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------------------------------ load

def wrk(url, token, duration, lua):
    """wrk -t2 -c64 --latency with shared/bench/wrk_json.lua: {rps, p50_ms, p99_ms, errors}."""
    if not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{duration}s", "--latency", "-s", str(lua),
                          "-H", f"Authorization: Bearer {token}", url],
                         capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in reversed(out.stdout.splitlines()) if l.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout[-500:]} {out.stderr[-500:]}")
    return json.loads(line)


async def fixed_rate(url, token, rate, duration):
    """Open loop at `rate` req/s: request i is due at t0 + i/rate whether or not earlier ones have
    answered, and its latency counts from then (no coordinated omission, as wrk2 does)."""
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    lat, send_lag, failures = [], [], {}
    n = int(rate * duration)
    # The client shares 2 cores with a server that wants them all: left at equal priority it
    # sends late, and measures its own scheduling. Ahead of the server (when root), it keeps the
    # schedule; it needs a third of a core at 1,000 req/s.
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except PermissionError:
        pass
    cpu0 = time.process_time()
    conn = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(url, headers=headers) as r:  # opens a connection, checks the url
            if r.status != 200:
                raise RuntimeError(f"{url}: {r.status}")
            await r.read()

        async def one(due):
            send_lag.append(loop.time() - due)
            try:
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        lat.append(loop.time() - due)
                    else:
                        failures[r.status] = failures.get(r.status, 0) + 1
            except Exception as e:
                failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1

        t0 = loop.time() + 0.05
        tasks = []
        for i in range(n):
            due = t0 + i / rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        wall = loop.time() - t0
    cpu = time.process_time() - cpu0
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        pass
    lat.sort()
    send_lag.sort()
    return {"rate": len(lat) / wall, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "failures": failures, "client_lag_p99_ms": pct(send_lag, 99) * 1e3, "client_cpu": cpu / wall}


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))] if sorted_values else float("nan")


# -------------------------------------------------------------------------------------- phases

class Results:
    def __init__(self):
        self.values = {}   # (row, server) -> number
        self.failed = {}   # server -> why
        self.notes = []

    def put(self, row, server, value):
        self.values[(row, server)] = value

    def note(self, server, text):
        self.notes.append(f"{server}: {text}")
        log(f"{server}: {text}")


def idle_and_measure(s, r, server, label, idle):
    r.put(f"RSS after {label} (MB)", server, s.rss_mb())
    log(f"{server}: idle {idle} s")
    time.sleep(idle)
    r.put(f"RSS after {label} + {idle:g} s idle (MB)", server, s.rss_mb())


def read_load(s, r, server, a, lua):
    for row, query in (("list", "limit=50"), ("search", f"limit=50&q={urllib.parse.quote(a.query)}")):
        url = f"{s.base}{s.messages_path}?{query}"
        page = api("GET", url, s.token)
        if len(page["items"]) != 50:  # a search that found (almost) nothing would be cheap, not fast
            r.note(server, f"{row} page has {len(page['items'])} items, not 50")
        log(f"{server}: wrk {row} {url}")
        w = wrk(url, s.token, a.wrk_duration, lua)
        r.put(f"{row}: req/s", server, w["rps"])
        r.put(f"{row}: p50 (ms)", server, w["p50_ms"])
        r.put(f"{row}: p99 (ms)", server, w["p99_ms"])
        if any(w["errors"].values()):
            r.note(server, f"wrk {row} errors: {w['errors']} of {w['requests']} requests")
    log(f"{server}: {a.rate} req/s open loop on the list for {a.rate_duration} s")
    f = asyncio.run(fixed_rate(f"{s.base}{s.messages_path}?limit=50", s.token, a.rate, a.rate_duration))
    r.put(f"list @ {a.rate}/s: achieved req/s", server, f["rate"])
    r.put(f"list @ {a.rate}/s: p50 (ms)", server, f["p50_ms"])
    r.put(f"list @ {a.rate}/s: p99 (ms)", server, f["p99_ms"])
    if f["failures"]:
        r.note(server, f"fixed-rate failures: {f['failures']}")
    if f["client_lag_p99_ms"] > 5:
        r.note(server, f"the fixed-rate client itself fell behind (send lag p99 {f['client_lag_p99_ms']:.1f} ms, "
                       f"{f['client_cpu']:.0%} of a core): its latencies include that")


def stop(r, server, s, what):
    """Stops a server and notes what would make its numbers suspect: other work on the machine
    meanwhile, and the warnings and errors it logged."""
    s.stop()
    if s.other_cores is not None and s.other_cores > 0.1:
        r.note(server, f"{what}: other processes used {s.other_cores:.2f} of {os.cpu_count()} cores meanwhile "
                       "(a build?): these numbers are not comparable")
    if s.name.startswith("wasmail"):
        for line in s.problems()[:5]:
            r.note(server, f"{what}: log: {line[:300]}")


def bench_flask(r, a, messages, scratch, lua):
    server = "Flask"
    s = start_flask(scratch / "flask", Path(a.baseline_dir), Path(sys.executable).parent)
    try:
        s.start_clock()
        log(f"{server}: importing {len(messages)} messages")
        rate, notes = asyncio.run(import_all(s, messages))
        r.put("import: msgs/s", server, rate)
        for n in notes:
            r.note(server, n)
        idle_and_measure(s, r, server, "import", a.idle)
        read_load(s, r, server, a, lua)
    finally:
        stop(r, server, s, "server")


def bench_wasmail(r, a, server, messages, scratch, lua, database_urls):
    """Two fresh servers: import alone (then the read load on its mail), and import + pipeline."""
    binary = Path(a.wasmail)
    if not binary.exists():
        raise RuntimeError(f"no wasmail binary at {binary} (cargo build --release; or --wasmail PATH)")
    tag = server.split()[1].lower()
    db_url = next(database_urls, None)
    s = start_wasmail(server, binary, scratch / f"{tag}-import", db_url)
    try:
        s.start_clock()
        log(f"{server}: importing {len(messages)} messages")
        rate, notes = asyncio.run(import_all(s, messages))
        r.put("import: msgs/s", server, rate)
        for n in notes:
            r.note(server, n)
        idle_and_measure(s, r, server, "import", a.idle)
        if db_url:
            analyze_without_autovacuum(r, server, db_url)
        read_load(s, r, server, a, lua)
    finally:
        stop(r, server, s, "server without pipeline")

    guest_dir = Path(a.guest_dir)
    if not all((guest_dir / f"{f}.wasm").exists() for _, f in PLUGINS):
        raise RuntimeError(f"import + pipeline: no plugins in {guest_dir} (cargo plugins; or --guest-dir)")
    s = start_wasmail(server, binary, scratch / f"{tag}-pipeline", next(database_urls, None))
    try:
        setup_pipeline(s, guest_dir)
        s.start_clock()
        log(f"{server}: importing {len(messages)} messages through the 3-stage on-import pipeline")
        rate, notes = asyncio.run(import_all(s, messages, wait_runs=True))
        r.put("import + 3-stage pipeline: msgs/s", server, rate)
        for n in notes:
            r.note(server, n)
        idle_and_measure(s, r, server, "import + pipeline", a.idle)
    finally:
        stop(r, server, s, "server with pipeline")


# ---------------------------------------------------------------------------------- PostgreSQL

def analyze_without_autovacuum(r, server, db_url):
    """With autovacuum off (as on this kind of machine), PostgreSQL never learns that the tables
    filled up and plans a page of 50 as a sort of every message. A production server has it on,
    and within a minute of the import it would have run this."""
    q = lambda sql: subprocess.run(["psql", db_url, "-Atqc", sql], capture_output=True,
                                   text=True, timeout=120)
    if q("SHOW autovacuum").stdout.strip() == "off":
        q("ANALYZE")
        r.note(server, "autovacuum is off on this PostgreSQL: ANALYZE was run after the import "
                       "(what autovacuum does on its own)")


class PgDatabases:
    """Fresh databases on the --postgres server, each dropped at the end."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.server = parts._replace(path="").geturl().rstrip("/")
        self.admin = parts._replace(path="/postgres").geturl()   # where CREATE DATABASE is said
        self.names = []

    def psql(self, sql):
        out = subprocess.run(["psql", self.admin, "-v", "ON_ERROR_STOP=1", "-qc", sql],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql: {sql}: {out.stderr.strip()}")

    def create(self):
        name = f"wasmail_bench_{secrets.token_hex(4)}"
        self.psql(f"CREATE DATABASE {name}")
        self.names.append(name)
        parts = urllib.parse.urlsplit(self.server)
        return parts._replace(path="/" + name).geturl()

    def drop_all(self):
        for name in self.names:
            try:
                self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except Exception as e:
                log(f"could not drop {name}: {e}")


# ---------------------------------------------------------------------------------------- table

ROWS = [  # (row, higher is better)
    ("list: req/s", True), ("list: p50 (ms)", False), ("list: p99 (ms)", False),
    ("search: req/s", True), ("search: p50 (ms)", False), ("search: p99 (ms)", False),
    ("list @ {rate}/s: achieved req/s", True), ("list @ {rate}/s: p50 (ms)", False),
    ("list @ {rate}/s: p99 (ms)", False),
    ("import: msgs/s", True), ("import + 3-stage pipeline: msgs/s", True),
    ("RSS after import (MB)", False), ("RSS after import + {idle} s idle (MB)", False),
    ("RSS after import + pipeline (MB)", False), ("RSS after import + pipeline + {idle} s idle (MB)", False),
]
# Flask has no pipeline: its wasmail-with-pipeline rows compare with its plain import.
FLASK_STANDIN = {"import + 3-stage pipeline: msgs/s": "import: msgs/s",
                 "RSS after import + pipeline (MB)": "RSS after import (MB)",
                 "RSS after import + pipeline + {idle} s idle (MB)": "RSS after import + {idle} s idle (MB)"}


def fmt(v):
    return "—" if v is None else f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def table(r, a, servers):
    idle = f"{a.idle:g}"
    head = ["", *servers] + [f"{s.split()[1]} / Flask" for s in servers[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, higher in ROWS:
        name = row.format(rate=a.rate, idle=idle)
        base_row = FLASK_STANDIN.get(row, row).format(rate=a.rate, idle=idle)
        flask = r.values.get((base_row, "Flask"))
        cells = []
        for s in servers:
            # A server that failed part way keeps what it measured before it failed.
            v = flask if s == "Flask" else r.values.get((name, s))
            if v is None:
                cells.append(("skipped" if r.failed[s].startswith("skipped") else "failed")
                             if s in r.failed else "—")
            else:
                cells.append(fmt(v) + ("†" if s == "Flask" and base_row != name else ""))
        for s in servers[1:]:
            v = r.values.get((name, s))
            cells.append(f"{v / flask:.2f}x" if v is not None and flask else "—")
        arrow = "↑" if higher else "↓"
        lines.append(f"| {name} {arrow} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- main

def default_target():
    for t in (os.environ.get("CARGO_TARGET_DIR"), Path.home() / ".cache/wasmail/target", REPO / "target"):
        if t and (Path(t) / "release/wasmail").exists():
            return Path(t)
    return Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/wasmail/target")


def corpus(a):
    """gen_corpus.py's output, generated once per count and seed and reused (it takes ~20 s)."""
    d = Path(a.corpus or Path(tempfile.gettempdir()) / f"wasmail-compare-corpus-{a.count}-s{a.seed}")
    files = sorted(d.glob("*.eml"))
    if len(files) != a.count or not (d / "manifest.tsv").exists():
        log(f"generating {a.count} messages into {d}")
        subprocess.run([sys.executable, str(REPO / "host/benches/gen_corpus.py"), str(d),
                        "--count", str(a.count), "--seed", str(a.seed)], check=True)
        files = sorted(d.glob("*.eml"))
    log(f"corpus: {len(files)} messages in {d}")
    return d, [f.read_bytes() for f in files]


def main():
    target = default_target()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres", metavar="URL", help="also wasmail on PostgreSQL, e.g. postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--idle", type=float, default=60, metavar="SECS", help="idle time before the second RSS reading (60)")
    ap.add_argument("--wasmail", default=str(target / "release/wasmail"), help="the wasmail binary (%(default)s)")
    ap.add_argument("--guest-dir", default=str(target / "wasm32-wasip2/guest"), help="the plugins' .wasm (%(default)s)")
    ap.add_argument("--baseline-dir", default=str((REPO.parent / "shared/bench")),
                    help="flask_baseline.py and wrk_json.lua (%(default)s)")
    ap.add_argument("--corpus", help="corpus dir (default: a cached one under the temp dir)")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--query", default="zurich", help="the full-text search (%(default)s: ~29%% of the corpus)")
    ap.add_argument("--wrk-duration", type=int, default=10, metavar="SECS")
    ap.add_argument("--rate", type=int, default=1000, help="the fixed-rate check's req/s")
    ap.add_argument("--rate-duration", type=float, default=10, metavar="SECS")
    ap.add_argument("--only", choices=["flask", "wasmail"], help="skip the other (for trying the script)")
    ap.add_argument("--keep", action="store_true", help="keep the servers' data dirs and logs")
    a = ap.parse_args()

    lua = Path(a.baseline_dir) / "wrk_json.lua"
    if not (Path(a.baseline_dir) / "flask_baseline.py").exists() or not lua.exists():
        sys.exit(f"no baseline in {a.baseline_dir} (--baseline-dir)")
    started = time.monotonic()
    corpus_dir, messages = corpus(a)
    scratch = Path(tempfile.mkdtemp(prefix="wasmail-compare-"))
    servers = SERVERS if a.postgres else SERVERS[:2]
    r = Results()
    pg = PgDatabases(a.postgres) if a.postgres else None

    def attempt(server, run):
        if a.only and not server.lower().startswith(a.only):
            r.failed[server] = "skipped (--only)"
            return
        try:
            run()
        except Exception as e:
            r.failed[server] = f"{type(e).__name__}: {e}"
            log(f"{server} FAILED: {e}")

    try:
        attempt("Flask", lambda: bench_flask(r, a, messages, scratch, lua))
        attempt("wasmail SQLite", lambda: bench_wasmail(r, a, "wasmail SQLite", messages, scratch, lua, iter([])))
        if pg:
            attempt("wasmail PG", lambda: bench_wasmail(r, a, "wasmail PG", messages, scratch, lua,
                                                        (pg.create() for _ in range(2))))
    finally:
        if pg:
            pg.drop_all()
        if a.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    size = sum(map(len, messages))
    print(f"\n## wasmail vs Flask + gunicorn (-w 4 --threads 2): {len(messages)} messages ({size / 1e6:.1f} MB, "
          f"gen_corpus.py seed {a.seed}), {os.cpu_count()} cores\n")
    print(table(r, a, servers))
    print(f"\n↑ higher is better, ↓ lower is better; ratios are the wasmail value / the Flask value. "
          f"list = `GET /messages?limit=50` (Flask), `/v1/messages?limit=50` (wasmail), search = the same with `q={a.query}`, under wrk -t2 -c64 -d{a.wrk_duration}s; "
          f"list @ {a.rate}/s = open loop for {a.rate_duration:g} s, latency from each request's scheduled time. "
          f"Imports: {IMPORT_CONCURRENCY} in flight, until the last answer (with the pipeline: until no run is queued or "
          f"running). RSS: the server's process tree (gunicorn master + 4 workers; wasmail, whose PostgreSQL "
          f"server is not counted).")
    print("† Flask has no pipeline: its plain import, compared with wasmail's import + pipeline.")
    for s, why in r.failed.items():
        print(f"\n**{s}:** " + ("" if why.startswith("skipped") else "failed: ") + why.replace("\n", "\n    "))
    if r.notes:
        print("\nNotes:")
        for n in r.notes:
            print(f"- {n}")
    print(f"\n(run took {time.monotonic() - started:.0f} s; corpus in {corpus_dir})")


if __name__ == "__main__":
    main()
