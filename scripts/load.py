#!/usr/bin/env python
"""Sustained load on loopback: page users and the ingestion API at once.

    .venv/bin/python scripts/load.py [--users 50] [--events-per-second 5000] [--minutes 5]
        [--scale 0.1] [--think 1.0] [--web-workers 3] [--api-workers 2] [--worker-nice 10]

Uses (or generates) the benchmark data set at --scale (scripts/bench_data.py),
starts gunicorn (DEBUG off) and a Celery worker as in production, then runs
for --minutes:
- --users simulated people, each a thread that logs in (one session per
  role, spread over the users) and walks the pages of their role (lead list,
  a lead, the boards, the agreement, the dashboard...) with --think seconds
  between requests;
- ingestion clients (processes) posting batches of 500 events, paced to
  --events-per-second in total.
The ingestion API has its own gunicorn pool (--api-workers), as a load
balancer routing /api/ would give it, and the worker runs at --worker-nice so
scoring yields the CPU to requests. It prints, every 30 s and at the end:
requests, errors (any status >= 400 or connection failure), p50/p95 page
latency, events accepted per second, and how long after the last batch every
lead that got events was scored.
Exit status 1 if there was any error. Not part of `make test`.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench import backlog_scored, pages, request, session_cookie  # noqa: E402
from scripts.bench_data import database_url  # noqa: E402
from scripts.bench_events import (  # noqa: E402
    GUNICORN,
    PYTHON,
    SEED,
    batch_body,
    free_port,
    manage,
    server_env,
)

ROLE_USERS = ("marketing", "rep", "manager", "revops")


def user_loop(port, cookie, paths, think, deadline, stats, lock):
    rng = random.Random()
    while time.time() < deadline:
        path = rng.choice(paths)
        started = time.perf_counter()
        try:
            status, _, _ = request(port, cookie, path)
        except OSError:
            status = 599
        elapsed = time.perf_counter() - started
        with lock:
            stats["requests"] += 1
            stats["latencies"].append(elapsed)
            if status >= 400:
                stats["errors"] += 1
                stats["error_samples"].append((path, status))
        time.sleep(rng.uniform(0.5, 1.5) * think)


def ingest_loop(args):
    """One ingestion process: batches of 500, paced to `rate` events/s."""
    client_id, port, key, rate, deadline = args
    rng = random.Random(client_id)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    accepted = errors = batch_no = 0
    interval = 500 / rate
    next_at = time.time()
    while time.time() < deadline:
        body = batch_body(client_id + 100, batch_no, 500, rng)
        try:
            conn.request("POST", "/api/v1/events", body=body, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            result = json.loads(response.read())
            if response.status != 200 or result.get("rejected"):
                errors += 1
            else:
                accepted += result["accepted"] + result["duplicates"]
        except (OSError, http.client.HTTPException, json.JSONDecodeError):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        batch_no += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.time()))
    return accepted, errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--events-per-second", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--think", type=float, default=1.0, help="Seconds between a user's pages.")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument(
        "--api-workers", type=int, default=2,
        help="gunicorn processes of a second pool that serves only the ingestion API "
             "(as a load balancer would route /api/ in production); 0: one pool for both.",
    )  # fmt: skip
    parser.add_argument(
        "--worker-nice", type=int, default=10,
        help="Niceness of the Celery worker: on one machine, scoring yields the CPU to "
             "page and API requests and catches up after (0: same priority).",
    )  # fmt: skip
    args = parser.parse_args()
    db_name = f"accord_bench_{str(args.scale).replace('.', '_')}"
    subprocess.run([PYTHON, "scripts/bench_data.py", "--scale", str(args.scale), "--database",
                    db_name], cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    env = server_env(db_name)
    env.update(DATABASE_URL=database_url(db_name), SERVER_TIMING="1",
               CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11"))  # fmt: skip
    manage(env, "shell", "-c", SEED)  # the campaigns and asset the event batches name
    manage(env, "shell", "-c", "from config.celery import app; app.control.purge()")
    key = manage(env, "create_api_key", "load", "--rate-limit", "1000000").strip()
    cookies = {user: session_cookie(env, user) for user in ROLE_USERS}
    port = free_port()
    web = subprocess.Popen(
        [GUNICORN, "config.wsgi", "-w", str(args.web_workers), "--threads", "4", "-b",
         f"127.0.0.1:{port}", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api_port, api = port, None
    if args.api_workers:
        api_port = free_port()
        api = subprocess.Popen(
            [GUNICORN, "config.wsgi", "-w", str(args.api_workers), "-b", f"127.0.0.1:{api_port}",
             "--timeout", "120"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    worker = subprocess.Popen(
        ["nice", "-n", str(args.worker_nice), PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING",
         "--concurrency=2", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    stats = {"requests": 0, "errors": 0, "latencies": [], "error_samples": []}
    lock = threading.Lock()
    try:
        for _ in range(100):
            try:
                if request(port, cookies["rep"], "/login/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        served = SimpleNamespace(env=env, port=port, cookie=cookies["revops"])
        paths = [page.path for page in pages(served) if not page.headers]
        paths = [p for p in paths if request(port, cookies["revops"], p)[0] == 200]
        deadline = time.time() + args.minutes * 60
        threads = [
            threading.Thread(
                target=user_loop,
                args=(
                    port,
                    cookies[ROLE_USERS[n % len(ROLE_USERS)]],
                    paths,
                    args.think,
                    deadline,
                    stats,
                    lock,
                ),
                daemon=True,
            )
            for n in range(args.users)
        ]
        clients = 4
        pool = multiprocessing.Pool(clients)
        ingestion = pool.map_async(
            ingest_loop,
            [
                (n, api_port, key, args.events_per_second / clients, deadline)
                for n in range(clients)
            ],
        )
        started = time.time()
        for thread in threads:
            thread.start()
        while time.time() < deadline:
            time.sleep(min(30, max(0, deadline - time.time())))
            with lock:
                latencies = sorted(stats["latencies"])
            if latencies:
                print(f"  {time.time() - started:5.0f} s: {stats['requests']} page requests, "
                      f"{stats['errors']} errors, p50 {statistics.median(latencies) * 1000:.0f} ms, "
                      f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms")  # fmt: skip
        results = ingestion.get()
        pool.close()
        ingest_elapsed = time.time() - started
        for thread in threads:
            thread.join()
        elapsed = time.time() - started
        scored = backlog_scored(served, started, time.time())
    finally:
        web.terminate()
        worker.terminate()
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        web.wait(timeout=30)
        worker.wait(timeout=60)
    accepted = sum(r[0] for r in results)
    ingest_errors = sum(r[1] for r in results)
    latencies = sorted(stats["latencies"])
    print(
        f"Load for {elapsed:.0f} s: {args.users} users made {stats['requests']} page requests "
        f"({stats['errors']} errors; p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms); ingestion "
        f"{accepted:,} events accepted in {ingest_elapsed:.0f} s, {accepted / ingest_elapsed:.0f} "
        f"events/s, paced at "
        f"{args.events_per_second} ({ingest_errors} failed batches)."
    )
    print(
        f"Scoring: the {scored['leads']} leads that got events were all scored "
        f"{scored['seconds']} s after the last batch ({scored['still_unscored']} still unscored)."
    )
    if stats["error_samples"]:
        print("First errors:", stats["error_samples"][:10])
    sys.exit(1 if stats["errors"] or ingest_errors else 0)


if __name__ == "__main__":
    main()
