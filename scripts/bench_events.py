"""Measure POST /api/v1/events throughput through gunicorn, on this machine.

    .venv/bin/python scripts/bench_events.py [--seconds 20] [--clients 4] [--workers 3]

What it does:
1. (Re)creates a separate database (default accord_bench_api on the server of
   $BENCH_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432) and migrates it.
2. Creates an API key with `manage.py create_api_key` (with a rate limit high
   enough not to interfere), and two campaigns and an asset.
3. Starts `gunicorn config.wsgi -w WORKERS` on 127.0.0.1 with DEBUG=0, HTTPS=0.
4. Warms up: one pass that creates half of a pool of ~2,000 leads.
5. For --seconds, several client processes post batches of --batch events
   (default 500): emails drawn from the pool (known and not yet known leads)
   plus a few brand-new ones, every event id unique, some with a campaign,
   an asset and properties.
6. Prints events/s (accepted events over the wall-clock time) and p50/p95/max
   request latency, then stops gunicorn.

Loopback only; bounded in time. Needs PostgreSQL reachable at the URL above.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
POOL_SIZE = 2000
TYPES = ["page_view", "page_view", "page_view", "email_open", "email_click", "content_download",
         "webinar_registered", "ad_click", "form_submit", "demo_request"]  # fmt: skip
CHANNELS = ["email", "paid_search", "organic_search", "paid_social", "webinar"]


def database_url(name: str) -> str:
    base = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def database_recreate(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def server_env(db_name: str) -> dict:
    env = dict(os.environ)
    env.update(
        DEBUG="0",
        HTTPS="0",
        SECRET_KEY="bench-only-secret-key-" + "x" * 40,
        DATABASE_URL=database_url(db_name),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/1"),
        LOG_LEVEL="WARNING",
        # No mail server on loopback: notification emails go to the worker's
        # (discarded) output instead of failing to connect.
        EMAIL_BACKEND=os.environ.get(
            "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
        ),
    )
    return env


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


SEED = """
from leads.models import Campaign, ContentAsset
Campaign.objects.get_or_create(name="Spring launch", defaults={"channel": "email"})
Campaign.objects.get_or_create(name="Search Q2", defaults={"channel": "paid_search"})
ContentAsset.objects.get_or_create(title="Pricing guide",
    defaults={"kind": "pricing_page", "funnel_stage": "bottom"})
"""


def pool_email(n: int) -> str:
    return f"person{n}@company{n % 300}.example"


def batch_body(client_id: int, batch_no: int, size: int, rng: random.Random) -> bytes:
    events = []
    for i in range(size):
        if rng.random() < 0.02:
            email = f"fresh-{client_id}-{batch_no}-{i}@newco{i % 50}.example"
        else:
            email = pool_email(rng.randrange(POOL_SIZE))
        event = {
            "id": f"c{client_id}-b{batch_no}-e{i}",
            "email": email,
            "type": rng.choice(TYPES),
            "occurred_at": f"2026-03-02T09:{i % 60:02d}:{batch_no % 60:02d}Z",
            "url": f"https://www.example.com/page/{i % 40}",
            "channel": rng.choice(CHANNELS),
        }
        if i % 4 == 0:
            event["campaign"] = "Spring launch" if i % 8 else "Search Q2"
        if i % 10 == 0:
            event["asset"] = "Pricing guide"
        if i % 3 == 0:
            event["properties"] = {"utm_source": "newsletter", "utm_medium": "email", "n": i}
        events.append(event)
    return json.dumps({"events": events}).encode()


def post(conn: http.client.HTTPConnection, key: str, body: bytes) -> tuple[int, dict]:
    conn.request(
        "POST",
        "/api/v1/events",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def client_run(args) -> tuple[int, int, list[float], int]:
    """One client process: post batches until the deadline. Returns (accepted,
    duplicates, latencies in seconds, failed requests)."""
    client_id, port, key, size, deadline = args
    rng = random.Random(client_id)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    accepted = duplicates = failures = 0
    latencies = []
    batch_no = 0
    body = batch_body(client_id, batch_no, size, rng)
    while time.time() < deadline:
        started = time.perf_counter()
        try:
            status, result = post(conn, key, body)
        except (OSError, http.client.HTTPException):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            continue
        latencies.append(time.perf_counter() - started)
        if status != 200 or result["rejected"]:
            failures += 1
        else:
            accepted += result["accepted"]
            duplicates += result["duplicates"]
        batch_no += 1
        body = batch_body(client_id, batch_no, size, rng)  # built while no request is out
    return accepted, duplicates, latencies, failures


def free_port() -> int:
    """A loopback port nobody listens on (another server there would answer
    the health check in gunicorn's place)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen) -> None:
    for _ in range(100):
        if process.poll() is not None:
            sys.exit("gunicorn exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not answer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--database", default="accord_bench_api")
    args = parser.parse_args()
    args.port = args.port or free_port()

    env = server_env(args.database)
    print(f"database {args.database}: recreating and migrating …", flush=True)
    database_recreate(args.database)
    manage(env, "migrate", "--verbosity", "0")
    key = manage(env, "create_api_key", "bench", "--rate-limit", "1000000").strip()
    manage(env, "shell", "-c", SEED)

    server = subprocess.Popen(
        [GUNICORN, "config.wsgi", "-w", str(args.workers), "-b", f"127.0.0.1:{args.port}",
         "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_for(args.port, server)
        if server.poll() is not None:
            sys.exit(f"gunicorn could not start on port {args.port}")
        # Warm-up (not timed): half of the pool becomes known leads.
        conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
        for start in range(0, POOL_SIZE // 2, 500):
            events = [
                {"id": f"warm-{n}", "email": pool_email(n), "type": "page_view",
                 "occurred_at": "2026-03-01T08:00:00Z", "channel": "email"}
                for n in range(start, min(start + 500, POOL_SIZE // 2))
            ]  # fmt: skip
            status, _ = post(conn, key, json.dumps({"events": events}).encode())
            assert status == 200, status
        conn.close()

        print(
            f"posting batches of {args.batch} from {args.clients} client processes for "
            f"{args.seconds:g} s to gunicorn -w {args.workers} …",
            flush=True,
        )
        started = time.time()
        deadline = started + args.seconds
        with multiprocessing.Pool(args.clients) as pool:
            results = pool.map(
                client_run,
                [(n, args.port, key, args.batch, deadline) for n in range(args.clients)],
            )
        elapsed = time.time() - started
    finally:
        server.terminate()
        server.wait(timeout=30)

    accepted = sum(r[0] for r in results)
    duplicates = sum(r[1] for r in results)
    failures = sum(r[3] for r in results)
    latencies = sorted(latency for r in results for latency in r[2])
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"requests: {len(latencies)} ({failures} failed)   duplicates: {duplicates}")
    print(f"events accepted: {accepted} in {elapsed:.1f} s")
    print(f"throughput: {accepted / elapsed:,.0f} events/s")
    print(
        f"latency per request: p50 {quantiles[49] * 1000:.0f} ms, "
        f"p95 {quantiles[94] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
