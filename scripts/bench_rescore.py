#!/usr/bin/env python
"""Time the re-scoring of every open lead (what a publish starts), and the
re-score task new touchpoints send, through a real Celery worker.

    .venv/bin/python scripts/bench_rescore.py [--database accord_bench] [--concurrency 2]
        [--task-batches 20] [--task-batch-size 500]

Uses the benchmark database that scripts/bench_data.py fills; seeds the
demo's agreement there if it has none. It writes scores, evaluations and
MQLs: run it on a copy (`createdb -T accord_bench_1_0 my_copy`) when others
measure the original. Starts `celery worker` with the given concurrency on a
private Redis database (BENCH_BROKER_URL, default redis://127.0.0.1:6379/9).

First the per-touchpoint task: `--task-batches` re-score tasks of
`--task-batch-size` leads each, sent at once, timed until every one of those
leads is scored. They are closed leads (customers, opportunities,
disqualified), which the job below leaves alone, so the two figures do not
disturb each other. Then the job: created as a publish does, timed until it
is done. Prints leads/s for both, and the qualified count.
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
    parser.add_argument("--task-batches", type=int, default=20)
    parser.add_argument("--task-batch-size", type=int, default=500)
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
        task_leads, task_seconds = tasks_run(args.task_batches, args.task_batch_size)
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
    if task_leads:
        print(
            f"Re-score tasks: {task_leads} leads in {args.task_batches} tasks of "
            f"{args.task_batch_size} scored in {task_seconds:.1f} s "
            f"({task_leads / task_seconds:.0f} leads/s)."
        )
    print(
        f"Re-scored {job.processed} open leads in {elapsed:.1f} s "
        f"({job.processed / elapsed:.0f} leads/s) with {args.concurrency} lanes; "
        f"{job.qualified} became MQLs. {job.failure}"
    )


def tasks_run(batches: int, size: int) -> tuple[int, float]:
    """Send `batches` re-score tasks of `size` closed leads each; wait until
    all of those leads are scored. Returns (leads, seconds)."""
    from django.utils import timezone

    from leads.models import Lead, LeadStage
    from sla.tasks import leads_rescore

    ids = list(
        Lead.objects.exclude(stage__in=LeadStage.open_stages())
        .order_by("pk")
        .values_list("pk", flat=True)[: batches * size]
    )
    if not ids:
        return 0, 0.0
    sent_at = timezone.now()
    started = time.monotonic()
    for start in range(0, len(ids), size):
        leads_rescore.delay(ids[start : start + size])
    pending = Lead.objects.filter(pk__in=ids).exclude(scored_at__gte=sent_at)
    while pending.exists():
        time.sleep(0.1)
    return len(ids), time.monotonic() - started


if __name__ == "__main__":
    main()
