#!/usr/bin/env python
"""`make bench`: how fast Accord is at a given scale, served as in production.

    .venv/bin/python scripts/bench.py [--scale 1] [--users 4] [--seconds 10] [--keep-data]
        [--skip-jobs]

1. Generates the benchmark data set (scripts/bench_data.py: COPY, reproducible)
   into the database accord_bench_<scale> unless it is already there
   (--fresh-data regenerates), with the demo's SLA/ICP history.
2. Starts gunicorn (DEBUG off, Server-Timing on) and a Celery worker on a
   private Redis database, like production.
3. For every page in PAGES: --users concurrent clients on loopback for
   --seconds; server time and queries per request come from the
   Server-Timing header; p50/p95/max are reported.
4. Ingestion (events/s through POST /api/v1/events in batches of 500, and
   the delay until those events are scored), background jobs (re-score of
   all open leads, CSV import of 100,000 rows, rollup refresh when the
   reporting app provides one), and the peak memory of web and worker.
5. Writes bench-report/<timestamp>.{json,md} (git-ignored) with the machine,
   scale, every figure and its target, and prints a summary.
"""

import argparse
import concurrent.futures
import csv
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_data import database_url  # noqa: E402
from scripts.bench_events import GUNICORN, PYTHON, free_port, manage, server_env  # noqa: E402

REPORT_DIR = ROOT / "bench-report"
TIMING = re.compile(r"app;dur=([\d.]+), db;dur=([\d.]+);desc=\"queries=(\d+)\"")

AGREEMENT_SEED = """
from django.utils import timezone
from datetime import timedelta
from sla import demo
from sla.models import SlaVersion
if not SlaVersion.objects.exists():
    now = timezone.now()
    demo._icp(now - timedelta(days=400))
    v1 = demo._sla(1, title="First agreement", changelog=demo.V1_CHANGELOG,
                   published_at=now - timedelta(days=400), superseded_at=now - timedelta(days=120),
                   mql_threshold=70)
    demo._sla(2, title="Faster response", changelog=demo.V2_CHANGELOG,
              published_at=now - timedelta(days=120), superseded_at=None, based_on=v1)
    demo._routing()
"""

# Targets from the issues (milliseconds of server time, p95).
LIST_TARGET = 200
DASHBOARD_TARGET = 500


@dataclass
class PageResult:
    name: str
    path: str
    target_ms: float
    requests: int = 0
    errors: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0
    queries: int = 0
    statuses: dict = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.errors == 0 and self.p95_ms < self.target_ms


def session_cookie(base_env: dict, username: str) -> str:
    """A logged-in session for `username`, made through Django's session store."""
    code = (
        "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY, "
        "HASH_SESSION_KEY\n"
        "from django.contrib.sessions.backends.db import SessionStore\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        "s = SessionStore()\n"
        "s[SESSION_KEY] = str(u.pk)\n"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'\n"
        "s[HASH_SESSION_KEY] = u.get_session_auth_hash()\n"
        "s.create()\n"
        "print(s.session_key)\n"
    )
    return manage(base_env, "shell", "-c", code).strip().splitlines()[-1]


def page_paths(env: dict) -> list[tuple[str, str, float]]:
    """(name, path, target ms) for every page the issues set a target for,
    with ids picked from the data."""
    code = (
        "import json\n"
        "from leads.models import Lead, Account, Opportunity\n"
        "from django.db.models import Count\n"
        "lead = Lead.objects.filter(touchpoints__isnull=False).order_by('-id').first()\n"
        "account = Account.objects.annotate(n=Count('leads')).order_by('-n').first()\n"
        "from sla.models import SlaVersion\n"
        "sla = SlaVersion.objects.order_by('-number').first()\n"
        "print(json.dumps({'lead': lead.pk, 'account': account.pk, 'sla': sla.pk if sla else None}))\n"
    )
    ids = json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])
    pages = [
        ("Lead list, first page", "/leads/", LIST_TARGET),
        ("Lead list, filtered", "/leads/?stage=mql&channel=paid_search&score_min=40&sort=score",
         LIST_TARGET),
        ("Lead list, search", "/leads/?q=last0012", LIST_TARGET),
        ("Lead detail", f"/leads/{ids['lead']}/", LIST_TARGET),
        ("Account detail", f"/accounts/{ids['account']}/", LIST_TARGET),
        ("Accounts list", "/accounts/", LIST_TARGET),
        ("Feedback view", "/feedback/", LIST_TARGET),
    ]  # fmt: skip
    optional = [
        ("Handoff board", "/boards/", LIST_TARGET),
        ("Deal board", "/boards/deals/", LIST_TARGET),
        ("Dashboard, this month", "/?period=month", DASHBOARD_TARGET),
        ("Dashboard, quarter", "/?period=quarter", DASHBOARD_TARGET),
        ("Dashboard, last 90 days", "/?period=90d", DASHBOARD_TARGET),
        ("Attribution, two models", "/reporting/attribution/?model=linear&compare=w_shaped",
         DASHBOARD_TARGET),
        ("SLA scorecard", "/reporting/scorecard/", DASHBOARD_TARGET),
        ("QBR", "/reporting/qbr/", DASHBOARD_TARGET),
        ("Win/loss insights", "/winloss/insights/", DASHBOARD_TARGET),
    ]  # fmt: skip
    if ids["sla"]:
        optional.append(("SLA impact preview", f"/agreement/sla/{ids['sla']}/impact/",
                         DASHBOARD_TARGET))  # fmt: skip
    return pages + optional


def deep_page_path(port: int, cookie: str) -> str:
    """The lead list 100 pages deep (keyset cursors followed from page 1)."""
    path = "/leads/"
    for _ in range(100):
        status, _, body = request(port, cookie, path)
        cursors = re.findall(r"after=([A-Za-z0-9_-]+)", body)
        if status != 200 or not cursors:
            break
        path = f"/leads/?after={cursors[-1]}"
    return path


def request(port: int, cookie: str, path: str, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}", **(headers or {})})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        return response.status, response.getheader("Server-Timing", ""), body
    finally:
        conn.close()


def measure_page(port, cookie, name, path, target, users, seconds) -> PageResult:
    result = PageResult(name=name, path=path, target_ms=target)
    times, queries = [], []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        while time.monotonic() < deadline:
            status, timing, _ = request(port, cookie, path)
            with lock:
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status != 200:
                    result.errors += 1
                match = TIMING.search(timing)
                if match:
                    times.append(float(match.group(1)))
                    queries.append(int(match.group(3)))

    request(port, cookie, path)  # warm
    with concurrent.futures.ThreadPoolExecutor(users) as pool:
        for future in [pool.submit(client) for _ in range(users)]:
            future.result()
    if result.statuses.get(404) == result.requests:
        result.errors = -1  # the page does not exist (yet)
        return result
    if times:
        times.sort()
        result.p50_ms = round(statistics.median(times), 1)
        result.p95_ms = round(times[max(0, int(len(times) * 0.95) - 1)], 1)
        result.max_ms = round(times[-1], 1)
        result.queries = max(queries)
    return result


def peak_memory_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, in MB."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def ingest(port: int, key: str, *, seconds: float = 15, clients: int = 4) -> dict:
    """Events/s through POST /api/v1/events: client processes post batches of
    500 (scripts/bench_events.py's clients: mostly known leads, unique ids)."""
    from multiprocessing import Pool

    from scripts.bench_events import client_run

    deadline = time.time() + seconds
    started = time.monotonic()
    with Pool(clients) as pool:
        results = pool.map(client_run, [(n, port, key, 500, deadline) for n in range(clients)])
    elapsed = time.monotonic() - started
    accepted = sum(r[0] for r in results)
    latencies = sorted(latency for r in results for latency in r[2])
    return {
        "events_per_second": round(accepted / elapsed),
        "accepted": accepted,
        "failed_requests": sum(r[3] for r in results),
        "request_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000)
        if latencies
        else None,
        "seconds": round(elapsed, 1),
    }


def scoring_delay(port: int, key: str, env: dict) -> float | None:
    """Seconds from posting a batch of 500 new hand-raisers to all of them
    scored (the worker running)."""
    marker = datetime.now(UTC)
    body = json.dumps({"events": [
        {"id": f"probe-{n}-{marker.timestamp()}", "email": f"probe{n}@probe.example",
         "type": "demo_request", "occurred_at": marker.isoformat()} for n in range(500)
    ]})  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    posted = time.monotonic()
    conn.request("POST", "/api/v1/events", body=body,
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    conn.getresponse().read()
    check = (
        "from leads.models import Lead\n"
        "print(Lead.objects.filter(email__endswith='@probe.example', scored_at__isnull=False)"
        ".count())"
    )
    while time.monotonic() - posted < 120:
        if int(manage(env, "shell", "-c", check).strip().splitlines()[-1]) >= 500:
            return round(time.monotonic() - posted, 2)
        time.sleep(0.3)
    return None


def rescore_job(env: dict) -> dict:
    code = (
        "import time\n"
        "from sla.scoring import rescore_job_create\n"
        "from sla.models import RescoreJob\n"
        "job = rescore_job_create()\n"
        "started = time.monotonic()\n"
        "while True:\n"
        "    job.refresh_from_db()\n"
        "    if job.status in ('done', 'failed'): break\n"
        "    time.sleep(0.5)\n"
        "print(job.processed, round(time.monotonic() - started, 1), job.status)\n"
    )
    processed, seconds, status = manage(env, "shell", "-c", code).strip().splitlines()[-1].split()
    return {"open_leads": int(processed), "seconds": float(seconds), "status": status}


def import_job(env: dict, rows: int = 100_000) -> dict:
    """A CSV import of `rows` new leads through an import job and the worker."""
    path = Path(tempfile.gettempdir()) / f"accord-bench-import-{rows}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First name", "Last name", "Company", "Title", "Country"])
        for n in range(rows):
            writer.writerow([f"imported{n}@import{n % 5000}.example", f"Im{n}", f"Ported{n}",
                             f"Import Co {n % 5000}", "IT Manager", "Germany"])  # fmt: skip
    code = (
        "import time\n"
        "from django.core.files.uploadedfile import SimpleUploadedFile\n"
        "from django.contrib.auth import get_user_model\n"
        "from leads import import_services as s\n"
        "from leads.models import ImportJob\n"
        "actor = get_user_model().objects.get(username='revops')\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        "job = s.import_job_create(kind='leads', uploaded_file=SimpleUploadedFile('b.csv', data),"
        " actor=actor)\n"
        "job = s.import_job_map(job=job, mapping=s.job_columns(job), options=s.job_options(job),"
        " actor=actor)\n"
        "started = time.monotonic()\n"
        "s.import_job_start(job=job, actor=actor)\n"
        "while True:\n"
        "    job.refresh_from_db()\n"
        "    if job.status in ('done', 'failed'): break\n"
        "    time.sleep(0.5)\n"
        "print(job.created_count, job.error_count, round(time.monotonic() - started, 1), job.status)\n"
    )
    created, errors, seconds, status = (
        manage(env, "shell", "-c", code).strip().splitlines()[-1].split()
    )
    return {"rows": rows, "created": int(created), "errors": int(errors),
            "seconds": float(seconds), "status": status}  # fmt: skip


def rollup_refresh(env: dict) -> dict | None:
    """The reporting app's rollup rebuild, if it provides the command."""
    commands = manage(env, "help", "--commands")
    name = next(
        (c for c in ("reporting_rebuild", "rollups_rebuild") if c in commands.split()), None
    )
    if name is None:
        return None
    started = time.monotonic()
    manage(env, name)
    return {"command": name, "seconds": round(time.monotonic() - started, 1)}


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--users", type=int, default=4, help="Concurrent clients per page.")
    parser.add_argument("--seconds", type=float, default=8, help="Seconds per page.")
    parser.add_argument("--fresh-data", action="store_true", help="Regenerate the data set.")
    parser.add_argument("--skip-jobs", action="store_true", help="Pages and ingestion only.")
    args = parser.parse_args()
    db_name = f"accord_bench_{str(args.scale).replace('.', '_')}"
    started = time.monotonic()
    generate = [PYTHON, "scripts/bench_data.py", "--scale", str(args.scale), "--database", db_name]
    if args.fresh_data:
        generate.append("--fresh")
    generation_started = time.monotonic()
    output = subprocess.run(generate, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    generation_seconds = round(time.monotonic() - generation_started, 1)
    print(output.strip())

    env = server_env(db_name)
    env.update(SERVER_TIMING="1", DATABASE_URL=database_url(db_name),
               CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10"))  # fmt: skip
    manage(env, "shell", "-c", "from config.celery import app; app.control.purge()")
    manage(env, "shell", "-c", AGREEMENT_SEED)
    key = manage(env, "create_api_key", "bench", "--rate-limit", "1000000").strip()
    cookie = session_cookie(env, "revops")
    port = free_port()
    web = subprocess.Popen(
        [GUNICORN, "config.wsgi", "-w", "3", "-b", f"127.0.0.1:{port}", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = None
    report = {
        "generated_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "scale": args.scale,
        "database": db_name,
        "data_generation_seconds": generation_seconds,
        "users": args.users,
        "seconds_per_page": args.seconds,
    }
    try:
        for _ in range(100):
            try:
                if request(port, cookie, "/login/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        pages = page_paths(env)
        deep = deep_page_path(port, cookie)
        pages.insert(3, ("Lead list, 100 pages deep", deep, LIST_TARGET))
        results = []
        for name, path, target in pages:
            result = measure_page(port, cookie, name, path, target, args.users, args.seconds)
            if result.errors == -1:
                print(f"  {name:34} (no such page yet: {path})")
                continue
            results.append(result)
            print(f"  {name:34} p50 {result.p50_ms:7.1f}  p95 {result.p95_ms:7.1f}  "
                  f"max {result.max_ms:7.1f} ms  {result.queries:3d} queries  "
                  f"{'ok' if result.met else 'MISSED'} (target {target:.0f})")  # fmt: skip
        report["pages"] = [asdict(r) | {"met": r.met} for r in results]
        print("  ingestion, the API alone …")
        report["ingestion"] = ingest(port, key)
        print(f"  {report['ingestion']}")
        # The re-score tasks those batches queued would only measure a backlog.
        manage(env, "shell", "-c", "from config.celery import app; app.control.purge()")
        worker = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING",
             "--concurrency=2", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)
        report["ingestion"]["batch_of_500_scored_within_s"] = scoring_delay(port, key, env)
        print("  ingestion with the scoring worker running …")
        report["ingestion_with_worker"] = ingest(port, key)
        print(f"  {report['ingestion_with_worker']}")
        if not args.skip_jobs:
            print("  re-score of all open leads …")
            report["rescore"] = rescore_job(env)
            print(f"  {report['rescore']}")
            print("  CSV import of 100,000 leads …")
            report["import"] = import_job(env)
            print(f"  {report['import']}")
            report["rollups"] = rollup_refresh(env)
            print(f"  rollups: {report['rollups']}")
        report["peak_memory_mb"] = {"web": peak_memory_mb(web.pid),
                                    "worker": peak_memory_mb(worker.pid)}  # fmt: skip
    finally:
        web.terminate()
        web.wait(timeout=30)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
    report["total_seconds"] = round(time.monotonic() - started, 1)
    REPORT_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    (REPORT_DIR / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    (REPORT_DIR / f"{stamp}.md").write_text(markdown(report))
    print(f"Report: {REPORT_DIR / stamp}.md")


def markdown(report: dict) -> str:
    lines = [
        f"# Accord benchmark, scale {report['scale']}",
        "",
        f"{report['generated_at']} · {report['machine']['cpus']} CPUs ({report['machine']['cpu']}),"
        f" {report['machine']['memory_gb']} GB · Python {report['machine']['python']}",
        f"Data generated in {report['data_generation_seconds']} s (target < 180 s at scale 1).",
        f"{report['users']} concurrent users, {report['seconds_per_page']} s per page, gunicorn -w 3,"
        " DEBUG off; server time from Server-Timing.",
        "",
        "| page | p50 ms | p95 ms | max ms | queries | target p95 | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for page in report.get("pages", []):
        lines.append(
            f"| {page['name']} | {page['p50_ms']} | {page['p95_ms']} | {page['max_ms']} | "
            f"{page['queries']} | < {page['target_ms']:.0f} | {'yes' if page['met'] else '**no**'} |"
        )
    ingestion = report.get("ingestion", {})
    with_worker = report.get("ingestion_with_worker", {})
    lines += [
        "",
        f"Ingestion (POST /api/v1/events, batches of 500): {ingestion.get('events_per_second')} "
        f"events/s with the API alone (target ≥ 5,000), {with_worker.get('events_per_second')} "
        f"events/s while the worker scores them on the same 2 cores; "
        f"{ingestion.get('failed_requests')} + {with_worker.get('failed_requests')} failed "
        f"requests. A batch of 500 new hand-raisers scored within "
        f"{ingestion.get('batch_of_500_scored_within_s')} s.",
    ]
    if "rescore" in report:
        lines.append(
            f"Re-score of {report['rescore']['open_leads']} open leads: "
            f"{report['rescore']['seconds']} s (target < 60 s for 200,000)."
        )
    if "import" in report:
        lines.append(
            f"CSV import of {report['import']['rows']} rows: {report['import']['seconds']} s "
            f"(target < 60 s), {report['import']['errors']} rejected."
        )
    if report.get("rollups"):
        lines.append(f"Rollup rebuild: {report['rollups']['seconds']} s.")
    memory = report.get("peak_memory_mb", {})
    lines.append(f"Peak memory: web {memory.get('web')} MB, worker {memory.get('worker')} MB.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
