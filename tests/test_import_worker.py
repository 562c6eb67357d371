"""A CSV import run by a real Celery worker process on the configured broker."""

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from config.models import ServiceHeartbeat
from config.tasks import beat_heartbeat
from leads import import_services
from leads.importing import ImportOptions
from leads.models import ImportJob, Lead, LeadStageChange
from leads.tasks import import_run
from tests.import_support import csv_bytes, media_root  # noqa: F401 (a fixture)
from tests.processes import celery_process, wait_for

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("media_root"),
]


def test_a_real_worker_imports_a_job_with_progress_and_rejected_rows(
    marketer, settings, monkeypatch
):
    rows = [[f"person{i}@acme{i % 7}.io", f"P{i}", str(i)] for i in range(4_500)]
    rows[10][0] = "not-an-email"
    rows[3_000][2] = "lots"
    data = csv_bytes(["email", "first_name", "employees"], rows)
    job = import_services.import_job_create(
        kind="leads",
        uploaded_file=SimpleUploadedFile("people.csv", data, content_type="text/csv"),
        actor=marketer,
    )
    job = import_services.import_job_map(
        job=job,
        mapping={"email": "email", "first_name": "first_name", "employees": "employees"},
        options=ImportOptions(),
        actor=marketer,
    )
    # Start it through the service; send the task to a queue only this test's worker reads.
    enqueued = []
    monkeypatch.setattr(
        import_services, "enqueue_on_commit", lambda task, job_id: enqueued.append(job_id)
    )
    job = import_services.import_job_start(job=job, actor=marketer)
    assert enqueued == [job.pk] and job.status == "queued"
    queue = f"test-{uuid.uuid4().hex[:8]}"
    with celery_process(
        "worker",
        "--pool=solo",
        "--concurrency=1",
        f"--queues={queue}",
        "--loglevel=INFO",
        "--without-mingle",
        "--without-gossip",
        f"--hostname={queue}@%h",
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
    ) as worker:
        import_run.apply_async(args=[job.pk], queue=queue)
        done = wait_for(
            lambda: ImportJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).first(),
            timeout=60,
            process=worker,
        )
        # The same message delivered again (acks_late, a crash) changes nothing.
        import_run.apply_async(args=[job.pk], queue=queue)
        import_run.apply_async(args=[job.pk], queue=queue)
        # The worker takes one task at a time, in order: once a later task ran,
        # it has handled the two duplicates.
        beat_heartbeat.apply_async(queue=queue)
        wait_for(lambda: ServiceHeartbeat.objects.exists(), process=worker)
    assert done.status == "done", done.failure
    assert (done.processed_rows, done.total_rows) == (4_500, 4_500)
    assert (done.created_count, done.updated_count, done.error_count) == (4_498, 0, 2)
    assert sorted(done.row_errors.values_list("row_number", flat=True)) == [11, 3_001]
    assert done.started_at is not None and done.finished_at is not None
    assert Lead.objects.count() == 4_498
    assert LeadStageChange.objects.count() == 4_498
    job.refresh_from_db()
    assert (job.created_count, job.error_count, job.finished_at) == (4_498, 2, done.finished_at)
