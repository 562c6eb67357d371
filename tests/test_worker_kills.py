"""A worker killed with SIGKILL in the middle of an import or a sweep: after a
new worker starts (and beat's sweep sends the work again), every effect is
applied exactly once. Real worker processes on the configured broker.

(The re-score job's version of this is in tests/test_sla_worker.py.)"""

import signal
import uuid
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count
from django.utils import timezone

from leads import import_services
from leads.importing import ImportOptions
from leads.models import ImportJob, Lead, LeadStageChange
from leads.tasks import import_jobs_sweep_run
from sla.models import Breach, Notification
from sla.tasks import response_clock_sweep_run
from tests.factories import make_lead, make_team
from tests.import_support import csv_bytes, media_root  # noqa: F401 (a fixture)
from tests.processes import celery_process, wait_for
from tests.sla_factories import make_sla

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def worker_args(queue):
    return ("worker", "--pool=solo", f"--queues={queue}", "--without-mingle",
            "--without-gossip", f"--hostname={queue}-{uuid.uuid4().hex[:4]}@%h")  # fmt: skip


@pytest.mark.usefixtures("media_root")
def test_an_import_killed_midway_finishes_once_on_a_new_worker(marketer, settings, monkeypatch):
    rows = [[f"person{i}@kill{i % 13}.example", f"P{i}"] for i in range(30_000)]
    job = import_services.import_job_create(
        kind="leads",
        uploaded_file=SimpleUploadedFile("big.csv", csv_bytes(["email", "first_name"], rows)),
        actor=marketer,
    )
    job = import_services.import_job_map(
        job=job,
        mapping={"email": "email", "first_name": "first_name"},
        options=ImportOptions(),
        actor=marketer,
    )
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    # Sent to this test's queue only (the service would use the default queue).
    monkeypatch.setattr(
        import_services, "enqueue_on_commit",
        lambda task, job_id: task.apply_async(args=[job_id], queue=queue),
    )  # fmt: skip
    env = {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    with celery_process(*worker_args(queue), **env) as first:
        import_services.import_job_start(job=job, actor=marketer)
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).processed_rows > 0, process=first)
        first.send_signal(signal.SIGKILL)
        first.wait()
    job.refresh_from_db()
    assert job.status == ImportJob.Status.RUNNING and job.processed_rows < 30_000
    with celery_process(*worker_args(queue), **env) as second:
        # What beat's sweep does for a running job whose worker died (sent to
        # this test's queue).
        monkeypatch.setattr(
            "config.queue.enqueue",
            lambda task, *args: task.apply_async(args=args, queue=queue),
        )
        ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
        import_jobs_sweep_run.run()
        wait_for(
            lambda: ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE,
            process=second,
            timeout=120,
        )
    job.refresh_from_db()
    assert job.created_count == 30_000 and job.error_count == 0
    assert Lead.objects.count() == 30_000
    changes = LeadStageChange.objects.values("lead").annotate(n=Count("id"))
    assert changes.count() == 30_000 and not changes.filter(n__gt=1).exists()


def test_a_breach_sweep_killed_midway_breaches_and_notifies_each_lead_once(make_user):
    make_sla()
    rep, boss = make_user("r1", "Sales rep"), make_user("b1", "Sales manager")
    make_team(manager=boss, members=[rep])
    now = timezone.now()
    leads = [
        make_lead(stage="mql", owner=rep, response_due_at=now - timedelta(minutes=1 + i % 50))
        for i in range(1500)
    ]
    queue = f"sweep-{uuid.uuid4().hex[:8]}"
    with celery_process(*worker_args(queue)) as first:
        response_clock_sweep_run.apply_async(queue=queue)
        wait_for(lambda: Breach.objects.count() >= 50, process=first, interval=0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
    partial = Breach.objects.count()
    assert 0 < partial < 1500
    with celery_process(*worker_args(queue)) as second:
        response_clock_sweep_run.apply_async(queue=queue)  # beat's next minute
        wait_for(lambda: Breach.objects.count() == 1500, process=second, timeout=120)
    assert Breach.objects.values("lead").distinct().count() == 1500
    assert Notification.objects.filter(recipient=boss).count() == 1500
    assert Notification.objects.filter(recipient=rep).count() == 1500
    assert Lead.objects.filter(pk__in=[x.pk for x in leads], response_breached_at=None).count() == 0
