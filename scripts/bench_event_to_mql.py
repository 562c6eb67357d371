#!/usr/bin/env python
"""Measure how long an event that makes a lead qualify takes to become a
scored, routed MQL with its clock started: API -> commit -> task -> worker.

    .venv/bin/python scripts/bench_event_to_mql.py [--events 60] [--interval 0.25]

(Re)creates the database accord_bench_e2e, seeds the demo's people and
agreement, starts gunicorn (DEBUG=0) and a Celery worker (concurrency 2) on
Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/8), then posts one
demo request at a time for a new lead and measures, per event, the time from
sending the request to the lead's MQL stage-change row. Prints p50/p95/max.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_events import (  # noqa: E402
    GUNICORN,
    PYTHON,
    database_recreate,
    free_port,
    manage,
    server_env,
    wait_for,
)

SEED = """
from config.demo import demo_users_create
from leads import demo
from sla import demo as sla_demo
from django.utils import timezone
demo_users_create()
demo.sales_people_load()
now = timezone.now()
sla_demo._icp(now)
sla_demo._sla(1, title="Bench", changelog="Bench.", published_at=now, superseded_at=None,
              reassign_after_hours=None)
sla_demo._routing()
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args()
    db_name = "accord_bench_e2e"
    database_recreate(db_name)
    env = server_env(db_name)
    env["CELERY_BROKER_URL"] = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/8")
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "shell", "-c", SEED)
    key = manage(env, "create_api_key", "bench", "--rate-limit", "100000").strip()
    port = free_port()
    web = subprocess.Popen(
        [GUNICORN, "config.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"], cwd=ROOT, env=env
    )
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING",
         "--concurrency=2", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_for(port, web)
        time.sleep(3)  # the worker connects
        sent = {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for n in range(args.events):
            email = f"buyer{n}@hotlead{n}.example"
            body = json.dumps({"events": [{
                "id": f"e2e-{n}", "email": email, "type": "demo_request",
                "occurred_at": datetime.now(UTC).isoformat(),
            }]})  # fmt: skip
            sent[email] = datetime.now(UTC)
            conn.request("POST", "/api/v1/events", body=body, headers={
                "Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                sys.exit(f"event {n}: HTTP {response.status}")
            time.sleep(args.interval)
        time.sleep(3)
        query = (
            "import json; from leads.models import LeadStageChange as C; print(json.dumps("
            "[(c.lead.email, c.changed_at.isoformat(), c.lead.owner_id is not None, "
            "c.lead.response_due_at is not None) for c in "
            "C.objects.filter(to_stage='mql').select_related('lead')]))"
        )
        rows = json.loads(manage(env, "shell", "-c", query).strip().splitlines()[-1])
    finally:
        web.terminate()
        worker.terminate()
        web.wait(timeout=20)
        worker.wait(timeout=30)
    delays = sorted(
        (datetime.fromisoformat(at) - sent[email]).total_seconds()
        for email, at, routed, timed in rows
        if email in sent and routed and timed
    )
    if len(delays) < args.events:
        print(f"only {len(delays)} of {args.events} leads became routed MQLs with a clock")
    print(
        f"event -> scored, routed MQL with clock: n={len(delays)} "
        f"p50 {statistics.median(delays) * 1000:.0f} ms, "
        f"p95 {delays[int(len(delays) * 0.95) - 1] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
