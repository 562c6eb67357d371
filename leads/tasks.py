"""Background work of the leads app. Tasks take ids and call one service."""

from celery import shared_task

from leads import import_services


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_run(job_id: int) -> None:
    """Run a CSV import job. Safe to deliver twice or after a worker crash:
    `import_job_run` claims the job conditionally and resumes an interrupted
    one (see its docstring)."""
    import_services.import_job_run(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def import_jobs_sweep_run():
    """Beat: queued imports whose task was lost, and running ones whose worker
    died, are sent again. A duplicate is harmless: the runner claims the job
    under an advisory lock and resumes after the rows already saved."""
    from datetime import timedelta

    from django.utils import timezone

    from config.queue import enqueue
    from leads.models import ImportJob

    stale = timezone.now() - timedelta(minutes=2)
    for job_id in ImportJob.objects.filter(
        status__in=(ImportJob.Status.QUEUED, ImportJob.Status.RUNNING), created_at__lte=stale
    ).values_list("pk", flat=True):
        enqueue(import_run, job_id)
