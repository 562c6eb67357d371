"""The Celery wiring, proved with real processes on the configured broker
(Redis when CELERY_BROKER_URL is set, the filesystem transport otherwise)."""

import uuid

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from config.models import ServiceHeartbeat
from config.tasks import beat_heartbeat
from tests.processes import celery_process, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_celery_uses_json_and_the_database_scheduler():
    from config.celery import app

    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_always_eager is False
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit
    assert settings.CELERY_BEAT_SCHEDULER.startswith("django_celery_beat")


def test_a_real_worker_runs_a_task_sent_by_the_app():
    queue = f"test-{uuid.uuid4().hex[:8]}"  # nothing else is ever on this queue
    with celery_process(
        "worker",
        "--pool=solo",
        "--concurrency=1",
        f"--queues={queue}",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
        f"--hostname={queue}@%h",
    ) as worker:
        beat_heartbeat.apply_async(queue=queue)
        heartbeat = wait_for(
            lambda: ServiceHeartbeat.objects.filter(name="beat").first(), process=worker
        )
    assert heartbeat.seen_at is not None


def test_beat_sends_tasks_from_the_database_schedule_to_a_worker(tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name=f"heartbeat on {queue}",
        task="config.tasks.beat_heartbeat",
        interval=every_second,
        queue=queue,
    )
    with (
        celery_process("beat", "--loglevel=INFO", f"--pidfile={tmp_path / 'beat.pid'}"),
        celery_process(
            "worker",
            "--pool=solo",
            f"--queues={queue}",
            "--without-mingle",
            "--without-gossip",
            f"--hostname={queue}@%h",
        ) as worker,
    ):
        heartbeat = wait_for(
            lambda: ServiceHeartbeat.objects.filter(name="beat").first(), process=worker
        )
    assert heartbeat.seen_at is not None
