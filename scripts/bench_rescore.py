#!/usr/bin/env python
"""Time the re-scoring of every open lead (what a publish starts), through a
real Celery worker.

    .venv/bin/python scripts/bench_rescore.py [--database accord_bench] [--concurrency 2]

Uses the benchmark database that scripts/bench_data.py fills; seeds the
demo's agreement there if it has none. Starts `celery worker` with the given
concurrency on a private Redis database (BENCH_BROKER_URL, default
redis://127.0.0.1:6379/9), creates a re-score job as a publish does, and
waits for it. Prints leads/s, the qualified count, and the worker's lanes.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_data import database_url  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="accord_bench")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(args.database),
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/9"),
        "DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.utils import timezone

    from sla import demo, scoring
    from sla.models import RescoreJob

    if not scoring.versions_in_force_exist():
        now = timezone.now()
        demo._icp(now)
        demo._sla(1, title="Bench", changelog="Bench.", published_at=now, superseded_at=None)
        demo._routing()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=WARNING",
         f"--concurrency={args.concurrency}", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        time.sleep(5)  # let the worker connect
        started = time.monotonic()
        job = scoring.rescore_job_create(lanes=args.concurrency)
        while True:
            job.refresh_from_db()
            if job.status in (RescoreJob.Status.DONE, RescoreJob.Status.FAILED):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print(
        f"Re-scored {job.processed} open leads in {elapsed:.1f} s "
        f"({job.processed / elapsed:.0f} leads/s) with {args.concurrency} lanes; "
        f"{job.qualified} became MQLs. {job.failure}"
    )


if __name__ == "__main__":
    main()
